"""Run each generated Python app in its real framework and talk to it with one call signature.

call(method, body: bytes, headers: dict) -> (status, headers with lower-case names, body bytes)
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from framework.local.http import upstream_port

Call = Callable[[str, bytes, dict], tuple[int, dict, bytes]]


def load_module(app_dir: Path, entry: str):
    """Import <app_dir>/<entry>.py under a unique name, with the app's own agent_runtime."""
    sys.path.insert(0, str(app_dir))
    sys.modules.pop("agent_runtime", None)
    try:
        spec = importlib.util.spec_from_file_location(f"app_{uuid.uuid4().hex}", app_dir / f"{entry}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(app_dir))
        sys.modules.pop("agent_runtime", None)


class LambdaContext:
    """The context object Lambda passes: remaining time counts down from the configured timeout."""

    def __init__(self, timeout_s: float, name: str = "agent"):
        self._deadline = time.monotonic() + timeout_s
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = "1024"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "2026/11/29/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_url_event(method: str, body: bytes, headers: dict, base64_body: bool = False) -> dict:
    """A Lambda function URL event, payload format 2.0, as AWS documents it (a body that is
    not text arrives base64-encoded)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        base64_body = True
    lower = {k.lower(): v for k, v in headers.items()}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"host": "abcdefg.lambda-url.us-east-1.on.aws", "user-agent": "pytest",
                    "x-forwarded-proto": "https", **lower},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefg",
            "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefg",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "29/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1796112000000,
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode("utf-8"),
        "isBase64Encoded": base64_body,
    }


def rest_api_event(method: str, body: bytes, headers: dict) -> dict:
    """An API Gateway REST API (payload 1.0) proxy event."""
    return {
        "resource": "/agent",
        "path": "/agent",
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "requestContext": {"resourcePath": "/agent", "httpMethod": method, "stage": "prod"},
        "body": body.decode("utf-8") if body else None,
        "isBase64Encoded": False,
    }


def lambda_caller(app_dir: Path, timeout_s: float) -> Call:
    module = load_module(app_dir, "lambda_function")

    def call(method: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        result = module.lambda_handler(function_url_event(method, body, headers), LambdaContext(timeout_s))
        json.dumps(result)  # Lambda serialises the result: it must be plain JSON
        raw = base64.b64decode(result["body"]) if result.get("isBase64Encoded") else result["body"].encode()
        return result["statusCode"], {k.lower(): v for k, v in result.get("headers", {}).items()}, raw

    call.module = module  # type: ignore[attr-defined]
    return call


def azure_caller(app_dir: Path) -> Call:
    import azure.functions as func

    module = load_module(app_dir, "function_app")
    host = json.loads((app_dir / "host.json").read_text())
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    (function,) = [f for f in module.app.get_functions() if f.get_trigger().type == "httpTrigger"]
    trigger = function.get_trigger()
    route = f"/{prefix}/{trigger.route}".split("/{*", 1)[0]  # a catch-all segment also matches nothing
    methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods}
    user_function = function.get_user_function()

    def call(method: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        if method.upper() not in methods:  # the host answers itself for unrouted methods
            return 404, {}, b""
        request = func.HttpRequest(method=method, url=f"http://localhost:7071{route}",
                                   headers=headers, params={}, route_params={}, body=body)
        response = user_function(request)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.get_body()

    call.route = route  # type: ignore[attr-defined]
    call.auth_level = function.get_trigger().auth_level  # type: ignore[attr-defined]
    return call


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_call(base: str) -> Call:
    def call(method: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(base, data=body if method not in ("GET", "HEAD") else None,
                                         method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

    return call


@contextmanager
def functions_framework(app_dir: Path, env: dict[str, str | None]):
    """Serve <app_dir>/main.py with the real functions-framework server in a subprocess
    (env values of None are removed from the inherited environment)."""
    port = upstream_port()
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    exe = Path(sys.executable).with_name("functions-framework")
    proc = subprocess.Popen(
        [str(exe), "--target", "agent_handler", "--source", str(app_dir / "main.py"),
         "--host", "127.0.0.1", "--port", str(port)],
        env=merged, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                    raise RuntimeError(f"functions-framework did not start:\n{output}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def serve_process(target: str, agent_yaml: Path, output: Path, env: dict[str, str | None],
                  log: Path | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python -m framework serve --target T` as a subprocess; yields it and the agent's URL (the
    server picks its own free port: a port chosen here could be taken by another test before it
    binds). With `log`, it runs with default logging and its stderr goes to that file."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    command = [sys.executable, "-m", "framework", "serve", "--target", target, "--port", "0",
               "-f", str(agent_yaml), "-o", str(output)]
    with open(log, "wb") if log else nullcontext(subprocess.PIPE) as err:
        proc = subprocess.Popen(command if log else [*command, "--quiet"], env=merged, stdout=subprocess.PIPE,
                                stderr=err, text=True)
    try:
        line = proc.stdout.readline()  # "Serving NAME (TARGET) at URL"
        if not line.startswith("Serving "):
            proc.kill()
            error = log.read_text(errors="replace") if log else proc.stderr.read()
            raise RuntimeError(f"serve --target {target} did not start: {line}{error}")
        yield proc, line.rsplit(" at ", 1)[1].strip()
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serve_cli(target: str, agent_yaml: Path, output: Path, env: dict[str, str | None]) -> Iterator[str]:
    """serve_process, quiet; yields the agent's URL."""
    with serve_process(target, agent_yaml, output, env) as (_, url):
        yield url


def alive(pid: int) -> bool:
    """Whether a process still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition, what: str, tries: int = 3000) -> None:
    """Poll a condition (bounded by a number of tries, never asserted on time)."""
    for _ in range(tries):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")
