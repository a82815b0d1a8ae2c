"""Render: one Jinja environment, pure functions from the Agent model to files in memory."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RUNTIME = Path(__file__).parent / "runtime" / "agent_runtime.py"
# The JavaScript agent core (JSDoc-typed, one plain module), shared byte for byte by the Vercel
# route and the streaming AWS Lambda app: each copies it to <target>/lib/agent.mjs.
JS_CORE = Path(__file__).parent / "runtime" / "js" / "agent.mjs"
JS_CORE_FILE = "lib/agent.mjs"


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


@cache
def environment(templates: Path):
    """The Jinja environment of one platform's templates folder: sandboxed, StrictUndefined, only our
    own filters (one per folder, so each platform package keeps its templates beside its code)."""
    from jinja2 import FileSystemLoader, StrictUndefined, Undefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates)),
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


def template_file(templates: Path, target: str, name: str, context: dict[str, Any]) -> File:
    """Render <templates>/<name>.j2 to <target>/<name>."""
    text = environment(templates).get_template(f"{name}.j2").render(**context)
    return File(f"{target}/{name}", text.encode("utf-8"))


def runtime_file(target: str) -> File:
    """The shared Python agent runtime, copied into a Python app."""
    return File(f"{target}/agent_runtime.py", RUNTIME.read_bytes())


def js_core_file(target: str) -> File:
    """The shared JavaScript agent core, copied verbatim into <target>/lib/agent.mjs."""
    return File(f"{target}/{JS_CORE_FILE}", JS_CORE.read_bytes())
