"""The local HTTP front (framework/local/http.py) against a hostile client, on every target.

Each target's agent runs under `python -m framework serve` with default logging (one server per
target for the module); raw requests go over a socket, and the exact bytes of each answer are read:
status line, header fields, then what follows them. A malformed request gets a 4xx (505 for an
HTTP version the server does not speak) JSON error and a closed connection, never a hang (every
socket has a timeout) and never a traceback on the server's stderr. A well-formed answer leaves the
keep-alive connection usable for the next request.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from framework.local.http import Front, Response
from framework.platforms.aws import runner as aws_runner
from framework.platforms.azure import runner as azure_runner
from framework.platforms.gcp import runner as gcp_runner
from framework.platforms.vercel import runner as vercel_runner
from tests.conftest import API_KEY, require_node, shared_lock
from tests.functional.apps import serve_process, wait_for

pytestmark = pytest.mark.slow

SOCKET_TIMEOUT = 30  # seconds: generous, only there so that a hang fails instead of blocking the suite
ORIGIN = "https://app.example"  # the contract agent's one CORS origin
TARGETS = ("aws", "aws-stream", "gcp", "azure", "vercel")
LIMITS = {"aws": aws_runner.BODY_LIMIT, "aws-stream": aws_runner.BODY_LIMIT, "gcp": gcp_runner.BODY_LIMIT,
          "azure": azure_runner.BODY_LIMIT, "vercel": vercel_runner.BODY_LIMIT}


@dataclass
class Server:
    target: str
    port: int
    path: str  # where the agent answers: / or /api/agent
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


@contextmanager
def serve(target: str, build_dir: Path, env: dict[str, str], stderr: Path) -> Iterator[tuple[Server, subprocess.Popen]]:
    """`python -m framework serve` with default logging, its stderr in a file."""
    with serve_process(target.removesuffix("-stream"), build_dir.parent / "agent.yaml", build_dir, env,
                       log=stderr) as (proc, address):
        url = urllib.parse.urlsplit(address)
        yield Server(target, url.port, url.path, stderr), proc


def model_env(fake_model) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    return {**env, "OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY}


def runtimes(request, target: str) -> None:
    """The npm-installed runtimes a target needs, installed once (under the suite's lock)."""
    if target == "vercel":
        request.getfixturevalue("edge_runtime")
    if target == "aws-stream":
        require_node()
        with shared_lock(request.getfixturevalue("tmp_path_factory"), "lambda-node-ric-install"):
            aws_runner.ensure_ric()


@pytest.fixture(scope="module", params=TARGETS)
def server(request, fake_model, tmp_path_factory) -> Iterator[Server]:
    target = request.param
    runtimes(request, target)
    build_dir = request.getfixturevalue("contract_build_aws_stream" if target == "aws-stream" else "contract_build")
    stderr = tmp_path_factory.mktemp(f"front-{target}") / "stderr.log"
    with serve(target, build_dir, model_env(fake_model), stderr) as (running, _):
        yield running


@pytest.fixture(autouse=True)
def no_traceback(request):
    """Whatever a test sent, the server's log holds no traceback afterwards."""
    yield
    if "server" in request.fixturenames:
        log = request.getfixturevalue("server").log()
        assert "Traceback" not in log, log[-3000:]


# ------------------------------------------------------------------------------ raw HTTP

@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # in order, names lower-cased, repeats kept
    body: bytes

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self) -> dict:
        assert self.one("content-type").startswith("application/json"), self.headers
        return json.loads(self.body)

    def reply(self) -> str:
        """The agent's answer: JSON's `response`, or the text a streaming agent (aws-stream) sent."""
        if self.one("content-type").startswith("text/plain"):
            return self.body.decode()
        return self.json()["response"]


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answer(stream, method: str) -> Answer:
    """One response, read exactly as its framing says (RFC 9112 6.3): nothing after a 204, a 304
    or an answer to HEAD; else its chunks or its Content-Length; else up to the close."""
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), f"not a status line: {status_line!r}"
    status = int(status_line.split()[1])
    headers = []
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    answer = Answer(status, headers, b"")
    if method == "HEAD" or status in (204, 304) or status < 200:
        return answer
    if answer.one("transfer-encoding") == "chunked":
        parts = []
        while size := int(stream.readline().split(b";")[0], 16):
            parts.append(stream.read(size))
            assert stream.read(2) == b"\r\n"
        assert stream.readline() == b"\r\n"
        answer.body = b"".join(parts)
    elif (length := answer.one("content-length")) is not None:
        answer.body = stream.read(int(length))
    else:
        answer.body = stream.read()
    return answer


def exchange(server: Server, raw: bytes) -> tuple[Answer, bool]:
    """Send `raw`, read one answer; also whether the server then closed the connection."""
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw)
        answer = read_answer(stream, raw.split(b" ", 1)[0].decode("latin-1"))
        return answer, stream.read(1) == b""


def request_bytes(server: Server, method: str, body: bytes = b"", *fields: str) -> bytes:
    head = [f"{method} {server.path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", *fields]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def post_bytes(server: Server, message: str) -> bytes:
    return request_bytes(server, "POST", json.dumps({"message": message}).encode())


# ------------------------------------------------------------------------------ malformed requests

def head(server: Server, method: str = "POST", *fields: str) -> bytes:
    return "\r\n".join([f"{method} {server.path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", *fields]).encode()


# (name, raw request, status, a word of the JSON error)
MALFORMED = [
    ("http-9.9", lambda s: b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, "version"),
    ("http2-preface", lambda s: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "version"),
    ("64kb-request-line", lambda s: b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\n\r\n", 414, "too long"),
    ("random-bytes", lambda s: random.Random(9).randbytes(4096), 400, ""),
    ("http-0.9", lambda s: b"GET /\r\n", 400, "request line"),
    ("content-length-minus-1", lambda s: head(s, "POST", "Content-Length: -1") + b"\r\n\r\n", 400, "Content-Length"),
    ("content-length-not-digits", lambda s: head(s, "POST", "Content-Length: 0x10") + b"\r\n\r\n", 400,
     "Content-Length"),
    ("two-content-lengths", lambda s: head(s, "POST", "Content-Length: 2", "Content-Length: 2") + b"\r\n\r\n{}",
     400, "Content-Length"),
    ("xchunked", lambda s: head(s, "POST", "Transfer-Encoding: xchunked") + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400,
     "chunked"),
    ("chunked-and-content-length",
     lambda s: head(s, "POST", "Transfer-Encoding: chunked", "Content-Length: 2") + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     400, "Content-Length"),
    ("chunk-size-minus-1", lambda s: head(s, "POST", "Transfer-Encoding: chunked") + b"\r\n\r\n-1\r\n\r\n", 400,
     "chunk"),
    ("chunk-size-not-hex", lambda s: head(s, "POST", "Transfer-Encoding: chunked") + b"\r\n\r\nzz\r\n\r\n", 400,
     "chunk"),
    ("chunk-without-crlf", lambda s: head(s, "POST", "Transfer-Encoding: chunked") + b"\r\n\r\n2\r\n{}XX0\r\n\r\n",
     400, "chunk"),
    ("bare-cr-in-a-value", lambda s: head(s, "POST", "X-Note: a\rb: c", "Content-Length: 2") + b"\r\n\r\n{}", 400,
     "header"),
    ("obs-fold", lambda s: head(s, "POST", "X-Note: a", " folded", "Content-Length: 2") + b"\r\n\r\n{}", 400,
     "header"),
    ("space-before-colon", lambda s: head(s, "POST", "Content-Length : 2") + b"\r\n\r\n{}", 400, "header"),
    ("line-without-colon", lambda s: head(s, "POST", "not a field", "Content-Length: 2") + b"\r\n\r\n{}", 400,
     "header"),
    ("content-length-with-a-sign", lambda s: head(s, "POST", "Content-Length: +2") + b"\r\n\r\n{}", 400,
     "Content-Length"),
    ("content-length-listed-twice", lambda s: head(s, "POST", "Content-Length: 2, 2") + b"\r\n\r\n{}", 400,
     "Content-Length"),
    ("chunked-twice", lambda s: head(s, "POST", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")
     + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400, "only once"),
    ("no-host", lambda s: f"POST {s.path} HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}".encode(), 400, "Host"),
    ("two-hosts", lambda s: head(s, "POST", "Host: other", "Content-Length: 2") + b"\r\n\r\n{}", 400, "Host"),
    ("trace", lambda s: head(s, "TRACE") + b"\r\n\r\n", 405, "method"),
    ("propfind", lambda s: head(s, "PROPFIND", "Content-Length: 2") + b"\r\n\r\n{}", 405, "method"),
    ("lowercase-post", lambda s: head(s, "post", "Content-Length: 2") + b"\r\n\r\n{}", 405, "method"),
    ("content-length-of-a-terabyte", lambda s: head(s, "POST", "Content-Length: 1000000000000") + b"\r\n\r\n", 413,
     "larger"),
    ("chunk-of-281-terabytes", lambda s: head(s, "POST", "Transfer-Encoding: chunked") + b"\r\n\r\nffffffffffff\r\n",
     413, "larger"),
]


@pytest.mark.parametrize(("raw", "status", "word"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_a_malformed_request_is_a_json_error_and_a_closed_connection(server, raw, status, word):
    answer, closed = exchange(server, raw(server))
    assert (answer.status, closed) == (status, True)
    assert word.lower() in answer.json()["error"].lower()
    assert answer.one("connection") == "close"
    if status == 405:
        assert answer.one("allow") == "POST, OPTIONS"


# ------------------------------------------------------------------------------ body limits

def test_a_content_length_past_the_platforms_limit_is_a_413_before_the_body_is_sent(server):
    limit = LIMITS[server.target]
    answer, closed = exchange(server, head(server, "POST", "Content-Type: application/json",
                                           f"Content-Length: {limit.size + 1}") + b"\r\n\r\n")
    assert (answer.status, closed) == (413, True)
    assert answer.json() == {"error": limit.error}


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(server):
    limit = LIMITS[server.target]
    piece = b"x" * (1 << 20)
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(head(server, "POST", "Content-Type: application/json", "Transfer-Encoding: chunked")
                     + b"\r\n\r\n")
        sent = 0
        while sent <= limit.size:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        answer = read_answer(stream, "POST")  # the final chunk was never sent: the front did not wait for it
        assert (answer.status, stream.read(1)) == (413, b"")
    assert answer.json() == {"error": limit.error}


# ------------------------------------------------------------------------------ well-formed, keep-alive

def test_a_cors_preflight_is_a_bare_204_and_the_connection_stays_usable(server):
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(request_bytes(server, "OPTIONS", b"", f"Origin: {ORIGIN}",
                                   "Access-Control-Request-Method: POST"))
        preflight = read_answer(stream, "OPTIONS")
        sock.sendall(post_bytes(server, "after the preflight"))
        after = read_answer(stream, "POST")  # a stray byte after the 204 would be read as its status line
    assert preflight.status == 204
    assert preflight.one("content-length") is None and preflight.one("transfer-encoding") is None
    assert preflight.one("access-control-allow-origin") == ORIGIN
    assert len(preflight.all("server")) == 1 and len(preflight.all("date")) == 1
    assert after.status == 200 and after.reply() == "echo: after the preflight"
    assert len(after.all("server")) == 1 and len(after.all("date")) == 1


@pytest.mark.parametrize("method", ["HEAD", "GET", "PUT", "DELETE"])
def test_another_method_is_a_405_and_the_connection_stays_usable(server, method):
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(request_bytes(server, method))
        refused = read_answer(stream, method)
        sock.sendall(post_bytes(server, f"after {method}"))
        after = read_answer(stream, "POST")
    assert refused.status == 405 and refused.one("allow") == "POST, OPTIONS"
    assert after.status == 200 and after.reply() == f"echo: after {method}"


# Targets whose runtime streams every answer from its upstream (the Edge runtime, the streaming Lambda).
STREAMED_ANSWERS = {"vercel", "aws-stream"}


def test_an_http_1_0_client_asking_for_keep_alive_is_told_the_connection_stays(server):
    body = json.dumps({"message": "one point oh"}).encode()
    raw = (f"POST {server.path} HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw)
        first = read_answer(stream, "POST")
        if server.target in STREAMED_ANSWERS:  # no chunked coding in HTTP/1.0: the close ends the body
            assert (first.status, first.one("connection"), first.reply()) == (200, "close", "echo: one point oh")
            return
        assert first.one("connection") == "keep-alive" and first.one("content-length") is not None
        sock.sendall(raw)
        second = read_answer(stream, "POST")
    assert (first.status, second.status) == (200, 200) and second.reply() == "echo: one point oh"


def test_a_chunked_upload_is_read_and_answered(server):
    body = json.dumps({"message": "sent in chunks"}).encode()
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(head(server, "POST", "Content-Type: application/json", "Transfer-Encoding: chunked")
                     + b"\r\n\r\n" + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5]), body[i:i + 5])
                                              for i in range(0, len(body), 5)) + b"0\r\nX-Trailer: t\r\n\r\n")
        answer = read_answer(stream, "POST")
    assert answer.status == 200 and answer.reply() == "echo: sent in chunks"


def test_expect_100_continue_is_answered_only_for_an_acceptable_body(server):
    body = json.dumps({"message": "after 100"}).encode()
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(head(server, "POST", "Content-Type: application/json", "Expect: 100-continue",
                          f"Content-Length: {len(body)}") + b"\r\n\r\n")
        assert read_answer(stream, "POST").status == 100
        sock.sendall(body)
        answer = read_answer(stream, "POST")
    assert answer.status == 200 and answer.reply() == "echo: after 100"
    too_large, closed = exchange(server, head(server, "POST", "Expect: 100-continue",
                                              f"Content-Length: {LIMITS[server.target].size + 1}") + b"\r\n\r\n")
    assert (too_large.status, closed) == (413, True)  # no 100 first: the client need not send the body at all


# ------------------------------------------------------------------------------ shutdown

@pytest.mark.parametrize("target", ["gcp", "azure"])
def test_sigterm_drains_the_requests_in_flight(target, request, fake_model, tmp_path):
    build_dir = request.getfixturevalue("contract_build")
    with serve(target, build_dir, model_env(fake_model), tmp_path / "stderr.log") as (running, proc):
        answers: list[Answer] = []
        message = f"[[hang:1]] in flight on {target}"
        worker = threading.Thread(target=lambda: answers.append(exchange(running, post_bytes(running, message))[0]))
        worker.start()
        wait_for(lambda: fake_model.find(message), "the model received the request")
        proc.send_signal(signal.SIGTERM)
        worker.join(SOCKET_TIMEOUT)
        assert proc.wait(timeout=SOCKET_TIMEOUT) == 0
    (answer,) = answers
    assert answer.status == 200 and answer.reply() == f"echo: {message}"
    assert "Traceback" not in running.log()


@pytest.mark.parametrize(("answer", "expected"), [
    ({}, ["no-store"]),
    ({"Cache-Control": "max-age=5"}, ["max-age=5"]),
    ({"cache-control": "max-age=5"}, ["max-age=5"]),
], ids=["the front's own", "the handler's", "the handler's, spelled in lower case"])
def test_a_fields_always_sent_is_the_handlers_when_it_sets_one(answer, expected):
    front = Front(lambda _: Response(200, {"Content-Type": "text/plain", **answer}, b"ok"),
                  always={"Cache-Control": "no-store"}).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{front.port}/", timeout=10) as response:
            assert response.headers.get_all("Cache-Control") == expected
    finally:
        front.close()
