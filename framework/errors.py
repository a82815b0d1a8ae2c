"""Typed errors: raised deep, printed once in cli.py, each with its exit code."""

from __future__ import annotations

from dataclasses import dataclass


class FrameworkError(Exception):
    """Base of every error a user can cause; never shown as a traceback."""

    exit_code = 1


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
        self.differences = differences
        super().__init__("generated/ is out of date; run `python -m framework build`")


class UsageError(FrameworkError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


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
