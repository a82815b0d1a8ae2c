"""The repository's agents and stages: which agent.yaml files a command works on, and where each
agent's build goes.

Without -f: agent.yaml at the root, else every agents/*/agent.yaml. One agent keeps generated/<platform>/;
several get generated/<agent>/<platform>/; a stage's build goes one level down (generated/<stage>/...).
Two agents with the same name, or two agents (or stages) whose resources would have the same name,
are a validation error naming both files: deploy would otherwise make them overwrite each other.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from framework.config import stages
from framework.config.load import load
from framework.config.validate import Validated, validate_stages
from framework.errors import ConfigError, Problem, UsageError

DEFAULT_FILE = "agent.yaml"
AGENTS_GLOB = "agents/*/agent.yaml"


@dataclass(frozen=True)
class Unit:
    """One agent at one stage (or as written, stage None): what a command works on."""

    validated: Validated
    stage: str | None
    root: Path  # the output folder (generated/)
    folder: str = ""  # its build's folder inside: "", "<stage>", "<agent>" or "<agent>/<stage>"

    @property
    def output(self) -> Path:
        return self.root / self.folder if self.folder else self.root

    @property
    def file(self) -> str:
        return self.validated.document.file

    @property
    def agent(self) -> str:
        """The agent's name as written (its resources are named <agent>-<stage>)."""
        return self.validated.document.data["name"]

    def require_target(self, target: str) -> None:
        """A target the agent does not list is a UsageError naming those it does."""
        listed = [t.name for t in self.validated.agent.targets]
        if target not in listed:
            raise UsageError(f"target {target!r} is not in {self.file} (it lists: {', '.join(listed)})")

    @property
    def label(self) -> str:
        return f"{self.agent} ({self.stage})" if self.stage else self.agent


def agent_files(patterns: Sequence[str] = ()) -> list[str]:
    """The agent files: each -f as written or as a glob, else the repository's default layout."""
    if not patterns:
        if Path(DEFAULT_FILE).is_file():
            return [DEFAULT_FILE]
        found = sorted(glob.glob(AGENTS_GLOB))
        if not found:
            raise UsageError(f"no {DEFAULT_FILE} here and no {AGENTS_GLOB}: run `agenthost init` to write one, "
                             "or pass -f PATH")
        return found
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise UsageError(f"-f {pattern}: no file matches")
        files += [match for match in matches if match not in files]
    return files


def units(files: Sequence[str], output: str, agents: Sequence[str] = (), stage: str | None = None,
          every_stage: bool = False) -> list[Unit]:
    """The (agent, stage) pairs to work on: the agents named (all when none), at `stage`, or as written
    and at every stage they list (every_stage: build and validate), else as written. Every file is
    validated in full, every stage included, and all problems raised at once."""
    checked, problems = [], []
    for file in files:
        try:
            checked.append(validate_stages(load(file)))
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    _unique(checked)
    several = len(checked) > 1
    names = [versions[0].document.data["name"] for versions in checked]
    unknown = [name for name in agents if name not in names]
    if unknown:
        raise UsageError(f"--agent {', '.join(unknown)}: no such agent (found: {', '.join(names)})")
    out = []
    for name, versions in zip(names, checked, strict=True):
        if agents and name not in agents:
            continue
        base = name if several else ""
        if stage is not None:
            stages.require(versions[0].document, stage)
        for validated in versions:
            at = validated.document.stage
            if at == stage or (every_stage and stage is None):
                folder = "/".join(part for part in (base, at) if part)
                out.append(Unit(validated, at, Path(output), folder))
    return out


def _unique(checked: list[list[Validated]]) -> None:
    """No two agents share a name, and no two resources a name on one platform."""
    problems, seen_names, seen_resources = [], {}, {}
    for versions in checked:
        doc = versions[0].document
        name = doc.data["name"]
        if name in seen_names:
            problems.append(Problem(doc.file, *doc.where(("name",)), "name", (
                f"{seen_names[name]} has the same name, {name!r}: give each agent its own name")))
            continue
        seen_names[name] = doc.file
        for validated in versions:
            for settings in validated.agent.targets:
                key = (settings.name, validated.agent.name)
                where = f"{doc.file}" + (f" (stage {validated.agent.stage})" if validated.agent.stage else "")
                if key in seen_resources and seen_resources[key][0] != doc.file:
                    problems.append(Problem(doc.file, *doc.where(("name",)), "name", (
                        f"{where} and {seen_resources[key][1]} would both deploy {validated.agent.name!r} on "
                        f"{settings.name}: rename the agent or the stage")))
                seen_resources.setdefault(key, (doc.file, where))
    if problems:
        raise ConfigError(problems)
