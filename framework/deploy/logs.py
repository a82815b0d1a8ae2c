"""`agenthost logs`: the deployed function's log lines from its platform's log service (issue 14).

Each unit × target is read by its Deployer's `log_reader` (CloudWatch Logs, Cloud Logging, Application
Insights, Vercel's runtime logs); the usage records (one JSON line per request, written by the
runtimes) are shown as a table row each, other lines as they are, all in time order. `--format json`
passes the records through, one JSON per line. `--follow` polls again, 1 s after lines arrived, the
wait doubling to 10 s while none do, never showing a line twice, until Ctrl-C (exit 0); the function's
log is found once, so a poll sends only the log query.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from framework.deploy.loglines import LogLine, LogReader, checked_request
from framework.deploy.run import (
    Step,
    each,
    make_steps,
    report_failures,
    select_units,
    start,
)
from framework.errors import ExitCode, UsageError
from framework.report import reporter

DEFAULT_SINCE = "1h"
FIRST_WAIT, LONGEST_WAIT = 1.0, 10.0  # --follow's polls: 1 s after lines arrived, doubling to 10 s
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
COLUMNS = f"{'TIME (UTC)':<23}  {'STATUS':>6}  {'LATENCY':>9}  {'TOKENS':>7}  {'STEPS':>5}  {'STOPPED':<12}  REQUEST"


def since_seconds(text: str) -> int:
    """--since: a number and a unit, s, m, h or d (15m, 1h, 2d)."""
    match = re.fullmatch(r"([1-9][0-9]{0,5})([smhd])", text.strip())
    if not match:
        raise UsageError(f"--since {text!r}: give a number and a unit, e.g. 30s, 15m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _time(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def row(line: LogLine) -> str:
    """A line as the table shows it: a usage record's columns, or the time and the text as it is."""
    record = line.record
    if record is None:
        return f"{_time(line.time_ms):<23}  {line.text.rstrip()}"

    def value(name: str) -> str:
        found = record.get(name)
        return "-" if found is None else str(found)

    latency = f"{record['latency_ms']} ms" if isinstance(record.get("latency_ms"), int) else "-"
    return (f"{_time(line.time_ms):<23}  {value('status'):>6}  {latency:>9}  {value('tokens'):>7}  "
            f"{value('steps'):>5}  {value('stopped'):<12}  {value('request_id')}")


class _Shown:
    """Lines already shown, by their service's id, forgotten once older than every next read."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}

    def fresh(self, lines: Sequence[LogLine], since_ms: int) -> list[LogLine]:
        self.keys = {key: at for key, at in self.keys.items() if at >= since_ms}
        new = [line for line in lines if line.key not in self.keys]
        self.keys.update((line.key, line.time_ms) for line in new)
        return new


def logs(file: str | Sequence[str], target: str | None, output: str, fmt: str, *, since: str = DEFAULT_SINCE,
         follow: bool = False, request: str | None = None, stage: str | None = None, agents: Sequence[str] = (),
         stdout: TextIO | None = None, stderr: TextIO | None = None, clock: Callable[[], float] = time.time,
         **options: Any) -> ExitCode:
    """Print the log lines of every deployable target (or --target) of every agent since `since`; with
    follow, poll until Ctrl-C. `options` are DeployOptions' fields (its sleep also waits between polls)."""
    report = reporter(fmt, stdout, stderr)
    start_ms = int((clock() - since_seconds(since)) * 1000)
    request = checked_request(request)
    steps = make_steps(select_units(file, output, stage, agents), target)
    pool = start(steps, report.stderr, fail_fast=len(steps) == 1, **options)
    several = len(steps) > 1
    width = max(len(step.label) for step in steps)
    shown = {id(step): _Shown() for step in steps}  # each step's lines: ids are unique within one log only
    read_from = {id(step): start_ms for step in steps}
    readers: dict[int, LogReader] = {}
    found: dict[int, list[LogLine]] = {}
    header: list[bool] = []

    def find(step: Step) -> None:
        readers[id(step)] = step.deployer.log_reader(request)

    def read(step: Step) -> None:
        found[id(step)] = readers[id(step)](read_from[id(step)])

    def show() -> int:
        """Read every step once; print what is new, in time order; how many lines were."""
        found.clear()
        each(pool, steps, read)
        new: list[tuple[LogLine, Step]] = []
        for step in steps:
            lines = found.get(id(step), [])
            new += [(line, step) for line in shown[id(step)].fresh(lines, read_from[id(step)])]
            if lines:
                read_from[id(step)] = max(line.time_ms for line in lines)  # inclusive: a line of the same ms
        new.sort(key=lambda pair: pair[0].time_ms)
        for line, step in new:
            text = _text(line, fmt, f"{step.label:<{width}}  " if several else "")
            if text is None:
                continue
            if fmt != "json" and not header:
                header.append(True)
                print(f"{'TARGET':<{width}}  {COLUMNS}" if several else COLUMNS, file=report.stdout)
            print(step.deployer.secrets.redact(text), file=report.stdout, flush=True)
        return len(new)

    each(pool, steps, find)  # where each function logs, once: the polls then send only the log query
    if not follow:
        if show() == 0 and all(step.error is None for step in steps):
            report.note(f"no log lines since {_time(start_ms)} UTC" + (f" for request {request}" if request else ""))
        return report_failures(steps, "logs", report)
    sleep = options.get("sleep") or time.sleep
    try:
        wait = FIRST_WAIT
        show()
        while any(step.error is None for step in steps):
            sleep(wait)
            wait = FIRST_WAIT if show() else min(wait * 2, LONGEST_WAIT)
    except KeyboardInterrupt:  # Ctrl-C is how --follow ends: what was shown stands
        pass
    return report_failures(steps, "logs", report)


def _text(line: LogLine, fmt: str, label: str) -> str | None:
    """What is printed for a line: its record's JSON (json: records only), or its table row."""
    if fmt == "json":
        record = line.record
        return None if record is None else json.dumps(record, ensure_ascii=False)
    return label + row(line)
