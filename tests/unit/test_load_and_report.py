"""Loading keeps positions; reports print the same problems for people, GitHub and machines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.cli import main
from framework.config.load import format_path, parse
from framework.errors import ConfigError, Problem
from framework.report import reporter


def test_values_and_keys_keep_their_line_and_column():
    doc = parse("name: bot\ntargets:\n  aws:\n    timeout: 30\n")
    assert doc.values[("name",)] == (1, 7)
    assert doc.keys[("targets", "aws", "timeout")] == (4, 5)
    assert doc.values[("targets", "aws", "timeout")] == (4, 14)


def test_yaml_tags_that_build_objects_are_refused():
    with pytest.raises(ConfigError) as caught:
        parse("name: !!python/object/apply:os.system ['true']\n")
    assert caught.value.problems[0].line == 1


def test_every_duplicate_key_is_reported():
    with pytest.raises(ConfigError) as caught:
        parse("a: 1\nb: 2\na: 3\nb: 4\n")
    assert [p.line for p in caught.value.problems] == [3, 4]


def test_bare_words_that_yaml_11_turns_into_booleans_are_remembered():
    doc = parse("a: yes\nb: off\nc: 'no'\nd: 1.5\n")
    assert doc.implicit == {("a",): "yes", ("b",): "off", ("d",): "1.5"}


def test_paths_read_like_the_file():
    assert format_path(("targets", "aws", "timeout")) == "targets.aws.timeout"
    assert format_path(("cors", "origins", 0)) == "cors.origins[0]"
    assert format_path(()) == "(top level)"


PROBLEMS = [Problem("agent.yaml", 3, 5, "targets.aws.timeout", "must be at most 900, 50% over"),
            Problem("agent.yaml", 9, 1, "targets.azure.plan", "retiring", "warning")]


def format_problems(problems: list[Problem], fmt: str) -> str:
    return reporter(fmt).format_problems(problems)


def test_text_report_is_file_line_col_severity_path_message():
    assert format_problems(PROBLEMS, "text").splitlines() == [
        "agent.yaml:3:5: error: targets.aws.timeout: must be at most 900, 50% over",
        "agent.yaml:9:1: warning: targets.azure.plan: retiring",
    ]


def test_github_report_is_workflow_annotations_with_escaping():
    first, second = format_problems(PROBLEMS, "github").splitlines()
    assert first == ("::error file=agent.yaml,line=3,col=5,title=targets.aws.timeout::"
                     "targets.aws.timeout: must be at most 900, 50%25 over")
    assert second.startswith("::warning file=agent.yaml,line=9,col=1,")


def test_json_report_is_a_machine_readable_list(capsys):
    reporter("json").error(ConfigError(PROBLEMS))
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["problems"][0] == {"file": "agent.yaml", "line": 3, "col": 5, "path": "targets.aws.timeout",
                                   "severity": "error", "message": "must be at most 900, 50% over"}


def test_validate_reports_every_problem_at_once(tmp_path, capsys):
    path = tmp_path / "agent.yaml"
    path.write_text("name: Bad_Name\nprompt: hi\nmodel: m\ntimout: 3\nmemory: 1\ntargets:\n  aws: {}\n")
    assert main(["validate", "-f", str(path)]) == 1
    lines = [row for row in capsys.readouterr().err.splitlines() if ": error: " in row]
    assert [row.split(":")[1] for row in lines] == ["1", "4", "5"]


@pytest.mark.parametrize("fmt", ["github", "json"])
def test_machine_formats_go_to_stdout(tmp_path, capsys, fmt):
    path = tmp_path / "agent.yaml"
    path.write_text("name: bot\nprompt: hi\nmodel: m\ntimout: 3\ntargets: {aws: {}}\n")
    assert main(["validate", "-f", str(path), "--format", fmt]) == 1
    out = capsys.readouterr().out
    assert "timout" in out and "line" in out


def test_a_missing_file_is_a_located_error_not_a_traceback(tmp_path, capsys):
    assert main(["validate", "-f", str(tmp_path / "nope.yaml")]) == 1
    assert "file not found" in capsys.readouterr().err


@given(st.text(max_size=200))
def test_no_text_makes_the_loader_crash(text):
    try:
        parse(text)
    except ConfigError as error:
        assert all(p.line >= 1 and p.col >= 1 for p in error.problems)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=20))
def test_no_document_makes_validation_crash(data):
    import yaml

    from framework.config.validate import validate_document

    try:
        validate_document(parse(yaml.safe_dump({"name": "bot", "prompt": "p", "model": "m", "targets": data})))
    except ConfigError as error:
        assert error.problems


def test_an_alias_bomb_is_refused_quickly_with_its_line():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index, name in enumerate("bcdefg"):
        previous = "abcdefg"[index]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    with pytest.raises(ConfigError) as caught:
        parse("\n".join(levels) + "\n")
    assert "more than 10000 values" in caught.value.problems[0].message


def test_a_secret_written_as_a_key_is_never_echoed(tmp_path, capsys):
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
    path = tmp_path / "agent.yaml"
    path.write_text(f"name: bot\nprompt: hi\nmodel: m\n{secret}: 1\ntargets: {{aws: {{}}}}\n")
    for fmt in ("text", "github", "json"):
        assert main(["validate", "-f", str(path), "--format", fmt]) == 1
        captured = capsys.readouterr()
        assert secret not in captured.out + captured.err
        assert "looks like" in captured.out + captured.err
