"""Write a Build to disk without ever leaving a half-written target, and compare for --check."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from framework.build import MANIFEST, Build
from framework.errors import OutputError, UsageError
from framework.platforms import registry

# Made by running or type-checking an app in place; never generated, never compared.
_IGNORED = frozenset({"__pycache__", "node_modules", ".vercel"})


def read_manifest(out: Path) -> dict | None:
    """The previous build's manifest, or None when there is none or it is not one of ours."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return None
    return data


def _swap_in(staged: Path, final: Path) -> None:
    """Replace `final` by `staged` with renames only, so a crash leaves the old or the new folder."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old)
    else:
        os.replace(staged, final)


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock on `.<folder>.lock` beside the output folder: a second build or serve writing
    the same folder waits for the first, then writes. Beside, not inside: the folder itself is
    created and its target folders are swapped while the lock is held. The lock file stays (removing
    it would let a third writer lock a new file while the second holds the old one)."""
    folder = out.resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def file_in_the_way(path: Path) -> Path | None:
    """The regular file standing where one of `path`'s folders must be (mkdir's "File exists" or
    "Not a directory", said plainly), or None."""
    return next((above for above in path.absolute().parents if above.exists() and not above.is_dir()), None)


def write(build: Build, out: Path, full: bool) -> list[str]:
    """Write every target folder and the manifest; on a full build, drop folders of targets no
    longer listed. Returns the written paths. Nothing outside `out` is touched but its lock file;
    a folder that cannot be written is an OutputError, never a traceback."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"the output {out} is a file, not a folder; pass another -o")
    blocked = file_in_the_way(out)
    if blocked:
        raise OutputError(f"cannot write the output folder {out}: {blocked} is a file, not a folder; "
                          "pass another folder with -o")
    try:
        with _locked(out):
            return _write_locked(build, out, full)
    except OSError as error:
        where = error.filename or out
        raise OutputError(f"cannot write the output folder {out}: {error.strerror or error} ({where}); "
                          "make it writable or pass another folder with -o") from None


def _write_locked(build: Build, out: Path, full: bool) -> list[str]:
    build = build.merged(read_manifest(out))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for target, files in build.targets.items():
        for leftover in out.glob(f".{target}.*"):  # staged by a build that was killed: ours to remove
            shutil.rmtree(leftover, ignore_errors=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{target}.", dir=out))
        try:
            for file in files:
                path = staged / Path(file.path).relative_to(target)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(file.content)
                written.append(file.path)
            staged.chmod(0o755)
            _swap_in(staged, out / target)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    if full:
        for name in registry.names():
            if name not in build.targets and (out / name).is_dir():
                shutil.rmtree(out / name)
    manifest = next(f for f in build.files() if f.path == MANIFEST)
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_bytes(manifest.content)
    os.replace(tmp, out / MANIFEST)
    written.append(MANIFEST)
    return written


def differences(build: Build, out: Path, full: bool) -> list[str]:
    """Every generated file that is missing, different or no longer generated, as 'status path'."""
    build = build.merged(read_manifest(out))
    expected = {f.path: f.content for f in build.files()}
    found: set[str] = set()
    roots = list(build.targets) + ([n for n in registry.names() if n not in build.targets] if full else [])
    for root in roots:
        folder = out / root
        if folder.is_dir():
            found.update(p.relative_to(out).as_posix() for p in folder.rglob("*")
                         if p.is_file() and not _IGNORED.intersection(p.relative_to(out).parts))
    diffs = []
    for path, content in sorted(expected.items()):
        target = out / path
        if not target.is_file():
            diffs.append(f"missing   {path}")
        elif target.read_bytes() != content:
            diffs.append(f"changed   {path}")
    for path in sorted(found - set(expected)):
        diffs.append(f"stale     {path}")
    return diffs
