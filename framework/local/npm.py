"""npm packages a local runner needs (the Edge runtime, AWS's Node.js runtime interface client),
installed once per machine into a cache folder keyed by the package files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from framework.errors import LocalRunError
from framework.local.process import log_line

MARKER = Path("node_modules") / ".installed"


def cache_dir() -> Path:
    root = os.environ.get("AGENT_FRAMEWORK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "agent-framework")
    return Path(root)


def install(sources: dict[str, bytes], name: str, missing_tools: str, failed: str,
            tools: tuple[str, ...] = ("node", "npm"), what: str = "", expected: str = "") -> Path:
    """`npm ci` the given files (package.json, package-lock.json, ...) into cache_dir()/<name>-<digest>
    and return that folder. The folder appears complete or not at all: it is installed under a
    temporary name and renamed, so concurrent `serve`s (or test workers) never share a half install.
    `missing_tools` is the error when one of `tools` is not on PATH (`{missing}` names them);
    `failed` prefixes npm's error. `what` and `expected` ("about 90 s") name the install in the
    notice printed before it starts, so a first run that takes minutes does not look hung."""
    digest = hashlib.sha256(b"\0".join(sources.values())).hexdigest()[:16]
    folder = cache_dir() / f"{name}-{digest}"
    if (folder / MARKER).is_file():
        return folder
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LocalRunError(missing_tools.format(missing=", ".join(missing)))
    folder.parent.mkdir(parents=True, exist_ok=True)
    log_line(f"installing {what or name} into {folder} with npm (once per machine"
            f"{', ' + expected if expected else ''}) ...")
    staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
    try:
        for file, data in sources.items():
            (staging / file).write_bytes(data)
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=staging,
                                capture_output=True, text=True, env=_npm_environment())
        if result.returncode != 0:
            raise LocalRunError(f"{failed}:\n{result.stderr[-2000:]}")
        (staging / MARKER).touch()
        if folder.is_dir() and not (folder / MARKER).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # left half-installed by an older version
        try:
            os.rename(staging, folder)
        except OSError:  # another process finished first: use its copy
            if not (folder / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _npm_environment() -> dict[str, str]:
    """Our environment, plus where Node.js's own headers are when the distribution ships them: native
    packages (node-gyp) then build against those instead of downloading headers from nodejs.org."""
    env = dict(os.environ)
    if "npm_config_nodedir" not in {key.lower() for key in env}:
        prefix = Path(shutil.which("node") or "/usr/bin/node").resolve().parent.parent
        if (prefix / "include" / "node" / "node.h").is_file():
            env["npm_config_nodedir"] = str(prefix)
    return env
