"""plan / deploy / destroy / info: load and render agent.yaml, then drive a cloud's Deployer.

Cloud-independent: a Deployer (see framework/platforms/aws/api.py) prepares the desired state, reads the deployed
state, plans, applies; framework/deploy/run.py runs the steps (unit × target) in parallel. Results go through a
reporter (framework/report.py) on the given streams; errors are raised as FrameworkError and shown once by cli.main().
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from framework.deploy.plan import (
    CREATE,
    DELETE,
    UPDATE,
    PlanSection,
    format_markdown,
    format_text,
    totals,
)
from framework.deploy.run import (
    Pool,
    Step,
    apply_plan,
    confirm,
    each,
    make_steps,
    per_step_json,
    report_failures,
    select_units,
    show_result,
    start,
)
from framework.errors import ExitCode, FrameworkError
from framework.platforms import registry
from framework.project import Unit
from framework.report import reporter


def _planned(units: list[Unit], target: str | None, stderr: TextIO, destroy: bool,
             fail_fast: bool = False, **options: Any) -> tuple[list[Step], Pool]:
    """Every unit's targets read and planned, in parallel; one that fails to plan is recorded, the
    others go on (unless fail_fast, or one target of one agent was asked for)."""
    steps = make_steps(units, target)
    pool = start(steps, stderr, fail_fast=fail_fast or len(steps) == 1 and target is not None, **options)

    def read(step: Step) -> None:
        if destroy:
            step.result = step.deployer.destroy_plan(step.deployer.snapshot(destroy=True))
        else:
            step.deployer.prepare()
            step.snapshot = step.deployer.snapshot()
            step.result = step.deployer.plan(step.snapshot)

    each(pool, steps, read)
    return steps, pool


def _plans_text(steps: list[Step], verb: str = "deploy") -> str:
    texts = [format_text(step.plan, verb=verb) for step in steps if step.plan is not None]
    if len(texts) > 1:
        all_ = totals([step.plan for step in steps])
        texts.append(f"All targets: {all_[CREATE]} to create, {all_[UPDATE]} to update, {all_[DELETE]} to delete.")
    return "\n\n".join(texts)


def plan(file: str | Sequence[str], target: str | None, output: str, fmt: str, *, stage: str | None = None,
         agents: Sequence[str] = (), stdout: TextIO | None = None, stderr: TextIO | None = None,
         **options: Any) -> ExitCode:
    """Print the change set of every deployable target (or --target) of every agent, at the stage: OK
    when there is nothing to change, CHANGES_PENDING when there is (cli.py declares these as plan's
    results, so an error never exits with CHANGES_PENDING's number). markdown: for a pull request."""
    report = reporter("text" if fmt == "markdown" else fmt, stdout, stderr)
    steps, _ = _planned(select_units(file, output, stage, agents), target, report.stderr, destroy=False, **options)
    if fmt == "markdown":
        report.display(format_markdown([PlanSection(step.unit.agent, step.unit.stage, step.plan,
                                                    f"{step.target}: {step.error}" if step.error else None)
                                        for step in steps]))
    else:
        show_result(report, [_plans_text(steps)], per_step_json(steps, target, lambda step: step.plan.to_dict()))
    if report_failures(steps, "plan", report):
        return ExitCode.FAILED
    return ExitCode.CHANGES_PENDING if any(step.plan.has_changes for step in steps) else ExitCode.OK


def deploy(file: str | Sequence[str], target: str | None, output: str, fmt: str, yes: bool, *,
           stage: str | None = None, agents: Sequence[str] = (), stdin: TextIO | None = None,
           stdout: TextIO | None = None, stderr: TextIO | None = None, environ: Mapping[str, str] | None = None,
           fail_fast: bool = False, **options: Any) -> ExitCode:
    """Plan every target, confirm once, apply the targets in parallel: a failing target does not stop
    the others (unless fail_fast); the exit code is FAILED when any failed, naming them."""
    report = reporter(fmt, stdout, stderr)
    stdin, stderr = stdin or sys.stdin, report.stderr
    environ = os.environ if environ is None else environ
    steps, pool = _planned(select_units(file, output, stage, agents), target, stderr, destroy=False,
                           fail_fast=fail_fast, environ=environ, **options)
    report.display(_plans_text(steps))
    for step in steps:
        if step.error is None and step.plan.has_changes:
            try:
                with step.deployer.errors():
                    step.deployer.preflight(step.result)
            except FrameworkError as error:
                if pool.fail_fast:
                    raise
                step.error = error
    changing = [step for step in steps if step.error is None and step.plan.has_changes]
    if changing:
        where = ", ".join(step.deployer.title for step in changing)
        confirm(f"Apply these changes to {where}?", yes, stdin, stderr, environ)

    def apply(step: Step) -> None:
        results = apply_plan(step, pool) if step.plan.has_changes else {}
        step.outputs = {**step.deployer.outputs(step.snapshot, results), "changed": step.plan.has_changes}

    each(pool, steps, apply, changing=bool(changing))
    done = [step for step in steps if step.error is None]
    lines = []
    for step in done:
        verb = "Deployed" if step.outputs["changed"] else "Up to date:"
        lines += [f"{verb} {step.outputs['summary']}", f"URL: {step.outputs['url']}"]
    data = per_step_json(steps, target, lambda step: step.outputs)
    show_result(report, lines, data)
    return report_failures(steps, "deploy", report)


def destroy(file: str | Sequence[str], target: str | None, output: str, fmt: str, yes: bool, *,
            stage: str | None = None, agents: Sequence[str] = (), stdin: TextIO | None = None,
            stdout: TextIO | None = None, stderr: TextIO | None = None, environ: Mapping[str, str] | None = None,
            fail_fast: bool = False, **options: Any) -> ExitCode:
    """Plan the deletion of every target's resources, confirm once, delete the targets in parallel."""
    report = reporter(fmt, stdout, stderr)
    stdin, stderr = stdin or sys.stdin, report.stderr
    environ = os.environ if environ is None else environ
    steps, pool = _planned(select_units(file, output, stage, agents), target, stderr, destroy=True, fail_fast=fail_fast,
                           environ=environ, **options)
    for step in steps:
        if step.error is None:
            plan_ = step.plan
            report.display(format_text(plan_, verb="destroy") if plan_.resources or plan_.notes else
                           f"Nothing to destroy: no resource of {step.deployer.agent.name} on {step.deployer.title}.")
    changing = [step for step in steps if step.error is None and step.plan.has_changes]
    if changing:
        where = ", ".join(step.deployer.title for step in changing)
        confirm(f"Delete these resources from {where}?", yes, stdin, stderr, environ)

    each(pool, changing, lambda step: apply_plan(step, pool), changing=True)

    def destroyed(step: Step) -> dict[str, Any]:
        return {"destroyed": [f"{r.kind} {r.name}" for r in step.plan.resources],
                "left_alone": list(step.plan.notes)}

    lines = [f"Destroyed {step.deployer.agent.name} on {step.deployer.title}."
             for step in changing if step.error is None]
    show_result(report, lines, per_step_json(steps, target, destroyed))
    return report_failures(steps, "destroy", report)


def info(file: str | Sequence[str], target: str | None, output: str, fmt: str, *, stage: str | None = None,
         agents: Sequence[str] = (), stdout: TextIO | None = None, stderr: TextIO | None = None,
         **options: Any) -> ExitCode:
    """What is deployed, per agent and target (read in parallel): a target that cannot be read is named
    and does not hide the others; the exit code is FAILED when any could not be read."""
    report = reporter(fmt, stdout, stderr)
    units = select_units(file, output, stage, agents)
    several = len(units) > 1
    rows: list[tuple[Unit, dict[str, Any] | Step]] = []  # in agent.yaml's order: a row, or the step reading one
    for unit in units:
        if target is not None:
            unit.require_target(target)
        for name in (t.name for t in unit.validated.agent.targets):
            if target is None or name == target:
                rows.append((unit, Step(unit, name, several) if name in registry.deployable() else
                             {"target": name, "deployed": None, "note": "deploy not built yet for this target"}))
    steps = [row for _, row in rows if isinstance(row, Step)]
    pool = start(steps, report.stderr, **options)
    each(pool, steps, lambda step: setattr(step, "outputs", step.deployer.info()))
    reports = [(unit, row if isinstance(row, dict) else
                {"target": row.target, "error": str(row.error)} if row.error is not None else row.outputs)
               for unit, row in rows]
    lines = []
    for unit, row in reports:
        name = f"{unit.validated.agent.name}/{row['target']}" if several else row["target"]
        if "error" in row:
            continue
        if not row.get("deployed"):
            lines.append(f"{name}: {row.get('note', 'not deployed')}")
            continue
        lines += [f"{name}: {row['summary']}", f"  {'url:':<12} {row['url']}"]
        lines += [f"  {label + ':':<12} {value}" for label, value in row.get("details", {}).items()]
    if several:
        data: Any = {"agents": {}}
        for unit, row in reports:
            data["agents"].setdefault(unit.validated.agent.name, []).append(row)
    else:
        data = [row for _, row in reports]
    show_result(report, lines, data)
    return report_failures(steps, "info", report)
