"""DEPLOY.md: the platform's own CLI commands that deploy a generated folder by hand with agent.yaml's values.

Every command is built as an argument list and joined with shlex, so an agent.yaml value stays one
shell word whatever it contains; a secret's value is never written, only a reference to the shell
variable that holds it when the command runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from framework.render import File, environment

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class FromEnv:
    """`prefix` followed by the value of the environment variable `name` where the command runs."""

    prefix: str
    name: str

    def __post_init__(self) -> None:
        if not ENV_NAME.match(self.name):  # the schema allows no other names; a shell expansion must not widen that
            raise ValueError(f"not an environment variable name: {self.name!r}")

    def shell(self) -> str:
        return (shlex.quote(self.prefix) if self.prefix else "") + f'"${{{self.name}}}"'


def command(*argv: str | int | FromEnv) -> str:
    """One shell command line: each argument a single, quoted shell word."""
    return " ".join(a.shell() if isinstance(a, FromEnv) else shlex.quote(str(a)) for a in argv)


def fence(commands: list[str]) -> str:
    """A Markdown code fence longer than any run of backticks in the commands, so no value can close it."""
    longest = max((len(run) for text in commands for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def deploy_file(templates: Path, target: str, steps: list[tuple[str, str]], context: dict) -> File:
    """<target>/DEPLOY.md from <templates>/DEPLOY.md.j2; steps are (what it does, command line)."""
    text = environment(templates).get_template("DEPLOY.md.j2").render(
        steps=steps, fence=fence([c for _, c in steps]), **context)
    return File(f"{target}/DEPLOY.md", text.encode("utf-8"))
