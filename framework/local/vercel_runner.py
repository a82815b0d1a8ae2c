"""Vercel Functions locally: the generated route run by Vercel's open-source `edge-runtime`
(the Web-standard sandbox of the Edge), behind a front that enforces Vercel's time limits."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from framework.local.base import LocalOptions
from framework.local.http import Front, Request, Response, free_port, json_error, proxy
from framework.local.process import Child, LocalRunError

HERE = Path(__file__).parent / "vercel"
# Vercel answers 504 FUNCTION_INVOCATION_TIMEOUT (Edge: when no response has started within 25 s).
TIMEOUT_STATUS = 504
EDGE_FIRST_BYTE = 25.0


def cache_dir() -> Path:
    root = os.environ.get("AGENT_FRAMEWORK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "agent-framework")
    return Path(root)


def ensure_runtime() -> Path:
    """The harness in a folder with its npm packages (edge-runtime, esbuild), installed once per
    lock file and harness. The folder appears complete or not at all: it is installed under a
    temporary name and renamed, so concurrent `serve`s (or test workers) never share a half install."""
    sources = {name: (HERE / name).read_bytes() for name in ("package.json", "package-lock.json", "edge_harness.mjs")}
    digest = hashlib.sha256(b"\0".join(sources.values())).hexdigest()[:16]
    folder = cache_dir() / f"edge-runner-{digest}"
    harness = folder / "edge_harness.mjs"
    if (folder / "node_modules" / ".installed").is_file():
        return harness
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise LocalRunError("serving the vercel target needs Node.js 20+ and npm on PATH "
                            "(Debian/Ubuntu: apt-get install nodejs npm)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
    try:
        for name, data in sources.items():
            (staging / name).write_bytes(data)
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=staging,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise LocalRunError(f"could not install the Edge runtime with npm:\n{result.stderr[-2000:]}")
        (staging / "node_modules" / ".installed").touch()
        if folder.is_dir() and not (folder / "node_modules" / ".installed").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # left half-installed by an older version
        try:
            os.rename(staging, folder)
        except OSError:  # another process finished first: use its copy
            if not (folder / "node_modules" / ".installed").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return harness


class VercelApp:
    def __init__(self, options: LocalOptions):
        harness = ensure_runtime()
        upstream = free_port()
        self._child = Child(["node", str(harness), str(options.app_dir), str(upstream)], upstream,
                            dict(options.env), harness.parent, options.log, "the Edge runtime")
        edge = options.settings.get("runtime", "edge") == "edge"
        timeout = options.timeout
        first_byte = min(timeout, EDGE_FIRST_BYTE) if edge else timeout
        code = "EDGE_FUNCTION_INVOCATION_TIMEOUT" if edge else "FUNCTION_INVOCATION_TIMEOUT"

        def handle(request: Request) -> Response:
            return proxy(upstream, request, request.path, first_byte, lambda: json_error(
                TIMEOUT_STATUS, f"the function did not respond within {first_byte:g} s ({code})"),
                total=timeout)

        try:
            self._front = Front(handle, options.host, options.port, options.log).start()
        except OSError as exc:
            self._child.close()
            raise LocalRunError(f"cannot listen on {options.host}:{options.port}: {exc.strerror}") from None
        self.url = f"http://{options.host}:{self._front.port}/api/agent"

    def close(self) -> None:
        self._front.close()
        self._child.close()


def start(options: LocalOptions) -> VercelApp:
    return VercelApp(options)
