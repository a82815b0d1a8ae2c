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


# schema parts of platforms registered from outside framework/ (see platforms/registry.py)
_EXTRA: dict[str, Mapping[str, Any]] = {}


def assemble(base: dict[str, Any], parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The schema with each platform's part in place (pure): part["target"] becomes targets.<name>,
    part["secret"] (a reference to its secret store, when it has one) secrets.<VAR>.<name>."""
    out = json.loads(json.dumps(base))
    targets = out["properties"]["targets"]["properties"]
    secrets = out["properties"]["secrets"]["additionalProperties"]["properties"]
    for name, part in parts.items():
        targets[name] = part["target"]
        if "secret" in part:
            secrets[name] = part["secret"]
    _stage_settings(out)
    return out


def _stage_settings(out: dict[str, Any]) -> None:
    """A stage may set any top-level setting but name (and stages): listed with its description for
    editors, not its type, since a stage's value is checked merged into the agent, where a partial
    block (concurrency: {max: 50}) is complete."""
    stage = out["properties"].get("stages", {}).get("additionalProperties")
    if stage is None:
        return
    stage["additionalProperties"] = False
    stage["properties"] = {key: {"description": prop.get("description", "")}
                           for key, prop in out["properties"].items() if key not in ("name", "stages")}


def dumps(value: dict[str, Any]) -> str:
    """A schema file's text, as committed."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The committed schema (what editors read: the built-in platforms' parts assembled), plus any
    platform registered from outside framework/."""
    return assemble(json.loads(schema_path().read_text(encoding="utf-8")), _EXTRA)


def add_platform(name: str, part: Mapping[str, Any]) -> None:
    _EXTRA[name] = part
    schema.cache_clear()


def remove_platform(name: str) -> None:
    if _EXTRA.pop(name, None) is not None:
        schema.cache_clear()


def defaults(*path: str) -> dict[str, Any]:
    """The `default` of every property of the (sub)schema at path, e.g. ('targets', 'aws')."""
    node = schema()
    for part in path:
        node = resolve(node["properties"][part])
    return defaults_of(node)


def defaults_of(node: dict[str, Any]) -> dict[str, Any]:
    """The `default` of every property of an object schema."""
    props = {key: resolve(prop) for key, prop in node["properties"].items()}
    return {key: prop["default"] for key, prop in props.items() if "default" in prop}


def definition(*path: str) -> dict[str, Any]:
    """The subschema at $defs/<name>, then down its properties (e.g. 'http_tool', 'http')."""
    node = schema()["$defs"][path[0]]
    for part in path[1:]:
        node = resolve(node["properties"][part])
    return node


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref (#/$defs/...) once."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = schema()
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
