"""validate and build: the commands that read agent.yaml and check or write generated/.

They work on units (an agent at a stage, framework/project.py). The deploy stage's commands are in
framework/deploy/commands.py, serve and invoke in framework/local/session.py. Each takes a reporter
and returns its exit code; errors are raised.
"""

from __future__ import annotations

from collections.abc import Sequence

from framework.build import render_all
from framework.errors import ExitCode, StaleError
from framework.platforms import registry
from framework.project import Unit
from framework.report import TextReporter, problems_data
from framework.schema_file import editor_schema_differences, write_editor_schema
from framework.writer import differences, write


def _warnings(units: Sequence[Unit], reporter: TextReporter) -> list:
    """Each warning once, though the agent's and its stages' documents share most values."""
    seen: list = []
    for unit in units:
        seen += [w for w in unit.validated.warnings if w not in seen]
    reporter.warnings(seen)
    return seen


def validate(units: Sequence[Unit], reporter: TextReporter) -> ExitCode:
    """Every agent and stage was checked when the units were made (a problem is raised as ConfigError);
    warnings do not fail."""
    warnings = _warnings(units, reporter)
    lines, seen = [], set()
    for unit in units:
        if unit.file in seen:
            continue
        seen.add(unit.file)
        targets = ", ".join(t.name for t in unit.validated.agent.targets)
        stages = [u.stage for u in units if u.file == unit.file and u.stage]
        lines.append(f"{unit.file}: ok ({targets})" + (f"; stages: {', '.join(stages)}" if stages else ""))
    reporter.result(lines, problems_data(warnings))
    return ExitCode.OK


def build(units: Sequence[Unit], target: str | None, check: bool, reporter: TextReporter) -> ExitCode:
    """Render every unit, then write its folder of generated/ (or, with check, raise StaleError listing
    every difference of every unit)."""
    warnings = _warnings(units, reporter)
    builds = [(unit, render_all(unit.validated, only=target)) for unit in units]
    if check:
        diffs = [f"{kind:<9} {unit.folder}/{path}" if unit.folder else f"{kind:<9} {path}"
                 for unit, rendered in builds
                 for kind, path in (d.split(maxsplit=1) for d in differences(rendered, unit.output))]
        diffs += editor_schema_differences(units[0].root)
        if diffs:
            raise StaleError(diffs)
        folders = ", ".join(f"{unit.output}/" for unit in units)
        reporter.result([f"{folders} up to date with {', '.join(dict.fromkeys(u.file for u in units))}"],
                        {**problems_data(warnings), "up_to_date": True}, ensure_ascii=True)
        return ExitCode.OK
    lines, data = [], {}
    for unit, rendered in builds:
        write(rendered, unit.output)
        agent = unit.validated.agent
        built = {}
        for settings in agent.targets:
            if settings.name in rendered.targets:
                platform = registry.get(settings.name)
                built[settings.name] = {"title": platform.title, "folder": f"{unit.output}/{settings.name}",
                                        "files": len(rendered.targets[settings.name]),
                                        "endpoint": platform.endpoint(agent, settings)}
        if len(units) > 1:
            lines.append(f"{unit.label}:")
        lines += [f"{row['title']:<34} {row['folder']}/  ({row['files']} files, answers POST {row['endpoint']})"
                  for row in built.values()]
        lines.append(f"{'manifest':<34} {unit.output}/manifest.json")
        data[str(unit.output)] = {"targets": built, "manifest": f"{unit.output}/manifest.json"}
    schema = write_editor_schema(units[0].root)
    lines.append(f"{'schema for editors':<34} {schema}")
    only = next(iter(data.values())) if len(units) == 1 else {"builds": data}
    reporter.result(lines, {**problems_data(warnings), **only})
    return ExitCode.OK
