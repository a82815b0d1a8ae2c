"""Vercel Functions locally: the generated route run by Vercel's open-source `edge-runtime`
(the Web-standard sandbox of the Edge), behind a front that enforces Vercel's time limits."""

from __future__ import annotations

from pathlib import Path

from framework.local import npm
from framework.local.base import LocalOptions
from framework.local.http import BodyLimit, Request, Response, json_error, proxy, upstream_port
from framework.local.process import Child, ProxiedChild

HERE = Path(__file__).parent / "edge"
# Vercel answers 504 FUNCTION_INVOCATION_TIMEOUT (Edge: when no response has started within 25 s).
TIMEOUT_STATUS = 504
EDGE_FIRST_BYTE = 25.0
# Vercel refuses a request body over 4.5 MB with 413 FUNCTION_PAYLOAD_TOO_LARGE.
BODY_LIMIT = BodyLimit(4_718_592, "the request body is larger than Vercel's 4.5 MB limit (FUNCTION_PAYLOAD_TOO_LARGE)")


def ensure_runtime() -> Path:
    """The harness in a folder with its npm packages (edge-runtime, esbuild), installed once per
    lock file and harness (see framework.local.npm.install: never half-installed, race-free)."""
    sources = {name: (HERE / name).read_bytes() for name in ("package.json", "package-lock.json", "edge_harness.mjs")}
    folder = npm.install(sources, "edge-runner",
                         "serving the vercel target needs Node.js 20+ and npm on PATH "
                         "(Debian/Ubuntu: apt-get install nodejs npm)",
                         "could not install the Edge runtime with npm")
    return folder / "edge_harness.mjs"


def start(options: LocalOptions) -> ProxiedChild:
    harness = ensure_runtime()
    upstream = upstream_port()
    child = Child(["node", str(harness), str(options.app_dir), str(upstream)], upstream,
                  dict(options.env), harness.parent, options.log, "the Edge runtime")
    edge = options.settings.get("runtime", "edge") == "edge"
    timeout = options.timeout
    first_byte = min(timeout, EDGE_FIRST_BYTE) if edge else timeout
    code = "EDGE_FUNCTION_INVOCATION_TIMEOUT" if edge else "FUNCTION_INVOCATION_TIMEOUT"

    def handle(request: Request) -> Response:
        return proxy(upstream, request, request.path, first_byte, lambda: json_error(
            TIMEOUT_STATUS, f"the function did not respond within {first_byte:g} s ({code})"),
            total=timeout)

    return ProxiedChild(child, handle, options, BODY_LIMIT, "/api/agent")
