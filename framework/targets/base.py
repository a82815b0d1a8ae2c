"""The interface every platform implements: check its limits, render its app."""

from __future__ import annotations

from typing import Protocol

from framework.config.validate import Finding
from framework.model import Agent, TargetSettings
from framework.render import File


class Target(Protocol):
    name: str
    title: str

    def check(self, agent: Agent, settings: TargetSettings) -> list[Finding]:
        """The platform's limits, as findings on agent.yaml paths (pure)."""
        ...

    def render(self, agent: Agent, settings: TargetSettings) -> list[File]:
        """Every file of the generated app under <name>/ (pure)."""
        ...

    def endpoint(self, agent: Agent, settings: TargetSettings) -> str:
        """The URL path the agent answers on, for humans and the local server."""
        ...
