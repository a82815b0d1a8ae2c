"""Typed errors and exit codes: raised deep, shown once by the command line's reporter."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status the command line returns, named for what it means.

    USAGE and CHANGES_PENDING are both 2 (argparse exits 2 on a bad command line; `plan` exits 2
    when it has changes, as `terraform plan -detailed-exitcode` does). They are distinct members,
    equal as numbers, so a code reads as what it means; `FrameworkError.exit_code_for` keeps an
    error from ever looking like a result.
    """

    OK = 0, "done (plan: no changes)"
    FAILED = 1, "the command failed: agent.yaml has a problem, a target failed, the user cancelled"
    USAGE = 2, "the command line or the environment asks for something that cannot be done"
    CHANGES_PENDING = 2, "plan: there are changes to apply"
    INTERRUPTED = 130, "stopped by Ctrl-C (128 + SIGINT)"

    meaning: str

    def __new__(cls, code: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, code)
        member._value_ = code, meaning  # the meaning keeps the two 2s distinct members, not aliases
        member.meaning = meaning
        return member

    def __repr__(self) -> str:  # IntEnum's would format the (code, meaning) value as an int, and fail
        return f"<ExitCode.{self.name}: {int(self)}>"


class FrameworkError(Exception):
    """Base of every error a user can cause; never shown as a traceback."""

    exit_code = ExitCode.FAILED
    details: tuple[str, ...] = ()  # lines shown before the error's message

    def exit_code_for(self, results: Collection[ExitCode]) -> ExitCode:
        """This error's code for a command whose results use `results`: FAILED where the numbers
        coincide, so CI never mistakes an error for a result (plan: 2 means changes pending)."""
        return ExitCode.FAILED if self.exit_code in results else self.exit_code


@dataclass(frozen=True)
class Problem:
    """One finding in agent.yaml, located at a line and column (1-based)."""

    file: str
    line: int
    col: int
    path: str
    message: str
    severity: str = "error"

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.col, self.path, self.message)


class ConfigError(FrameworkError):
    """agent.yaml has one or more problems; all of them are carried at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__(f"{len(self.problems)} problem(s) in agent.yaml")


class StaleError(FrameworkError):
    """`build --check` found generated files that differ from a fresh render."""

    def __init__(self, differences: list[str]):
        self.details = tuple(differences)
        super().__init__("generated/ is out of date; run `agenthost build`")


class UsageError(FrameworkError):
    """The command line asks for something that cannot be done."""

    exit_code = ExitCode.USAGE


class OutputError(FrameworkError):
    """The output folder cannot be written (read-only, on a full disk, below a file)."""


class DeployError(FrameworkError):
    """A deploy, plan or destroy could not be done (the cloud refused, a resource is not ours, ...)."""


class PackageError(DeployError):
    """The deployable package cannot be made (pip failed, over the platform's size limits)."""


class DockerUnavailableError(DeployError):
    """The container-image path needs a running Docker engine and there is none."""


class ConfirmationRequired(UsageError):
    """A change needs confirmation but there is no terminal to ask on (and no --yes)."""


class Cancelled(FrameworkError):
    """The user answered no at the confirmation prompt: nothing was changed."""


class LocalRunError(FrameworkError):
    """The local runtime could not be started (serve, invoke)."""


class MissingKeyError(FrameworkError):
    """No model API key in the environment: serving would only produce errors."""

    exit_code = ExitCode.USAGE
