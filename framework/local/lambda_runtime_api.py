"""The Lambda Runtime API on 127.0.0.1, one server per worker process, and the worker itself:
AWS's runtime interface client (`python -m awslambdaric`) running the generated handler.

A worker is one Lambda execution environment: its module-level code runs once (cold start), it
long-polls /next for one invocation at a time, and it is discarded when an invocation times out.
Each worker gets its own Runtime API port, so the API always knows which process is polling.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from framework.local.http import Front, Request, Response

API = "/2018-06-01/runtime"
ACCEPTED = Response(202, {"Content-Type": "application/json"}, b'{"status":"OK"}')
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html: 6 MB each way (buffered);
# Lambda's own error messages name 6291456 bytes for a request and 6291556 for a response.
REQUEST_LIMIT = 6 * 1024 * 1024
RESPONSE_LIMIT = REQUEST_LIMIT + 100


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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, outcome: Outcome) -> bool:
        """Record the outcome; only the first one counts (a late answer loses to a timeout)."""
        with self._lock:
            if self.outcome is not None:
                return False
            self.outcome = outcome
        self.started.set()
        self.done.set()
        return True


class Worker:
    """One execution environment: an awslambdaric process and the Runtime API it polls."""

    def __init__(self, app_dir: Path, env: dict[str, str], timeout: float, function_arn: str,
                 on_free: Callable[[Worker], None], on_exit: Callable[[Worker], None]):
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
        self._api = Front(self._route, "127.0.0.1", 0).start()
        handler = env.get("_HANDLER", "lambda_function.lambda_handler")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "awslambdaric", handler], cwd=app_dir,
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
