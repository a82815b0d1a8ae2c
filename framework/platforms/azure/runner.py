"""Azure Functions locally: the function registered on the generated FunctionApp, called with
azure.functions.HttpRequest objects at its route under host.json's route prefix (/api/agent)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import sys
import threading
import urllib.parse

from framework.errors import LocalRunError
from framework.local.base import LocalOptions
from framework.local.http import BodyLimit, Front, Request, Response, json_error, with_deadline

# A function past host.json's functionTimeout fails its invocation: the host answers 500.
TIMEOUT_STATUS = 500
# The Functions host refuses a request body over 100 MB (104,857,600 bytes) with 413.
BODY_LIMIT = BodyLimit(104_857_600, "the request body is larger than Azure Functions' 104857600-byte limit")


class _FunctionOutput(io.TextIOBase):
    """sys.stdout while the function runs in this process: what the function prints (its usage lines)
    is its log, as the Functions host treats it, so it goes to stderr when serve logs and is dropped
    when quiet; everything else printed on stdout (the CLI's own answer) stays there."""

    def __init__(self, stdout: io.TextIOBase):
        self._stdout = stdout
        self.calls = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        log = getattr(self.calls, "log", None)
        if log is None:
            return self._stdout.write(text)
        if log:
            sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        target = getattr(self.calls, "log", None)
        (self._stdout if target is None else sys.stderr).flush()


def _function_output() -> _FunctionOutput:
    if not isinstance(sys.stdout, _FunctionOutput):
        sys.stdout = _FunctionOutput(sys.stdout)
    return sys.stdout


def _load_app(options: LocalOptions):
    """Import function_app.py as the Python worker does: app folder on sys.path, app settings in os.environ."""
    os.environ.update(options.env)
    sys.path.insert(0, str(options.app_dir))
    spec = importlib.util.spec_from_file_location("function_app", options.app_dir / "function_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def route_pattern(path: str) -> re.Pattern:
    """A route template as the Functions host matches it (ASP.NET Core routing, case-insensitive):
    `{name}` one segment, `{*name}` the rest of the path, which may be empty."""
    out = ""
    for index, segment in enumerate(path.strip("/").split("/")):
        if segment.startswith("{*") and segment.endswith("}"):
            out += "(?:/.*)?" if index else "/.*"
            break
        if segment.startswith("{") and segment.endswith("}"):
            out += "/[^/]+"
        else:
            out += "/" + re.escape(segment)
    return re.compile(out or "/", re.IGNORECASE)


class AzureApp:
    def __init__(self, options: LocalOptions):
        import azure.functions as func

        host = json.loads((options.app_dir / "host.json").read_text(encoding="utf-8"))
        prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api").strip("/")
        app = _load_app(options)
        routes = []
        for function in app.get_functions():
            trigger = function.get_trigger()
            if trigger.type != "httpTrigger":
                # concurrency.warm_schedule's timer trigger (issue 14): the Functions host runs it on its
                # schedule; this in-process front serves HTTP only (nothing here schedules it)
                continue
            path = "/" + "/".join(part for part in (prefix, trigger.route.strip("/")) if part)
            methods = {str(getattr(m, "value", m)).upper() for m in (trigger.methods or [])}
            routes.append((route_pattern(path), function.get_user_function(), methods))
        timeout = options.timeout
        output = _function_output()

        def handle(request: Request) -> Response:
            url = urllib.parse.urlsplit(request.path)
            route = next((r for r in routes if r[0].fullmatch(url.path.rstrip("/"))), None)
            if route is None or (route[2] and request.method not in route[2]):
                return Response(404)  # the host answers unrouted paths and methods with an empty 404
            _, user_function, _ = route
            http_request = func.HttpRequest(
                method=request.method,
                url=f"http://{options.host}:{self.port}{request.path}",
                headers=request.headers,
                params=dict(urllib.parse.parse_qsl(url.query)),
                route_params={},
                body=request.body,
            )

            def call() -> Response:
                output.calls.log = options.log
                reply = user_function(http_request)
                return Response(reply.status_code, dict(reply.headers), reply.get_body())

            return with_deadline(
                call, timeout,
                lambda: json_error(TIMEOUT_STATUS, f"the function timed out after {timeout:g} s (functionTimeout)"),
                lambda exc: json_error(500, f"the function raised an unhandled {type(exc).__name__} "
                                            "(see the function's log)"),
                self._front.stopping,
                lambda: json_error(503, "the host shut down before the function finished"))

        try:
            self._front = Front(handle, options.host, options.port, options.log, BODY_LIMIT).start()
        except OSError as exc:
            raise LocalRunError(f"cannot listen on {options.host}:{options.port}: {exc.strerror}") from None
        self.port = self._front.port
        self.url = f"http://{options.host}:{self.port}/{prefix}/agent"

    def close(self) -> None:
        self._front.close()


def start(options: LocalOptions) -> AzureApp:
    return AzureApp(options)
