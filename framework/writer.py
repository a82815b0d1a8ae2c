"""Write a Build to disk file by file, and compare for --check, leaving everything else in the folder alone.

The output folder is shared with the platforms' own tools (`sam deploy --guided`, `vercel link`,
`npm install`, `func azure functionapp publish --build local` all keep state beside the code), so
the framework owns only what it generated: the files of the build (the manifest and any other
top-level file included) and the files the previous manifest lists. The rule, the same for
`build` and `build --check`, so that `--check` passes right after `build` whatever else the
folder holds:

- a file of the build is written when it is missing or differs (--check: `missing`, `changed`);
- a file the previous manifest lists and the build no longer generates is removed, with the
  folders that removal empties (--check: `stale`);
- any other file is not ours: neither written, replaced, removed nor reported. That covers the
  tools' state and a file the user put there (their notes, a .funcignore) alike;
- a path with a part in TOOL_STATE is handed to the tool once we stop generating it: never
  removed even if a manifest lists it (a package-lock.json we generated then npm rewrote), nor
  is a path a manifest lists outside the folder (`..`, absolute): the manifest is in Git and
  a pull request may edit it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from framework.build import MANIFEST, Build
from framework.errors import OutputError, UsageError

# What the platforms' tools write beside the code, matched against every part of a path.
TOOL_STATE = frozenset({
    ".aws-sam", "samconfig.toml", "samconfig.yaml", "samconfig.yml",  # AWS SAM CLI: sam build, sam deploy --guided
    ".gcloudignore",  # gcloud functions deploy writes one when the folder has none
    "local.settings.json", ".python_packages", ".funcignore",  # Azure Functions Core Tools (func)
    ".vercel", ".gitignore", ".env", ".env.local",  # Vercel CLI: link (adds .vercel to .gitignore), env pull
    "node_modules", "package-lock.json",  # npm install
    "__pycache__", ".venv",  # Python: functions-framework, func start, serve, a virtualenv
})


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


def _removable(path: str) -> bool:
    """Whether a path a manifest lists is ours to remove: inside the folder, not tool state."""
    pure = PurePosixPath(path)
    return (bool(pure.parts) and not pure.is_absolute() and ".." not in pure.parts and path != MANIFEST
            and not TOOL_STATE.intersection(pure.parts))


def _leftovers(build: Build, previous: dict | None) -> list[str]:
    """The files the previous manifest lists that `build` (already merged) no longer generates."""
    if previous is None:
        return []
    current = {f.path for f in build.files()} | set(build.manifest["files"])
    return sorted(path for path in previous["files"] if path not in current and _removable(path))


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock on `.<folder>.lock` beside the output folder: a second build or serve writing
    the same folder waits for the first, then writes. Beside, not inside: the folder itself is
    created while the lock is held. The lock file stays (removing it would let a third writer lock
    a new file while the second holds the old one)."""
    folder = out.resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def file_in_the_way(path: Path) -> Path | None:
    """The regular file standing where one of `path`'s folders must be (mkdir's "File exists" or
    "Not a directory", said plainly), or None."""
    return next((above for above in path.absolute().parents if above.exists() and not above.is_dir()), None)


def write(build: Build, out: Path) -> list[str]:
    """Bring `out` to `build` by the module's rule; the manifest is written last. Returns the paths
    written (a file already identical is left untouched, so tools' caches keyed on mtimes hold).
    A --target build follows the same manifest, Build.merged keeping the other targets' entries.
    Nothing outside `out` is touched but its lock file; a
    folder that cannot be written is an OutputError, never a traceback."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"the output {out} is a file, not a folder; pass another -o")
    blocked = file_in_the_way(out)
    if blocked:
        raise OutputError(f"cannot write the output folder {out}: {blocked} is a file, not a folder; "
                          "pass another folder with -o")
    try:
        with _locked(out):
            return _write_locked(build, out)
    except OSError as error:
        where = error.filename or out
        raise OutputError(f"cannot write the output folder {out}: {error.strerror or error} ({where}); "
                          "make it writable or pass another folder with -o") from None


def _replace(path: Path, content: bytes) -> None:
    """Write through a temporary file beside `path` and rename it over: a crash leaves the old
    file or the new one. One fixed temporary name is enough: writers of a folder take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _remove(out: Path, path: str) -> None:
    """Remove a file we no longer generate, then each folder above it that this leaves empty."""
    target = out / path
    if not target.is_file():
        return
    target.unlink()
    for folder in target.parents:
        if folder == out:
            return
        try:
            folder.rmdir()
        except OSError:  # not empty: it holds tool state or the user's files
            return


def _write_locked(build: Build, out: Path) -> list[str]:
    previous = read_manifest(out)
    build = build.merged(previous)
    out.mkdir(parents=True, exist_ok=True)
    for path in _leftovers(build, previous):  # first: a removed file may stand where a new folder goes
        _remove(out, path)
    written = []
    for file in sorted(build.files(), key=lambda f: f.path == MANIFEST):  # the manifest last
        path = out / file.path
        if not path.is_file() or path.read_bytes() != file.content:
            _replace(path, file.content)
            written.append(file.path)
    return written


def differences(build: Build, out: Path) -> list[str]:
    """What `write` would change, as 'status path': every file of the build that is missing or
    different, and every file it would remove as stale."""
    previous = read_manifest(out)
    build = build.merged(previous)
    diffs = []
    for file in sorted(build.files(), key=lambda f: f.path):
        path = out / file.path
        if not path.is_file():
            diffs.append(f"missing   {file.path}")
        elif path.read_bytes() != file.content:
            diffs.append(f"changed   {file.path}")
    for leftover in _leftovers(build, previous):
        if (out / leftover).is_file():
            diffs.append(f"stale     {leftover}")
    return diffs
