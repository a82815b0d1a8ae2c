"""init-ci writes a GitOps workflow: checks and a plan comment on pull requests, deploy on main, no
stored cloud keys, the framework pinned to the version that wrote it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from framework import __version__
from framework.deploy.ci import MARKER, init_ci, stage_names
from framework.errors import OutputError, UsageError

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
VERCEL_AND_AZURE = AGENT.replace("      aws: {region: eu-west-1}\n", "      vercel: {timeout: 25}\n      azure: "
                                 "{resource_group: rg, region: westeurope, timeout: 200, memory: 2048}\n")


def _agent(folder: Path, body: str = AGENT, name: str = "support-bot") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent.yaml"
    path.write_text(textwrap.dedent(body).replace("support-bot", name), encoding="utf-8")
    return str(path)


def _workflow(tmp_path: Path, body: str = AGENT, **options) -> tuple[dict, str]:
    path = init_ci([_agent(tmp_path, body)], str(tmp_path / ".github" / "workflows" / "agent.yml"), **options)
    text = path.read_text()
    return yaml.safe_load(text), text


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _step(job: dict, text: str) -> dict:
    return next(step for step in job["steps"] if text in step.get("run", ""))


def test_pull_requests_validate_with_annotations_check_generated_and_plan(tmp_path):
    flow, _ = _workflow(tmp_path)
    check = flow["jobs"]["check"]
    assert check["if"] == "github.event_name == 'pull_request'"
    runs = _runs(check)
    assert "agenthost validate --format github" in runs
    assert "agenthost build --check" in runs
    assert "agenthost plan --format markdown" in runs and "|| [ $? -eq 2 ]" in runs  # 2 = changes pending


def test_the_plan_goes_to_the_job_summary_and_one_comment_found_by_its_marker(tmp_path):
    flow, _ = _workflow(tmp_path)
    check = flow["jobs"]["check"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in _step(check, "agenthost plan")["run"]
    comment = _step(check, "gh api")
    assert MARKER in comment["run"] and "--method PATCH" in comment["run"] and "--method POST" in comment["run"]
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_the_main_branch_deploys_without_asking(tmp_path):
    flow, _ = _workflow(tmp_path)
    deploy = flow["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["environment"] == "production"
    assert "agenthost deploy --yes" in _runs(deploy)


def test_another_branch_deploys_when_named(tmp_path):
    flow, _ = _workflow(tmp_path, branch="release")
    assert flow[True]["push"]["branches"] == ["release"]  # YAML 1.1 reads the key `on` as true
    assert "refs/heads/release" in flow["jobs"]["deploy"]["if"]


@pytest.mark.parametrize("install, line", [
    (None, f"python -m pip install serverless-agent-hosting=={__version__}"),
    (f"serverless-agent-hosting @ git+https://github.com/ORG/REPO@v{__version__}",
     f"python -m pip install 'serverless-agent-hosting @ git+https://github.com/ORG/REPO@v{__version__}'"),
])
def test_every_job_installs_the_framework_pinned_not_the_checkout(tmp_path, install, line):
    flow, _ = _workflow(tmp_path, install=install)
    for job in flow["jobs"].values():
        assert line in _runs(job).splitlines()
        assert "pip install ." not in _runs(job)


def test_pull_requests_get_read_only_identities_and_no_function_secrets(tmp_path):
    body = AGENT.replace("      gcp: {project: my-project-123, region: us-central1}\n",
                         "      gcp: {project: my-project-123, region: us-central1}\n      vercel: {timeout: 25}\n")
    flow, _ = _workflow(tmp_path, body)
    check = flow["jobs"]["check"]
    aws = next(step for step in check["steps"] if step.get("uses", "").startswith("aws-actions/"))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PLAN_ROLE_ARN }}"
    assert _step(check, "agenthost plan")["env"] == {"VERCEL_TOKEN": "${{ secrets.VERCEL_PLAN_TOKEN }}",
                                                     "HEAD_SHA": "${{ github.event.pull_request.head.sha }}"}
    deploy = flow["jobs"]["deploy"]["steps"]
    aws = next(step for step in deploy if step.get("uses", "").startswith("aws-actions/"))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"


def test_credentials_come_from_oidc_federation_for_each_target_only(tmp_path):
    flow, text = _workflow(tmp_path)
    assert flow["permissions"] == {}
    assert flow["jobs"]["deploy"]["permissions"] == {"contents": "read", "id-token": "write"}
    uses = [step.get("uses", "") for step in flow["jobs"]["deploy"]["steps"]]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    assert any(u.startswith("google-github-actions/auth@") for u in uses)
    assert not any(u.startswith("azure/login@") for u in uses)  # not a target here
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "aws-region: eu-west-1" in text


def test_a_platform_without_federation_gets_no_oidc_token(tmp_path):
    flow, _ = _workflow(tmp_path, AGENT.replace("      aws: {region: eu-west-1}\n      gcp: {project: my-project-123, "
                                                "region: us-central1}\n", "      vercel: {timeout: 25}\n"))
    assert flow["jobs"]["deploy"]["permissions"] == {"contents": "read"}
    assert flow["jobs"]["check"]["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_a_secret_some_target_takes_from_the_environment_comes_from_github_secrets(tmp_path):
    flow, text = _workflow(tmp_path)
    assert _step(flow["jobs"]["deploy"], "agenthost deploy")["env"] == {
        "OPENAI_API_KEY": "${{ secrets.OPENAI_API_KEY }}"}  # aws has no reference for it
    header = text.split("\nname: agent\n")[0]
    assert header.split("# Secrets it reads")[1].splitlines()[1] == "#   OPENAI_API_KEY"


def test_vercel_needs_its_token_secret_and_azure_its_federated_login(tmp_path):
    flow, _ = _workflow(tmp_path, VERCEL_AND_AZURE)
    deploy = flow["jobs"]["deploy"]
    assert any(step.get("uses", "").startswith("azure/login@") for step in deploy["steps"])
    assert _step(deploy, "agenthost deploy")["env"]["VERCEL_TOKEN"] == "${{ secrets.VERCEL_TOKEN }}"


def test_a_target_the_workflow_cannot_reach_is_a_usage_error_naming_the_file(tmp_path):
    agent = _agent(tmp_path, AGENT.replace("aws: {region: eu-west-1}", "aws: {}"))
    with pytest.raises(UsageError, match=rf"init-ci needs `region:` under targets.aws in {agent}"):
        init_ci([agent], str(tmp_path / ".github" / "workflows" / "agent.yml"))


@pytest.mark.parametrize("layout, named, flags", [
    (["."], ["."], ""),  # agent.yaml at the root: what agenthost finds by itself
    (["agents/a", "agents/b"], ["agents/b", "agents/a"], ""),  # every agents/*/agent.yaml, in any order
    (["agents/a", "agents/b"], ["agents/a"], " -f agents/a/agent.yaml"),  # some of them
    (["bots/x"], ["bots/x"], " -f bots/x/agent.yaml"),  # where discovery does not look
])
def test_the_commands_name_the_files_unless_agenthost_finds_exactly_them(tmp_path, layout, named, flags):
    for index, folder in enumerate(layout):
        _agent(tmp_path / folder, name=f"bot-{index}")
    path = init_ci([str(tmp_path / folder / "agent.yaml") for folder in named],
                   str(tmp_path / ".github" / "workflows" / "agent.yml"))
    runs = _runs(yaml.safe_load(path.read_text())["jobs"]["check"])
    assert f"agenthost validate{flags} --format github" in runs
    assert f"agenthost build{flags} --check" in runs


def test_a_file_outside_the_repository_is_a_usage_error(tmp_path):
    agent = _agent(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="outside the repository the workflow runs in"):
        init_ci([agent], str(tmp_path / "repo" / ".github" / "workflows" / "agent.yml"))


@pytest.mark.parametrize("documents, stages", [
    ([{}], ()),
    ([{"stages": {"dev": {}, "prod": {}}}], ("dev", "prod")),
    ([{"stages": {"prod": {}, "dev": {}}}], ("prod", "dev")),  # the order written is the deploy order
    ([{"stages": {"dev": {}}}, {"stages": {"qa": {}, "dev": {}}}, {}], ("dev", "qa")),  # union, first seen first
])
def test_the_stages_are_those_of_the_files_in_the_order_written(documents, stages):
    assert stage_names(documents) == stages


def test_an_existing_workflow_is_kept_unless_forced(tmp_path):
    _, before = _workflow(tmp_path)
    path = tmp_path / ".github" / "workflows" / "agent.yml"
    with pytest.raises(UsageError, match="already exists: pass --force to overwrite it"):
        init_ci([str(tmp_path / "agent.yaml")], str(path))
    assert path.read_text() == before


def test_force_overwrites(tmp_path):
    _workflow(tmp_path)
    path = tmp_path / ".github" / "workflows" / "agent.yml"
    path.write_text("old")
    init_ci([str(tmp_path / "agent.yaml")], str(path), force=True)
    assert path.read_text().startswith("# Generated by `agenthost init-ci`")


def test_a_workflow_path_that_cannot_be_written_says_why_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the repository, for a workflow outside .github/workflows/
    agent = _agent(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the workflow's folder should be")
    with pytest.raises(OutputError) as error:
        init_ci([agent], str(blocker / "agent.yml"))
    assert str(error.value) == (f"cannot write the workflow {blocker / 'agent.yml'}: {blocker} is a file, not a "
                                "folder; pass another path with --workflow")


STAGED = AGENT + """\
    stages:
      dev: {model: gpt-4o-mini}
      prod:
        targets: {vercel: {timeout: 25}}
"""


def test_an_agent_with_stages_gets_a_plan_and_a_deploy_job_per_stage_in_order(tmp_path):
    flow, text = _workflow(tmp_path, STAGED)
    runs = _runs(flow["jobs"]["check"])
    assert runs.index("plan --stage dev --format markdown") < runs.index("plan --stage prod --format markdown")
    dev, prod = flow["jobs"]["deploy-dev"], flow["jobs"]["deploy-prod"]
    assert "agenthost deploy --stage dev --yes" in _runs(dev) and "agenthost deploy --stage prod --yes" in _runs(prod)
    assert prod["needs"] == "deploy-dev" and (dev["environment"], prod["environment"]) == ("dev", "production")
    assert "secrets.VERCEL_TOKEN" in text  # the prod stage adds Vercel: its token is read, and named in the header
    assert "VERCEL_TOKEN" in text.split("\nname:")[0]
