"""plan / deploy / destroy / info: load and render agent.yaml, then drive a cloud's Deployer.

Cloud-independent: a Deployer (see aws_api.Deployer) prepares the desired state, reads the deployed
state, plans, applies. Output goes to the given streams; errors are raised as FrameworkError and
printed once by cli.main().
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from framework.deploy import DEPLOYERS, deployer_module
from framework.deploy.plan import Operation, Plan, Resource, format_json, format_text
from framework.errors import Cancelled, ConfirmationRequired, DeployError, UsageError

PLAN_NO_CHANGES, PLAN_CHANGES = 0, 2


def _load(file: str, target: str | None, output: str):
    from framework.build import render_all
    from framework.config.validate import validate_file
    from framework.writer import differences, read_manifest

    validated = validate_file(file)
    agent = validated.agent
    listed = [t.name for t in agent.targets]
    if target is None:
        deployable = [name for name in listed if name in DEPLOYERS]
        if not deployable:
            raise DeployError(f"agent.yaml lists {', '.join(listed)}; the framework deploys only to "
                              f"{', '.join(DEPLOYERS)} so far: deploy generated/<target>/ with the platform's tool")
        target = deployable[0]
    elif target not in listed:
        raise UsageError(f"target {target!r} is not in agent.yaml (it lists: {', '.join(listed)})")
    elif target not in DEPLOYERS:
        raise DeployError(f"deploying to {target} is not built yet (only {', '.join(DEPLOYERS)}): deploy "
                          f"generated/{target}/ with the platform's own tool (see README)")
    out = Path(output)
    build = render_all(validated, only=target, previous=read_manifest(out))
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
    return deployer_module(settings.name).Deployer(agent, settings, files, **options)


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


def plan(file: str, target: str | None, output: str, fmt: str, *, stdout: TextIO = sys.stdout,
         stderr: TextIO = sys.stderr, **options: Any) -> int:
    deployer = make_deployer(file, target, output, stderr, **options)
    with deployer.errors():
        deployer.prepare()
        result = deployer.plan(deployer.snapshot())
    print(format_json(result.plan) if fmt == "json" else format_text(result.plan), file=stdout)
    return PLAN_CHANGES if result.plan.has_changes else PLAN_NO_CHANGES


def deploy(file: str, target: str | None, output: str, fmt: str, yes: bool, *, stdin: TextIO = sys.stdin,
           stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr, environ: Mapping[str, str] | None = None,
           **options: Any) -> int:
    environ = os.environ if environ is None else environ
    deployer = make_deployer(file, target, output, stderr, environ=environ, **options)
    shown = stderr if fmt == "json" else stdout
    with deployer.errors():
        deployer.prepare()
        snap = deployer.snapshot()
        result = deployer.plan(snap)
        print(format_text(result.plan), file=shown, flush=True)
        results: dict[str, Any] = {}
        if result.plan.has_changes:
            deployer.preflight(result)
            _confirm(f"Apply these changes to {deployer.title}?", yes, stdin, stderr, environ)
            results = _apply(deployer, result.plan, stderr)
        outputs = deployer.outputs(snap, results)
    outputs["changed"] = result.plan.has_changes
    if fmt == "json":
        print(json.dumps(outputs, indent=2, sort_keys=True), file=stdout)
    else:
        verb = "Deployed" if result.plan.has_changes else "Up to date:"
        print(f"{verb} {outputs['function']} version {outputs['version']} (alias {outputs['alias']})", file=stdout)
        print(f"URL: {outputs['url']}", file=stdout)
    return 0


def destroy(file: str, target: str | None, output: str, fmt: str, yes: bool, *, stdin: TextIO = sys.stdin,
            stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr, environ: Mapping[str, str] | None = None,
            **options: Any) -> int:
    environ = os.environ if environ is None else environ
    deployer = make_deployer(file, target, output, stderr, environ=environ, **options)
    shown = stderr if fmt == "json" else stdout
    with deployer.errors():
        plan_ = deployer.destroy_plan(deployer.snapshot(destroy=True))
        print(format_text(plan_, verb="destroy") if plan_.resources or plan_.notes else
              f"Nothing to destroy: no resource of {deployer.agent.name} on {deployer.title}.", file=shown)
        if plan_.has_changes:
            _confirm(f"Delete these resources from {deployer.title}?", yes, stdin, stderr, environ)
            _apply(deployer, plan_, stderr)
    if fmt == "json":
        print(json.dumps({"destroyed": [f"{r.kind} {r.name}" for r in plan_.resources],
                          "left_alone": list(plan_.notes)}, indent=2, sort_keys=True), file=stdout)
    elif plan_.has_changes:
        print(f"Destroyed {deployer.agent.name} on {deployer.title}.", file=stdout)
    return 0


def info(file: str, target: str | None, output: str, fmt: str, *, stdout: TextIO = sys.stdout,
         stderr: TextIO = sys.stderr, **options: Any) -> int:
    from framework.config.validate import validate_file

    agent = validate_file(file).agent
    reports = []
    for settings in agent.targets:
        if target is not None and settings.name != target:
            continue
        if settings.name not in DEPLOYERS:
            reports.append({"target": settings.name, "deployed": None, "note": "deploy not built yet for this target"})
            continue
        deployer = make_deployer(file, settings.name, output, stderr, **options)
        with deployer.errors():
            reports.append(deployer.info())
    if fmt == "json":
        print(json.dumps(reports, indent=2, sort_keys=True), file=stdout)
        return 0
    for report in reports:
        if not report.get("deployed"):
            print(f"{report['target']}: {report.get('note', 'not deployed')}", file=stdout)
            continue
        print(f"{report['target']}: {report['function']} version {report['version']} (alias {report['alias']}) "
              f"in {report['region']}", file=stdout)
        print(f"  url:         {report['url']} (auth {report['auth']})", file=stdout)
        print(f"  function:    {report['function_arn']}", file=stdout)
        print(f"  code:        {report['code_sha256']} (content {str(report['content'])[:12]})", file=stdout)
        print(f"  settings:    {report['runtime']} {report['architecture']}, timeout {report['timeout']} s, "
              f"memory {report['memory']} MB, concurrency max {report['reserved_concurrency']} "
              f"warm {report['provisioned_concurrency']}", file=stdout)
    return 0
