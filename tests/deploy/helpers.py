"""Helpers for the deploy tests: an agent folder, a boto3 session that records (and can break) calls."""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from framework.deploy import commands

# Recognisable, so any leak is found by grep; shaped unlike a real key so validate never sees it.
FAKE_KEY = "FAKE-SECRET-VALUE-7f3a9c1e-never-print-me"

AGENT = """\
    name: support-bot
    prompt: |
      You are a helpful support assistant.
    model: gpt-4o-mini
    concurrency:
      max: 10
      warm: 0
    targets:
      aws:
        region: us-east-1
"""


# the mutating calls of a first deploy of AGENT, in order
CLEAN_DEPLOY = ["CreateRole", "AttachRolePolicy", "CreateFunction", "PutFunctionConcurrency", "PublishVersion",
                "CreateAlias", "CreateFunctionUrlConfig", "AddPermission", "AddPermission"]


def write_agent(folder: Path, body: str = AGENT) -> Path:
    text = textwrap.dedent(body)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def is_read(operation: str) -> bool:
    return operation.startswith(("Get", "List", "Describe"))


class Interrupted(Exception):
    """Stands for the process being killed between two calls."""


@dataclass
class Recorder:
    """A boto3 session whose every call is recorded; optionally fails after N mutating calls."""

    fail_after: int | None = None
    calls: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.session = boto3.Session()
        self.session.events.register("before-call", self._before_call)

    def _before_call(self, model, **kwargs):
        if not is_read(model.name) and self.fail_after is not None and len(self.mutating) >= self.fail_after:
            raise Interrupted(f"killed before {model.name}")
        self.calls.append(model.name)

    @property
    def mutating(self) -> list[str]:
        return [c for c in self.calls if not is_read(c)]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run(command: str, agent: Path, recorder: Recorder | None = None, fmt: str = "text", yes: bool = True,
        **options) -> Run:
    """Call a deploy command in-process with captured output (errors propagate as exceptions)."""
    out, err = io.StringIO(), io.StringIO()
    kwargs = dict(stdout=out, stderr=err, **options)
    if recorder is not None:
        kwargs["session"] = recorder.session
    output = str(agent.parent / "generated")
    function = getattr(commands, command)
    if command in ("deploy", "destroy"):
        code = function(str(agent), "aws", output, fmt, yes, **kwargs)
    else:
        code = function(str(agent), "aws", output, fmt, **kwargs)
    return Run(code, out.getvalue(), err.getvalue())


def outputs_of_every_command(run_command, agent: Path, body: str) -> list[str]:
    """stdout and stderr of plan, deploy and info in text and JSON, then of a deploy after a prompt
    change: every text a deploy prints, to search for a secret value."""
    texts = []
    for command, fmt in (("plan", "text"), ("plan", "json"), ("deploy", "text"), ("deploy", "json"),
                         ("info", "text"), ("info", "json")):
        result = run_command(command, agent, fmt=fmt)
        texts += [result.stdout, result.stderr]
    write_agent(agent.parent, body.replace("helpful", "kind"))
    for fmt in ("text", "json"):
        result = run_command("deploy", agent, fmt=fmt)
        texts += [result.stdout, result.stderr]
    return texts
