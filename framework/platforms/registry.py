"""The one list of platforms. Every list of platform names (the CLI's choices, the schema's targets,
the writer's folders, deployers, runners, CI logins, messages) is read from here.

A platform outside framework/ (a plugin, a test's) joins with `register(platform)` before the
command runs; `unregister(name)` takes it back out.
"""

from __future__ import annotations

from framework import schema
from framework.platforms import aws, azure, gcp, vercel
from framework.platforms.base import Platform

_PLATFORMS: dict[str, Platform] = {p.name: p for p in (aws.PLATFORM, gcp.PLATFORM, azure.PLATFORM, vercel.PLATFORM)}


def register(platform: Platform) -> None:
    """Add a platform after the built-in ones (its schema part, if any, joins the schema)."""
    if platform.name in _PLATFORMS:
        raise ValueError(f"a platform named {platform.name!r} is already registered")
    _PLATFORMS[platform.name] = platform
    if platform.schema is not None:
        schema.add_target(platform.name, platform.schema)


def unregister(name: str) -> None:
    """Remove a registered platform (and its schema part)."""
    del _PLATFORMS[name]
    schema.remove_target(name)


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
