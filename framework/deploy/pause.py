"""pause / resume: the kill switch. Every new request is refused at the platform (resume lets them in
again), nothing is deleted: AWS reserved concurrency 0, Google ingress internal-only, Azure app stopped,
Vercel project paused (each platform's Deployer.pause_plan says how, and cites the docs).

Driven like deploy (framework/deploy/commands.py): the selected units × targets, each read in
parallel, one line per target saying what will be done, one confirmation, then applied in parallel.
A target already paused (or running) says so and makes no call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from framework.deploy import run
from framework.deploy.skeleton import DeployPlan
from framework.errors import ExitCode
from framework.report import reporter


def _calls(step: run.Step) -> list[str]:
    return [op.api or op.kind for op in step.plan.operations] if step.plan is not None else []


def _line(step: run.Step, resume: bool) -> str:
    """One target's intent: the calls it takes, or that it already is so."""
    plan = step.plan
    assert plan is not None
    if not plan.has_changes:
        return f"{step.label}: already {'running' if resume else 'paused'}: {plan.title}; nothing to do"
    verb = "resume" if resume else "pause"
    return f"{step.label}: {verb} {plan.title}: {', '.join(_calls(step))}"


def pause(file: str | Sequence[str], target: str | None, output: str, fmt: str, yes: bool, *,
          resume: bool = False, stage: str | None = None, agents: Sequence[str] = (),
          stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None,
          environ: Mapping[str, str] | None = None, fail_fast: bool = False, **options: Any) -> ExitCode:
    """Pause (resume: resume) every selected deployed agent on every target: read, say, confirm, apply."""
    report = reporter(fmt, stdout, stderr)
    stdin, stderr = stdin or sys.stdin, report.stderr
    environ = os.environ if environ is None else environ
    steps = run.make_steps(run.select_units(file, output, stage, agents), target)
    pool = run.start(steps, stderr, fail_fast=fail_fast or len(steps) == 1 and target is not None,
                     environ=environ, **options)
    run.each(pool, steps, lambda step: setattr(step, "result", DeployPlan(step.deployer.pause_plan(resume))))
    report.display("\n".join(_line(step, resume) for step in steps if step.error is None))
    changing = [step for step in steps if step.error is None and step.plan.has_changes]
    if changing:
        where = ", ".join(step.deployer.title for step in changing)
        question = (f"Let requests in again on {where}?" if resume else
                    f"Refuse every new request on {where} (nothing is deleted)?")
        run.confirm(question, yes, stdin, stderr, environ)

    run.each(pool, changing, lambda step: run.apply_plan(step, pool), changing=True)
    state = "running" if resume else "paused"
    lines = []
    for step in steps:
        if step.error is None:
            done = "Resumed" if resume else "Paused"
            lines.append(f"{done} {step.plan.title}." if step.plan.has_changes else
                         f"Already {state}: {step.plan.title}.")
    data = run.per_step_json(steps, target, lambda step: {"paused": not resume, "changed": step.plan.has_changes,
                                                       "calls": _calls(step), "title": step.plan.title})
    run.show_result(report, lines, data)
    return run.report_failures(steps, "resume" if resume else "pause", report)
