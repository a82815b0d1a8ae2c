"""validate and build: the commands that read agent.yaml and check or write generated/.

The deploy stage's commands are in framework/deploy/commands.py, serve and invoke in
framework/local/session.py. Each takes a reporter and returns its exit code; errors are raised.
"""

from __future__ import annotations

from pathlib import Path

from framework.build import render_all
from framework.config.validate import validate_file
from framework.errors import ExitCode, StaleError
from framework.platforms import registry
from framework.report import TextReporter, problems_data
from framework.writer import differences, write


def validate(file: str, reporter: TextReporter) -> ExitCode:
    """Check agent.yaml; a problem is raised as ConfigError, warnings do not fail."""
    validated = validate_file(file)
    warnings = list(validated.warnings)
    reporter.warnings(warnings)
    targets = ", ".join(t.name for t in validated.agent.targets)
    reporter.result([f"{file}: ok ({targets})"], problems_data(warnings))
    return ExitCode.OK


def build(file: str, output: str, target: str | None, check: bool, reporter: TextReporter) -> ExitCode:
    """Validate, render, then write generated/ (or, with check, raise StaleError where it differs)."""
    validated = validate_file(file)
    warnings = list(validated.warnings)
    reporter.warnings(warnings)
    out = Path(output)
    rendered = render_all(validated, only=target)
    full = target is None
    if check:
        diffs = differences(rendered, out, full)
        if diffs:
            raise StaleError(diffs)
        reporter.result([f"{out}/ is up to date with {file}"], {**problems_data(warnings), "up_to_date": True},
                        ensure_ascii=True)
        return ExitCode.OK
    write(rendered, out, full)
    agent = validated.agent
    built = {}
    for settings in agent.targets:
        if settings.name in rendered.targets:
            platform = registry.get(settings.name)
            built[settings.name] = {"title": platform.title, "folder": f"{out}/{settings.name}",
                                    "files": len(rendered.targets[settings.name]),
                                    "endpoint": platform.endpoint(agent, settings)}
    lines = [f"{row['title']:<34} {row['folder']}/  ({row['files']} files, answers POST {row['endpoint']})"
             for row in built.values()]
    reporter.result([*lines, f"{'manifest':<34} {out}/manifest.json"],
                    {**problems_data(warnings), "targets": built, "manifest": f"{out}/manifest.json"})
    return ExitCode.OK
