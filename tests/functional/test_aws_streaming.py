"""AWS Lambda response streaming locally: a Node.js function (`awslambda.streamifyResponse`) run by
AWS's own Node.js runtime interface client (npm aws-lambda-ric, no stand-in for `awslambda`),
its streamed POSTs read by the local Runtime API and forwarded to the HTTP client as they arrive."""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse
import uuid
from pathlib import Path

import pytest

from framework.errors import LocalRunError
from framework.local.base import LocalOptions
from tests.conftest import API_KEY, build, require_node, shared_lock, write_agent
from tests.functional.apps import alive, wait_for

aws_runner = pytest.importorskip("framework.platforms.aws.runner")

pytestmark = pytest.mark.slow

TIMEOUT = 5  # seconds: the streaming app's configured timeout
LAMBDA_THROTTLE = {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User",
                   "message": "Rate Exceeded."}

# A streaming handler: writes "a", optionally waits for the test (a gate file), then writes "b".
STREAM_HANDLER = """\
import { existsSync, writeFileSync } from "node:fs";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const q = event.queryStringParameters || {};
  if (q.pidfile) writeFileSync(q.pidfile, String(process.pid));
  if (q.throw) throw new Error("boom before any byte");
  if (q.plain) {
    responseStream.setContentType("text/csv");
    responseStream.write("x,y\\n");
    responseStream.end();
    return;
  }
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { "Content-Type": "text/plain; charset=utf-8", "X-Custom": "yes",
               "X-Remaining": String(context.getRemainingTimeInMillis() > 0) },
    cookies: ["a=1; Path=/", "b=2; HttpOnly"],
  });
  stream.write("a");
  if (q.gate) {
    writeFileSync(q.gate + ".started", "");
    while (!existsSync(q.gate)) await sleep(10);
    writeFileSync(q.gate + ".released", "");
  }
  if (q.forever) await sleep(600000);
  if (q.fail) throw new Error("boom mid-stream");
  stream.write("b");
  stream.end();
});
"""


@pytest.fixture(scope="session")
def lambda_node_ric(tmp_path_factory) -> Path:
    """AWS's Node.js runtime interface client, installed once per machine (npm, native build)."""
    require_node()
    with shared_lock(tmp_path_factory, "lambda-node-ric-install"):
        return aws_runner.ensure_ric()


def _env(fake_model) -> dict:
    return {**os.environ, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": fake_model.url}


@pytest.fixture(scope="module")
def stream_app(tmp_path_factory, fake_model, lambda_node_ric):
    app_dir = tmp_path_factory.mktemp("aws-stream") / "app"
    app_dir.mkdir()
    (app_dir / "index.mjs").write_text(STREAM_HANDLER, encoding="utf-8")
    (app_dir / "package.json").write_text('{"type": "module"}\n', encoding="utf-8")
    app = aws_runner.start(LocalOptions(app_dir=app_dir, port=0, timeout=TIMEOUT, concurrency=2,
                                        env=_env(fake_model), function_name="stream-fn", memory=256))
    yield app
    app.close()


def _open(app, path: str = "/", method: str = "GET", body: bytes = b"") -> tuple[http.client.HTTPConnection,
                                                                               http.client.HTTPResponse]:
    parts = urllib.parse.urlsplit(app.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request(method, path, body=body or None, headers={"Content-Type": "application/json"} if body else {})
    return conn, conn.getresponse()


def request(app, path: str = "/") -> tuple[int, http.client.HTTPMessage, bytes]:
    conn, response = _open(app, path)
    try:
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _q(path: Path) -> str:
    return urllib.parse.quote(str(path))




def test_chunks_reach_the_client_before_the_handler_finished(stream_app, tmp_path):
    gate = tmp_path / "gate"
    conn, response = _open(stream_app, f"/?gate={_q(gate)}")
    try:
        # the prelude's status, headers and cookies are the HTTP response's
        assert response.status == 201
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["X-Custom"] == "yes" and response.headers["X-Remaining"] == "true"
        assert response.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.read(1) == b"a"  # while the handler is still waiting at the gate
        assert Path(f"{gate}.started").exists() and not Path(f"{gate}.released").exists()
        gate.touch()
        assert response.read() == b"b"
        assert Path(f"{gate}.released").exists()
    finally:
        conn.close()


def test_a_stream_without_a_prelude_is_a_200_of_its_content_type(stream_app):
    status, headers, body = request(stream_app, "/?plain=1")
    assert status == 200 and headers["Content-Type"] == "text/csv" and body == b"x,y\n"


def test_a_handler_that_throws_before_writing_is_a_502_json_error(stream_app):
    status, headers, body = request(stream_app, "/?throw=1")
    assert status == 502
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "the function raised an unhandled Error (see the function's log)"}
    assert request(stream_app)[0] == 201  # the environment lives on, as in Lambda


def test_a_handler_that_throws_mid_stream_cuts_the_stream(stream_app, tmp_path):
    pidfile, gate = tmp_path / "pid", tmp_path / "gate"
    conn, response = _open(stream_app, f"/?fail=1&gate={_q(gate)}&pidfile={_q(pidfile)}")
    try:
        assert response.status == 201
        assert response.read(1) == b"a"
        gate.touch()  # now the handler throws, after its first chunk went out
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()  # the client sees the stream end early, not a clean end
        assert cut.value.partial == b""
    finally:
        conn.close()
    pid = int(pidfile.read_text())
    status, _, body = request(stream_app, f"/?pidfile={_q(pidfile)}")
    assert status == 201 and body == b"ab"
    assert int(pidfile.read_text()) == pid  # the environment lives on, as in Lambda


def test_a_stream_past_the_timeout_is_cut_and_the_worker_replaced(stream_app, tmp_path, capfd):
    pidfile = tmp_path / "pid"
    conn, response = _open(stream_app, f"/?forever=1&pidfile={_q(pidfile)}")
    try:
        assert response.status == 201
        assert response.read(1) == b"a"
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()  # ends when the local Lambda cuts the stream at the timeout
        assert cut.value.partial == b""
    finally:
        conn.close()
    timed_out = int(pidfile.read_text())
    wait_for(lambda: not alive(timed_out), "the timed-out environment was discarded")
    assert f"Task timed out after {TIMEOUT:.2f} seconds" in capfd.readouterr().err
    status, _, body = request(stream_app, f"/?pidfile={_q(pidfile)}")
    assert status == 201 and body == b"ab"
    assert int(pidfile.read_text()) != timed_out


def test_beyond_concurrency_max_is_throttled_while_streams_run(stream_app, tmp_path):
    gates = [tmp_path / "gate-a", tmp_path / "gate-b"]
    answers: list = [None, None]

    def hold(i: int) -> None:
        answers[i] = request(stream_app, f"/?gate={_q(gates[i])}")

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    for i, thread in enumerate(threads):
        thread.start()
        wait_for(lambda i=i: Path(f"{gates[i]}.started").exists(), f"stream {i} is running")
    status, headers, body = request(stream_app)  # a third one, while concurrency.max (2) stream
    assert status == 429 and json.loads(body) == LAMBDA_THROTTLE
    assert headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    for gate in gates:
        gate.touch()
    for thread in threads:
        thread.join()
    assert [(a[0], a[2]) for a in answers] == [(201, b"ab"), (201, b"ab")]


def test_a_client_that_hangs_up_mid_stream_frees_the_worker(stream_app, tmp_path):
    gate = tmp_path / "gate"
    conn, response = _open(stream_app, f"/?gate={_q(gate)}")
    assert response.read(1) == b"a"
    conn.close()
    gate.touch()
    wait_for(lambda: Path(f"{gate}.released").exists(), "the handler went on")
    statuses = [request(stream_app)[0] for _ in range(3)]
    assert statuses == [201, 201, 201]


@pytest.mark.parametrize(("on_path", "missing"), [
    (("node", "npm"), "make, cmake, g++, python3"),
    (("node", "npm", "make", "g++", "python3"), "cmake"),
    (("make", "cmake", "g++", "python3"), "node, npm"),
])
def test_missing_build_tools_are_a_clear_error(on_path, missing, tmp_path, monkeypatch):
    """PATH holds exactly `on_path` (stand-in executables): the message names what is missing, and only that."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in on_path:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("AGENT_FRAMEWORK_CACHE", str(tmp_path / "cache"))  # nothing installed yet
    with pytest.raises(LocalRunError) as error:
        aws_runner.ensure_ric()
    message = str(error.value)
    assert "aws-lambda-ric" in message and f"missing on PATH: {missing} (" in message and "apt-get install" in message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_the_one_time_build_is_announced_and_its_failure_is_shown(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("node", "npm", *aws_runner.BUILD_TOOLS):
        (bin_dir / tool).write_text("#!/bin/sh\necho 'gyp ERR! build error' >&2\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("AGENT_FRAMEWORK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LocalRunError) as error:
        aws_runner.ensure_ric()
    assert str(error.value).startswith("could not install AWS's Node.js runtime interface client")
    assert "gyp ERR! build error" in str(error.value)
    notice = capsys.readouterr().err
    assert "installing AWS's Node.js runtime interface client (aws-lambda-ric)" in notice
    assert "once per machine" in notice
    assert not any(path.is_dir() for path in (tmp_path / "cache").iterdir())  # no half install left


# --- the generated streaming agent, end to end ----------------------------------------------------

STREAM_AGENT = """\
    name: stream-bot
    prompt: be brief
    model: fake-model-1
    timeout: 20
    targets:
      aws: {stream: true}
"""


def test_the_generated_streaming_agent_streams_the_model_as_it_writes(tmp_path, fake_model, lambda_node_ric):
    agent = write_agent(tmp_path, STREAM_AGENT)
    assert build(agent, tmp_path / "generated", "--target", "aws") == 0
    app_dir = tmp_path / "generated" / "aws"
    assert (app_dir / "index.mjs").is_file() and not (app_dir / "lambda_function.py").exists()
    app = aws_runner.start(LocalOptions(app_dir=app_dir, port=0, timeout=20, concurrency=1,
                                        env=_env(fake_model), function_name="stream-bot", memory=512))
    tag = f"slow-{uuid.uuid4().hex}"
    try:
        conn, response = _open(app, "/", "POST", json.dumps({"message": f"{tag} [[delay:0.3]]",
                                                             "stream": True}).encode())
        try:
            assert response.status == 200, response.read()
            assert response.headers["Transfer-Encoding"] == "chunked"
            first = response.read1(65536)
            assert first
            sent_then = fake_model.chunks_sent(tag)
            rest = response.read()
        finally:
            conn.close()
        # the first piece arrived while the model was still writing
        assert 0 < sent_then < fake_model.chunks_sent(tag)
        assert response.headers["Content-Type"].startswith("text/plain")
        assert (first + rest).decode() == f"echo: {tag} [[delay:0.3]]"
    finally:
        app.close()
