"""The interface every platform implements, in one object: its limits, its render, where it answers,
how it runs locally, how it deploys and how CI signs in to it.

A platform package (framework/platforms/<name>/) exposes one `PLATFORM`; the registry lists them.
Its runner and deployer import their frameworks and cloud SDKs only when called, so `validate` and
`build` never load boto3, google-cloud or azure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from framework.deploy.executor import Progress
from framework.deploy.loglines import LogReader
from framework.deploy.plan import Plan
from framework.deploy.secrets import SecretValues
from framework.deploy.skeleton import DeployOptions, DeployPlan
from framework.deploy.versions import History, Version
from framework.findings import Finding
from framework.local.base import LocalApp, LocalOptions
from framework.model import Agent, TargetSettings
from framework.render import File

Runner = Callable[[LocalOptions], LocalApp]


class Deployer(Protocol):
    """One agent on one platform, as plan / deploy / destroy / info drive it (framework/deploy/commands.py):
    prepare -> snapshot -> plan -> preflight -> apply -> outputs, or snapshot(destroy) -> destroy_plan -> apply.
    The snapshot is the platform's own type: the core only hands it back."""

    title: str  # e.g. "AWS Lambda"
    agent: Agent
    secrets: SecretValues  # the values taken from the deploying environment (scrubbed from every error)

    def errors(self) -> AbstractContextManager[None]:
        """The platform's errors as FrameworkError, with no secret value in their text."""
        ...

    def prepare(self) -> object:
        """Package the app and compute the desired state (no call to the cloud)."""
        ...

    def snapshot(self, *, destroy: bool = False) -> Any:
        """Read what is deployed (read-only calls)."""
        ...

    def plan(self, snap: Any) -> DeployPlan: ...
    def destroy_plan(self, snap: Any) -> DeployPlan: ...

    def preflight(self, deploy_plan: DeployPlan) -> None:
        """Refuse before the first mutating call what would fail half-way (a missing secret, no Docker)."""
        ...

    def apply(self, plan: Plan, progress: Progress | None = None) -> dict[str, Any]: ...
    def outputs(self, snap: Any, results: Mapping[str, Any] | None = None) -> dict[str, Any]: ...
    def info(self) -> dict[str, Any]: ...

    # ---- pause / resume (issue 14): the kill switch
    def pause_plan(self, resume: bool = False) -> Plan:
        """What pausing (resume: resuming) the deployed agent takes, read from the cloud now: the
        calls that refuse (or let in) every new request at the platform, nothing deleted; a plan
        without changes when it already is so. Applied with apply()."""
        ...

    # history and rollback (issue 14): framework/deploy/history.py
    def history(self) -> History:
        """The deployed versions, newest first, the live one marked (read-only calls)."""
        ...

    def rollback(self, history: History, version: Version) -> dict[str, Any]:
        """Make `version` (one of `history`'s) live again, the platform's own way."""
        ...

    # logs (issue 14): the function's log lines from the platform's log service
    def log_reader(self, request: str | None = None) -> LogReader:
        """Find the function's log once (a missing function is an error saying so), and return what
        reads its lines from a time on; `request`: only that request's lines."""
        ...

    # invoke --deployed (issue 14): framework/deploy/remote.py
    def invoke_headers(self, deployed: Mapping[str, Any], url: str, body: bytes,
                       headers: Mapping[str, str]) -> dict[str, str]:
        """The headers that authenticate one POST of `body` (with `headers`) to the deployed URL the
        platform's own way, given what info() reported ({} when it is public); never printed."""
        ...


DeployerFactory = Callable[[Agent, TargetSettings, Sequence[File], DeployOptions], Deployer]


class RunnerModule(Protocol):
    """A platform's runner module (framework/platforms/<name>/runner.py)."""

    def start(self, options: LocalOptions) -> LocalApp: ...


@dataclass(frozen=True)
class PausedAnswer:
    """What the platform answers every request while the agent is paused (`agenthost pause`), before
    the function sees it: `serve --paused` answers it locally, so clients can be tried against it."""

    status: int
    headers: Mapping[str, str]  # Content-Type included
    body: bytes
    said: str  # how serve tells it, e.g. "429 as Lambda answers with reserved concurrency 0"


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
    @property
    def session_store(self) -> str | None: ...  # the store `sessions: {store: auto}` means here; None: none
    @property
    def paused(self) -> Callable[[], PausedAnswer] | None: ...  # its answer to every request while paused

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
    session_store: str | None = None
    paused: Callable[[], PausedAnswer] | None = None

    @classmethod
    def of(cls, target: ModuleType, *, runner: Callable[[], RunnerModule] | None = None,
           deployer: Callable[[], DeployerFactory] | None = None, ci_login: CiLogin | None = None,
           paused: Callable[[], PausedAnswer] | None = None) -> Definition:
        """A package's PLATFORM from its target module (name, title, check, render, endpoint, and
        SESSION_STORE when it keeps sessions) and the schema.json beside it. `runner` and `deployer`
        load the runner module and the Deployer class when first called, so that serve's and
        deploy's frameworks and SDKs are imported only by them. `paused` loads the answer of a paused agent,
        kept beside the platform's pause plan (its planner module, imported only by serve --paused)."""
        part = json.loads((Path(target.__file__ or "").parent / "schema.json").read_text(encoding="utf-8"))
        return cls(name=target.name, title=target.title, check=target.check, render=target.render,
                   endpoint=target.endpoint, schema=part, ci_login=ci_login,
                   session_store=getattr(target, "SESSION_STORE", None), paused=paused,
                   runner=_lazy_runner(runner) if runner else None,
                   deployer=_lazy_deployer(deployer) if deployer else None)


def _lazy_runner(load: Callable[[], RunnerModule]) -> Runner:
    def start(options: LocalOptions) -> LocalApp:
        return load().start(options)
    return start


def _lazy_deployer(load: Callable[[], DeployerFactory]) -> DeployerFactory:
    def make(agent: Agent, settings: TargetSettings, files: Sequence[File], options: DeployOptions) -> Deployer:
        return load()(agent, settings, files, options)
    return make
