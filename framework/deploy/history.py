"""history / rollback: the versions of an agent each platform keeps, read from the cloud (no local
state, as plan reads), and making an earlier one live again the way the platform supports it.

A Deployer answers `history()` with a History (newest first, one marked live) and applies
`rollback(history, version)`; this module picks the version (the one before the live one, or --to),
shows the change (from -> to), confirms as deploy does, and reports. A later `deploy` converges as
usual: each platform's plan compares agent.yaml with what is live.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from framework.deploy.run import (
    Step,
    confirm,
    each,
    make_steps,
    per_step_json,
    report_failures,
    select_units,
    show_result,
    start,
)
from framework.deploy.versions import History, Version, choose
from framework.errors import ExitCode, UsageError
from framework.report import reporter


def _line(v: Version) -> str:
    return (f"  {'live' if v.live else '':<5} {v.id:<28} {v.created or '-':<26} content {(v.content or '-')[:12]:<13}"
            f"prompt {(v.prompt or '-')[:12]}")


def history(file: str | Sequence[str], target: str | None, output: str, fmt: str, *, stage: str | None = None,
            agents: Sequence[str] = (), stdout: TextIO | None = None, stderr: TextIO | None = None,
            **options: Any) -> ExitCode:
    """Every target's deployed versions, newest first, read in parallel."""
    report = reporter(fmt, stdout, stderr)
    steps = make_steps(select_units(file, output, stage, agents), target)
    pool = start(steps, report.stderr, **options)
    each(pool, steps, lambda step: setattr(step, "snapshot", step.deployer.history()))
    lines = []
    for step in steps:
        if step.error is not None:
            continue
        found: History = step.snapshot
        lines.append(f"{step.label}: {len(found.versions)} {found.kind}(s) of {step.deployer.agent.name} on "
                     f"{step.deployer.title}, newest first")
        lines += [_line(v) for v in found.versions]
        lines += [f"  note: {note}" for note in found.notes]
    show_result(report, lines, per_step_json(steps, target, lambda step: step.snapshot.to_dict()))
    return report_failures(steps, "history", report)


def rollback(file: str | Sequence[str], target: str | None, output: str, fmt: str, yes: bool, *,
             to: str | None = None, stage: str | None = None, agents: Sequence[str] = (),
             stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None,
             environ: Mapping[str, str] | None = None, **options: Any) -> ExitCode:
    """Make the previous (or --to) version live again on every target: from -> to shown first, then
    one confirmation, then each platform's own way (Deployer.rollback)."""
    report = reporter(fmt, stdout, stderr)
    stdin, stderr = stdin or sys.stdin, report.stderr
    environ = os.environ if environ is None else environ
    steps = make_steps(select_units(file, output, stage, agents), target)
    if to is not None and len(steps) > 1:
        raise UsageError(f"--to names one platform's version: choose the target and agent with --target and "
                         f"--agent ({', '.join(step.label for step in steps)})")
    pool = start(steps, stderr, fail_fast=len(steps) == 1, environ=environ, **options)
    picked: dict[int, tuple[Version | None, Version]] = {}

    def read(step: Step) -> None:
        step.snapshot = step.deployer.history()
        picked[id(step)] = choose(step.snapshot, to, f"{step.deployer.agent.name} on {step.deployer.title}")

    each(pool, steps, read)
    changing = []
    for step in steps:
        if step.error is not None:
            continue
        live, wanted = picked[id(step)]
        kind = step.snapshot.kind
        if live is not None and live.id == wanted.id:
            report.display(f"{step.label}: {kind} {wanted.id} is already live: nothing to roll back.")
            continue
        report.display(f"{step.label}: roll back {step.deployer.agent.name} on {step.deployer.title}: live "
                       f"{kind} {live.id if live else '(none)'} -> {wanted.id}")
        changing.append(step)
    if changing:
        confirm(f"Make these versions live on {', '.join(s.deployer.title for s in changing)}?", yes, stdin,
                 stderr, environ)

    def apply(step: Step) -> None:
        live, wanted = picked[id(step)]
        step.outputs = {"from": live.id if live else None, "to": wanted.id, "kind": step.snapshot.kind,
                        **step.deployer.rollback(step.snapshot, wanted)}

    each(pool, changing, apply, changing=True)
    lines = [f"Rolled back {step.label}: {step.outputs['kind']} {step.outputs['to']} is live (was "
             f"{step.outputs['from']}); `agenthost deploy` makes agent.yaml live again" for step in changing
             if step.error is None]

    def value(step: Step) -> dict[str, Any]:
        if step.outputs:
            return step.outputs
        live, _ = picked[id(step)]
        return {"from": live.id if live else None, "to": live.id if live else None, "kind": step.snapshot.kind,
                "changed": False}

    show_result(report, lines, per_step_json(steps, target, value))
    return report_failures(steps, "rollback", report)
