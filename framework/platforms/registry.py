"""The one list of platforms. Every list of platform names (the CLI's choices, the schema's targets,
the writer's folders, deployers, runners, CI logins, messages) is read from here.

A platform outside framework/ (a plugin, a test's) joins with `register(platform)` before the
command runs; `unregister(name)` takes it back out.
"""

from __future__ import annotations

import json
from pathlib import Path

from framework import schema
from framework.platforms import aws, azure, gcp, vercel
from framework.platforms.base import Platform

_PLATFORMS: dict[str, Platform] = {p.name: p for p in (aws.PLATFORM, gcp.PLATFORM, azure.PLATFORM, vercel.PLATFORM)}


_BUILT_IN = tuple(_PLATFORMS)
BASE_SCHEMA = Path(__file__).resolve().parents[2] / "schema" / "agent.base.json"  # source checkout only


def register(platform: Platform) -> None:
    """Add a platform after the built-in ones; its schema part joins the schema validate reads."""
    if platform.name in _PLATFORMS:
        raise ValueError(f"a platform named {platform.name!r} is already registered")
    _PLATFORMS[platform.name] = platform
    schema.add_platform(platform.name, platform.schema)


def unregister(name: str) -> None:
    """Remove a registered platform (and its schema part)."""
    if name in _BUILT_IN:
        raise ValueError(f"{name} is built in")
    del _PLATFORMS[name]
    schema.remove_platform(name)


def assembled_schema() -> str:
    """schema/agent.schema.json as it must be committed: schema/agent.base.json with the built-in
    platforms' parts (framework/platforms/<name>/schema.json); a test compares the two."""
    base = json.loads(BASE_SCHEMA.read_text(encoding="utf-8"))
    return schema.dumps(schema.assemble(base, {name: _PLATFORMS[name].schema for name in _BUILT_IN}))


def platforms() -> list[Platform]:
    return list(_PLATFORMS.values())


def names() -> tuple[str, ...]:
    """Every platform's name, in the order the framework lists them (aws, gcp, azure, vercel, then others)."""
    return tuple(_PLATFORMS)


def get(name: str) -> Platform:
    return _PLATFORMS[name]


def deployable() -> tuple[str, ...]:
    """The platforms `plan` / `deploy` / `destroy` / `info` can drive."""
    return tuple(p.name for p in _PLATFORMS.values() if p.deployer is not None)


def spoken(words: tuple[str, ...] | list[str], last: str = "or") -> str:
    """'aws, gcp, azure or vercel': names for a sentence."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"
