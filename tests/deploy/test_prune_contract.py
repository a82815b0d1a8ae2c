"""Pruning old versions (issue 14): `targets.aws.keep_versions`, `targets.vercel.keep_deployments`.
After K deploys with keep N < K, deploy has deleted exactly the oldest K - N versions; never the live
one, never one an alias points at (AWS) or another hand made (Vercel), never the one a rollback made
live; a deploy with nothing to prune makes no mutating call. Against moto in server mode and
tests/fakes/vercel_server.py, and `targets.azure.keep_packages` against Azurite's blob service (the
packages the framework keeps, tests/fakes/blob_azurite.py) beside tests/fakes/azure_server.py, driven as
the deploy contract drives them. Google is not asked to prune (see the README): it has no setting."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from framework.errors import ExitCode
from framework.local.http import upstream_port
from framework.platforms.azure.api import Api, blobs
from tests.deploy import azure_fixtures
from tests.deploy.helpers import write_agent as write
from tests.deploy.test_deploy_contract import (  # noqa: F401
    CLOUDS,
    Calls,
    Cloud,
    azure_env,
    azure_server,
    vercel_env,
    vercel_server,
)
from tests.deploy.test_history_contract import run as history_run

SETTING = {"aws": "keep_versions", "vercel": "keep_deployments", "azure": "keep_packages"}
DELETE_API = {"aws": "DeleteFunction", "vercel": "DELETE /v13/deployments/{id}", "azure": "Delete Blob"}
KEPT = re.compile(rf"^(PUT|DELETE) {azure_fixtures.PACKAGES}/support-bot/([0-9a-f]{{64}})\.zip$")
PROMPT = "helpful support"  # in every Cloud's agent.yaml


@pytest.fixture(scope="module")
def moto_server():
    """This module's moto: tests/fakes/moto_lambda.py (moto, with Lambda's version numbers never reused)."""
    port = upstream_port()
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.moto_lambda", "-H", "127.0.0.1", "-p", str(port)],
                               env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "moto server did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _blob_call(call: str) -> str:
    """A recorded Blob call as these tests compare them: "Put Blob", "Delete Blob <sha12>" or "Create Container"."""
    if call == f"PUT {azure_fixtures.PACKAGES}":  # the container, on the first deploy
        return "Create Container"
    found = KEPT.match(call)
    assert found, call
    return "Put Blob" if found.group(1) == "PUT" else f"Delete Blob {found.group(2)[:12]}"


def _azure(request: pytest.FixtureRequest) -> Cloud:
    """The contract's Azure, its mutating calls with the kept packages' Blob calls after ARM's and Kudu's."""
    cloud = CLOUDS["azure"](request)
    fake = cloud.emulator

    def clear() -> None:
        fake.clear()
        fake.blobs.clear()

    return dataclasses.replace(
        cloud, mutating=lambda: fake.mutating + [_blob_call(c) for c in fake.blobs.mutating], clear=clear,
        prompt_only=Calls(cloud.prompt_only.operations, cloud.prompt_only.calls + ["Put Blob"]))


@pytest.fixture(params=sorted(SETTING))
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return _azure(request) if request.param == "azure" else CLOUDS[request.param](request)


def agent_with(cloud: Cloud, folder: Path, keep: int | None, prompt: str = PROMPT) -> Path:
    """The Cloud's agent.yaml (its target block last) with the setting, and the prompt changed."""
    body = cloud.agent.replace(PROMPT, prompt) + (f"        {SETTING[cloud.name]}: {keep}\n" if keep else "")
    return write(folder, body)


def versions(cloud: Cloud) -> list[str]:
    """What the emulator holds of the agent's versions, oldest first."""
    if cloud.name == "aws":
        listed = boto3.client("lambda", region_name="us-east-1").list_versions_by_function(FunctionName="support-bot")
        return sorted((v["Version"] for v in listed["Versions"] if v["Version"] != "$LATEST"), key=int)
    if cloud.name == "azure":  # the kept packages, by the ids history shows
        kept = blobs(Api(azure_fixtures.SUB, azure_fixtures.GROUP, os.environ), azure_fixtures.ACCOUNT)
        return [s.sha[:12] for s in reversed(kept.list("support-bot"))]
    return [d["id"] for d in cloud.emulator.state.deployments.values()
            if d["meta"].get("agentFramework") == "support-bot" and d["target"] == "production"]


def deletes(cloud: Cloud, ids: list[str]) -> list[str]:
    """The emulator's mutating calls that delete these versions."""
    if cloud.name == "aws":
        return ["DeleteFunction"] * len(ids)
    if cloud.name == "azure":
        return [f"Delete Blob {i}" for i in ids]
    return [f"DELETE /v13/deployments/{i}" for i in ids]


def deploy(cloud: Cloud, agent: Path) -> list[str]:
    """A deploy's mutating calls."""
    cloud.clear()
    done = cloud.run("deploy", agent)
    assert done.code == 0, done.stderr
    return cloud.mutating()


def test_after_four_deploys_keeping_two_exactly_the_two_oldest_are_deleted(cloud, tmp_path):
    made, calls = [], []
    for i in range(4):
        calls.append(deploy(cloud, agent_with(cloud, tmp_path, 2, f"support {i}")))
        made.append(versions(cloud)[-1])
    assert len(set(made)) == 4 and versions(cloud) == made[2:]
    change = cloud.prompt_only.calls
    assert calls[1] == change  # two versions: nothing beyond two
    assert calls[2] == change + deletes(cloud, made[:1])  # the new one and the one live before it stay
    assert calls[3] == change + deletes(cloud, made[1:2])


def test_a_deploy_with_nothing_to_prune_makes_no_mutating_call(cloud, tmp_path):
    for i in range(3):
        deploy(cloud, agent_with(cloud, tmp_path, 2, f"support {i}"))
    kept = versions(cloud)
    planned = cloud.run("plan", agent_with(cloud, tmp_path, 2, "support 2"))
    assert planned.code == ExitCode.OK and "No changes" in planned.stdout
    assert deploy(cloud, agent_with(cloud, tmp_path, 2, "support 2")) == []
    assert versions(cloud) == kept


def test_unset_keeps_every_version_as_before(cloud, tmp_path):
    for i in range(3):
        deploy(cloud, agent_with(cloud, tmp_path, None, f"support {i}"))
    assert len(versions(cloud)) == 3


def test_lowering_the_setting_is_a_plan_of_deletes_and_deploy_makes_exactly_them(cloud, tmp_path):
    for i in range(3):
        deploy(cloud, agent_with(cloud, tmp_path, 3, f"support {i}"))
    made = versions(cloud)
    agent = agent_with(cloud, tmp_path, 1, "support 2")
    planned = cloud.run("plan", agent, "json")
    assert planned.code == ExitCode.CHANGES_PENDING
    doomed = [r for r in json.loads(planned.stdout)["resources"] if r["action"] == "delete"]
    assert [op["api"] for r in doomed for op in r["operations"]] == [DELETE_API[cloud.name]] * 2
    if cloud.name == "aws":  # the oldest two, by qualifier
        assert [r["operations"][0]["args"]["Qualifier"] for r in doomed] == made[:2]
    assert deploy(cloud, agent) == deletes(cloud, made[:2])
    assert versions(cloud) == made[2:]  # the live one, the newest


def test_a_rolled_back_agent_keeps_the_version_it_was_rolled_back_to(cloud, tmp_path):
    for i in range(3):
        deploy(cloud, agent_with(cloud, tmp_path, 2, f"support {i}"))
    made = versions(cloud)  # the two newest
    agent = agent_with(cloud, tmp_path, 2, "support 2")
    rolled = history_run(cloud, "rollback", agent, to=made[0])
    assert rolled.code == ExitCode.OK, rolled.stderr
    # live is the older one: a new deploy keeps it (and the newest); none is deleted
    assert deploy(cloud, agent_with(cloud, tmp_path, 2, "support 3")) == cloud.prompt_only.calls
    assert made[0] in versions(cloud) and len(versions(cloud)) == 3, (made, versions(cloud))
    # once it is no longer live it is the oldest beyond two, and goes
    before = versions(cloud)
    calls = deploy(cloud, agent_with(cloud, tmp_path, 2, "support 4"))
    assert calls == cloud.prompt_only.calls + deletes(cloud, made), (made, before, versions(cloud))
    assert made[0] not in versions(cloud)


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS["aws"](request)


@pytest.fixture
def vercel(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS["vercel"](request)


def test_aws_never_deletes_a_version_an_alias_points_at(aws, tmp_path):
    deploy(aws, agent_with(aws, tmp_path, 1, "support 0"))
    lam = boto3.client("lambda", region_name="us-east-1")
    lam.create_alias(FunctionName="support-bot", Name="pinned", FunctionVersion="1")  # by another hand
    for i in range(1, 4):
        deploy(aws, agent_with(aws, tmp_path, 1, f"support {i}"))
    # 1 is pinned, 3 was live as the last deploy began (until it moved the alias to 4)
    assert versions(aws) == ["1", "3", "4"]
    assert "lambda versions support-bot (3 published, keep the newest 1 and aliased 1)" in aws.run(
        "plan", agent_with(aws, tmp_path, 1, "support 3")).stdout


def test_vercel_never_deletes_a_deployment_another_hand_made(vercel, tmp_path):
    deploy(vercel, agent_with(vercel, tmp_path, 1, "support 0"))
    fake = vercel.emulator
    project = next(iter(fake.state.projects))
    theirs = fake.add_deployment(project, meta={"githubCommitSha": "abc"})  # a git push, say
    for i in range(1, 3):
        deploy(vercel, agent_with(vercel, tmp_path, 1, f"support {i}"))
    # theirs stays; of ours, the newest, and the one live as the last deploy began (until it replaced it)
    assert theirs["id"] in fake.state.deployments and len(versions(vercel)) == 2
