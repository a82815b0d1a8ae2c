"""Lambda zip package: the app's code plus its dependencies for Lambda's platform, byte-reproducible
(zipped by framework/deploy/package.py: same input, same bytes). Dependencies are installed with pip
for Lambda's platform (manylinux wheels of the function's architecture and Python version, never
built locally) and cached by the hash of the requirements, so a second deploy does not run pip at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from framework.deploy.package import DOCS, build_zip, content_hash
from framework.errors import PackageError
from framework.render import File

# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html:
# "50 MB (zipped, when uploaded through the Lambda API)", "250 MB" unzipped, layers included.
ZIP_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024

# Generated files that are not part of the Lambda code (the image path and SAM use them).
NOT_CODE = DOCS | {"Dockerfile", "template.yaml", "requirements.txt"}
CACHE_FORMAT = "1"  # bump when the pip command changes, so old caches are not reused


@dataclass(frozen=True)
class Package:
    data: bytes
    code_sha256: str  # base64 SHA-256 of the zip: what Lambda reports as CodeSha256
    content: str  # hex SHA-256 of the entries (names, modes, bytes): independent of compression
    names: tuple[str, ...]
    unzipped_size: int

    @property
    def size(self) -> int:
        return len(self.data)


def requirement_lines(text: str) -> list[str]:
    """The requirements that pip would install: no comments, no blank lines."""
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def python_version(runtime: str) -> str:
    return runtime.removeprefix("python")


def pip_platforms(architecture: str) -> list[str]:
    """manylinux tags Lambda's Amazon Linux (glibc 2.26 for 2014 wheels, 2.34 on AL2023) can load."""
    machine = "aarch64" if architecture == "arm64" else "x86_64"
    return [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}", f"manylinux_2_34_{machine}"]


def pip_command(requirements: Path, target: Path, runtime: str, architecture: str) -> list[str]:
    """pip install for Lambda's platform: wheels only (nothing compiled for this machine), no .pyc."""
    version = python_version(runtime)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-input", "--only-binary=:all:", "--no-compile", "--implementation", "cp",
               "--python-version", version, "--abi", f"cp{version.replace('.', '')}"]
    for platform in pip_platforms(architecture):
        command += ["--platform", platform]
    return command + ["--target", str(target), "-r", str(requirements)]


def cache_root() -> Path:
    if os.environ.get("AGENT_FRAMEWORK_CACHE"):
        return Path(os.environ["AGENT_FRAMEWORK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "agent-framework"


def dependencies_key(lines: Sequence[str], runtime: str, architecture: str) -> str:
    text = json.dumps({"format": CACHE_FORMAT, "requirements": list(lines), "runtime": runtime,
                       "architecture": architecture}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


Runner = Callable[..., subprocess.CompletedProcess]


def install_dependencies(requirements: str, runtime: str, architecture: str, cache: Path | None = None,
                         run: Runner = subprocess.run) -> Path | None:
    """The folder holding the installed dependencies (from the cache when present), None if none."""
    lines = requirement_lines(requirements)
    if not lines:
        return None
    folder = (cache or cache_root()) / "lambda-deps" / dependencies_key(lines, runtime, architecture)
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=folder.parent))
    try:
        req = staging / "requirements.txt"
        req.write_text("\n".join(lines) + "\n", encoding="utf-8")
        target = staging / "site"
        result = run(pip_command(req, target, runtime, architecture), capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-5:])
            raise PackageError(
                f"pip could not install requirements.txt for Lambda ({runtime}, {architecture}): only "
                f"prebuilt manylinux wheels can be used (nothing is compiled on this machine).\n{tail}")
        target.mkdir(exist_ok=True)
        try:
            os.replace(target, folder)
        except OSError:  # another process filled the cache first: use theirs
            if not folder.is_dir():
                raise
        return folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tree(folder: Path) -> Iterable[tuple[str, bytes, int]]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and "__pycache__" not in relative.parts:
            executable = os.access(path, os.X_OK)
            yield relative.as_posix(), path.read_bytes(), 0o755 if executable else 0o644


def check_size(zipped: int, unzipped: int, zip_limit: int = ZIP_LIMIT, unzipped_limit: int = UNZIPPED_LIMIT) -> None:
    mb = 1024 * 1024
    if zipped > zip_limit:
        raise PackageError(
            f"the Lambda package is {zipped / mb:.1f} MB zipped, over Lambda's {zip_limit / mb:.0f} MB limit for "
            "a direct upload; remove dependencies from requirements.txt, or use `package: image` under "
            "targets.aws (container images may be up to 10 GB)")
    if unzipped > unzipped_limit:
        raise PackageError(
            f"the Lambda package is {unzipped / mb:.1f} MB unzipped, over Lambda's {unzipped_limit / mb:.0f} MB "
            "limit; remove dependencies from requirements.txt, or use `package: image` under targets.aws")


def app_entries(files: Sequence[File], target: str) -> list[tuple[str, bytes, int]]:
    """The generated app's code files, at the zip's root."""
    entries = []
    for file in files:
        name = file.path.removeprefix(f"{target}/")
        if name not in NOT_CODE:
            entries.append((name, file.content, 0o644))
    return entries


def requirements_of(files: Sequence[File], target: str) -> str:
    for file in files:
        if file.path == f"{target}/requirements.txt":
            return file.content.decode("utf-8")
    return ""


def package_lambda(files: Sequence[File], runtime: str, architecture: str, *, target: str = "aws",
                   cache: Path | None = None, run: Runner = subprocess.run,
                   zip_limit: int = ZIP_LIMIT, unzipped_limit: int = UNZIPPED_LIMIT) -> Package:
    """The deployable zip for the generated files of `target`: app code plus dependencies."""
    entries = {name: (name, content, mode) for name, content, mode in app_entries(files, target)}
    deps = install_dependencies(requirements_of(files, target), runtime, architecture, cache, run)
    if deps is not None:
        for name, content, mode in _tree(deps):
            entries.setdefault(name, (name, content, mode))  # the app's own files win
    values = list(entries.values())
    unzipped = sum(len(content) for _, content, _ in values)
    if unzipped > unzipped_limit:  # fail before compressing hundreds of MB
        check_size(0, unzipped, zip_limit, unzipped_limit)
    data = build_zip(values)
    check_size(len(data), unzipped, zip_limit, unzipped_limit)
    return Package(
        data=data,
        code_sha256=base64.b64encode(hashlib.sha256(data).digest()).decode("ascii"),
        content=content_hash(values),
        names=tuple(sorted(entries)),
        unzipped_size=unzipped,
    )


def image_content(files: Sequence[File], target: str = "aws") -> str:
    """The content hash of an image build's inputs (every generated file of the target)."""
    return content_hash((f.path.removeprefix(f"{target}/"), f.content, 0o644) for f in files)
