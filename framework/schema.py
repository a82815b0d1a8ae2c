"""Where the JSON Schema lives, for the repository checkout and the installed package alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

_CANDIDATES = (
    Path(__file__).with_name("agent.schema.json"),  # installed package (package data)
    Path(__file__).resolve().parent.parent / "schema" / "agent.schema.json",  # source checkout
)


def schema_path() -> Path:
    for candidate in _CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("agent.schema.json is missing from the framework installation")


# targets.<name> parts of platforms registered from outside framework/ (see platforms/registry.py)
_EXTRA_TARGETS: dict[str, dict[str, Any]] = {}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The committed schema (what editors read), plus any registered platform's own part."""
    loaded = json.loads(schema_path().read_text(encoding="utf-8"))
    loaded["properties"]["targets"]["properties"].update(_EXTRA_TARGETS)
    return loaded


def add_target(name: str, part: Mapping[str, Any]) -> None:
    _EXTRA_TARGETS[name] = dict(part)
    schema.cache_clear()


def remove_target(name: str) -> None:
    if _EXTRA_TARGETS.pop(name, None) is not None:
        schema.cache_clear()


def defaults(*path: str) -> dict[str, Any]:
    """The `default` of every property of the (sub)schema at path, e.g. ('targets', 'aws')."""
    node = schema()
    for part in path:
        node = resolve(node["properties"][part])
    props = {key: resolve(prop) for key, prop in node["properties"].items()}
    return {key: prop["default"] for key, prop in props.items() if "default" in prop}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref (#/$defs/...) once."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = schema()
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
