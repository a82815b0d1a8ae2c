"""The schema file editors read, written into the user's repository (generated/agent.schema.json), so
agent.yaml's `$schema` line works without the framework's checkout. `init` writes it; `build` refreshes
it, so an upgrade of the framework brings its new fields to the editor too."""

from __future__ import annotations

import os
from pathlib import Path

from framework.errors import OutputError
from framework.schema import schema_path
from framework.writer import file_in_the_way

EDITOR_SCHEMA = "agent.schema.json"


def write_editor_schema(output: Path) -> Path:
    """Write `output`/agent.schema.json, the packaged schema byte for byte (so `build --check` can compare
    it with the installed one), and return its path. A file already equal is left untouched (an editor
    watching it does not reload); otherwise it is replaced atomically, never seen half-written."""
    path = output / EDITOR_SCHEMA
    content = schema_path().read_bytes()
    try:
        if path.is_file() and path.read_bytes() == content:
            return path
        output.mkdir(parents=True, exist_ok=True)
        staged = output / f".{EDITOR_SCHEMA}.tmp"
        staged.write_bytes(content)
        os.replace(staged, path)
    except OSError as error:
        blocked = file_in_the_way(path)
        why = f"{blocked} is a file, not a folder" if blocked else error.strerror or str(error)
        raise OutputError(f"cannot write the editor schema {path}: {why}") from None
    return path


def editor_schema_differences(output: Path) -> list[str]:
    """`build --check`'s finding for the editor schema, in the writer's 'status path' form."""
    path = output / EDITOR_SCHEMA
    if not path.is_file():
        return [f"missing   {EDITOR_SCHEMA}"]
    return [] if path.read_bytes() == schema_path().read_bytes() else [f"changed   {EDITOR_SCHEMA}"]
