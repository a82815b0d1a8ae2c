"""The workflow init-ci writes, for every shape of repository, holds to the hardening rules: zizmor
(the GitHub Actions security linter, offline) finds nothing high or medium, GitHub's workflow JSON
Schema accepts it, and the rules zizmor does not state are checked here one by one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from framework import __version__
from framework.deploy.ci import Repository, init_ci, workflow
from tests.deploy.test_init_ci import AGENT as INIT_CI_AGENT

BIN = Path(sys.executable).parent
ONE_TARGET = """\
    name: support-bot
    prompt: You are helpful.
    model: gpt-4o-mini
    targets:
      aws: {region: eu-west-1}
"""
ALL_FOUR = """\
    name: support-bot
    prompt: You are helpful.
    model: gpt-4o-mini
    secrets:
      OPENAI_API_KEY: {gcp: projects/my-project-123/secrets/openai-key, aws: ssm:/agents/openai-key,
                       azure: https://vault-1.vault.azure.net/secrets/openai-key}
    targets:
      aws: {region: eu-west-1}
      gcp: {project: my-project-123, region: us-central1}
      azure: {resource_group: rg, region: westeurope, timeout: 200, memory: 2048}
      vercel: {timeout: 25}
"""
SECRET_FROM_THE_ENVIRONMENT = INIT_CI_AGENT  # aws takes the key from the deploying environment
EVERY_TARGET = {"aws": {"region": "eu-west-1"}, "gcp": {"project": "p", "region": "us-central1"},
                "azure": {"resource_group": "rg", "region": "westeurope"}, "vercel": {}}


def _from_file(body: str) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        (root / "agent.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
        return init_ci([str(root / "agent.yaml")], str(root / ".github" / "workflows" / "agent.yml"))
    return write


def _from_repository(repository: Repository) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        path = root / ".github" / "workflows" / "agent.yml"
        path.parent.mkdir(parents=True)
        path.write_text(workflow(repository), encoding="utf-8")
        return path
    return write


# the agent files init-ci reads today; stages through the pure function (agent.yaml's `stages:` is read
# by init_ci with stage_names, tested in test_init_ci.py)
SHAPES = {
    "one target": _from_file(ONE_TARGET),
    "all four targets": _from_file(ALL_FOUR),
    "a secret from the environment": _from_file(SECRET_FROM_THE_ENVIRONMENT),
    "stages dev, prod on all four targets": _from_repository(
        Repository(EVERY_TARGET, from_env=("OPENAI_API_KEY",), stages=("dev", "prod"))),
    "three stages, two named files, vercel only": _from_repository(
        Repository({"vercel": {}}, stages=("dev", "qa", "prod"), files=("bots/a/agent.yaml", "bots/b/agent.yaml"))),
}
# what the old workflow had wrong, so the linter tests show they can fail
KNOWN_BAD = """\
on: push
permissions:
  contents: read
  id-token: write
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
"""


@pytest.fixture(params=SHAPES, scope="module")
def written(request, tmp_path_factory) -> tuple[Path, dict, str]:
    path = SHAPES[request.param](tmp_path_factory.mktemp("repo"))
    text = path.read_text()
    return path, yaml.safe_load(text), text


def _tool(name: str) -> str:
    """A linter installed by `make install-test` (setup.cfg's test extras); missing, the test fails."""
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{path} not found: run `make install-test`", pytrace=False)
    return str(path)


def _serious_zizmor_findings(path: Path) -> list[str]:
    result = subprocess.run([_tool("zizmor"), "--offline", "--format", "json", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("["), result.stderr
    return sorted(f"{finding['ident']}: {finding['desc']}" for finding in json.loads(result.stdout)
                  if not finding["ignored"] and finding["determinations"]["severity"] in ("High", "Medium"))


def _schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_zizmor_finds_nothing_high_or_medium(written):
    path, _, _ = written
    assert _serious_zizmor_findings(path) == []


@pytest.mark.slow
def test_the_github_workflow_schema_accepts_it(written):
    path, _, _ = written
    result = _schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_linters_do_reject_a_workflow_with_the_old_mistakes(tmp_path):
    path = tmp_path / ".github" / "workflows" / "bad.yml"
    path.parent.mkdir(parents=True)
    path.write_text(KNOWN_BAD)
    idents = {finding.split(":")[0] for finding in _serious_zizmor_findings(path)}
    assert {"unpinned-uses", "artipacked", "excessive-permissions", "template-injection"} <= idents
    path.write_text(KNOWN_BAD.replace("    runs-on: ubuntu-latest\n", ""))
    assert _schema_check(path).returncode == 1


def test_every_action_is_pinned_to_a_commit_with_its_version_beside_it(written):
    _, _, text = written
    uses = [line.strip() for line in text.splitlines() if "uses:" in line]
    assert uses
    for line in uses:
        assert re.fullmatch(r"- uses: [\w-]+/[\w-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+", line), line


def test_every_checkout_leaves_no_credentials_behind(written):
    _, flow, _ = written
    checkouts = [step for job in flow["jobs"].values() for step in job["steps"]
                 if step.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == len(flow["jobs"])
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_every_job_has_a_timeout(written):
    _, flow, _ = written
    assert all(isinstance(job.get("timeout-minutes"), int) for job in flow["jobs"].values())


def test_every_job_installs_this_exact_version_of_the_framework(written):
    _, flow, _ = written
    for job in flow["jobs"].values():
        runs = [step["run"].strip() for step in job["steps"] if "pip install" in step.get("run", "")]
        assert runs == [f"python -m pip install serverless-agent-hosting=={__version__}"]


def _listed_under(header: str, heading: str) -> set[str]:
    """The names on the indented comment lines right below the heading."""
    lines = header.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(heading)) + 1
    listed = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        listed += re.findall(r"\w+", line[4:])
    return set(listed)


def test_the_header_names_every_variable_and_secret_the_body_reads(written):
    _, _, text = written
    header, body = text.split("\nname: agent\n")
    for kind, heading in (("vars", "# Variables it reads"), ("secrets", "# Secrets it reads")):
        read = set(re.findall(rf"\$\{{\{{ {kind}\.(\w+) }}\}}", body))
        assert _listed_under(header, heading) == (read or {"none"})


def test_no_expression_is_expanded_inside_a_script(written):
    _, flow, _ = written
    assert not [step["run"] for job in flow["jobs"].values() for step in job["steps"] if "${{" in step.get("run", "")]


def test_permissions_are_granted_per_job_and_none_at_the_top(written):
    _, flow, _ = written
    assert flow["permissions"] == {}
    for job in flow["jobs"].values():
        assert job["permissions"]["contents"] == "read"


def test_only_the_commenting_job_may_write_to_pull_requests(written):
    _, flow, _ = written
    for job in flow["jobs"].values():
        comments = any("gh api" in step.get("run", "") for step in job["steps"])
        assert ("pull-requests" in job["permissions"]) == comments
    assert flow["jobs"]["check"]["permissions"].get("pull-requests") == "write"


def test_only_jobs_that_sign_in_to_a_cloud_get_an_oidc_token(written):
    _, flow, _ = written
    logins = ("aws-actions/", "google-github-actions/", "azure/")
    for job in flow["jobs"].values():
        signs_in = any(step.get("uses", "").startswith(logins) for step in job["steps"])
        assert job["permissions"].get("id-token") == ("write" if signs_in else None)


def test_the_deploy_jobs_run_one_after_another_the_last_in_production(written):
    _, flow, text = written
    deploys = {name: job for name, job in flow["jobs"].items() if name.startswith("deploy")}
    order = [next(name for name, job in deploys.items() if "needs" not in job)]
    while follower := next((name for name, job in deploys.items() if job.get("needs") == order[-1]), None):
        order.append(follower)
    assert sorted(order) == sorted(deploys)  # one chain through every deploy job
    stages = [re.search(r"--stage (\S+)", deploys[name]["steps"][-1]["run"]) for name in order]
    assert [deploys[name]["environment"] for name in order] == [
        *(match.group(1) for match in stages[:-1]), "production"]
    assert all(f"deploy-{match.group(1)}" == name for match, name in zip(stages, order, strict=True) if match)
