"""A plan: every resource of a target with what will happen to it, and the operations that do it.

Plain, frozen, JSON-serialisable data. Operation arguments never hold a secret value or the zip's
bytes: they hold placeholders ({"$secret": NAME}, {"$package": sha}, {"$output": key}) that only
the executor resolves, so a plan can be printed, logged or stored safely.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
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

