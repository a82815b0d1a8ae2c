"""Conversations and daily token quotas (issue 12), one suite for every way a generated app runs (the
eight of test_tools_conformance.py), each on its platform's own store run locally: DynamoDB on moto's
server (aws), the Firestore fake (gcp), Azurite's Table Storage (azure), Upstash's REST API over a real
redis-server (vercel). The back-ends are tests/stores/conftest.py's, started once per test session; the
in-process apps get the store's environment before they are imported, `serve` gets it too (it then
uses that store instead of starting its own).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from framework.local import stores as local_stores
from tests.conftest import build, write_agent
from tests.fakes.openai_server import call
from tests.functional.apps import lambda_caller
from tests.functional.conftest import MAX_STEPS, TIMEOUT, TOOL_TIMEOUT, TOOLS_AGENT, running, tools_env
from tests.functional.test_conformance import environment
from tests.stores.conftest import backends  # noqa: F401 - the session-wide store back-ends

APPS = ("aws-handler", "azure-function", "serve-aws", "serve-gcp", "serve-azure", "serve-vercel",
        "aws-handler+openai", "serve-gcp+openai")
BACKEND = {"aws": "dynamodb", "azure": "table", "gcp": "firestore-fake", "vercel": "redis"}
QUOTA = 1_000_000
NAME = "tools-bot"
# one conversation key and one quota key per app: the stores (and so the token counters) are shared
KEYS = {app: (f"sk-chat-{i}-{'a' * 20}", f"sk-quota-{i}-{'b' * 20}") for i, app in enumerate(APPS)}
SESSION_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="session")
def session_builds(tmp_path_factory, tool_server, mcp_server):
    """The tools agent with sessions and a daily quota, built with both clients."""
    out = {}
    for client in ("", "openai"):
        folder = tmp_path_factory.mktemp(f"sessions-{client or 'builtin'}")
        text = TOOLS_AGENT.format(client="client: openai" if client else "", tools=tool_server.url,
                                  mcp=mcp_server.url, timeout=TIMEOUT, max_steps=MAX_STEPS, budget=100000,
                                  tool_timeout=TOOL_TIMEOUT)
        text = text.replace("targets:\n", f"sessions: {{store: auto, max_messages: 40}}\n"
                                          f"auth: {{api_keys: AGENT_API_KEYS, daily_tokens: {QUOTA}}}\ntargets:\n")
        agent = write_agent(folder, text)
        assert build(agent, folder / "generated") == 0
        out[client] = folder / "generated"
    return out


def store_env(backends, platform: str, build_dir: Path) -> dict[str, str]:  # noqa: F811
    """The back-end's environment, with what deploy would have created there (the table)."""
    backend = backends.get(BACKEND[platform])
    env = dict(backend.env)
    block = json.loads((build_dir / platform / "agent.json").read_text())["sessions"]
    if platform == "aws":
        local_stores.prepare_dynamodb(env, block["table"])
    elif platform == "azure":
        local_stores.prepare_table(env, block["table"])
    return env


@pytest.fixture(scope="module", params=APPS)
def app(request, fake_model, session_builds, backends):  # noqa: F811
    kind, _, client = request.param.partition("+")
    platform = kind.removeprefix("serve-").removesuffix("-handler").removesuffix("-function")
    env = {**tools_env(fake_model), **store_env(backends, platform, session_builds[client]),
           "AGENT_API_KEYS": "\n".join(k for pair in KEYS.values() for k in pair)}
    with running(kind, session_builds[client], env) as caller:
        caller.keys = KEYS[request.param]
        yield caller


def post(app, payload: dict, key: str | None = None, path_headers: dict | None = None):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key or app.keys[0]}",
               **(path_headers or {})}
    status, got_headers, raw = app("POST", json.dumps({"stream": False, **payload}).encode(), headers)
    return status, got_headers, json.loads(raw) if raw[:1] == b"{" else raw


def ask(app, message: str, session_id: str | None = None, key: str | None = None) -> dict:
    payload = {"message": message, **({"session_id": session_id} if session_id else {})}
    status, _, body = post(app, payload, key)
    assert status == 200, body
    return body


def last_messages(fake_model, tag: str) -> list[dict]:
    return fake_model.find(tag)[-1].json["messages"]


def test_a_three_turn_conversation_is_remembered(app, fake_model, tag):
    first = ask(app, f"{tag} one")
    session_id = first["session_id"]
    assert SESSION_ID.fullmatch(session_id), session_id
    assert ask(app, f"{tag} two", session_id)["session_id"] == session_id
    third = ask(app, f"{tag} three", session_id)
    assert third["session_id"] == session_id
    messages = last_messages(fake_model, f"{tag} three")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in messages if m["role"] == "user"] == [f"{tag} one", f"{tag} two", f"{tag} three"]
    assert messages[2]["content"] == first["response"]


def test_two_sessions_never_mix(app, fake_model, tag):
    a = ask(app, f"{tag}-A first")["session_id"]
    b = ask(app, f"{tag}-B first")["session_id"]
    assert a != b
    ask(app, f"{tag}-A second", a)
    ask(app, f"{tag}-B second", b)
    seen_b = json.dumps(last_messages(fake_model, f"{tag}-B second"))
    seen_a = json.dumps(last_messages(fake_model, f"{tag}-A second"))
    assert f"{tag}-A" not in seen_b and f"{tag}-B first" in seen_b
    assert f"{tag}-B" not in seen_a and f"{tag}-A first" in seen_a


def test_a_session_id_of_one_request_starts_a_conversation_under_that_id(app, fake_model, tag):
    chosen = f"my-{tag}"[:128]
    assert ask(app, f"{tag} hello", chosen)["session_id"] == chosen
    ask(app, f"{tag} again", chosen)
    assert f"{tag} hello" in json.dumps(last_messages(fake_model, f"{tag} again"))


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "", "dot.dot", 42, "ünï"])
def test_a_bad_session_id_is_a_400(app, bad):
    status, _, body = post(app, {"message": "hi", "session_id": bad})
    assert status == 400, body
    assert "session_id" in body["error"]


def test_concurrent_turns_on_one_session_lose_nothing(app, fake_model, tag):
    session_id = ask(app, f"{tag} start")["session_id"]
    statuses: list[int] = []

    def turn(i: int) -> None:
        for _ in range(6):  # a 409 says: send it again
            status, _, body = post(app, {"message": f"{tag} turn-{i}", "session_id": session_id})
            statuses.append(status)
            if status != 409:
                assert status == 200, body
                return
        raise AssertionError("still 409 after 6 tries")

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 4, statuses
    ask(app, f"{tag} end", session_id)
    users = [m["content"] for m in last_messages(fake_model, f"{tag} end") if m["role"] == "user"]
    assert users[0] == f"{tag} start" and users[-1] == f"{tag} end"
    assert sorted(users[1:-1]) == [f"{tag} turn-{i}" for i in range(4)], users


def test_tool_messages_are_kept_and_sent_back_in_order(app, fake_model, tag):
    fake_model.script(f"{tag} order", [call("lookup_order", {"order_id": "42"})])
    first = ask(app, f"{tag} order")
    assert first["steps"] == 2
    ask(app, f"{tag} next", first["session_id"])
    messages = last_messages(fake_model, f"{tag} next")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assistant, tool = messages[2], messages[3]
    assert assistant["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(tool["content"]) == {"order_id": "42", "status": "shipped"}
    assert messages[4]["content"] == first["response"]


def test_with_sessions_off_for_the_request_nothing_is_required(app, tag):
    body = ask(app, f"{tag} alone")
    assert SESSION_ID.fullmatch(body["session_id"])


def test_the_quota_answers_429_with_retry_after_once_used_up(app, fake_model, tag):
    quota_key = app.keys[1]
    fake_model.script(tag, ["expensive"], tokens=[QUOTA])
    assert ask(app, tag, key=quota_key)["response"] == "expensive"
    status, headers, body = post(app, {"message": f"{tag} more"}, quota_key)
    assert status == 429, body
    assert "tokens" in body["error"]
    assert 0 < int(headers["retry-after"]) <= 86400
    assert headers["x-should-retry"] == "false"
    assert not fake_model.find(f"{tag} more")  # the model was not called
    # another key still has its tokens
    assert ask(app, "other key " + tag.upper())["response"].startswith("echo:")


def test_a_stream_carries_the_session_id_in_its_header_and_start_part(app, tag):
    session_id = ask(app, f"{tag} first")["session_id"]
    body = json.dumps({"message": f"{tag} streamed", "stream": True, "session_id": session_id}).encode()
    status, headers, raw = app("POST", body, {"Content-Type": "application/json", "Accept": "text/event-stream",
                                              "Authorization": f"Bearer {app.keys[0]}"})
    if status == 400:  # a platform that sends one body (buffered Lambda) says it does not stream
        assert "stream" in json.loads(raw)["error"]
        return
    assert status == 200, raw
    assert headers["x-session-id"] == session_id
    parts = [json.loads(line[6:]) for line in raw.decode().split("\n\n") if line.startswith("data: {")]
    assert parts[0]["type"] == "start" and parts[0]["messageMetadata"] == {"session_id": session_id}
    assert parts[-1]["type"] == "finish"


def test_without_sessions_a_session_id_is_a_400(fake_model, builds):
    with environment(**tools_env(fake_model)):
        app = lambda_caller(builds[""] / "aws", timeout_s=TIMEOUT)
        status, _, raw = app("POST", json.dumps({"message": "hi", "session_id": "abc"}).encode(),
                             {"Content-Type": "application/json"})
        assert (status, json.loads(raw)["error"]) == (400, "this agent keeps no sessions: send the request "
                                                           "without 'session_id'")
        assert not (builds[""] / "aws" / "agent_sessions.py").exists()  # nothing more shipped, nor imported


def test_an_unreachable_store_is_a_503_before_the_model_is_called(fake_model, session_builds, backends, tag):  # noqa: F811
    backend = backends.get("dynamodb")
    env = {**tools_env(fake_model), **backend.unreachable_env, "AGENT_API_KEYS": KEYS[APPS[0]][0]}
    with environment(**env):
        app = lambda_caller(session_builds[""] / "aws", timeout_s=TIMEOUT)
        status, _, raw = app("POST", json.dumps({"message": tag, "session_id": "s1", "stream": False}).encode(),
                             {"Content-Type": "application/json", "Authorization": f"Bearer {KEYS[APPS[0]][0]}"})
    assert status == 503, raw
    assert json.loads(raw)["error"].startswith("the session store")
    assert not fake_model.find(tag)


INVOKE_AGENT = """\
name: invoke-bot
prompt: You remember.
model: fake-model-1
timeout: 20
sessions: {store: auto}
targets:
  gcp: {project: p-123456, region: us-central1}
"""


def invoke_cli(agent_dir: Path, env: dict[str, str], *args: str):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "framework", "invoke", "--target", "gcp", *args,
                           "-f", str(agent_dir / "agent.yaml"), "-o", str(agent_dir / "generated")],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_invoke_session_without_a_lasting_store_says_how_to_start_one(tmp_path, fake_model):
    write_agent(tmp_path, INVOKE_AGENT)
    env = {key: value for key, value in tools_env(fake_model).items()}
    result = invoke_cli(tmp_path, {**env, "FIRESTORE_EMULATOR_HOST": "", "FIRESTORE_ENDPOINT": ""},
                        "--session", "abc", "-m", "hi")
    assert result.returncode == 2, result.stderr
    assert "python -m framework.local.stores firestore" in result.stderr and "Traceback" not in result.stderr


def test_invoke_session_continues_a_conversation_in_a_store_started_apart(tmp_path, fake_model, tag):
    import subprocess
    import sys

    write_agent(tmp_path, INVOKE_AGENT)
    store = subprocess.Popen([sys.executable, "-m", "framework.local.stores", "firestore"], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert store.stdout.readline().startswith("# export these")
        exported = {}
        while len(exported) < 2:  # FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT
            name, _, value = store.stdout.readline().removeprefix("export ").strip().partition("=")
            exported[name] = value
        env = {**tools_env(fake_model), **exported}
        first = invoke_cli(tmp_path, env, "-m", f"{tag} first")
        assert first.returncode == 0, first.stderr
        session = re.search(r"continue it with --session ([A-Za-z0-9_-]+)", first.stderr).group(1)
        second = invoke_cli(tmp_path, env, "--session", session, "-m", f"{tag} second")
        assert second.returncode == 0, second.stderr
        sent = fake_model.find(f"{tag} second")[-1].json["messages"]
        assert [m["content"] for m in sent if m["role"] == "user"] == [f"{tag} first", f"{tag} second"]
    finally:
        store.terminate()
        store.wait(timeout=30)
