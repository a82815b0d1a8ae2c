"""`agenthost edit`'s server over real HTTP: `python -m framework edit --no-browser --port 0` in a
subprocess on a temp copy of the commented sample agent.yaml (the contract: README "edit").

One server with the model key and the fake model server (Try it answers), one without the key. The
security cases, the headers, validation with `validate`'s own messages, the form merge, saving and
Try it's stream are each a table or one behaviour per test.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import API_KEY, ROOT
from tests.editor import URL_LINE, Editor, running_editor, start_editor

pytestmark = pytest.mark.slow

SAMPLE = (ROOT / "agent.yaml").read_text(encoding="utf-8")
AZURE_900 = SAMPLE.replace("    timeout: 230\n", "    timeout: 900\n", 1)
SECRET = "sk-proj-" + "Zq7Rt2Lw9Xy4" * 4  # the shape of an OpenAI key: refused, never echoed
WITH_SECRET = SAMPLE.replace("model: gpt-4o-mini", f"model: {SECRET}", 1)
NO_KEY = ("Try it needs OPENAI_API_KEY in the environment agenthost edit runs in: "
          "set it and start the editor again.")
SECURITY = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
MIB = 1 << 20
BESIDE = [".generated.lock", "agent.yaml", "generated"]  # the agent file, the build and the build's lock


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_model) -> Iterator[Editor]:
    with running_editor(tmp_path_factory.mktemp("edit"), {"OPENAI_API_KEY": API_KEY,
                                                          "OPENAI_BASE_URL": fake_model.url}) as running:
        yield running


@pytest.fixture(scope="module")
def keyless(tmp_path_factory) -> Iterator[Editor]:
    with running_editor(tmp_path_factory.mktemp("edit-keyless"), {"OPENAI_API_KEY": None}) as running:
        yield running


@pytest.fixture
def fresh(server) -> Editor:
    """The server with the sample back on disk and loaded (a save test leaves its own text)."""
    server.agent.write_text(SAMPLE, encoding="utf-8")
    server.load()
    return server


def validate_json(folder: Path, text: str) -> list[dict]:
    """What `agenthost validate --format json` reports for the same text in a file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.yaml").write_text(text, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "framework", "validate", "-f", "agent.yaml", "--format", "json"],
                            cwd=folder, capture_output=True, text=True, timeout=120)
    return json.loads(result.stdout)["problems"]


def sse_events(body: bytes) -> list[str]:
    return [block[len("data: "):] for block in body.decode().split("\n\n") if block.startswith("data: ")]


# ---- the address and the socket ------------------------------------------------------------------------

def test_the_first_line_is_the_file_and_its_address_with_a_48_hex_digit_token(server):
    assert URL_LINE.fullmatch(server.line)["file"] == str(server.agent)


def _listening(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (Linux's /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1])
                          if len(address) == 8 else f"ipv6:{address}")
    return found


def test_the_server_listens_on_127_0_0_1_only(server):
    assert _listening(server.port) == {"127.0.0.1"}


def test_another_loopback_address_is_not_answered(server):
    """127.0.0.2 is this machine too: a server bound to every address would answer it."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", server.port), timeout=5).close()


def test_sigterm_stops_the_editor_with_exit_code_0(tmp_path):
    running = start_editor(tmp_path, {"OPENAI_API_KEY": None})
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=30) == 0


# ---- the token, the cookie, Host and Origin ------------------------------------------------------------

def test_the_right_token_in_the_address_sets_the_cookie_and_redirects_to_the_page(server):
    status, headers, _ = server.ask("GET", f"/?token={server.token}", api=False)
    assert (status, headers["Location"]) == (303, "/")
    assert headers["Set-Cookie"] == f"agenthost_editor_{server.port}={server.token}; HttpOnly; SameSite=Strict; Path=/"


def test_the_page_carries_the_token_in_its_meta_tag_and_nothing_else_is_substituted(server):
    status, headers, body = server.ask("GET", "/", headers={"X-Agenthost-Token": None})
    page = (ROOT / "framework" / "edit" / "static" / "index.html").read_text(encoding="utf-8")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.decode() == page.replace('content="{{TOKEN}}"', f'content="{server.token}"', 1)


WRONG = "0" * 48
REFUSED = [  # (method, path, headers over the page's own, why) -> 403
    ("GET", "/", {"Cookie": None, "X-Agenthost-Token": None}, "the page: no token, no cookie"),
    ("GET", f"/?token={WRONG}", {"Cookie": None}, "the page: a wrong token in the address"),
    ("GET", "/?token=", {"Cookie": None}, "the page: an empty token"),
    ("GET", "/", {"Cookie": f"agenthost_editor_{{port}}={WRONG}"}, "the page: a wrong cookie"),
    ("GET", "/", {"Cookie": "agenthost_editor_1={token}"}, "the page: the cookie of an editor on another port"),
    ("GET", "/static/editor.js", {"Cookie": None}, "a static file without the cookie"),
    ("GET", "/api/state", {"Cookie": None}, "the API: the token header but no cookie"),
    ("GET", "/api/state", {"X-Agenthost-Token": None}, "the API: the cookie but no token header"),
    ("GET", "/api/state", {"X-Agenthost-Token": WRONG}, "the API: a wrong token header"),
    ("GET", "/api/state", {"X-Agenthost-Token": WRONG[:-1]}, "the API: a shorter token header"),
    ("GET", "/api/state", {"Origin": "http://evil.example"}, "the API from another site's page"),
    ("GET", "/api/state", {"Origin": "null"}, "the API from a sandboxed page"),
    ("GET", "/api/state", {"Host": "evil.example:{port}"}, "another host name (DNS rebinding)"),
    ("GET", "/api/state", {"Host": "127.0.0.1:1"}, "another port in Host"),
    ("GET", "/api/state", {"Host": "127.0.0.1"}, "Host without the port"),
    ("POST", "/api/save", {"X-Agenthost-Token": None}, "a save without the token header"),
    ("POST", "/api/text", {"Origin": "http://127.0.0.1:1"}, "the API from a page on another port"),
]


@pytest.mark.parametrize(("method", "path", "headers", "why"), REFUSED, ids=[row[-1] for row in REFUSED])
def test_a_request_without_the_token_cookie_host_or_origin_is_refused_403(server, method, path, headers, why):
    headers = {key: value if value is None else value.format(port=server.port, token=server.token)
               for key, value in headers.items()}
    body = json.dumps({"text": SAMPLE}).encode() if method == "POST" else None
    status, answer_headers, answer = server.ask(method, path, body, headers)
    assert status == 403, why
    if path.startswith("/api/"):
        assert "error" in json.loads(answer)
    else:
        assert b"Open the address agenthost edit printed" in answer or b"error" in answer
    assert server.token.encode() not in answer


ALLOWED = [  # (headers over the page's own, why) -> 200 for GET /api/state
    ({}, "the page's own request"),
    ({"Origin": "http://127.0.0.1:{port}"}, "the page's origin"),
    ({"Origin": "http://localhost:{port}", "Host": "localhost:{port}"}, "the page opened as localhost"),
]


@pytest.mark.parametrize(("headers", "why"), ALLOWED, ids=[row[-1] for row in ALLOWED])
def test_the_pages_own_requests_are_answered(server, headers, why):
    headers = {key: value.format(port=server.port) for key, value in headers.items()}
    assert server.ask("GET", "/api/state", headers=headers)[0] == 200, why


TRAVERSAL = ["/static/../server.py", "/static/%2e%2e/server.py", "/static/%2E%2E/server.py",
             "/static/..%2fserver.py", "/static/%2e%2e%2fserver.py", "/static/vendor/../../server.py",
             "/static/vendor/%2e%2e/%2e%2e/server.py", "/static/..%5cserver.py", "/static//etc/passwd",
             "/static/%2fetc%2fpasswd", "/static/", "/static/nothing.js", "/static/vendor", "/static/.%00"]


@pytest.mark.parametrize("path", TRAVERSAL)
def test_a_path_out_of_the_static_folder_or_missing_is_404_json(server, path):
    status, headers, body = server.ask("GET", path)
    assert (status, headers["Content-Type"]) == (404, "application/json")
    assert "error" in json.loads(body)


@pytest.mark.parametrize(("path", "kind"), [
    ("/static/editor.js", "text/javascript; charset=utf-8"),
    ("/static/editor.css", "text/css; charset=utf-8"),
    ("/static/vendor/VENDOR.json", "application/json"),
    ("/static/vendor/LICENSE", "text/plain; charset=utf-8"),
])
def test_a_static_file_is_served_with_its_content_type(server, path, kind):
    status, headers, body = server.ask("GET", path, headers={"X-Agenthost-Token": None})
    assert (status, headers["Content-Type"]) == (200, kind)
    assert body == (ROOT / "framework" / "edit" / path.removeprefix("/")).read_bytes()


# ---- bodies and routes ---------------------------------------------------------------------------------

BODIES = [  # (method, path, body) -> status, as JSON {"error": ...}
    ("POST", "/api/text", b'{"text": "name: x"', 400),
    ("POST", "/api/text", b"\xff\xfe", 400),
    ("POST", "/api/text", b"[1, 2]", 400),
    ("POST", "/api/text", b"", 400),
    ("POST", "/api/text", b"[" * 100_000, 400),
    ("POST", "/api/text", b'{"text": 3}', 400),
    ("POST", "/api/form", b'{"text": "name: x"}', 400),
    ("POST", "/api/form", b'{"text": "name: x", "data": [1]}', 400),
    ("POST", "/api/text", json.dumps({"text": "#" * (MIB + 1)}).encode(), 413),
    ("GET", "/api/nothing", None, 404),
    ("POST", "/api/state", b"{}", 404),
    ("GET", "/nothing", None, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BODIES,
                         ids=[f"{row[0]} {row[1]} {(row[2] or b'')[:20]!r} -> {row[3]}" for row in BODIES])
def test_a_bad_body_or_an_unknown_route_is_a_json_error_never_a_traceback(server, method, path, body, status):
    got, headers, answer = server.ask(method, path, body)
    assert (got, headers["Content-Type"]) == (status, "application/json")
    assert list(json.loads(answer)) == ["error"]
    assert b"Traceback" not in answer


def test_a_body_of_1_mib_is_answered_and_one_byte_more_is_413(server):
    def body(size: int) -> bytes:
        start = json.dumps({"text": SAMPLE + "#"})
        return (start[:-2] + "x" * (size - len(start.encode())) + start[-2:]).encode()

    assert len(body(MIB)) == MIB
    assert server.ask("POST", "/api/text", body(MIB))[0] == 200
    assert server.ask("POST", "/api/text", body(MIB + 1))[0] == 413


EVERY_ANSWER = [  # (method, path, body, headers over the page's own, what) -> the security fields
    ("GET", "/", None, {}, "the page"),
    ("GET", "/?token=" + WRONG, None, {"Cookie": None}, "the refusal page"),
    ("GET", "/?token={token}", None, {"Cookie": None}, "the redirect"),
    ("GET", "/static/editor.js", None, {}, "a static file"),
    ("GET", "/static/../server.py", None, {}, "a 404"),
    ("GET", "/api/state", None, {}, "the API"),
    ("GET", "/api/state", None, {"Host": "evil.example:{port}"}, "a foreign Host"),
    ("POST", "/api/text", b"{", {}, "bad JSON"),
    ("POST", "/api/text", b"x" * (MIB + 1), {}, "a body too large"),
    ("POST", "/api/text", b"{}", {"Content-Length": "12, 13"}, "a malformed request"),
    ("BREW", "/api/text", None, {}, "an unknown method"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "what"), EVERY_ANSWER,
                         ids=[row[-1] for row in EVERY_ANSWER])
def test_every_answer_carries_the_security_fields_and_html_its_csp(server, method, path, body, headers, what):
    headers = {key: value if value is None else value.format(port=server.port, token=server.token)
               for key, value in headers.items()}
    status, answer, _ = server.ask(method, path.format(token=server.token), body, headers)
    assert {name: answer[name] for name in SECURITY} == SECURITY, (what, status)
    if (answer["Content-Type"] or "").startswith("text/html"):
        assert answer["Content-Security-Policy"] == CSP


# ---- validation: validate's own findings ---------------------------------------------------------------

def test_azures_timeout_of_900_is_validates_own_message_at_its_line_and_column(server, tmp_path):
    status, answer = server.post("/api/text", {"text": AZURE_900})
    [expected] = [p for p in validate_json(tmp_path, AZURE_900) if p["path"] == "targets.azure.timeout"]
    [found] = [f for f in answer["findings"] if f["pointer"] == "/targets/azure/timeout"]
    assert status == 200 and answer["ok"] is False
    assert found == {"severity": "error", "message": expected["message"], "path": ["targets", "azure", "timeout"],
                     "pointer": "/targets/azure/timeout", "line": expected["line"], "column": expected["col"]}
    assert AZURE_900.splitlines()[found["line"] - 1][found["column"] - 1:] == "timeout: 900"  # azure's own
    assert "230" in found["message"]


def test_every_finding_is_one_validate_prints_for_the_same_text(server, tmp_path):
    text = AZURE_900.replace("memory: 2048", "memory: 100", 1).replace("max_tokens: 1024", "max_tokens: -1", 1)
    expected = [(p["severity"], p["message"], p["line"], p["col"]) for p in validate_json(tmp_path, text)]
    findings = server.post("/api/text", {"text": text})[1]["findings"]
    assert sorted((f["severity"], f["message"], f["line"], f["column"]) for f in findings) == sorted(expected)
    assert len(expected) >= 2


def test_a_valid_text_has_its_data_its_targets_and_is_ok(server):
    status, answer = server.post("/api/text", {"text": SAMPLE})
    assert (status, answer["ok"], answer["targets"]) == (200, True, ["aws", "gcp", "azure", "vercel"])
    assert answer["data"] == yaml.safe_load(SAMPLE) and answer["text"] == SAMPLE


def test_a_text_that_is_not_yaml_has_no_data_and_a_located_finding(server):
    status, answer = server.post("/api/text", {"text": "name: [unclosed\n"})
    assert (status, answer["data"], answer["ok"], answer["targets"]) == (200, None, False, [])
    assert answer["findings"][0]["severity"] == "error" and answer["findings"][0]["line"] >= 1


def test_the_state_has_the_file_the_schema_the_platforms_and_whether_the_key_is_set(server, keyless):
    status, _, body = server.ask("GET", "/api/state")
    state = json.loads(body)
    schema = json.loads((ROOT / "schema" / "agent.schema.json").read_text(encoding="utf-8"))
    assert status == 200 and state["schema"] == schema and state["text"] == server.agent.read_text(encoding="utf-8")
    assert state["platforms"] == ["aws", "gcp", "azure", "vercel"]
    assert (state["model_key"], state["model_key_name"]) == (True, "OPENAI_API_KEY")
    assert API_KEY not in body.decode()
    assert json.loads(keyless.ask("GET", "/api/state")[2])["model_key"] is False


# ---- a secret is refused, never echoed -----------------------------------------------------------------

def test_a_secret_gets_validates_refusal_and_is_never_echoed(server, tmp_path):
    expected = [p["message"] for p in validate_json(tmp_path, WITH_SECRET) if p["path"] == "model"]
    status, _, body = server.ask("POST", "/api/text", json.dumps({"text": WITH_SECRET}).encode())
    findings = json.loads(body)["findings"]
    assert status == 200 and [f["message"] for f in findings if f["pointer"] == "/model"] == expected
    assert SECRET not in body.decode()


@pytest.mark.parametrize("route", ["/api/text", "/api/form", "/api/save"])
def test_no_route_echoes_a_secret(fresh, route):
    data = yaml.safe_load(SAMPLE) | {"model": SECRET}
    body = {"text": WITH_SECRET, "data": data, "base": fresh.version}
    status, _, body = fresh.ask("POST", route, json.dumps(body).encode())
    assert status in (200, 422) and SECRET not in body.decode()
    assert SECRET not in fresh.agent.read_text(encoding="utf-8")


BARE_KEY = "9f86d081884c7d659a2feaa0c55ad015"  # 32 hex digits: an Azure OpenAI-style key as a whole value
DIGEST = "# prompt reviewed at sha256 " + "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b" + "\n"


@pytest.mark.parametrize(("text", "kept", "hidden"), [
    (DIGEST + SAMPLE, DIGEST.strip(), None),
    (SAMPLE.replace("model: gpt-4o-mini", f"model: {BARE_KEY}", 1), None, BARE_KEY),
    (SAMPLE.replace("cors:\n", f"{SECRET}: 1\ncors:\n", 1), None, SECRET),
], ids=["a digest in a comment", "a bare hex key as a value", "a key shaped as a secret as a name"])
def test_only_what_validate_takes_for_a_secret_is_hidden_in_the_answer(server, text, kept, hidden):
    status, _, body = server.ask("POST", "/api/text", json.dumps({"text": text}).encode())
    assert status == 200
    if kept:
        answer = json.loads(body)
        assert kept in answer["text"] and answer["ok"] is True
    else:
        assert hidden not in body.decode() and "<secret>" in json.loads(body)["text"]


def test_a_digest_in_a_comment_is_saved_as_written(fresh):
    status, answer = fresh.save(DIGEST + SAMPLE)
    assert status == 200 and answer["text"] == DIGEST + SAMPLE
    assert fresh.agent.read_text(encoding="utf-8") == DIGEST + SAMPLE


# ---- the form merged into the text ---------------------------------------------------------------------

def _comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_form_data_is_merged_into_the_text_keeping_every_comment(server):
    data = yaml.safe_load(SAMPLE)
    data["timeout"], data["targets"]["gcp"]["region"] = 120, "europe-west1"
    status, answer = server.post("/api/form", {"text": SAMPLE, "data": data})
    assert status == 200 and answer["ok"] is True
    assert yaml.safe_load(answer["text"]) == data == answer["data"]
    assert _comments(answer["text"]) == _comments(SAMPLE)
    assert answer["text"] == SAMPLE.replace("timeout: 300", "timeout: 120", 1).replace(
        "region: us-central1", "region: europe-west1", 1)


def test_form_data_with_a_text_that_does_not_parse_is_409(server):
    status, answer = server.post("/api/form", {"text": "name: [unclosed\n", "data": {"name": "x"}})
    assert status == 409 and answer["error"].startswith("Fix the YAML first: ")
    assert answer["findings"][0]["severity"] == "error"


# ---- saving --------------------------------------------------------------------------------------------

def test_a_text_with_an_error_is_not_saved_and_says_how_many_problems(fresh):
    before = fresh.agent.read_bytes()
    status, answer = fresh.save(AZURE_900)
    assert (status, answer["error"], answer["ok"]) == (422, "Not saved: 1 problem to fix first.", False)
    assert [f["pointer"] for f in answer["findings"] if f["severity"] == "error"] == ["/targets/azure/timeout"]
    assert fresh.agent.read_bytes() == before


def test_two_errors_are_counted_in_the_refusal(fresh):
    text = SAMPLE.replace("max_tokens: 1024", "max_tokens: -1", 1).replace("memory: 1024", "memory: lots", 1)
    assert fresh.save(text)[1]["error"] == "Not saved: 2 problems to fix first."


def test_save_writes_the_file_atomically_keeping_its_mode_and_builds_as_build_does(fresh):
    fresh.agent.chmod(0o640)
    inode = fresh.agent.stat().st_ino
    text = SAMPLE.replace("Answer briefly and politely.", "Answer in one sentence.", 1)
    status, answer = fresh.save(text)
    assert (status, answer["saved"], answer["ok"], answer["text"]) == (200, True, True, text)
    assert fresh.agent.read_text(encoding="utf-8") == text
    assert fresh.agent.stat().st_mode & 0o777 == 0o640
    assert fresh.agent.stat().st_ino != inode  # a new file renamed over the old one, never rewritten in place
    assert sorted(path.name for path in fresh.folder.iterdir()) == BESIDE  # no temporary file left
    assert answer["changed"] == sorted(answer["changed"]) and answer["changed"]
    assert all(path.startswith("generated/") and (fresh.folder / path).is_file() for path in answer["changed"])
    check = subprocess.run([sys.executable, "-m", "framework", "build", "--check", "-f", "agent.yaml"],
                           cwd=fresh.folder, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_saving_the_same_text_again_changes_nothing(fresh):
    text = SAMPLE.replace("max_tokens: 1024", "max_tokens: 512", 1)
    assert fresh.save(text)[0] == 200
    status, answer = fresh.save(text)
    assert (status, answer["changed"]) == (200, [])


def test_a_file_changed_on_disk_since_it_was_loaded_is_not_overwritten_409(fresh):
    other = SAMPLE.replace("memory: 1024", "memory: 512", 1)
    fresh.agent.write_text(other, encoding="utf-8")
    status, answer = fresh.save(SAMPLE.replace("timeout: 300", "timeout: 60", 1))
    assert (status, answer["error"]) == (409, "agent.yaml changed on disk since the editor loaded it; reload")
    assert fresh.agent.read_text(encoding="utf-8") == other


def test_a_page_loaded_before_an_edit_on_disk_cannot_overwrite_it_after_another_page_loads_409(fresh):
    stale = fresh.version
    other = SAMPLE.replace("memory: 1024", "memory: 512", 1)
    fresh.agent.write_text(other, encoding="utf-8")
    fresh.load()  # a second tab, or a reload, reads the new file
    status, answer = fresh.post("/api/save", {"text": SAMPLE, "base": stale})
    assert status == 409 and fresh.agent.read_text(encoding="utf-8") == other


def test_each_save_answers_the_version_the_next_save_sends(fresh):
    first = SAMPLE.replace("timeout: 300", "timeout: 60", 1)
    assert fresh.save(first)[0] == 200
    assert fresh.save(first.replace("timeout: 60", "timeout: 61", 1))[0] == 200


def test_a_save_without_the_loaded_version_is_400(fresh):
    status, answer = fresh.post("/api/save", {"text": SAMPLE})
    assert (status, answer["error"]) == (400, "'base' must be a string")


def test_saving_an_agent_file_that_is_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    with running_editor(tmp_path / "linked", {"OPENAI_API_KEY": None}) as editor:
        real = tmp_path / "agents-repo" / "agent.yaml"
        real.parent.mkdir()
        real.write_text(SAMPLE, encoding="utf-8")
        editor.agent.unlink()
        editor.agent.symlink_to(real)
        editor.load()
        text = SAMPLE.replace("timeout: 300", "timeout: 120", 1)
        assert editor.save(text)[0] == 200
        assert editor.agent.is_symlink() and real.read_text(encoding="utf-8") == text


def test_the_editor_writes_only_the_agent_file_and_generated(fresh):
    assert fresh.save(SAMPLE.replace("timeout: 300", "timeout: 90", 1))[0] == 200
    assert sorted(path.name for path in fresh.folder.iterdir()) == BESIDE


# ---- Try it --------------------------------------------------------------------------------------------

def chat(editor: Editor, message: str, target: str = "gcp") -> tuple[int, str | None, list[str], list[float]]:
    """One Try it message as the page sends it: status, Content-Type, the SSE events, when each chunk came."""
    conn = http.client.HTTPConnection("127.0.0.1", editor.port, timeout=120)
    body = json.dumps({"target": target, "message": message}).encode()
    conn.request("POST", "/api/chat", body, {"Host": f"127.0.0.1:{editor.port}", "X-Agenthost-Token": editor.token,
                                             "Cookie": f"agenthost_editor_{editor.port}={editor.token}",
                                             "Content-Type": "application/json"})
    response = conn.getresponse()
    arrivals, raw = [], b""
    while chunk := response.read1(65536):
        arrivals.append(time.monotonic())
        raw += chunk
    conn.close()
    return response.status, response.getheader("Content-Type"), sse_events(raw), arrivals


def test_try_it_streams_the_saved_agents_answer_through_the_fake_model_in_order(fresh):
    status, kind, events, arrivals = chat(fresh, "Hello [[delay:0.2]] there")
    assert (status, kind) == (200, "text/event-stream")
    assert events[-1] == "[DONE]"
    parts = [json.loads(event) for event in events[:-1]]
    kinds = [part["type"] for part in parts]
    order = ["start", "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish"]
    assert [kind for kind in dict.fromkeys(kinds)] == order
    assert "".join(p["delta"] for p in parts if p["type"] == "text-delta").startswith("echo: Hello")
    assert parts[-1]["messageMetadata"]["steps"] == 1 and parts[-1]["messageMetadata"]["tokens"] > 0
    assert arrivals[-1] - arrivals[0] >= 0.2  # it came in parts, as the model wrote it


@pytest.mark.parametrize(("data", "why"), [
    ({"target": "nowhere", "message": "Hi"}, "a target the agent does not list"),
    ({"target": "gcp", "message": "   "}, "an empty message"),
    ({"target": "gcp"}, "no message"),
])
def test_try_it_refuses_a_target_not_listed_or_an_empty_message_400(fresh, data, why):
    status, answer = fresh.post("/api/chat", data)
    assert status == 400 and answer["error"], why


def test_try_it_without_the_key_is_503_with_the_variable_to_set(keyless):
    status, headers, body = keyless.ask("POST", "/api/chat", json.dumps({"target": "gcp", "message": "Hi"}).encode())
    assert (status, headers["Content-Type"], json.loads(body)) == (503, "application/json", {"error": NO_KEY})

