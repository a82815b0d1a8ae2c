"""Functional tests of the Vercel target's function (framework/targets/templates/vercel/api/agent.ts).

The TypeScript is type-checked with tsc, then bundled and served by
tests/js/edge_harness.mjs inside Vercel's open-source Edge runtime
(npm package `edge-runtime`), and exercised over real HTTP against a fake
OpenAI-compatible server. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, Recorded

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "framework" / "targets" / "templates" / "vercel" / "api" / "agent.ts"
JS_DIR = ROOT / "tests" / "js"
HARNESS = JS_DIR / "edge_harness.mjs"
BIN = JS_DIR / "node_modules" / ".bin"

API_KEY = "sk-test-vercel-0123456789abcdef"
ORIGIN = "https://app.example"
TRICKY_PROMPT = (
    'You are "Ünïcødé" 🤖 — {braces} {{ jinja }} {% raw %} """triple""" \'single\'\n'
    "back\\slash \\n not-a-newline ${x} `backticks` $HOME %s %(name)s\n"
    "\ttabbed line\r\nwindows line\n\nend </script> & <b>"
)

# What the Python build writes next to api/agent.ts (see the report for the target).
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "lib": ["ES2022", "DOM"],
        "module": "ESNext",
        "moduleResolution": "bundler",
        "resolveJsonModule": True,
        "strict": True,
        "noEmit": True,
        "isolatedModules": True,
        "skipLibCheck": True,
        "types": [],
    },
    "include": ["api/**/*.ts"],
}


def agent_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "support-bot",
        "model": "gpt-4o-mini",
        "max_tokens": 321,
        "temperature": None,
        "base_url": None,
        "system_prompt": TRICKY_PROMPT,
        "timeout": 3,
        "stream": False,
        "api_key_env": "OPENAI_API_KEY",
        "cors": {"origins": [ORIGIN]},
        "retries": 2,
    }
    config.update(overrides)
    return config


def write_app(directory: Path, config: dict[str, Any]) -> Path:
    """Lay out a directory like generated/vercel/."""
    (directory / "api").mkdir(parents=True)
    shutil.copyfile(TEMPLATE, directory / "api" / "agent.ts")
    (directory / "agent.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    (directory / "tsconfig.json").write_text(json.dumps(TSCONFIG, indent=2), encoding="utf-8")
    return directory


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def js_tools() -> Path:
    """tests/js/node_modules, installed once (npm ci) when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed for the Vercel target's tests")
    if not (BIN / "tsc").exists() or not (JS_DIR / "node_modules" / "edge-runtime").exists():
        command = ["npm", "ci"] if (JS_DIR / "package-lock.json").exists() else ["npm", "install"]
        subprocess.run(
            [*command, "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
    return BIN


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    def __init__(self, directory: Path, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            ["node", str(HARNESS), str(directory), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(line) for line in iter(self.proc.stdout.readline, b"")],
            daemon=True,
        ).start()
        try:
            line = lines.get(timeout=30).decode().strip()
        except queue.Empty:
            line = ""
        if line != f"listening http://127.0.0.1:{self.port}":
            self.close()
            raise RuntimeError(f"harness did not start ({line!r}): {log.read_text(errors='replace')}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def request(
        self,
        method: str,
        body: bytes | str | dict | list | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/api/agent",
    ) -> tuple[int, dict[str, str], bytes]:
        response, conn = self.open(method, body, headers, path)
        try:
            data = response.read()
        finally:
            conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def open(
        self,
        method: str,
        body: bytes | str | dict | list | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/api/agent",
    ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        conn.request(method, path, body=body, headers=all_headers)
        return conn.getresponse(), conn

    def post(self, message: Any = None, **fields: Any) -> tuple[int, dict[str, str], Any]:
        payload = {"message": message, **fields} if message is not None else fields
        status, headers, data = self.request("POST", payload)
        return (
            status,
            headers,
            json.loads(data) if headers.get("content-type", "").startswith("application/json") else data,
        )


def start_app(tmp: Path, fake: Any, **overrides: Any) -> App:
    directory = write_app(tmp / "app", agent_config(**overrides))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env.update(OPENAI_BASE_URL=fake.url, OPENAI_API_KEY=API_KEY)
    return App(directory, env, tmp / "harness.log")


@pytest.fixture(scope="module")
def app(js_tools: Path, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The function with timeout 3 s (deadline 2 s), answering JSON by default."""
    server = start_app(tmp_path_factory.mktemp("vercel"), fake)
    yield server
    server.close()


@pytest.fixture(scope="module")
def stream_app(js_tools: Path, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The function with agent.stream true and a roomier deadline for slow streams."""
    server = start_app(tmp_path_factory.mktemp("vercel-stream"), fake, stream=True, timeout=15)
    yield server
    server.close()


def last_request(fake: FakeOpenAI, marker: str) -> Recorded:
    found = fake.find(marker)
    assert found, f"the model server never saw {marker!r}"
    return found[-1]


# --------------------------------------------------------------------------- type checking


@pytest.mark.parametrize(
    "overrides",
    [
        {"cors": {"origins": []}},
        {
            "temperature": 0.2,
            "base_url": "https://example.invalid/v1",
            "cors": {"origins": ["*"]},
            "stream": True,
        },
    ],
    ids=["defaults", "all-set"],
)
def test_function_type_checks_with_strict_tsc(js_tools: Path, tmp_path: Path, overrides: dict) -> None:
    directory = write_app(tmp_path / "app", agent_config(**overrides))
    result = subprocess.run(
        [str(js_tools / "tsc"), "--noEmit", "-p", str(directory)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_first_line_declares_the_edge_runtime() -> None:
    first = TEMPLATE.read_text(encoding="utf-8").split("\n", 1)[0]
    assert first == 'export const config = { runtime: "edge" };'


# --------------------------------------------------------------------------- contract: success


def test_post_answers_response_and_tokens(app: App) -> None:
    status, headers, body = app.post("hello there")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert set(body) == {"response", "tokens"}
    assert body["response"] == "echo: hello there"
    assert isinstance(body["tokens"], int) and body["tokens"] > 0


def test_tokens_default_to_zero_without_usage(app: App) -> None:
    status, _, body = app.post("no usage please [[empty-usage]]")
    assert status == 200
    assert body["tokens"] == 0


def test_system_prompt_reaches_model_byte_for_byte(app: App, fake: FakeOpenAI) -> None:
    assert app.post("prompt check 7f3a")[0] == 200
    messages = last_request(fake, "prompt check 7f3a").json["messages"]
    assert messages[0] == {"role": "system", "content": TRICKY_PROMPT}
    assert messages[1] == {"role": "user", "content": "prompt check 7f3a"}


def test_model_and_max_tokens_are_sent_without_null_temperature(app: App, fake: FakeOpenAI) -> None:
    assert app.post("params check 91bc")[0] == 200
    sent = last_request(fake, "params check 91bc")
    assert sent.method == "POST" and sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["max_tokens"] == 321
    assert "temperature" not in sent.json and "stream" not in sent.json


def test_authorization_header_carries_the_api_key(app: App, fake: FakeOpenAI) -> None:
    assert app.post("auth check 55de")[0] == 200
    headers = last_request(fake, "auth check 55de").headers
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["content-type"].startswith("application/json")


def test_unicode_round_trips(app: App) -> None:
    message = 'héllo wörld — 你好 🌍 "quoted" \\ {{x}}'
    status, _, body = app.post(message)
    assert status == 200
    assert body["response"] == f"echo: {message}"


def test_one_megabyte_message_is_accepted(app: App, fake: FakeOpenAI) -> None:
    message = "big-7c1e " + "x" * (1024 * 1024)
    status, _, body = app.post(message)
    assert status == 200
    assert body["response"] == f"echo: {message}"


# --------------------------------------------------------------------------- contract: bad requests


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b"[1, 2, 3]",
        b'"just a string"',
        b"{}",
        b'{"message": ""}',
        b'{"message": 42}',
        b'{"message": ["hi"]}',
        b'{"message": "hi", "stream": "yes"}',
    ],
    ids=[
        "not-json",
        "array",
        "string",
        "missing",
        "empty",
        "number",
        "list",
        "stream-not-bool",
    ],
)
def test_invalid_body_is_400_with_a_sentence(app: App, body: bytes) -> None:
    status, headers, data = app.request("POST", body)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(data)["error"]
    assert isinstance(error, str) and len(error) > 10


def test_get_is_405_with_allow_header(app: App) -> None:
    status, headers, data = app.request("GET")
    assert status == 405
    assert headers["allow"] == "POST, OPTIONS"
    assert json.loads(data) == {"error": "method GET not allowed; use POST"}


# --------------------------------------------------------------------------- contract: CORS


def test_options_with_allowed_origin_is_204_with_cors(app: App) -> None:
    status, headers, _ = app.request("OPTIONS", headers={"Origin": ORIGIN})
    assert status == 204
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["vary"] == "Origin"
    assert headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert headers["access-control-allow-headers"] == "Content-Type, Authorization"
    assert headers["access-control-max-age"] == "600"


def test_options_with_other_origin_is_204_without_cors(app: App) -> None:
    status, headers, _ = app.request("OPTIONS", headers={"Origin": "https://evil.example"})
    assert status == 204
    assert not any(k.startswith("access-control-") for k in headers)


def test_post_with_allowed_origin_carries_cors(app: App) -> None:
    status, headers, _ = app.request("POST", {"message": "cors post"}, headers={"Origin": ORIGIN})
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN


# --------------------------------------------------------------------------- contract: upstream failures


def test_upstream_500_is_502_without_secrets(app: App) -> None:
    status, _, data = app.request("POST", {"message": "fail [[status:500]]"})
    assert status == 502
    assert json.loads(data) == {"error": "the model endpoint answered HTTP 500"}
    assert API_KEY.encode() not in data and b"upstream says no" not in data


def test_upstream_503_once_is_retried(app: App, fake: FakeOpenAI) -> None:
    status, _, body = app.post("flaky 3e9d [[status-once:503]]")
    assert status == 200
    assert body["response"].startswith("echo: flaky 3e9d")
    assert len(fake.find("flaky 3e9d")) == 2


def test_upstream_429_past_the_deadline_is_502(app: App, fake: FakeOpenAI) -> None:
    status, _, body = app.post("busy 8a8a [[status:429,retry-after:1]]")
    assert status == 502
    assert body == {"error": "the model endpoint answered HTTP 429"}
    assert 1 <= len(fake.find("busy 8a8a")) <= 3


def test_hanging_model_is_504(app: App) -> None:
    status, _, body = app.post("slow [[hang:10]]")
    assert status == 504
    assert body == {"error": "the model did not answer within 3 s"}


def test_malformed_answer_is_502(app: App) -> None:
    status, _, body = app.post("garbled [[malformed]]")
    assert status == 502
    assert set(body) == {"error"}


def test_unreachable_model_is_502(js_tools: Path, tmp_path: Path) -> None:
    class Nowhere:
        url = f"http://127.0.0.1:{free_port()}/v1"

    server = start_app(tmp_path, Nowhere(), retries=0)
    try:
        status, _, body = server.post("anyone there?")
    finally:
        server.close()
    assert status == 502
    assert body == {"error": "could not reach the model endpoint"}


def test_missing_api_key_is_500(js_tools: Path, fake: FakeOpenAI, tmp_path: Path) -> None:
    directory = write_app(tmp_path / "app", agent_config(api_key_env="MY_AGENT_KEY"))
    env = {k: v for k, v in os.environ.items() if k != "MY_AGENT_KEY"}
    env["OPENAI_BASE_URL"] = fake.url
    server = App(directory, env, tmp_path / "harness.log")
    try:
        status, _, body = server.post("keyless")
    finally:
        server.close()
    assert status == 500
    assert body == {"error": "MY_AGENT_KEY is not set in the function's environment"}


# --------------------------------------------------------------------------- contract: streaming


def test_stream_request_sends_stream_options(app: App, fake: FakeOpenAI) -> None:
    status, headers, data = app.request("POST", {"message": "stream opts 4b4b", "stream": True})
    assert status == 200
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert data.decode() == "echo: stream opts 4b4b"
    sent = last_request(fake, "stream opts 4b4b").json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_stream_arrives_incrementally(stream_app: App, fake: FakeOpenAI) -> None:
    marker = "incremental 2d2d"
    response, conn = stream_app.open("POST", {"message": f"[[delay:0.3]] {marker} one two three"})
    try:
        assert response.status == 200
        assert response.getheader("content-type") == "text/plain; charset=utf-8"
        pieces = [response.read1(65536)]
        sent_at_first_piece = fake.chunks_sent(marker)
        while chunk := response.read1(65536):
            pieces.append(chunk)
    finally:
        conn.close()
    text = b"".join(pieces).decode()
    assert text == f"echo: [[delay:0.3]] {marker} one two three"
    # The first piece reached the client while the model was still sending.
    assert pieces[0] and sent_at_first_piece < fake.chunks_sent(marker)


def test_agent_stream_default_can_be_turned_off_per_request(stream_app: App) -> None:
    status, headers, body = stream_app.post("json please", stream=False)
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert body["response"] == "echo: json please" and body["tokens"] > 0


def test_stream_error_before_first_byte_is_json(stream_app: App) -> None:
    status, headers, data = stream_app.request("POST", {"message": "broken [[status:500]]"})
    assert status == 502
    assert headers["content-type"].startswith("application/json")
    assert json.loads(data) == {"error": "the model endpoint answered HTTP 500"}


# --------------------------------------------------------------------------- Node.js runtime variant

NODE_ESM_CHECK = """
const ts = require(process.argv[1] + "/node_modules/typescript");
const fs = require("fs");
const dir = process.argv[2];
const source = fs.readFileSync(dir + "/api/agent.ts", "utf8");
const out = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
});
fs.writeFileSync(dir + "/api/agent.js", out.outputText);
import(dir + "/api/agent.js").then(async (m) => {
  const request = new Request("http://localhost/api/agent", {
    method: "POST",
    body: JSON.stringify({ message: "native esm" }),
  });
  const response = await m.POST(request);
  console.log(JSON.stringify({ config: m.config, status: response.status, body: await response.json() }));
});
"""


def test_nodejs_variant_runs_as_native_esm(js_tools: Path, fake: FakeOpenAI, tmp_path: Path) -> None:
    """runtime nodejs: line 1 rewritten, TS transpiled per file and run as native
    ESM under "type": "module", as Vercel's Node.js runtime does."""
    directory = write_app(tmp_path / "app", agent_config())
    agent_ts = directory / "api" / "agent.ts"
    lines = agent_ts.read_text(encoding="utf-8").split("\n")
    lines[0] = lines[0].replace('"edge"', '"nodejs"')
    agent_ts.write_text("\n".join(lines), encoding="utf-8")
    (directory / "package.json").write_text('{"private": true, "type": "module"}', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env.update(OPENAI_BASE_URL=fake.url, OPENAI_API_KEY=API_KEY)
    result = subprocess.run(
        ["node", "-e", NODE_ESM_CHECK, str(JS_DIR), str(directory)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["config"] == {"runtime": "nodejs"}
    assert outcome["status"] == 200
    assert outcome["body"]["response"] == "echo: native esm"
