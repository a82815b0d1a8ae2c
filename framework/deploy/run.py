"""How the deploy stage's commands run: one step per unit (agent × stage) and target, each with its
Deployer, read, planned and applied by a bounded pool of threads (a cloud's answers are waits), their
lines on stderr whole and prefixed, one confirmation for all, every failure named at the end.

plan / deploy / destroy / info (deploy/commands.py) and the day-two commands (pause.py, history.py,
logs.py, remote.py) are built from these parts.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from framework.deploy.plan import Operation, Plan, Resource
from framework.deploy.skeleton import DeployOptions, DeployPlan
from framework.errors import Cancelled, ConfirmationRequired, DeployError, ExitCode, FrameworkError
from framework.platforms import registry
from framework.platforms.base import Deployer
from framework.project import Unit
from framework.report import TextReporter


def nothing_deployable(listed: list[str]) -> DeployError:
    return DeployError(f"agent.yaml lists {', '.join(listed)}; the framework deploys only to "
                       f"{', '.join(registry.deployable())} so far: deploy generated/<target>/ with the "
                       "platform's tool")


def select_units(file: str | Sequence[str], output: str, stage: str | None, agents: Sequence[str]) -> list[Unit]:
    """The (agent, stage) units of a run: one file as before, or the files the CLI found."""
    from framework import project

    return project.units([file] if isinstance(file, str) else list(file), output, agents, stage)


def _load(unit: Unit, target: str):
    from framework.build import render_all
    from framework.writer import differences

    agent = unit.validated.agent
    unit.require_target(target)
    if target not in registry.deployable():
        raise DeployError(f"deploying to {target} is not built yet (only {', '.join(registry.deployable())}): deploy "
                          f"generated/{target}/ with the platform's own tool (see README)")
    build = render_all(unit.validated, only=target)
    stale = []
    if (unit.output / target).is_dir():
        stale = [d for d in differences(build, unit.output) if d.split()[-1].startswith(f"{target}/")]
    return agent, agent.target(target), build.targets[target], stale, unit.validated.warnings


def make_deployer(unit: Unit, target: str, stderr: TextIO, **options: Any) -> Deployer:
    """The target's Deployer for the unit's agent as agent.yaml says now; `options` are DeployOptions' fields."""
    agent, settings, files, stale, warnings = _load(unit, target)
    TextReporter(stderr=stderr).warnings(list(warnings))  # for the person reading stderr, whatever the format
    if stale:
        listed = "; ".join(" ".join(d.split()) for d in stale)
        print(f"warning: {unit.output}/{settings.name}/ is out of date with {unit.file} ({listed}); "
              f"deploying what {unit.file} says. Run `agenthost build` and commit {unit.root}/ so reviewers "
              "see the deployed code.", file=stderr)
    factory = registry.get(settings.name).deployer
    assert factory is not None  # _load admits deployable targets only
    return factory(agent, settings, files, DeployOptions(stderr=stderr, **options))


def confirm(question: str, yes: bool, stdin: TextIO, stderr: TextIO, environ: Mapping[str, str]) -> None:
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


def show_result(report: TextReporter, lines: list[str], data: Any) -> None:
    """A deploy-stage result: its JSON has sorted keys and is ASCII, as it always was."""
    report.result(lines, data, sort_keys=True, ensure_ascii=True)


def deployable_targets(unit: Unit, target: str | None) -> list[str]:
    """The targets to work on: the one asked for, else every deployable target agent.yaml lists."""
    if target is not None:
        return [target]
    listed = [t.name for t in unit.validated.agent.targets]
    deployable = [name for name in listed if name in registry.deployable()]
    if not deployable:
        raise nothing_deployable(listed)
    return deployable


@dataclass
class Step:
    """One unit of a run over several targets: its deployer, plan and outcome. The parallel machinery
    (Pool, Console) knows a step only by its `label` and `error`."""

    unit: Unit
    target: str
    several: bool = False  # one of a run over several agents or stages: its lines name its agent
    deployer: Any = None  # a Deployer, once made
    result: DeployPlan | None = None
    snapshot: Any = None  # the platform's own snapshot type
    error: FrameworkError | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What prefixes the step's lines on stderr (and names it in errors)."""
        return f"{self.unit.validated.agent.name}/{self.target}" if self.several else self.target

    @property
    def plan(self) -> Plan | None:
        return self.result.plan if self.result is not None else None


WORKERS = 4  # steps at once: each mostly waits on its cloud's answers, so a few threads cost little
INTERRUPTED = "interrupted: what was done stays done; run the same command again to finish"


class Console:
    """The one writer of every step's lines on stderr: each line whole, under one lock, prefixed by
    its step's label (padded to the longest), so steps running at once stay readable."""

    def __init__(self, stream: TextIO, labels: Sequence[str]):
        self.stream = stream
        self.width = max(map(len, labels), default=0)
        self.lock = threading.RLock()  # also held around a check and its line (see Progress)

    def line(self, label: str, text: str) -> None:
        with self.lock:
            print(f"{label:<{self.width}}  {text}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        with self.lock:
            print(text, file=self.stream, flush=True)


class StepStream(io.TextIOBase):
    """A step's stderr as its deployer sees it (warnings, retries): text is held until its newline
    (or a flush), then written through the console as a whole line with the step's label."""

    def __init__(self, console: Console, label: str):
        super().__init__()
        self.console, self.label, self.pending = console, label, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.console.line(self.label, line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self.console.line(self.label, text)


class Stopped(KeyboardInterrupt):
    """Raised in a worker before its next operation once Ctrl-C was pressed (a KeyboardInterrupt, so
    that no `except Exception` on the way swallows it)."""


class Pool:
    """Runs `work(step)` for steps in their order, at most WORKERS at a time (a single step runs in
    the calling thread).

    A step whose work raises a FrameworkError keeps it as its error and the others go on. With
    fail_fast, the first error stops the launching of steps not started yet; those in flight finish
    their work (a target is never left half-way because another failed), then that error is raised.
    Ctrl-C stops the launching too; while `changing`, it is announced once and the workers stop
    before their next operation, and are waited for (a second Ctrl-C abandons them: daemon threads
    end with the process). Reading and planning are abandoned at once."""

    def __init__(self, console: Console, fail_fast: bool = False):
        self.console = console
        self.fail_fast = fail_fast
        self.interrupted = threading.Event()  # set on Ctrl-C: no operation starts any more

    def run(self, steps: Sequence[Step], work: Callable[[Step], None], changing: bool = False) -> None:
        todo = list(steps)
        lock = threading.Lock()
        stop: list[Exception] = []  # what stopped the launching; the first is raised

        def take() -> Step | None:
            with lock:
                return todo.pop(0) if todo and not stop and not self.interrupted.is_set() else None

        def worker() -> None:
            while (step := take()) is not None:
                try:
                    work(step)
                except FrameworkError as error:
                    step.error = error
                    if self.fail_fast:
                        with lock:
                            stop.append(error)
                except Stopped:
                    return
                except Exception as error:  # not a user's error (a bug): stop, raise it in the calling thread
                    with lock:
                        stop.append(error)

        threads = [threading.Thread(target=worker, name=f"agenthost-{n}", daemon=True)
                   for n in range(min(WORKERS, len(todo)))]
        try:
            if len(threads) == 1:
                worker()
            else:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        except KeyboardInterrupt:
            with self.console.lock:  # after this line, no operation starts (see Progress)
                self.interrupted.set()
                if changing:
                    self.console.note(f"\n{INTERRUPTED}")
            if changing:
                try:
                    for thread in threads:
                        if thread.is_alive():
                            thread.join()
                except KeyboardInterrupt:
                    pass
            raise
        if stop:
            if changing and todo and isinstance(stop[0], FrameworkError):
                self.console.note(f"stopped (--fail-fast): not started: {', '.join(s.label for s in todo)}")
            raise stop[0]


class Progress:
    """A step's way through its plan, as whole lines: one when an operation starts, one when it ends
    ("ok") or fails. Before starting an operation, it stops the step if Ctrl-C was pressed."""

    def __init__(self, console: Console, label: str, interrupted: threading.Event):
        self.console, self.label, self.interrupted = console, label, interrupted
        self.current: str | None = None  # the operation under way

    def __call__(self, event: str, index: int, total: int, resource: Resource, op: Operation) -> None:
        if event == "start":
            with self.console.lock:
                if self.interrupted.is_set():
                    raise Stopped
                self.current = f"[{index}/{total}] {op.api or op.kind:<34} {resource.kind} {resource.name} ..."
                self.console.line(self.label, self.current)
        else:
            self.console.line(self.label, f"{self.current} ok")
            self.current = None

    def failed(self) -> None:
        if self.current is not None:
            self.console.line(self.label, f"{self.current} failed")


def apply_plan(step: Step, pool: Pool) -> dict[str, Any]:
    """The step's plan applied, its progress on the console."""
    progress = Progress(pool.console, step.label, pool.interrupted)
    try:
        return step.deployer.apply(step.plan, progress)
    except Exception:
        progress.failed()
        raise


def make_deployers(steps: list[Step], pool: Pool, **options: Any) -> None:
    """Each step's deployer, writing to stderr through the pool's console. Made one by one in this
    thread: rendering and importing the SDKs are work for this process, not waits on a cloud (and
    imports are safest not raced)."""
    for step in steps:
        try:
            step.deployer = make_deployer(step.unit, step.target, StepStream(pool.console, step.label), **options)
        except FrameworkError as error:
            if pool.fail_fast:
                raise
            step.error = error



def start(steps: list[Step], stderr: TextIO, fail_fast: bool = False, **options: Any) -> Pool:
    """The pool of a run over `steps`, each step's Deployer made, writing through the pool's console."""
    pool = Pool(Console(stderr, [step.label for step in steps]), fail_fast=fail_fast)
    make_deployers(steps, pool, **options)
    return pool


def each(pool: Pool, steps: Sequence[Step], work: Callable[[Step], None], changing: bool = False) -> None:
    """work(step) on every step that has not failed yet, in its deployer's errors(), in parallel."""
    def guarded(step: Step) -> None:
        with step.deployer.errors():
            work(step)

    pool.run([step for step in steps if step.error is None], guarded, changing=changing)

def make_steps(units: list[Unit], target: str | None) -> list[Step]:
    """One step per unit and target, in the units' order, then the registry's."""
    several = len(units) > 1
    return [Step(unit, name, several) for unit in units for name in deployable_targets(unit, target)]


def per_step_json(steps: list[Step], target: str | None, value) -> Any:
    """A run's JSON: one target's value (--target), or {"targets": {name: value, or {"error": ...}}};
    over several agents or stages, that per agent: {"agents": {<name>[-<stage>]: ...}}."""
    def one(group: list[Step]) -> Any:
        if target is not None:
            step = group[0]
            return {"error": str(step.error)} if step.error is not None else value(step)
        return {"targets": {step.target: ({"error": str(step.error)} if step.error is not None else value(step))
                            for step in group}}

    if not any(step.several for step in steps):
        return one(steps)
    names = dict.fromkeys(step.unit.validated.agent.name for step in steps)
    return {"agents": {name: one([s for s in steps if s.unit.validated.agent.name == name]) for name in names}}


def report_failures(steps: list[Step], verb: str, report: TextReporter) -> ExitCode:
    """Name every target that failed (the others' results stand); FAILED when any did."""
    failed = [step for step in steps if step.error is not None]
    for step in failed:
        report.note(f"error: {step.label}: {step.error}")
    if failed:
        report.note(f"{verb} failed for: {', '.join(step.label for step in failed)}")
        return ExitCode.FAILED
    return ExitCode.OK
