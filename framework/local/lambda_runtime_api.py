"""The Lambda Runtime API on 127.0.0.1, one server per worker process, and the worker itself:
AWS's runtime interface client (`python -m awslambdaric`, or the Node.js `aws-lambda-ric` for a
streaming function) running the generated handler.

A worker is one Lambda execution environment: its module-level code runs once (cold start), it
long-polls /next for one invocation at a time, and it is discarded when an invocation times out.
Each worker gets its own Runtime API port, so the API always knows which process is polling.

A streamed response (the Node.js client, `awslambda.streamifyResponse`) is one POST to
/invocation/{id}/response with `Lambda-Runtime-Function-Response-Mode: streaming` and a chunked
body that lasts as long as the handler writes; an error after the POST began comes as the trailers
`Lambda-Runtime-Function-Error-Type` and `Lambda-Runtime-Function-Error-Body` (base64 JSON). Each
chunk is handed to the invocation as it arrives (`Invocation.chunks`), for the front to forward.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from framework.local.http import Request, Response, _RequestHandler, _Server

API = "/2018-06-01/runtime"
ACCEPTED = Response(202, {"Content-Type": "application/json"}, b'{"status":"OK"}')
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html: 6 MB each way (buffered);
# Lambda's own error messages name 6291456 bytes for a request and 6291556 for a response.
REQUEST_LIMIT = 6 * 1024 * 1024
RESPONSE_LIMIT = REQUEST_LIMIT + 100
STREAMING_MODE = "Lambda-Runtime-Function-Response-Mode"
ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY = "Lambda-Runtime-Function-Error-Body"


def _api_error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, {"Content-Type": "application/json"}, body)


def trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"


@dataclass
class Outcome:
    """How an invocation ended, as the Runtime API saw it."""

    kind: str  # "response" | "error" | "too-large" | "died" | "timeout" | "init-timeout"
    payload: bytes = b""
    content_type: str = "application/json"
    error_type: str = ""


@dataclass
class Invocation:
    event: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace: str = field(default_factory=trace_id)
    submitted: float = 0.0  # monotonic, when handed to a worker
    deadline: float = 0.0  # monotonic, set when the worker takes it
    started: threading.Event = field(default_factory=threading.Event)  # taken by a worker, or ended
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    # A streamed response: its POST's Content-Type once it began, then its body as it arrives.
    stream_type: str | None = None
    chunks: collections.deque[bytes] = field(default_factory=collections.deque)
    changed: threading.Condition = field(default_factory=threading.Condition)  # stream began, chunk, outcome
    abandoned: bool = False  # nobody reads the stream any more (the client hung up): chunks are dropped
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, outcome: Outcome) -> bool:
        """Record the outcome; only the first one counts (a late answer loses to a timeout)."""
        with self._lock:
            if self.outcome is not None:
                return False
            self.outcome = outcome
        self.started.set()
        self.done.set()
        with self.changed:
            self.changed.notify_all()
        return True

    def begin_stream(self, content_type: str) -> None:
        with self.changed:
            self.stream_type = content_type
            self.changed.notify_all()

    def add_chunk(self, chunk: bytes) -> None:
        with self.changed:
            if self.outcome is None and not self.abandoned:
                self.chunks.append(chunk)
                self.changed.notify_all()


class _RuntimeApiHandler(_RequestHandler):
    """The front's handler, except that a streamed response is read as it arrives, not buffered."""

    def _dispatch(self) -> None:
        if self.command == "POST" and self.headers.get(STREAMING_MODE, "").lower() == "streaming":
            self.server.stream(self)  # type: ignore[attr-defined]
        else:
            super()._dispatch()


class _RuntimeApi:
    """The Runtime API server of one worker (127.0.0.1, any free port)."""

    def __init__(self, route: Callable[[Request], Response], stream: Callable[[_RuntimeApiHandler], None]):
        self._server = _Server(("127.0.0.1", 0), _RuntimeApiHandler)
        self._server.handler = route  # type: ignore[attr-defined]
        self._server.stream = stream  # type: ignore[attr-defined]
        self._server.log = False  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _read_streamed_body(handler: _RuntimeApiHandler, on_chunk: Callable[[bytes], None]) -> dict[str, str]:
    """Read a chunked (or Content-Length) request body, handing each piece on as it arrives;
    return the trailer fields (lower-case names). Raises ValueError on bad framing, OSError when the
    connection breaks (the worker was killed)."""
    rfile = handler.rfile
    if "chunked" not in handler.headers.get("Transfer-Encoding", "").lower():
        left = int(handler.headers.get("Content-Length") or 0)
        while left > 0:
            piece = rfile.read1(min(left, 65536))  # type: ignore[attr-defined]
            if not piece:
                raise ConnectionResetError("the body ended early")
            left -= len(piece)
            on_chunk(piece)
        return {}
    while True:
        line = rfile.readline(65537)
        if not line:
            raise ConnectionResetError("the body ended early")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        while size > 0:  # hand on what is there, without waiting for the whole chunk
            piece = rfile.read1(min(size, 65536))  # type: ignore[attr-defined]
            if not piece:
                raise ConnectionResetError("the body ended early")
            size -= len(piece)
            on_chunk(piece)
        rfile.readline(65537)  # the CRLF that ends each chunk
    trailers: dict[str, str] = {}
    while (line := rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        trailers[name.strip().lower()] = value.strip()
    return trailers


class Worker:
    """One execution environment: a runtime interface client process (Python awslambdaric, or the
    Node.js aws-lambda-ric for a streaming function) and the Runtime API it polls."""

    def __init__(self, app_dir: Path, env: dict[str, str], timeout: float, function_arn: str,
                 on_free: Callable[[Worker], None], on_exit: Callable[[Worker], None],
                 command: list[str] | None = None):
        self._timeout = timeout
        self._arn = function_arn
        self._on_free = on_free
        self._on_exit = on_exit
        self._cond = threading.Condition()
        self._queued: Invocation | None = None
        self._current: Invocation | None = None
        self._closed = False
        self.init_error: dict | None = None
        self.busy = True  # owned by the pool (under its lock); a new worker goes to the request that made it
        self._api = _RuntimeApi(self._route, self._stream)
        handler = env.get("_HANDLER", "lambda_function.lambda_handler")
        try:
            self.proc = subprocess.Popen(
                command or [sys.executable, "-m", "awslambdaric", handler], cwd=app_dir,
                env={**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self._api.port}"},
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError:
            self._api.close()
            raise
        # The function's output is its log (CloudWatch): always shown, on our stderr.
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    # --- the pool's side -------------------------------------------------------------------------
    def submit(self, invocation: Invocation) -> None:
        with self._cond:
            invocation.submitted = time.monotonic()
            self._queued = invocation
            self._cond.notify_all()

    def kill(self) -> None:
        """Discard the environment at once (timeout, shutdown): the process and its Runtime API."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._api.close()

    def stop(self, grace: float = 2.0) -> None:
        """Shut down as Lambda does: SIGTERM, then SIGKILL after a grace period."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    # --- the process ------------------------------------------------------------------------------
    def _pump(self) -> None:
        out = getattr(sys.stderr, "buffer", None)
        for line in iter(self.proc.stdout.readline, b""):
            try:
                if out is not None:
                    out.write(line)
                else:
                    sys.stderr.write(line.decode(errors="replace"))
                sys.stderr.flush()
            except (OSError, ValueError):  # our stderr is gone: keep draining the pipe
                pass
        self.proc.stdout.close()

    def _watch(self) -> None:
        self.proc.wait()
        with self._cond:
            self._closed = True
            pending = [i for i in (self._queued, self._current) if i is not None]
            self._queued = self._current = None
            self._cond.notify_all()
        self._on_exit(self)  # out of the pool before the client hears back
        for invocation in pending:
            invocation.finish(Outcome("died", error_type=(self.init_error or {}).get("errorType", "")))
        self._api.close()

    # --- the Runtime API --------------------------------------------------------------------------
    def _route(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if request.method == "GET" and path == f"{API}/invocation/next":
            return self._next()
        if request.method == "POST" and path == f"{API}/init/error":
            try:
                self.init_error = json.loads(request.body or b"{}")
            except ValueError:
                self.init_error = {}
            self.init_error.setdefault("errorType", request.headers.get("lambda-runtime-function-error-type", ""))
            return ACCEPTED
        parts = path[len(API):].strip("/").split("/")
        if request.method == "POST" and len(parts) == 3 and parts[0] == "invocation" \
                and parts[2] in ("response", "error"):
            return self._result(parts[1], parts[2], request)
        return _api_error(404, "InvalidRequest", f"unknown Runtime API endpoint {request.method} {path}")

    def _next(self) -> Response:
        polled = time.monotonic()
        with self._cond:
            while self._queued is None and not self._closed:
                self._cond.wait()
            if self._closed:
                return _api_error(500, "Runtime.Shutdown", "the execution environment is shutting down")
            invocation, self._queued = self._queued, None
            self._current = invocation
            # The clock starts when the invocation meets a ready environment: at submission for a
            # warm one already polling, after init (at its first poll) for a cold one.
            now = time.monotonic()
            start = max(polled, invocation.submitted)
            invocation.deadline = start + self._timeout
            deadline_ms = int((time.time() - (now - start) + self._timeout) * 1000)
        invocation.started.set()
        return Response(200, {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self._arn,
            "Lambda-Runtime-Trace-Id": invocation.trace,
        }, invocation.event)

    def _result(self, request_id: str, kind: str, request: Request) -> Response:
        with self._cond:
            invocation = self._current
            if invocation is None or invocation.request_id != request_id:
                return _api_error(400, "InvalidRequestID", f"no invocation {request_id} is in progress")
            self._current = None
        if kind == "response":
            outcome = Outcome("response", request.body, request.headers.get("content-type", "application/json"))
        else:
            error_type = request.headers.get("lambda-runtime-function-error-type", "")
            try:
                error_type = json.loads(request.body).get("errorType") or error_type
            except (ValueError, AttributeError):
                pass
            outcome = Outcome("error", request.body, error_type=error_type or "Unhandled")
        if len(request.body) > RESPONSE_LIMIT:  # Lambda fails the invocation, the environment lives on
            outcome = Outcome("too-large")
        # Free the worker before the client hears back, so a client's next request finds it warm.
        self._on_free(self)
        invocation.finish(outcome)
        return ACCEPTED

    def _stream(self, handler: _RuntimeApiHandler) -> None:
        """POST /invocation/{id}/response in streaming mode: forward the body as it arrives, answer
        202 when it ends (the client waits for that before it polls /next again)."""
        path = handler.path.split("?", 1)[0]
        parts = path[len(API):].strip("/").split("/")
        with self._cond:
            invocation = self._current
        if not (path.startswith(API) and len(parts) == 3 and parts[0] == "invocation" and parts[2] == "response"
                and invocation is not None and invocation.request_id == parts[1]):
            handler.close_connection = True
            handler._write(_api_error(400, "InvalidRequestID", f"no invocation streams to {path}"))
            return
        invocation.begin_stream(handler.headers.get("Content-Type", "application/octet-stream"))
        try:
            trailers = _read_streamed_body(handler, invocation.add_chunk)
        except (OSError, ValueError):  # killed mid-stream (its exit settles the invocation), or bad framing
            handler.close_connection = True
            return
        with self._cond:
            if self._current is invocation:
                self._current = None
        error_type = trailers.get(ERROR_TYPE.lower(), "")
        if error_type:
            try:
                payload = base64.b64decode(trailers.get(ERROR_BODY.lower(), ""))
            except (binascii.Error, ValueError):
                payload = b""
            outcome = Outcome("error", payload, error_type=error_type)
        else:
            outcome = Outcome("response", content_type=invocation.stream_type or "")
        self._on_free(self)
        invocation.finish(outcome)
        handler._write(ACCEPTED)
