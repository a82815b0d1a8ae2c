"""Reporters: how every command's result, warnings and errors are printed, one class per format.

Text is for people, github for GitHub Actions (problems become annotations on the pull request's
lines), json for machines (stdout holds one JSON document and nothing else). Commands describe
what to print; the reporter decides where and how.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from framework.errors import ConfigError, FrameworkError, Problem


def problems_data(problems: Sequence[Problem]) -> dict[str, Any]:
    """The JSON of a list of problems: ok unless one is an error, then every problem."""
    rows = [{"file": p.file, "line": p.line, "col": p.col, "path": p.path,
             "severity": p.severity, "message": p.message} for p in problems]
    return {"ok": not any(p.severity == "error" for p in problems), "problems": rows}


class TextReporter:
    """For people: results on stdout; warnings, notes and errors on stderr."""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def format_problems(self, problems: Sequence[Problem]) -> str:
        return "\n".join(f"{p.file}:{p.line}:{p.col}: {p.severity}: {p.path}: {p.message}" for p in problems)

    def warnings(self, problems: Sequence[Problem]) -> None:
        """Problems that do not stop the command, shown before its work."""
        if problems:
            print(self.format_problems(problems), file=self.stderr)

    def note(self, text: str) -> None:
        """A line about the work (not its result), e.g. that generated/ was rebuilt."""
        print(text, file=self.stderr, flush=True)

    def display(self, text: str) -> None:
        """What a person reads before confirming (a plan): on stdout, unless stdout is for machines."""
        print(text, file=self.stdout, flush=True)

    def result(self, lines: Sequence[str], data: Any, *, sort_keys: bool = False,
               ensure_ascii: bool = False) -> None:
        """The command's result: `lines` for people, `data` for machines (the JSON options are
        each command's own, kept as they always printed)."""
        for line in lines:
            print(line, file=self.stdout)
        self.stdout.flush()

    def stream(self, chunks: Iterable[bytes]) -> None:
        """A streamed answer, shown as it arrives, then a newline."""
        for chunk in chunks:
            self.stdout.buffer.write(chunk)
            self.stdout.flush()
        print(file=self.stdout)

    def error(self, error: FrameworkError) -> None:
        """An error, shown once: agent.yaml's problems with their count, else its details and message."""
        if isinstance(error, ConfigError):
            self._config_error(error)
            return
        for line in error.details:
            print(line, file=self.stderr)
        print(f"error: {error}", file=self.stderr)

    def _config_error(self, error: ConfigError) -> None:
        print(self.format_problems(error.problems), file=self.stderr)
        count = sum(p.severity == "error" for p in error.problems)
        print(f"{count} error(s); nothing was written", file=self.stderr)


def _github_escape(text: str, prop: bool = False) -> str:
    # https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


class GithubReporter(TextReporter):
    """For GitHub Actions: problems as workflow annotations; agent.yaml's errors on stdout, where
    the runner reads workflow commands."""

    def format_problems(self, problems: Sequence[Problem]) -> str:
        return "\n".join(
            f"::{'error' if p.severity == 'error' else 'warning'} file={_github_escape(p.file, True)},"
            f"line={p.line},col={p.col},title={_github_escape(p.path, True)}::"
            f"{_github_escape(p.path + ': ' + p.message)}"
            for p in problems)

    def _config_error(self, error: ConfigError) -> None:
        print(self.format_problems(error.problems), file=self.stdout)


class JsonReporter(TextReporter):
    """For machines: stdout holds the result's JSON only; warnings are part of it, what people
    read goes to stderr."""

    def warnings(self, problems: Sequence[Problem]) -> None:
        """Nothing to print: the result carries them (see problems_data)."""

    def display(self, text: str) -> None:
        print(text, file=self.stderr, flush=True)

    def result(self, lines: Sequence[str], data: Any, *, sort_keys: bool = False,
               ensure_ascii: bool = False) -> None:
        print(json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii), file=self.stdout)

    def _config_error(self, error: ConfigError) -> None:
        print(json.dumps(problems_data(error.problems), indent=2, ensure_ascii=False), file=self.stdout)


REPORTERS: dict[str, type[TextReporter]] = {"text": TextReporter, "github": GithubReporter, "json": JsonReporter}
FORMATS = tuple(REPORTERS)


def reporter(fmt: str, stdout: TextIO | None = None, stderr: TextIO | None = None) -> TextReporter:
    """The reporter of a --format value (one of FORMATS)."""
    return REPORTERS[fmt](stdout, stderr)
