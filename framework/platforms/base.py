"""The interface every platform implements, in one object: its limits, its render, where it answers,
how it runs locally, how it deploys and how CI signs in to it.

A platform package (framework/platforms/<name>/) exposes one `PLATFORM`; the registry lists them.
Its runner and deployer import their frameworks and cloud SDKs only when called, so `validate` and
`build` never load boto3, google-cloud or azure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from framework.findings import Finding
from framework.local.base import LocalApp, LocalOptions
from framework.model import Agent, TargetSettings
from framework.render import File

Runner = Callable[[LocalOptions], LocalApp]
# (agent, settings, rendered files, **command options) -> a Deployer (see framework/deploy/commands.py)
DeployerFactory = Callable[..., Any]


@dataclass(frozen=True)
class CiLogin:
    """How the GitHub Actions workflow of `init-ci` gets credentials for the platform."""

    variables: str  # comment lines naming the repository variables and secrets it reads
    step: str = ""  # the login step; @@ becomes PLAN or DEPLOY, REGION the target's region
    requires: tuple[str, ...] = ()  # target settings the workflow cannot do without (e.g. region)
    deploy_secrets: tuple[str, ...] = ()  # repository secrets the deploy job exports as they are
    plan_secrets: Mapping[str, str] = field(default_factory=dict)  # plan job: env name -> repository secret


class Platform(Protocol):
    """What the core knows of a platform; nothing else in framework/ names one."""

    @property
    def name(self) -> str: ...  # the key under `targets:` and the folder under generated/
    @property
    def title(self) -> str: ...
    @property
    def schema(self) -> Mapping[str, Any]:
        """Its part of the JSON Schema: {"target": targets.<name>, "secret": its secret reference (optional)}."""
        ...
    @property
    def runner(self) -> Runner | None: ...  # starts the app in the platform's local runtime
    @property
    def deployer(self) -> DeployerFactory | None: ...  # None: not deployable by the framework (yet)
    @property
    def ci_login(self) -> CiLogin | None: ...

    def check(self, agent: Agent, settings: TargetSettings) -> list[Finding]:
        """The platform's limits, as findings on agent.yaml paths (pure)."""
        ...

    def render(self, agent: Agent, settings: TargetSettings) -> list[File]:
        """Every file of the generated app under <name>/ (pure)."""
        ...

    def endpoint(self, agent: Agent, settings: TargetSettings) -> str:
        """The URL path the agent answers on, for humans and the local server."""
        ...


@dataclass(frozen=True)
class Definition:
    """A Platform assembled from plain functions: what each package's PLATFORM is."""

    name: str
    title: str
    check: Callable[[Agent, TargetSettings], list[Finding]]
    render: Callable[[Agent, TargetSettings], list[File]]
    endpoint: Callable[[Agent, TargetSettings], str]
    schema: Mapping[str, Any]
    runner: Runner | None = None
    deployer: DeployerFactory | None = None
    ci_login: CiLogin | None = None

    @classmethod
    def of(cls, target: ModuleType, **rest: Any) -> Definition:
        """A package's PLATFORM from its target module (name, title, check, render, endpoint) and
        the schema.json beside it; `rest` gives runner, deployer and ci_login."""
        part = json.loads((Path(target.__file__ or "").parent / "schema.json").read_text(encoding="utf-8"))
        return cls(name=target.name, title=target.title, check=target.check, render=target.render,
                   endpoint=target.endpoint, schema=part, **rest)
