"""Cloud Functions locally: Google's own functions-framework serving generated/gcp/main.py,
behind a front that enforces the function's timeout as Cloud Run does (504)."""

from __future__ import annotations

import sys

from framework.local.base import LocalOptions
from framework.local.http import BodyLimit, Request, Response, json_error, proxy, upstream_port
from framework.local.process import Child, ProxiedChild

# Cloud Run answers a request that outlives the service's timeout with 504.
TIMEOUT_STATUS = 504
# Cloud Run refuses an HTTP/1 request over 32 MiB with 413.
BODY_LIMIT = BodyLimit(32 * 1024 * 1024, "the request body is larger than Cloud Run's 32 MiB limit")


def start(options: LocalOptions) -> ProxiedChild:
    upstream = upstream_port()
    request_concurrency = int(options.settings.get("request_concurrency", 1))
    env = {
        **options.env,
        # functions-framework serves with gunicorn threads; capacity = instances x requests each
        "THREADS": str(min(1000, request_concurrency * options.concurrency)),
        "WORKERS": "1",
        "K_SERVICE": options.function_name,
        "FUNCTION_TARGET": "agent_handler",
    }
    child = Child(
        [sys.executable, "-m", "functions_framework", "--target", "agent_handler",
         "--source", str(options.app_dir / "main.py"), "--host", "127.0.0.1", "--port", str(upstream)],
        upstream, env, options.app_dir, options.log, "functions-framework")
    timeout = options.timeout

    def handle(request: Request) -> Response:
        return proxy(upstream, request, request.path, timeout, lambda: json_error(
            TIMEOUT_STATUS, f"the function timed out after {timeout:g} s (upstream request timeout)"))

    return ProxiedChild(child, handle, options, BODY_LIMIT, "/")
