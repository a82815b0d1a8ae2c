"""Render: one Jinja environment, pure functions from the Agent model to files in memory."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "targets" / "templates"
RUNTIME = Path(__file__).parent / "runtime" / "agent_runtime.py"


@dataclass(frozen=True)
class File:
    """One generated file: path relative to the output folder (posix), bytes."""

    path: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def to_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, ASCII): safe to embed as a YAML or code literal."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def json_file(path: str, value: Any) -> File:
    """A JSON data file, pretty-printed and byte-stable."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2) + "\n"
    return File(path, text.encode("utf-8"))


@lru_cache(maxsize=1)
def environment():
    """The one Jinja environment: sandboxed, StrictUndefined, only our own filters."""
    from jinja2 import FileSystemLoader, StrictUndefined, Undefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    def json_filter(value: Any) -> str:
        if isinstance(value, Undefined):
            str(value)  # StrictUndefined raises here, naming the missing value
        return to_json(value)

    env.filters["json"] = json_filter
    return env


def template_file(target: str, name: str, context: dict[str, Any]) -> File:
    """Render templates/<target>/<name>.j2 to <target>/<name>."""
    text = environment().get_template(f"{target}/{name}.j2").render(**context)
    return File(f"{target}/{name}", text.encode("utf-8"))


def static_file(target: str, name: str) -> File:
    """Copy templates/<target>/<name> verbatim (code that needs no values)."""
    return File(f"{target}/{name}", (TEMPLATES / target / name).read_bytes())


def runtime_file(target: str) -> File:
    """The shared Python agent runtime, copied into a Python app."""
    return File(f"{target}/agent_runtime.py", RUNTIME.read_bytes())
