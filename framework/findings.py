"""A platform's verdict on a setting: a leaf module, so platforms and the validator both import it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """A target's verdict on a setting, before it is located in the file."""

    path: tuple[str | int, ...]  # where in agent.yaml, e.g. ("targets", "aws", "timeout")
    message: str
    severity: str = "error"
