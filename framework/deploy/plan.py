"""A plan: every resource of a target with what will happen to it, and the operations that do it.

Plain, frozen, JSON-serialisable data. Operation arguments never hold a secret value or the zip's
bytes: they hold placeholders ({"$secret": NAME}, {"$package": sha}, {"$output": key}) that only
the executor resolves, so a plan can be printed, logged or stored safely.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"
_SYMBOL = {CREATE: "+", UPDATE: "~", DELETE: "-", UNCHANGED: "="}


@dataclass(frozen=True)
class Change:
    """One field that changes, with display-safe old and new values."""

    field: str
    old: Any
    new: Any
    # old and new are whole texts (a system prompt): shown as a unified diff, not inline
    text: bool = False


@dataclass(frozen=True)
class Operation:
    """One mutating call: `kind` is a key of the executor's handler registry."""

    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)
    # the cloud's API operation it makes (for people, and to check plan against calls in tests)
    api: str = ""


@dataclass(frozen=True)
class Resource:
    kind: str  # e.g. "lambda function"
    name: str
    action: str
    changes: tuple[Change, ...] = ()
    operations: tuple[Operation, ...] = ()
    detail: str = ""  # a short description shown when unchanged, e.g. "10" for concurrency


@dataclass(frozen=True)
class Plan:
    target: str
    title: str  # e.g. "support-bot on AWS Lambda (us-east-1, account 123456789012)"
    resources: tuple[Resource, ...]
    notes: tuple[str, ...] = ()  # e.g. resources left alone, secrets kept from the deployed function

    @property
    def operations(self) -> list[Operation]:
        return [op for resource in self.resources for op in resource.operations]

    @property
    def has_changes(self) -> bool:
        return any(r.action != UNCHANGED for r in self.resources)

    def counts(self) -> dict[str, int]:
        counts = {CREATE: 0, UPDATE: 0, DELETE: 0, UNCHANGED: 0}
        for resource in self.resources:
            counts[resource.action] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "title": self.title,
            "changes": self.has_changes,
            "counts": self.counts(),
            "resources": [
                {"kind": r.kind, "name": r.name, "action": r.action, "detail": r.detail,
                 "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in r.changes],
                 "operations": [{"kind": o.kind, "api": o.api, "args": _plain(o.args)} for o in r.operations]}
                for r in self.resources
            ],
            "notes": list(self.notes),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_plain(value), sort_keys=True)
    return str(value)


def unified_diff(old: str | None, new: str | None, context: int) -> list[str]:
    """The lines of a text change, deployed text first, as `diff -u` shows them."""
    return list(difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(), "deployed", "agent.yaml",
                                     lineterm="", n=context))


def format_text(plan: Plan, verb: str = "deploy") -> str:
    """The plan for people: one line per resource, the changing fields under it, then a summary."""
    lines = [f"Plan: {plan.title}"]
    for resource in plan.resources:
        detail = f" ({resource.detail})" if resource.detail else ""
        lines.append(f"  {_SYMBOL[resource.action]} {resource.action:<9} {resource.kind} {resource.name}{detail}")
        for change in resource.changes:
            if change.text:
                lines.append(f"        {change.field}: unified diff")
                lines += [f"          {line}" for line in unified_diff(change.old, change.new, context=1)]
            elif resource.action == CREATE:
                lines.append(f"        {change.field}: {_show(change.new)}")
            elif resource.action == DELETE and change.new is None:
                lines.append(f"        {change.field}: {_show(change.old)}")
            else:
                lines.append(f"        {change.field}: {_show(change.old)} -> {_show(change.new)}")
    for note in plan.notes:
        lines.append(f"  note: {note}")
    counts = plan.counts()
    if not plan.has_changes:
        lines.append("No changes: what is deployed matches agent.yaml.")
    else:
        lines.append(f"{counts[CREATE]} to create, {counts[UPDATE]} to update, {counts[DELETE]} to delete, "
                     f"{counts[UNCHANGED]} unchanged ({len(plan.operations)} API call(s) to {verb}).")
    return "\n".join(lines)


def format_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True)


# ---------------------------------------------------------------- Markdown (pull requests)

MARKDOWN_MARKER = "<!-- agenthost-plan -->"  # the CI job finds (and updates) its comment by this first line
_MD_ACTION = {CREATE: "➕ create", UPDATE: "🔄 update", DELETE: "🗑️ delete", UNCHANGED: "⚪ unchanged"}
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~$#])")  # what could start markup in a line of text
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class PlanSection:
    """One target of a run, as `format_markdown` shows it: its plan, or why it has none."""

    agent: str
    stage: str | None
    plan: Plan | None
    error: str | None = None


def _md_text(value: Any) -> str:
    """Text for a line or a table cell (a title, a kind, a field, a note): every character shown as
    itself, so a value from agent.yaml or a cloud can neither break the table nor add HTML or a link
    under other words (a bare address stays as it is written, which GitHub links to itself)."""
    escaped = _MD_PUNCTUATION.sub(r"\\\1", html.escape(str(value), quote=False))
    return _NEWLINE.sub("<br>", escaped)


def _md_code(value: Any) -> str:
    """A value, verbatim in code spans (GitHub adds no links, mentions or emoji there); one span a
    line, joined by <br>, since a line break would end the table row."""
    text = _show(value)
    if text == "":
        return "(empty)"
    spans = []
    for line in text.splitlines():
        if not line:  # "``" is no span: an empty line shows as nothing
            spans.append("")
            continue
        fence = "`" * (max((len(run) for run in re.findall("`+", line)), default=0) + 1)
        # a span strips one space each side when both are there: pad so the value keeps its own
        pad = " " if line[:1] == "`" or line[-1:] == "`" or (line[:1] == line[-1:] == " " and line.strip()) else ""
        spans.append(f"{fence}{pad}{line}{pad}{fence}".replace("|", "\\|"))  # GFM splits cells before code spans
    return "<br>".join(spans)


def _md_change(action: str, change: Change) -> str:
    if change.text:
        return f"{_md_text(change.field)}: changed, diff below"
    if action == CREATE:
        return f"{_md_text(change.field)}: {_md_code(change.new)}"
    if action == DELETE and change.new is None:
        return f"{_md_text(change.field)}: {_md_code(change.old)}"
    return f"{_md_text(change.field)}: {_md_code(change.old)} → {_md_code(change.new)}"


def _md_fenced(info: str, lines: Sequence[str]) -> list[str]:
    """A fenced block longer than any run of backticks inside, so no line can close it early."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *lines, fence]


def _md_plan(plan: Plan) -> list[str]:
    out = [f"**{_md_text(plan.title)}**", ""]
    if not plan.has_changes:
        out += ["No changes: what is deployed matches agent.yaml.", ""]
    else:
        out += ["| Action | Resource | Name | Changes |", "| --- | --- | --- | --- |"]
        for r in plan.resources:
            changes = "<br>".join(_md_change(r.action, c) for c in r.changes) or _md_text(r.detail)
            out.append(f"| {_MD_ACTION[r.action]} | {_md_text(r.kind)} | {_md_code(r.name)} | {changes} |")
        out.append("")
        for r in plan.resources:
            for c in r.changes:
                if c.text:  # <summary> is HTML: Markdown's escapes do not apply there, HTML's do
                    summary = html.escape(_NEWLINE.sub(" ", f"{c.field} diff: {r.kind} {r.name}"))
                    out += [f"<details><summary>{summary}</summary>", "",
                            *_md_fenced("diff", unified_diff(c.old, c.new, context=3)), "", "</details>", ""]
    out += [f"- **Note:** {_md_text(note)}" for note in plan.notes]
    if plan.notes:
        out.append("")
    return out


def totals(plans: Sequence[Plan | None]) -> dict[str, int]:
    """What a set of plans creates, updates and deletes together (a missing plan counts nothing)."""
    out = {CREATE: 0, UPDATE: 0, DELETE: 0}
    for plan in plans:
        if plan is not None:
            for action in out:
                out[action] += plan.counts()[action]
    return out


def _md_summary(sections: Sequence[PlanSection]) -> str:
    totals_ = totals([section.plan for section in sections])
    changes = (f"**{totals_[CREATE]} to create, {totals_[UPDATE]} to update, {totals_[DELETE]} to delete**"
               if any(totals_.values()) else "**No changes**")
    line = f"{changes} across {len(sections)} target{'' if len(sections) == 1 else 's'}"
    failed = sum(1 for section in sections if section.plan is None)
    return line + (f"; **{failed} failed to plan**" if failed else "")


def format_markdown(sections: Sequence[PlanSection]) -> str:
    """Plans for a pull request (GitHub-flavoured Markdown): a summary, then per agent and stage one
    table per target, its prompt diffs collapsed and its notes; a target that failed shows its error."""
    out = [MARKDOWN_MARKER, _md_summary(sections), ""]
    groups: dict[tuple[str, str | None], list[PlanSection]] = {}
    for section in sections:
        groups.setdefault((section.agent, section.stage), []).append(section)
    for (agent, stage), members in groups.items():
        out += [f"### {_md_text(agent)}" + (f" · {_md_text(stage)}" if stage is not None else ""), ""]
        for section in members:
            if section.plan is not None:
                out += _md_plan(section.plan)
            else:
                out += ["⚠️ **Plan failed:**", "", *_md_fenced("text", _NEWLINE.split(section.error or "")), ""]
    return "\n".join(out).rstrip("\n")
