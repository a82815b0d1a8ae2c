"""Every error knows its exit code, and each reporter prints a command's result, warnings and errors
in its own format and on its own stream."""

from __future__ import annotations

import inspect
import io
import json

import pytest

from framework import errors
from framework.cli import main
from framework.errors import ExitCode
from framework.report import reporter
from tests.conftest import write_agent

EXIT_CODES = {
    errors.FrameworkError: ExitCode.FAILED,
    errors.ConfigError: ExitCode.FAILED,
    errors.StaleError: ExitCode.FAILED,
    errors.OutputError: ExitCode.FAILED,
    errors.DeployError: ExitCode.FAILED,
    errors.PackageError: ExitCode.FAILED,
    errors.DockerUnavailableError: ExitCode.FAILED,
    errors.Cancelled: ExitCode.FAILED,
    errors.LocalRunError: ExitCode.FAILED,
    errors.UsageError: ExitCode.USAGE,
    errors.ConfirmationRequired: ExitCode.USAGE,
    errors.MissingKeyError: ExitCode.USAGE,
}


@pytest.mark.parametrize(("error", "code"), EXIT_CODES.items(), ids=lambda v: getattr(v, "__name__", v))
def test_each_error_type_exits_with_its_code(error, code):
    assert error.exit_code is code


def test_the_table_names_every_error_type():
    defined = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.FrameworkError)}
    assert defined == set(EXIT_CODES)


def test_exit_codes_keep_their_numbers_and_the_two_2s_stay_distinct_names():
    assert [(code.name, int(code)) for code in ExitCode] == [
        ("OK", 0), ("FAILED", 1), ("USAGE", 2), ("CHANGES_PENDING", 2), ("INTERRUPTED", 130)]
    assert ExitCode.USAGE is not ExitCode.CHANGES_PENDING


@pytest.mark.parametrize(("code", "shown"), [(ExitCode.OK, "<ExitCode.OK: 0>"), (ExitCode.USAGE, "<ExitCode.USAGE: 2>"),
                                             (ExitCode.CHANGES_PENDING, "<ExitCode.CHANGES_PENDING: 2>")])
def test_an_exit_code_shows_its_name_and_number(code, shown):
    assert repr(code) == shown


def test_an_error_never_exits_with_a_code_its_command_uses_for_a_result():
    plan_results = (ExitCode.OK, ExitCode.CHANGES_PENDING, ExitCode.FAILED)
    assert errors.UsageError("x").exit_code_for(plan_results) is ExitCode.FAILED
    assert errors.UsageError("x").exit_code_for((ExitCode.OK, ExitCode.FAILED)) is ExitCode.USAGE


AGENT = """\
    name: codes-bot
    prompt: You are helpful.
    model: gpt-4o-mini
    targets:
      aws: {}
"""


def test_a_usage_error_exits_2_but_1_from_plan_where_2_means_changes_pending(tmp_path, capsys):
    agent = str(write_agent(tmp_path, AGENT))
    out = str(tmp_path / "generated")
    assert main(["build", "-f", agent, "-o", out, "--target", "gcp"]) == 2
    assert main(["plan", "-f", agent, "-o", out, "--target", "gcp"]) == 1
    assert capsys.readouterr().err.count(f"error: target 'gcp' is not in {agent} (it lists: aws)") == 2


PROBLEMS = [errors.Problem("agent.yaml", 3, 5, "targets.aws.timeout", "too long"),
            errors.Problem("agent.yaml", 9, 1, "targets.azure.plan", "retiring", "warning")]
WARNING = PROBLEMS[1:]


def shown(fmt: str, act) -> tuple[str, str]:
    """What a reporter of `fmt` prints on stdout and stderr when `act` drives it."""
    stdout, stderr = io.StringIO(), io.StringIO()
    act(reporter(fmt, stdout, stderr))
    return stdout.getvalue(), stderr.getvalue()


def result(report) -> None:
    report.warnings(WARNING)
    report.display("Plan: 1 to create")
    report.result(["built 2 files"], {"ok": True, "files": 2})


def test_text_prints_the_result_for_people_and_the_rest_on_stderr():
    assert shown("text", result) == (
        "Plan: 1 to create\nbuilt 2 files\n",
        "agent.yaml:9:1: warning: targets.azure.plan: retiring\n")


def test_github_prints_warnings_as_annotations():
    assert shown("github", result) == (
        "Plan: 1 to create\nbuilt 2 files\n",
        "::warning file=agent.yaml,line=9,col=1,title=targets.azure.plan::targets.azure.plan: retiring\n")


def test_json_keeps_stdout_for_the_result_document_alone():
    assert shown("json", result) == ('{\n  "ok": true,\n  "files": 2\n}\n', "Plan: 1 to create\n")


def test_json_options_are_the_commands_own():
    out, _ = shown("json", lambda r: r.result([], {"b": "é", "a": 1}, sort_keys=True, ensure_ascii=True))
    assert out == '{\n  "a": 1,\n  "b": "\\u00e9"\n}\n'


def config_error(report) -> None:
    report.error(errors.ConfigError(PROBLEMS))


def test_text_shows_agent_yaml_problems_with_their_count_on_stderr():
    assert shown("text", config_error) == ("", "agent.yaml:3:5: error: targets.aws.timeout: too long\n"
                                               "agent.yaml:9:1: warning: targets.azure.plan: retiring\n"
                                               "1 error(s); nothing was written\n")


def test_github_shows_agent_yaml_problems_as_annotations_on_stdout():
    out, err = shown("github", config_error)
    assert out.splitlines()[0] == "::error file=agent.yaml,line=3,col=5,title=targets.aws.timeout::" \
                                  "targets.aws.timeout: too long"
    assert err == ""


def test_json_shows_agent_yaml_problems_as_the_document_on_stdout():
    out, err = shown("json", config_error)
    assert json.loads(out)["ok"] is False and [p["line"] for p in json.loads(out)["problems"]] == [3, 9]
    assert err == ""


@pytest.mark.parametrize("fmt", ["text", "github", "json"])
def test_every_format_shows_other_errors_on_stderr_details_first(fmt):
    assert shown(fmt, lambda r: r.error(errors.StaleError(["changed aws/agent.json"]))) == (
        "", "changed aws/agent.json\nerror: generated/ is out of date; run `agenthost build`\n")
