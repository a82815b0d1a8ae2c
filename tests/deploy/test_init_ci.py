"""init-ci writes a GitOps workflow: checks and plan on pull requests, deploy on main, no stored cloud keys."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from framework.cli import main

AGENT = """\
    name: support-bot
    prompt: You are helpful.
    model: gpt-4o-mini
    secrets:
      OPENAI_API_KEY: {gcp: projects/my-project-123/secrets/openai-key}
    targets:
      aws: {region: eu-west-1}
      gcp: {project: my-project-123, region: us-central1}
"""


def _workflow(tmp_path, body: str = AGENT) -> tuple[dict, str]:
    agent = tmp_path / "agent.yaml"
    agent.write_text(textwrap.dedent(body), encoding="utf-8")
    path = tmp_path / ".github" / "workflows" / "agent.yml"
    assert main(["init-ci", "-f", str(agent), "--workflow", str(path)]) == 0
    text = path.read_text()
    return yaml.safe_load(text), text


def _runs(job: dict) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def test_pull_requests_validate_with_annotations_check_generated_and_plan(tmp_path):
    flow, _ = _workflow(tmp_path)
    check = flow["jobs"]["check"]
    assert check["if"] == "github.event_name == 'pull_request'"
    runs = " ".join(_runs(check))
    assert "validate" in runs and "--format github" in runs
    assert "build" in runs and "--check" in runs
    assert "framework plan" in runs and "[ $? -eq 2 ]" in runs


def test_the_main_branch_deploys_without_asking(tmp_path):
    flow, _ = _workflow(tmp_path)
    deploy = flow["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"]
    assert any("framework deploy" in run and "--yes" in run for run in _runs(deploy))


def test_pull_requests_get_read_only_identities_and_no_function_secrets(tmp_path):
    body = AGENT.replace("      gcp: {project: my-project-123, region: us-central1}\n",
                         "      gcp: {project: my-project-123, region: us-central1}\n      vercel: {timeout: 25}\n")
    flow, _ = _workflow(tmp_path, body)
    check = flow["jobs"]["check"]["steps"]
    aws = next(step for step in check if step.get("uses", "").startswith("aws-actions/"))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PLAN_ROLE_ARN }}"
    plan = next(step for step in check if "framework plan" in step.get("run", ""))
    assert plan["env"] == {"VERCEL_TOKEN": "${{ secrets.VERCEL_PLAN_TOKEN }}"}
    deploy = flow["jobs"]["deploy"]["steps"]
    aws = next(step for step in deploy if step.get("uses", "").startswith("aws-actions/"))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"


def test_credentials_come_from_oidc_federation_for_each_target_only(tmp_path):
    flow, text = _workflow(tmp_path)
    assert flow["permissions"]["id-token"] == "write"
    uses = [step.get("uses", "") for step in flow["jobs"]["deploy"]["steps"]]
    assert any(u.startswith("aws-actions/configure-aws-credentials") for u in uses)
    assert any(u.startswith("google-github-actions/auth") for u in uses)
    assert not any(u.startswith("azure/login") for u in uses)  # not a target here
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "eu-west-1" in text


def test_a_secret_some_target_takes_from_the_environment_comes_from_github_secrets(tmp_path):
    flow, _ = _workflow(tmp_path)
    env = next(step for step in flow["jobs"]["deploy"]["steps"] if "deploy" in step.get("run", ""))["env"]
    assert env == {"OPENAI_API_KEY": "${{ secrets.OPENAI_API_KEY }}"}  # aws has no reference for it


def test_vercel_needs_its_token_secret_and_azure_its_federated_login(tmp_path):
    body = AGENT.replace("      aws: {region: eu-west-1}\n", "      vercel: {timeout: 25}\n      azure: "
                         "{resource_group: rg, region: westeurope, timeout: 200, memory: 2048}\n")
    flow, _ = _workflow(tmp_path, body)
    steps = flow["jobs"]["deploy"]["steps"]
    assert any(step.get("uses", "").startswith("azure/login") for step in steps)
    env = next(step for step in steps if "deploy" in step.get("run", ""))["env"]
    assert env["VERCEL_TOKEN"] == "${{ secrets.VERCEL_TOKEN }}"


def test_an_existing_workflow_is_kept_unless_forced(tmp_path, capsys):
    _workflow(tmp_path)
    path = tmp_path / ".github" / "workflows" / "agent.yml"
    assert main(["init-ci", "-f", str(tmp_path / "agent.yaml"), "--workflow", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--force"])
def test_force_overwrites(tmp_path, flag):
    _workflow(tmp_path)
    path = tmp_path / ".github" / "workflows" / "agent.yml"
    path.write_text("old")
    assert main(["init-ci", "-f", str(tmp_path / "agent.yaml"), "--workflow", str(path), flag]) == 0
    assert path.read_text() != "old"


def test_a_workflow_path_that_cannot_be_written_is_one_line_of_error(tmp_path, capsys):
    _workflow(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the workflow's folder should be")
    code = main(["init-ci", "-f", str(tmp_path / "agent.yaml"), "--workflow", str(blocker / "agent.yml")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [f"error: cannot write the workflow {blocker / 'agent.yml'}: "
                                        f"{blocker} is a file, not a folder; pass another path with --workflow"]
