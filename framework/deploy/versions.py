"""What history and rollback (framework/deploy/history.py) know of a platform's versions: plain data,
imported by the platforms' Deployers and the Deployer protocol (so no import of the commands)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from framework.errors import DeployError, UsageError

NOTE = re.compile(r"agent-framework content=([0-9a-f]{64}) prompt=([0-9a-f]{64})")


def version_note(content: str, prompt: str) -> str:
    """The text a platform keeps with each version (Lambda: its description; Cloud Run: an environment
    variable of the revision), so history can tell each version's content hash and prompt digest."""
    return f"agent-framework content={content} prompt={prompt}"


def read_note(text: str | None) -> tuple[str | None, str | None]:
    """(content hash, prompt digest) from a version's note; (None, None) for a version without one
    (made by hand, or by an agenthost from before the note)."""
    found = NOTE.fullmatch(text or "")
    return (found[1], found[2]) if found else (None, None)


@dataclass(frozen=True)
class Version:
    """One deployed version as the platform keeps it. `content` is the framework's content hash and
    `prompt` the prompt's digest, each None where the platform keeps no trace of it per version."""

    id: str  # what --to names: a Lambda version, a Cloud Run revision, a Vercel deployment id
    created: str | None  # when, as the platform says it (ISO 8601)
    content: str | None = None
    prompt: str | None = None
    live: bool = False


@dataclass(frozen=True)
class History:
    """A platform's versions of one agent, newest first, and what it cannot tell."""

    kind: str  # what the platform calls a version: "version", "revision", "deployment"
    versions: tuple[Version, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. what the platform keeps only for the latest

    @property
    def live(self) -> Version | None:
        return next((v for v in self.versions if v.live), None)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "versions": [asdict(v) for v in self.versions], "notes": list(self.notes)}


def choose(history: History, to: str | None, where: str) -> tuple[Version | None, Version]:
    """(the live version, the one to make live): --to's, else the one just older than the live one."""
    ids = [v.id for v in history.versions]
    live = history.live
    if to is not None:
        found = next((v for v in history.versions if v.id == to), None)
        if found is None:
            raise UsageError(f"{where} has no {history.kind} {to!r} (its {history.kind}s, newest first: "
                             f"{', '.join(ids) or 'none'})")
        return live, found
    if live is None:
        raise DeployError(f"{where}: no {history.kind} is live, so there is no previous one: name one with --to "
                          f"({', '.join(ids) or f'no {history.kind}s deployed'})")
    older = history.versions[history.versions.index(live) + 1:]
    if not older:
        raise DeployError(f"{where}: nothing to roll back to: {history.kind} {live.id} is live and no earlier one "
                          "is kept")
    return live, older[0]
