"""The pull-request job's scripts, run as the runner runs them (`bash -e`), with `agenthost` and `gh`
replaced by scripts that answer as told and record what they were asked: a pending plan is not a
failure, a failing one is; the plan reaches the job summary; one comment is edited, never a second added."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from framework.deploy.ci import COMMENT_LIMIT, MARKER, MINE, Repository, workflow

# exits with the code named in $PLAN_EXIT_<stage> (or $PLAN_EXIT), after printing a line of "Markdown"
AGENTHOST = """#!/bin/sh
stage=$(echo "$@" | sed -n 's/.*--stage \\([^ ]*\\).*/\\1/p')
echo "| plan of ${stage:-the agent} |"
eval "code=\\${PLAN_EXIT_${stage:-x}:-${PLAN_EXIT:-0}}"
exit "$code"
"""
# records each call; a GET of the comments answers $GH_EXISTING (the id jq would print, or nothing)
GH = """#!/bin/sh
echo "$*" >> "$RUNNER_TEMP/gh.log"
case "$*" in *--method*) ;; *) [ -n "$GH_EXISTING" ] && echo "$GH_EXISTING" ;; esac
exit 0
"""


def _check_steps(stages: tuple[str, ...]) -> dict[str, dict]:
    flow = yaml.safe_load(workflow(Repository({"vercel": {}}, stages=stages)))
    steps = flow["jobs"]["check"]["steps"]
    return {"plan": next(s for s in steps if "agenthost plan" in s.get("run", "")),
            "comment": next(s for s in steps if "gh api" in s.get("run", ""))}


def _run(step: dict, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("agenthost", AGENTHOST), ("gh", GH)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    step_env = {key: f"value of {key}" for key in step.get("env", {})}  # the ${{ }} GitHub would fill in
    runner = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path),
              "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "REPO": "org/repo", "PR": "7"}
    return subprocess.run(["bash", "-e", str(script)], env={**step_env, **runner, **env},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("stages, exits, passes", [
    ((), {"PLAN_EXIT": "0"}, True),  # nothing to change
    ((), {"PLAN_EXIT": "2"}, True),  # changes pending: what a pull request is for
    ((), {"PLAN_EXIT": "1"}, False),  # an error
    (("dev", "prod"), {"PLAN_EXIT_dev": "2", "PLAN_EXIT_prod": "2"}, True),
    (("dev", "prod"), {"PLAN_EXIT_dev": "2", "PLAN_EXIT_prod": "1"}, False),  # any stage failing fails the step
    (("dev", "prod"), {"PLAN_EXIT_dev": "1", "PLAN_EXIT_prod": "0"}, False),
])
def test_a_pending_plan_passes_and_a_failing_one_fails(tmp_path, stages, exits, passes):
    result = _run(_check_steps(stages)["plan"], tmp_path, **exits)
    assert (result.returncode == 0) == passes, result.stderr


def test_the_plan_of_every_stage_reaches_the_job_summary_under_the_marker(tmp_path):
    assert _run(_check_steps(("dev", "prod"))["plan"], tmp_path, PLAN_EXIT="2").returncode == 0
    assert (tmp_path / "summary.md").read_text().splitlines() == [
        MARKER, "| plan of dev |", "| plan of prod |", "<sub>plan of value of HEAD_SHA</sub>"]


@pytest.mark.parametrize("existing, call", [
    ("4242", "api --method PATCH repos/org/repo/issues/comments/4242 -F body=@{plan}"),  # a later push
    ("", "api --method POST repos/org/repo/issues/7/comments -F body=@{plan}"),  # the first push
])
def test_the_comment_is_edited_when_there_is_one_and_added_when_not(tmp_path, existing, call):
    (tmp_path / "plan.md").write_text(f"{MARKER}\n| plan |\n")
    assert _run(_check_steps(())["comment"], tmp_path, GH_EXISTING=existing).returncode == 0
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert calls[0] == f"api repos/org/repo/issues/7/comments --paginate --jq {MINE}"
    assert calls[1:] == [call.format(plan=tmp_path / "plan.md")]


def test_a_plan_longer_than_a_comment_holds_points_to_the_summary(tmp_path):
    (tmp_path / "plan.md").write_text(MARKER + "\n" + "x" * COMMENT_LIMIT)
    assert _run(_check_steps(())["comment"], tmp_path, GH_EXISTING="").returncode == 0
    assert (tmp_path / "gh.log").read_text().splitlines()[-1].endswith(f"body=@{tmp_path / 'comment.md'}")
    assert (tmp_path / "comment.md").read_text() == (
        f"{MARKER}\nThe plan is longer than a comment holds: read it in the summary of value of RUN_URL\n")


def test_the_earlier_comment_is_the_bots_own_with_the_marker(tmp_path):
    jq = shutil.which("jq")
    if jq is None:
        pytest.fail("jq not found (the filter gh --jq runs): apt-get install jq", pytrace=False)
    page = [{"id": 1, "user": {"login": "alice"}, "body": f"{MARKER} copied by hand"},
            {"id": 2, "user": {"login": "github-actions[bot]"}, "body": "another workflow's comment"},
            {"id": 3, "user": {"login": "github-actions[bot]"}, "body": f"{MARKER}\n| plan |"},
            {"id": 4, "user": {"login": "github-actions[bot]"}, "body": f"{MARKER}\n| older duplicate |"}]
    result = subprocess.run([jq, MINE], input=json.dumps(page), capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == ["3", "4"]  # the script edits the first
