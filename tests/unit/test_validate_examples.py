"""The table of agent.yaml examples: every invalid one fails with its line and a helpful message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framework.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
VALID = sorted((EXAMPLES / "valid").glob("*.yaml"))


def _expectation(path: Path) -> tuple[int, str]:
    text = path.read_text(encoding="utf-8")
    line = int(re.search(r"^# expect-line: (\d+)$", text, re.M).group(1))
    message = re.search(r"^# expect: (.+)$", text, re.M).group(1)
    return line, message


def test_the_table_is_large_enough():
    assert len(INVALID) >= 30
    assert len(VALID) >= 3


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_fails_at_its_line_with_a_helpful_message(path, capsys):
    line, message = _expectation(path)
    assert main(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    hits = [row for row in err.splitlines() if message in row]
    assert hits, f"expected {message!r} in:\n{err}"
    assert hits[0].startswith(f"{path}:{line}:"), hits[0]
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: error: \S.*: .+", hits[0])


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_never_writes_anything(path, tmp_path, capsys):
    out = tmp_path / "generated"
    assert main(["build", "-f", str(path), "-o", str(out)]) == 1
    assert not out.exists()


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_validates_and_builds(path, tmp_path, capsys):
    assert main(["validate", "-f", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ok")
    assert main(["build", "-f", str(path), "-o", str(tmp_path / "generated")]) == 0
    assert (tmp_path / "generated" / "manifest.json").is_file()
