"""The deploy skeleton every platform shares, so the clouds cannot drift apart in what they say or do:

* the options the deploy commands hand every Deployer (`DeployOptions`);
* the split of agent.yaml's secrets into referenced (read from the platform's store by the function),
  copied (from the deploying environment), kept (not set here, kept as deployed) and missing (not set
  here, not deployed either: a first deploy cannot start), with the notes and the error that say so;
* the plan a Deployer returns for deploy and destroy alike (`DeployPlan`);
* ownership marks (`Mark`) and short digests as plans show them;
* `DeployerBase`, the parts of a Deployer that are the same on every platform.

The typed interface itself is `framework.platforms.base.Deployer`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from framework.deploy.plan import Change, Plan
from framework.deploy.secrets import SecretValues
from framework.errors import DeployError, FrameworkError
from framework.model import Agent, TargetSettings
from framework.render import File


@dataclass(frozen=True)
class DeployOptions:
    """What plan / deploy / destroy / info hand a platform's Deployer; each platform reads the fields
    it has use for (a name no platform knows is a TypeError, not silently dropped)."""

    environ: Mapping[str, str] | None = None  # None: os.environ
    stderr: TextIO | None = None  # where waits and retries are announced
    sleep: Callable[[float], None] = time.sleep  # tests record the waits instead
    cache: Path | None = None  # where packages are built and kept between runs
    session: Any = None  # the SDK session to use instead of a default one (AWS: a boto3.Session with hooks)
    poll_interval: float | None = None  # seconds between polls of a long operation (None: the platform's)
    retries: int | None = None  # tries of a call (None: the platform's)
    backoff: float | None = None  # the first wait between tries, in seconds (None: the platform's)


@dataclass(frozen=True)
class DeployPlan:
    """A Deployer's plan, for deploy and destroy alike, with the secrets a deploy cannot do without."""

    plan: Plan
    missing_secrets: tuple[str, ...] = ()


# ---------------------------------------------------------------- secrets


@dataclass(frozen=True)
class SecretHome:
    """Where a platform keeps the secrets it copies from the deploying environment, as its plan
    notes and its refusal to start name it."""

    platform: str  # the key of the platform's references under agent.yaml's `secrets:`
    copied_into: str  # e.g. "the function's environment"
    keeper: str  # who keeps a value not set here, e.g. "the deployed function"
    holder: str  # who lacks it on a first deploy, e.g. "the function"
    otherwise: Callable[[str], str]  # the note's other way to provide a secret, after "export NAME=..."
    reference: str | None = None  # an example reference for the error (None: the platform has no store)

    def copied_names(self, secrets: Mapping[str, Mapping[str, str]]) -> list[str]:
        """The secrets of agent.yaml the platform copies from the deploying environment (not referenced)."""
        return [name for name, refs in secrets.items() if self.platform not in refs]

    def split(self, secrets: Mapping[str, Mapping[str, str]],
              values: SecretValues) -> tuple[dict[str, str], dict[str, str | None]]:
        """(referenced: name -> the platform's reference, copied: name -> the digest of the value
        here, None when not set here), each sorted by name."""
        referenced = {name: refs[self.platform] for name, refs in secrets.items() if self.platform in refs}
        copied = {name: (values.digest(name) if name in values else None) for name in secrets if name not in referenced}
        return dict(sorted(referenced.items())), dict(sorted(copied.items()))

    def kept_note(self, name: str) -> str:
        return f"{name} is not set in this environment: {self.keeper} keeps its current value"

    def missing_note(self, name: str) -> str:
        return (f"{name} is not set in this environment and {self.holder} does not have it yet: deploy needs it "
                f"(export {name}=...{self.otherwise(name)})")

    def notes(self, copied: Mapping[str, str | None], missing: Sequence[str]) -> list[str]:
        """The kept secrets' notes, then the missing ones'."""
        kept = [name for name, value in copied.items() if value is None and name not in missing]
        return [self.kept_note(name) for name in kept] + [self.missing_note(name) for name in missing]

    def missing_error(self, names: Sequence[str]) -> DeployError:
        """Why a first deploy cannot start: a secret is neither in this environment nor referenced."""
        message = (f"{', '.join(names)} must be set in this environment for the first deploy (the value is copied "
                   f"into {self.copied_into}, never printed, logged or written to a file)")
        if self.reference:
            message += f", or referenced in a secret store: secrets: {{{names[0]}: {{{self.reference}}}}} in agent.yaml"
        return DeployError(message)


def desired_env(copied: Mapping[str, str | None],
                deployed: Mapping[str, str] | None) -> tuple[dict[str, str | None], list[str]]:
    """name -> the digest the function should have (None: keep the deployed value), and the names missing
    (not set here and not deployed)."""
    env: dict[str, str | None] = {}
    missing = []
    for name, value in copied.items():
        if value is not None:
            env[name] = value
        elif deployed and name in deployed:
            env[name] = None
        else:
            missing.append(name)
    return env, missing


def environment_changes(wanted: Mapping[str, Any], deployed: Mapping[str, Any]) -> list[Change]:
    """Changes of a function's environment, values always hidden. `wanted[name]` is None for a
    secret kept as deployed (absent from the deploying environment); such a name never changes."""
    changes = []
    for name in sorted(set(wanted) | set(deployed)):
        if name not in wanted:
            changes.append(Change(f"environment {name}", "(set)", "(removed)"))
        elif name not in deployed:
            changes.append(Change(f"environment {name}", None, "(value hidden)"))
        elif wanted[name] is not None and wanted[name] != deployed[name]:
            changes.append(Change(f"environment {name}", "(value hidden)", "(new value hidden)"))
    return changes


# ---------------------------------------------------------------- ownership and digests


def short(value: str | None, n: int = 12) -> str | None:
    """A digest as plans show it: its first characters."""
    return value[:n] if value else value


@dataclass(frozen=True)
class Mark:
    """The tag or label the framework puts on what it creates, naming the agent: only what carries it
    is ever changed or deleted."""

    kind: str  # "tag" or "label", as the cloud calls it
    key: str

    def on(self, marks: Mapping[str, str] | None, agent: str) -> bool:
        return (marks or {}).get(self.key) == agent

    def refusal(self, what: str, where: str, agent: str, remedy: str) -> DeployError:
        """The refusal to touch a resource that exists without this mark."""
        return DeployError(
            f"{what} already exists in {where} but was not created by this framework for this agent (it lacks the "
            f"{self.kind} {self.key}={agent}); the framework never changes what it does not own: {remedy}")


def left_alone(what: str) -> str:
    """The destroy plan's note on a resource that is not ours."""
    return f"left alone: {what} (not created by this framework for this agent)"


# ---------------------------------------------------------------- sessions


def session_store(files: Sequence[File]) -> Mapping[str, Any] | None:
    """The generated app's agent.json "sessions" block (framework/platforms/sessions.py), None when
    sessions are off: what the function opens, so what deploy creates has the very same names."""
    for file in files:
        if file.path.partition("/")[2] == "agent.json":
            return json.loads(file.content).get("sessions")
    return None


# ---------------------------------------------------------------- the Deployer's shared part


class Planner(Protocol):
    """A platform's pure planner module (framework/platforms/<name>/planner.py)."""

    def plan_deploy(self, desired: Any, snap: Any) -> DeployPlan: ...


class DeployerBase:
    """The parts of a Deployer that are the same on every platform: the agent and its files, the
    deploying environment, the secret values taken from it, the missing-secrets preflight, and error
    translation that never lets a secret value through."""

    title: str
    home: SecretHome
    planner: Planner  # the platform's pure planner module
    desired: Any = None  # what prepare() computed

    def __init__(self, agent: Agent, settings: TargetSettings, files: Sequence[File], options: DeployOptions,
                 secret_names: Sequence[str] | None = None):
        """`secret_names`: the secrets read from the deploying environment (None: those `home` copies)."""
        self.agent = agent
        self.settings = settings
        self.files = list(files)
        self.environ = os.environ if options.environ is None else options.environ
        names = self.home.copied_names(agent.secrets) if secret_names is None else secret_names
        self.secrets = SecretValues.from_environ(names, self.environ)

    def translate(self) -> AbstractContextManager[None]:
        """The platform's SDK and HTTP errors as DeployError, with one clear line each (a platform whose
        translation needs no state of the Deployer sets `translate = staticmethod(translate_errors)`)."""
        raise NotImplementedError

    @contextmanager
    def errors(self) -> Iterator[None]:
        """translate(), and then no secret value in any error's text."""
        try:
            with self.translate():
                yield
        except FrameworkError as error:
            scrubbed = self.secrets.redact(str(error))
            if scrubbed == str(error):
                raise
            raise type(error)(scrubbed) from None

    def plan(self, snap: Any) -> DeployPlan:
        assert self.desired is not None, "prepare() comes first"
        return self.planner.plan_deploy(self.desired, snap)

    def preflight(self, deploy_plan: DeployPlan) -> None:
        """Refuse before the first call what would fail half-way."""
        if deploy_plan.missing_secrets:
            raise self.home.missing_error(deploy_plan.missing_secrets)
