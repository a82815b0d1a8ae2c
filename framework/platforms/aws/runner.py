"""AWS Lambda locally, the way a function URL runs it: an HTTP front turns each request into a
function URL event (payload 2.0) and maps the result back; the generated handler runs under AWS's
own runtime interface client (awslambdaric) in worker processes that poll a local Lambda Runtime API.

As in Lambda: one invocation at a time per worker, at most `concurrency.max` workers (beyond that:
429 throttle), workers started on demand and kept warm, `context.get_remaining_time_in_millis()`
counting down from the timeout, and an invocation still running at the timeout cut off (502) with
its worker discarded. Buffered mode (InvokeMode BUFFERED): 6 MB each way.

Response streaming (InvokeMode RESPONSE_STREAM), which Lambda offers on its Node.js runtime only:
an app folder holding `index.mjs` (and no `lambda_function.py`) runs under AWS's Node.js runtime
interface client (`aws-lambda-ric`, npm, installed once into a cache folder). The handler's
`awslambda.HttpResponseStream.from(stream, {statusCode, headers, cookies})` prelude becomes the
HTTP status and headers, and every chunk it writes goes to the client as it arrives. A stream
still running at the timeout is cut (the client sees it end early) and its worker discarded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from framework.errors import LocalRunError
from framework.local import npm
from framework.local.base import LocalOptions
from framework.local.http import BodyLimit, Front, Request, Response, json_error
from framework.local.lambda_runtime_api import REQUEST_LIMIT, RESPONSE_LIMIT, Invocation, Outcome, Worker, trace_id
from framework.local.process import log_line
from framework.platforms.aws.planner import PAUSED_ANSWER

AWSLAMBDARIC = "awslambdaric>=3.0,<5"
DEFAULT_HANDLER = "lambda_function.lambda_handler"
NODE_HANDLER = "index.handler"
NODE_RIC = Path(__file__).parent / "ric"  # package.json + package-lock.json pinning aws-lambda-ric
# What `npm ci` needs to build aws-lambda-ric's native part (curl, from its shipped configure script,
# and aws-lambda-cpp, via cmake and node-gyp): the compilers every Debian/Ubuntu image of this kind has.
BUILD_TOOLS = ("make", "cmake", "g++", "python3")
PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8  # what awslambda.HttpResponseStream writes between its JSON prelude and the body
ACCOUNT_ID = "123456789012"  # the placeholder account AWS's own documentation uses
INIT_LIMIT = 10.0  # seconds: Lambda's limit on an on-demand environment's init phase
FAILURE_STATUS = 502  # what a function URL answers when the function fails, times out or answers badly
TOO_LARGE = (f"the request is larger than Lambda's {REQUEST_LIMIT}-byte invocation payload limit "
             "(RequestEntityTooLargeException)")
# A body over the payload limit is refused unread; a smaller one may still make too large an event.
BODY_LIMIT = BodyLimit(REQUEST_LIMIT, TOO_LARGE)

# Lambda's own throttle answer on a function URL (reserved concurrency reached): the one a paused function gives.
THROTTLE = Response(PAUSED_ANSWER.status, dict(PAUSED_ANSWER.headers), PAUSED_ANSWER.body)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_SUFFIXES = ("/json", "+json", "/xml", "+xml", "/javascript", "/ecmascript", "/x-www-form-urlencoded",
                  "/yaml", "/x-yaml", "/graphql", "/csv")


# --- request: HTTP -> function URL event (payload format 2.0) ----------------------------------------

def is_text(content_type: str, body: bytes) -> bool:
    """A body travels as plain text when its type is textual (or unset) and it is UTF-8; else base64."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime and not (mime.startswith("text/") or mime.endswith(_TEXT_SUFFIXES)):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def function_url_event(request: Request, request_id: str, trace: str, api_id: str, port: int) -> dict:
    raw_path, _, raw_query = request.path.partition("?")
    raw_path = raw_path or "/"
    headers = {name: value for name, value in request.headers.items() if name != "cookie"}
    host = headers.get("host") or f"127.0.0.1:{port}"
    headers.update({"host": host, "x-amzn-trace-id": trace.split(";", 1)[0],
                    "x-forwarded-for": "127.0.0.1", "x-forwarded-port": str(port), "x-forwarded-proto": "http"})
    now = datetime.now(UTC)
    event: dict = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    cookies = [c.strip() for c in request.headers.get("cookie", "").split(";") if c.strip()]
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if raw_query:
        params: dict[str, str] = {}
        for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": "anonymous",
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": request.method,
            "path": urllib.parse.unquote(raw_path),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": request.headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": f"{now:%d}/{_MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S} +0000",
        "timeEpoch": int(now.timestamp() * 1000),
    }
    text = is_text(request.headers.get("content-type", ""), request.body)
    if request.body:
        event["body"] = request.body.decode("utf-8") if text else base64.b64encode(request.body).decode("ascii")
    event["isBase64Encoded"] = not text
    return event


# --- response: the function's result -> HTTP ------------------------------------------------------

def _bad_response(why: str) -> Response:
    return json_error(FAILURE_STATUS, f"the function returned an invalid response: {why}")


def function_url_response(payload: bytes, content_type: str = "application/json") -> Response:
    """Map a result as function URLs do: a dict with statusCode is an HTTP response (headers, cookies,
    body, isBase64Encoded); any other JSON result is a 200 application/json carrying that JSON."""
    try:
        result = json.loads(payload)
    except ValueError:  # not JSON (a custom serialiser): passed through as it is
        return Response(200, {"Content-Type": content_type or "application/octet-stream"}, payload)
    if not (isinstance(result, dict) and "statusCode" in result):
        return Response(200, {"Content-Type": "application/json"}, payload)
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return _bad_response(f"statusCode {result['statusCode']!r} is not a number")
    if not 100 <= status <= 599:
        return _bad_response(f"statusCode {status} is not an HTTP status")
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        return _bad_response("headers is not an object")
    headers: dict[str, str | list[str]] = {str(k): _header_value(v) for k, v in raw_headers.items()}
    cookies = result.get("cookies") or []
    if cookies:
        if not isinstance(cookies, list):
            return _bad_response("cookies is not a list")
        existing = [headers.pop(k) for k in [k for k in headers if k.lower() == "set-cookie"]]
        headers["Set-Cookie"] = [str(v) for v in existing] + [str(c) for c in cookies]
    body = result.get("body")
    if body is None:
        raw = b""
    elif isinstance(body, str):
        if result.get("isBase64Encoded"):
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return _bad_response("body is not valid base64 although isBase64Encoded is true")
        else:
            raw = body.encode("utf-8")
    else:
        raw = json.dumps(body).encode("utf-8")
    return Response(status, headers, raw)


def _header_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stream_head(prelude: bytes) -> Response:
    """The status and headers of a streamed response, from HttpResponseStream's JSON prelude
    ({statusCode, headers, cookies}); an invalid prelude is a 502 JSON error instead."""
    try:
        meta = json.loads(prelude) if prelude.strip() else {}
    except ValueError:
        return _bad_response("the streamed response's prelude is not JSON")
    if not isinstance(meta, dict):
        return _bad_response("the streamed response's prelude is not an object")
    wanted = ("statusCode", "headers", "cookies")
    result = {"statusCode": 200, **{k: v for k, v in meta.items() if k in wanted and v is not None}}
    return function_url_response(json.dumps(result).encode())  # no body: its body is the stream's


def ensure_ric() -> Path:
    """AWS's Node.js runtime interface client (its index.mjs), built once per lock file."""
    sources = {name: (NODE_RIC / name).read_bytes() for name in ("package.json", "package-lock.json")}
    folder = npm.install(
        sources, "lambda-node-ric",
        "serving a streaming aws function (index.mjs) locally runs AWS's Node.js runtime interface client "
        "(npm aws-lambda-ric), which needs Node.js 20+ and npm and compiles native code once; missing on PATH: "
        "{missing} (Debian/Ubuntu: apt-get install nodejs npm g++ make cmake python3)",
        "could not install AWS's Node.js runtime interface client (aws-lambda-ric) with npm",
        tools=("node", "npm", *BUILD_TOOLS), what="AWS's Node.js runtime interface client (aws-lambda-ric)",
        expected="it compiles native code: about 90 s on 2 cores")
    return folder / "node_modules" / "aws-lambda-ric" / "index.mjs"


def failure(outcome: Outcome, timeout: float) -> Response:
    """The client's answer when an invocation did not produce a result (never a traceback)."""
    if outcome.kind == "timeout":
        return json_error(FAILURE_STATUS, f"the function timed out after {timeout:g} s (Task timed out)")
    if outcome.kind == "error":
        return json_error(FAILURE_STATUS, f"the function raised an unhandled {outcome.error_type} "
                                          "(see the function's log)")
    if outcome.kind == "too-large":
        return json_error(FAILURE_STATUS, f"the function's response is larger than Lambda's {RESPONSE_LIMIT}-byte "
                                          "limit (Function.ResponseSizeTooLarge)")
    if outcome.kind == "init-timeout":
        return json_error(FAILURE_STATUS, f"the function's init phase did not finish within {INIT_LIMIT:g} s "
                                          "(Runtime.InitError)")
    if outcome.error_type:  # the runtime reported an init error, then exited
        return json_error(FAILURE_STATUS, f"the function failed to initialize: {outcome.error_type} "
                                          "(see the function's log)")
    return json_error(FAILURE_STATUS, "the function's process exited during the invocation (Runtime.ExitError)")


# --- the app ---------------------------------------------------------------------------------------

def is_node_app(app_dir: Path) -> bool:
    """A streaming function (Node.js: index.mjs), rather than the Python one."""
    return (app_dir / "index.mjs").is_file() and not (app_dir / "lambda_function.py").is_file()


def _node_major() -> str:
    try:
        version = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "20"
    return version.strip().lstrip("v").split(".", 1)[0] or "20"


class AwsApp:
    def __init__(self, options: LocalOptions):
        self._node = is_node_app(options.app_dir)
        if self._node:
            if shutil.which("node") is None:
                raise LocalRunError("serving a streaming aws function (index.mjs) locally needs Node.js 20+ on PATH "
                                    "(Debian/Ubuntu: apt-get install nodejs npm)")
            ric = ensure_ric()
        elif importlib.util.find_spec("awslambdaric") is None:
            raise LocalRunError(
                "serving the aws target locally needs AWS's Lambda runtime interface client in this Python:\n"
                f"  {sys.executable} -m pip install '{AWSLAMBDARIC}'")
        elif not (options.app_dir / "lambda_function.py").is_file() and "handler" not in options.settings:
            raise LocalRunError(f"{options.app_dir} holds no lambda_function.py: build the aws target first")
        self._options = options
        self._timeout = float(options.timeout)
        self._max = max(1, int(options.concurrency))
        self._lock = threading.Lock()
        self._workers: list[Worker] = []
        self._closed = False
        region = options.env.get("AWS_REGION") or options.env.get("AWS_DEFAULT_REGION") or "us-east-1"
        name = options.function_name
        self._arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
        self._api_id = hashlib.sha256(self._arn.encode()).hexdigest()[:32]
        app_dir = str(options.app_dir)
        handler = str(options.settings.get("handler") or (NODE_HANDLER if self._node else DEFAULT_HANDLER))
        # Variables the runtime client would misread here: the multi-concurrency mode and its log socket.
        env = {k: v for k, v in options.env.items()
               if k not in ("AWS_LAMBDA_MAX_CONCURRENCY", "AWS_LAMBDA_RUNTIME_API", "_LAMBDA_TELEMETRY_LOG_FD",
                            "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET")}
        python_path = os.pathsep.join(p for p in (app_dir, env.get("PYTHONPATH", "")) if p)
        # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html (reserved variables)
        self._env = {
            **env,
            "_HANDLER": handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_nodejs{_node_major()}.x" if self._node
            else f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(options.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": app_dir,
            "TZ": ":UTC",
        }
        if self._node:  # the client's own CLI: the app root is its working directory, the handler its argument
            self._command = ["node", str(ric), handler]
        else:
            self._env["PYTHONPATH"] = python_path
            self._command = [sys.executable, "-m", "awslambdaric", handler]
        try:
            self._front = Front(self._handle, options.host, options.port, options.log, BODY_LIMIT).start()
        except OSError as exc:
            raise LocalRunError(f"cannot listen on {options.host}:{options.port}: {exc.strerror}") from None
        self.url = f"http://{options.host}:{self._front.port}/"

    # --- workers ----------------------------------------------------------------------------------
    def _acquire(self) -> Worker | None:
        """A warm idle worker, else a new one while under concurrency.max, else None (throttle)."""
        with self._lock:
            if self._closed:
                return None
            for worker in self._workers:
                if not worker.busy:
                    worker.busy = True
                    return worker
            if len(self._workers) >= self._max:
                return None
            stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{os.urandom(16).hex()}"
            worker = Worker(self._options.app_dir, {**self._env, "AWS_LAMBDA_LOG_STREAM_NAME": stream},
                            self._timeout, self._arn, self._freed, self._exited, self._command)
            self._workers.append(worker)
            return worker

    def _freed(self, worker: Worker) -> None:
        with self._lock:
            if worker in self._workers:
                worker.busy = False

    def _exited(self, worker: Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)

    # --- requests ---------------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response:
        invocation = Invocation(b"", trace=trace_id())
        event = function_url_event(request, invocation.request_id, invocation.trace, self._api_id, self._front.port)
        invocation.event = json.dumps(event, ensure_ascii=False).encode("utf-8")
        if len(invocation.event) > REQUEST_LIMIT:
            return json_error(413, TOO_LARGE)
        worker = self._acquire()
        if worker is None:
            if self._closed:
                return json_error(503, "the local server is shutting down")
            return THROTTLE
        started = time.monotonic()
        worker.submit(invocation)
        if not invocation.started.wait(INIT_LIMIT):
            self._exited(worker)
            invocation.finish(Outcome("init-timeout"))
            worker.kill()
        elif not self._wait(invocation, lambda: invocation.stream_type is not None):
            self._time_out(invocation, worker)
        if invocation.stream_type is not None:
            response = self._streamed(invocation, worker, started)
            if response is not None:
                return response
        outcome = invocation.outcome
        assert outcome is not None
        self._report(invocation, started)
        if outcome.kind == "response":
            return function_url_response(outcome.payload, outcome.content_type)
        return failure(outcome, self._timeout)

    @staticmethod
    def _wait(invocation: Invocation, ready: Callable[[], bool]) -> bool:
        """Wait until `ready()` or the invocation's outcome, up to its deadline (False: timed out)."""
        with invocation.changed:
            while not (invocation.outcome is not None or ready()):
                remaining = invocation.deadline - time.monotonic()
                if remaining <= 0:
                    return False
                invocation.changed.wait(remaining)
        return True

    def _time_out(self, invocation: Invocation, worker: Worker) -> None:
        # Lambda discards an environment whose invocation timed out: out of the pool (nobody may
        # pick it up), the outcome settled (its death must not pass for a crash), then killed.
        self._exited(worker)
        if invocation.finish(Outcome("timeout")):
            log_line(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z "
                     f"{invocation.request_id} Task timed out after {self._timeout:.2f} seconds")
        worker.kill()

    def _follow(self, invocation: Invocation, worker: Worker) -> None:
        """Keep the timeout on an invocation whose stream nobody follows any more."""
        def watch() -> None:
            if not self._wait(invocation, lambda: False):
                self._time_out(invocation, worker)
        threading.Thread(target=watch, daemon=True).start()

    def _report(self, invocation: Invocation, started: float) -> None:
        if self._options.log:
            kind = invocation.outcome.kind if invocation.outcome else "abandoned"
            duration = (time.monotonic() - started) * 1000
            log_line(f"REPORT RequestId: {invocation.request_id}\tDuration: {duration:.2f} ms"
                     f"\tMemory Size: {self._options.memory} MB\tStatus: {kind}")

    def _streamed(self, invocation: Invocation, worker: Worker, started: float) -> Response | None:
        """The client's answer to a streamed response: its head from the prelude, then its body as
        it arrives. None when it failed before anything could be sent (answered like a buffered one)."""
        stream_type = invocation.stream_type or ""
        if stream_type.split(";", 1)[0].strip().lower() == PRELUDE_TYPE:
            if not self._wait(invocation, lambda: PRELUDE_END in b"".join(invocation.chunks)):
                self._time_out(invocation, worker)
                return None
            with invocation.changed:
                data = b"".join(invocation.chunks)
                invocation.chunks.clear()
                prelude, found, rest = data.partition(PRELUDE_END)
                if rest:
                    invocation.chunks.append(rest)
            if invocation.outcome is not None and invocation.outcome.kind != "response":
                return None
            if not found and prelude:
                head = _bad_response("the streamed response's prelude does not end with 8 NUL bytes")
            else:  # a stream that ended with no write at all has no prelude: an empty 200
                head = stream_head(prelude)
        else:  # a plain stream (no HttpResponseStream.from): a 200 of the stream's content type
            if not self._wait(invocation, lambda: bool(invocation.chunks)):
                self._time_out(invocation, worker)
                return None
            if invocation.outcome is not None and invocation.outcome.kind != "response":
                return None
            head = Response(200, {"Content-Type": stream_type or "application/octet-stream"})
        if head.status == FAILURE_STATUS and head.body:  # an invalid prelude: the invocation runs on unread
            with invocation.changed:
                invocation.abandoned = True
                invocation.chunks.clear()
            self._follow(invocation, worker)
            return head
        head.body = self._stream_body(invocation, worker, started)
        return head

    def _stream_body(self, invocation: Invocation, worker: Worker, started: float) -> Iterator[bytes]:
        """Each chunk as the function writes it; the end of the POST ends it. Cut short (the client's
        connection closed before the final chunk) when the function fails or runs past its timeout."""
        try:
            while True:
                with invocation.changed:
                    while not invocation.chunks and invocation.outcome is None:
                        remaining = invocation.deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        invocation.changed.wait(remaining)
                    chunks = list(invocation.chunks)
                    invocation.chunks.clear()
                    outcome = invocation.outcome
                if chunks:
                    yield from chunks
                    continue
                if outcome is None:
                    self._time_out(invocation, worker)
                    outcome = invocation.outcome
                if outcome is not None and outcome.kind == "response":
                    return
                kind = outcome.error_type if outcome and outcome.kind == "error" else getattr(outcome, "kind", "")
                raise ConnectionAbortedError(f"the function's response stream was cut: {kind}")
        finally:
            if invocation.outcome is None:  # the client hung up: the function runs on, still under its timeout
                with invocation.changed:
                    invocation.abandoned = True
                    invocation.chunks.clear()
                self._follow(invocation, worker)
            self._report(invocation, started)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers, self._workers = list(self._workers), []
        self._front.close()
        for worker in workers:
            worker.stop()


def start(options: LocalOptions) -> AwsApp:
    return AwsApp(options)
