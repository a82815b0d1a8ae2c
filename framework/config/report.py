"""Print problems for people (text), for GitHub Actions (annotations) and for machines (JSON)."""

from __future__ import annotations

import json

from framework.errors import Problem

FORMATS = ("text", "github", "json")


def _github_escape(text: str, prop: bool = False) -> str:
    # https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_problems(problems: list[Problem], fmt: str) -> str:
    if fmt == "json":
        rows = [{"file": p.file, "line": p.line, "col": p.col, "path": p.path,
                 "severity": p.severity, "message": p.message} for p in problems]
        return json.dumps({"ok": not any(p.severity == "error" for p in problems), "problems": rows},
                          indent=2, ensure_ascii=False)
    lines = []
    for p in problems:
        if fmt == "github":
            level = "error" if p.severity == "error" else "warning"
            lines.append(f"::{level} file={_github_escape(p.file, True)},line={p.line},col={p.col},"
                         f"title={_github_escape(p.path, True)}::{_github_escape(p.path + ': ' + p.message)}")
        else:
            lines.append(f"{p.file}:{p.line}:{p.col}: {p.severity}: {p.path}: {p.message}")
    return "\n".join(lines)
