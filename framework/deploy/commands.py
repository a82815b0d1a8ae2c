"""plan / deploy / destroy / info: load and render agent.yaml, then drive a cloud's Deployer.

Cloud-independent: a Deployer (see framework/platforms/aws/api.py) prepares the desired state, reads the deployed
state, plans, applies. Output goes to the given streams; errors are raised as FrameworkError and
printed once by cli.main().
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from framework.deploy.plan import CREATE, DELETE, UPDATE, Operation, Plan, Resource, format_json, format_text
from framework.errors import Cancelled, ConfirmationRequired, DeployError, FrameworkError, UsageError
from framework.platforms import registry

PLAN_NO_CHANGES, PLAN_CHANGES = 0, 2


def _nothing_deployable(listed: list[str]) -> DeployError:
    return DeployError(f"agent.yaml lists {', '.join(listed)}; the framework deploys only to "
                       f"{', '.join(registry.deployable())} so far: deploy generated/<target>/ with the "
                       "platform's tool")


def _load(file: str, target: str | None, output: str):
    from framework.build import render_all
    from framework.config.validate import validate_file
    from framework.writer import differences

    validated = validate_file(file)
    agent = validated.agent
    listed = [t.name for t in agent.targets]
    if target is None:
        deployable = [name for name in listed if name in registry.deployable()]
        if not deployable:
            raise _nothing_deployable(listed)
        target = deployable[0]
    elif target not in listed:
        raise UsageError(f"target {target!r} is not in agent.yaml (it lists: {', '.join(listed)})")
    elif target not in registry.deployable():
        raise DeployError(f"deploying to {target} is not built yet (only {', '.join(registry.deployable())}): deploy "
                          f"generated/{target}/ with the platform's own tool (see README)")
    out = Path(output)
    build = render_all(validated, only=target)
    stale = []
    if (out / target).is_dir():
        stale = [d for d in differences(build, out, full=False) if d.split()[-1].startswith(f"{target}/")]
    return agent, agent.target(target), build.targets[target], stale, validated.warnings


def make_deployer(file: str, target: str | None, output: str, stderr: TextIO, **options: Any):
    agent, settings, files, stale, warnings = _load(file, target, output)
    if warnings:
        from framework.config.report import format_problems
        print(format_problems(list(warnings), "text"), file=stderr)
    if stale:
        listed = "; ".join(" ".join(d.split()) for d in stale)
        print(f"warning: {output}/{settings.name}/ is out of date with {file} ({listed}); "
              f"deploying what {file} says. Run `python -m framework build` and commit {output}/ so reviewers "
              "see the deployed code.", file=stderr)
    factory = registry.get(settings.name).deployer
    assert factory is not None  # _load admits deployable targets only
    return factory(agent, settings, files, stderr=stderr, **options)


def _confirm(question: str, yes: bool, stdin: TextIO, stderr: TextIO, environ: Mapping[str, str]) -> None:
    if yes:
        return
    if environ.get("CI"):
        raise ConfirmationRequired("running in CI (CI is set), where nobody can answer: pass --yes to apply")
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        raise ConfirmationRequired("no terminal to ask for confirmation on: pass --yes to apply")
    print(f"{question} [y/N] ", end="", file=stderr, flush=True)
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise Cancelled("cancelled; nothing was changed")


def _progress(stderr: TextIO):
    def show(event: str, index: int, total: int, resource: Resource, op: Operation) -> None:
        if event == "start":
            print(f"  [{index}/{total}] {op.api or op.kind:<34} {resource.kind} {resource.name} ...",
                  end="", file=stderr, flush=True)
        else:
            print(" ok", file=stderr, flush=True)
    return show


def _apply(deployer, plan: Plan, stderr: TextIO) -> dict[str, Any]:
    try:
        return deployer.apply(plan, _progress(stderr))
    except KeyboardInterrupt:
        print("\ninterrupted: what was done stays done; run the same command again to finish", file=stderr)
        raise
    except BaseException:
        print(" failed", file=stderr)
        raise


def _streams(stdin: TextIO | None, stdout: TextIO | None, stderr: TextIO | None) -> tuple[TextIO, TextIO, TextIO]:
    """The given streams, else the process's, looked up at call time (tests and callers swap them)."""
    return stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr


def _targets(file: str, target: str | None) -> list[str]:
    """The targets to work on: the one asked for, else every deployable target agent.yaml lists."""
    if target is not None:
        return [target]
    from framework.config.validate import validate_file

    listed = [t.name for t in validate_file(file).agent.targets]
    deployable = [name for name in listed if name in registry.deployable()]
    if not deployable:
        raise _nothing_deployable(listed)
    return deployable


@contextmanager
def _guarded(deployer):
    """The deployer's own error translation, and then no secret value in any error's text."""
    try:
        with deployer.errors():
            yield
    except FrameworkError as error:
        secrets = getattr(deployer, "secrets", None)
        if secrets is None:
            raise
        scrubbed = secrets.redact(str(error))
        if scrubbed == str(error):
            raise
        raise type(error)(scrubbed) from None


@dataclass
class _Step:
    """One target's part of a multi-target run: its deployer, plan and outcome."""

    target: str
    deployer: Any = None
    result: Any = None  # the planner's result (deploy) or the Plan (destroy)
    snapshot: Any = None
    error: FrameworkError | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def plan(self) -> Plan | None:
        return getattr(self.result, "plan", self.result)


def _planned(file: str, target: str | None, output: str, stderr: TextIO, destroy: bool,
             fail_fast: bool = False, **options: Any) -> list[_Step]:
    """Read and plan every target; a target that fails to plan is recorded, the others go on."""
    steps = []
    for name in _targets(file, target):
        step = _Step(name)
        steps.append(step)
        try:
            step.deployer = make_deployer(file, name, output, stderr, **options)
            with _guarded(step.deployer):
                if destroy:
                    step.result = step.deployer.destroy_plan(step.deployer.snapshot(destroy=True))
                else:
                    step.deployer.prepare()
                    step.snapshot = step.deployer.snapshot()
                    step.result = step.deployer.plan(step.snapshot)
        except FrameworkError as error:
            if target is not None or fail_fast:
                raise
            step.error = error
    return steps


def _per_target(steps: list[_Step], value) -> dict[str, Any]:
    """The JSON of a run over several targets: {"targets": {name: value, or {"error": ...}}}."""
    return {"targets": {step.target: ({"error": str(step.error)} if step.error is not None else value(step))
                        for step in steps}}


def _report_failures(steps: list[_Step], verb: str, stderr: TextIO) -> int:
    failed = [step for step in steps if step.error is not None]
    for step in failed:
        print(f"error: {step.target}: {step.error}", file=stderr)
    if failed:
        names = ", ".join(step.target for step in failed)
        print(f"{verb} failed for: {names}", file=stderr)
        return 1
    return 0


def _plans_text(steps: list[_Step], verb: str = "deploy") -> str:
    texts = [format_text(step.plan, verb=verb) for step in steps if step.plan is not None]
    if len(texts) > 1:
        totals = {CREATE: 0, UPDATE: 0, DELETE: 0}
        for step in steps:
            if step.plan is not None:
                for action, count in step.plan.counts().items():
                    if action in totals:
                        totals[action] += count
        texts.append(f"All targets: {totals[CREATE]} to create, {totals[UPDATE]} to update, "
                     f"{totals[DELETE]} to delete.")
    return "\n\n".join(texts)


def plan(file: str, target: str | None, output: str, fmt: str, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None, **options: Any) -> int:
    """Print the change set of one target (--target) or of every deployable target."""
    _, stdout, stderr = _streams(None, stdout, stderr)
    steps = _planned(file, target, output, stderr, destroy=False, **options)
    if fmt == "json":
        if target is not None:
            print(format_json(steps[0].plan), file=stdout)
        else:
            print(json.dumps(_per_target(steps, lambda step: step.plan.to_dict()), indent=2, sort_keys=True),
                  file=stdout)
    else:
        print(_plans_text(steps), file=stdout)
    if _report_failures(steps, "plan", stderr):
        return 1
    return PLAN_CHANGES if any(step.plan.has_changes for step in steps) else PLAN_NO_CHANGES


def deploy(file: str, target: str | None, output: str, fmt: str, yes: bool, *, stdin: TextIO | None = None,
           stdout: TextIO | None = None, stderr: TextIO | None = None, environ: Mapping[str, str] | None = None,
           fail_fast: bool = False, **options: Any) -> int:
    """Plan every target, confirm once, apply target by target: a failing target does not stop the
    others (unless fail_fast); the exit code is 1 when any failed, naming them."""
    stdin, stdout, stderr = _streams(stdin, stdout, stderr)
    environ = os.environ if environ is None else environ
    steps = _planned(file, target, output, stderr, destroy=False, fail_fast=fail_fast, environ=environ, **options)
    shown = stderr if fmt == "json" else stdout
    print(_plans_text(steps), file=shown, flush=True)
    for step in steps:
        if step.error is None and step.plan.has_changes:
            try:
                with _guarded(step.deployer):
                    step.deployer.preflight(step.result)
            except FrameworkError as error:
                if fail_fast or target is not None:
                    raise
                step.error = error
    changing = [step for step in steps if step.error is None and step.plan.has_changes]
    if changing:
        where = ", ".join(step.deployer.title for step in changing)
        _confirm(f"Apply these changes to {where}?", yes, stdin, stderr, environ)
    for step in steps:
        if step.error is not None:
            continue
        if len(steps) > 1:
            print(f"{step.deployer.title}:", file=stderr, flush=True)
        try:
            with _guarded(step.deployer):
                results = _apply(step.deployer, step.plan, stderr) if step.plan.has_changes else {}
                step.outputs = {**step.deployer.outputs(step.snapshot, results), "changed": step.plan.has_changes}
        except FrameworkError as error:
            if fail_fast or target is not None:
                raise
            step.error = error
    done = [step for step in steps if step.error is None]
    if fmt == "json":
        data = done[0].outputs if target is not None else _per_target(steps, lambda step: step.outputs)
        print(json.dumps(data, indent=2, sort_keys=True), file=stdout)
    else:
        for step in done:
            verb = "Deployed" if step.outputs["changed"] else "Up to date:"
            print(f"{verb} {step.outputs['summary']}", file=stdout)
            print(f"URL: {step.outputs['url']}", file=stdout)
    return _report_failures(steps, "deploy", stderr)


def destroy(file: str, target: str | None, output: str, fmt: str, yes: bool, *, stdin: TextIO | None = None,
            stdout: TextIO | None = None, stderr: TextIO | None = None, environ: Mapping[str, str] | None = None,
            fail_fast: bool = False, **options: Any) -> int:
    stdin, stdout, stderr = _streams(stdin, stdout, stderr)
    environ = os.environ if environ is None else environ
    steps = _planned(file, target, output, stderr, destroy=True, fail_fast=fail_fast, environ=environ, **options)
    shown = stderr if fmt == "json" else stdout
    for step in steps:
        if step.error is None:
            plan_ = step.plan
            print(format_text(plan_, verb="destroy") if plan_.resources or plan_.notes else
                  f"Nothing to destroy: no resource of {step.deployer.agent.name} on {step.deployer.title}.",
                  file=shown)
    changing = [step for step in steps if step.error is None and step.plan.has_changes]
    if changing:
        where = ", ".join(step.deployer.title for step in changing)
        _confirm(f"Delete these resources from {where}?", yes, stdin, stderr, environ)
    for step in changing:
        try:
            with _guarded(step.deployer):
                _apply(step.deployer, step.plan, stderr)
        except FrameworkError as error:
            if fail_fast or target is not None:
                raise
            step.error = error
    if fmt == "json":
        def report(step: _Step) -> dict[str, Any]:
            return {"destroyed": [f"{r.kind} {r.name}" for r in step.plan.resources],
                    "left_alone": list(step.plan.notes)}
        data = report(steps[0]) if target is not None else _per_target(steps, report)
        print(json.dumps(data, indent=2, sort_keys=True), file=stdout)
    else:
        for step in changing:
            if step.error is None:
                print(f"Destroyed {step.deployer.agent.name} on {step.deployer.title}.", file=stdout)
    return _report_failures(steps, "destroy", stderr)


def info(file: str, target: str | None, output: str, fmt: str, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None, **options: Any) -> int:
    """What is deployed, per target: a target that cannot be read is named and does not hide the
    others; the exit code is 1 when any could not be read."""
    _, stdout, stderr = _streams(None, stdout, stderr)
    from framework.config.validate import validate_file

    agent = validate_file(file).agent
    listed = [t.name for t in agent.targets]
    if target is not None and target not in listed:
        raise UsageError(f"target {target!r} is not in agent.yaml (it lists: {', '.join(listed)})")
    reports: list[dict[str, Any]] = []
    steps = []
    for name in listed:
        if target is not None and name != target:
            continue
        if name not in registry.deployable():
            reports.append({"target": name, "deployed": None, "note": "deploy not built yet for this target"})
            continue
        step = _Step(name)
        steps.append(step)
        try:
            step.deployer = make_deployer(file, name, output, stderr, **options)
            with _guarded(step.deployer):
                reports.append(step.deployer.info())
        except FrameworkError as error:
            step.error = error
            reports.append({"target": name, "error": str(error)})
    if fmt == "json":
        print(json.dumps(reports, indent=2, sort_keys=True), file=stdout)
    else:
        for report in reports:
            if "error" in report:
                continue
            if not report.get("deployed"):
                print(f"{report['target']}: {report.get('note', 'not deployed')}", file=stdout)
                continue
            print(f"{report['target']}: {report['summary']}", file=stdout)
            print(f"  {'url:':<12} {report['url']}", file=stdout)
            for label, value in report.get("details", {}).items():
                print(f"  {label + ':':<12} {value}", file=stdout)
    return _report_failures(steps, "info", stderr)
