"""history and rollback on every platform that keeps versions, against its emulator (moto in server
mode, tests/fakes), driven as the deploy contract drives them (tests/deploy/test_deploy_contract.py)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from framework.config.validate import validate_file
from framework.deploy import history as commands
from framework.errors import DeployError, ExitCode, UsageError
from tests.deploy import azure_fixtures, gcp_fixtures
from tests.deploy.azure_fixtures import azure_env, azure_server  # noqa: F401
from tests.deploy.gcp_fixtures import gcp_env, gcp_server  # noqa: F401
from tests.deploy.helpers import Run
from tests.deploy.test_deploy_contract import CLOUDS, FAST, PROMPT_ONLY, Cloud, write_agent
from tests.deploy.vercel_fixtures import fake as vercel_env  # noqa: F401
from tests.deploy.vercel_fixtures import vercel_server  # noqa: F401

# the platforms whose history and rollback are built, and the mutating calls of one rollback
ROLLBACK_CALLS = {
    "aws": lambda versions: ["UpdateAlias"],
    "gcp": lambda versions: [f"PATCH /v2/projects/{gcp_fixtures.PROJECT}/locations/{gcp_fixtures.REGION}/services/"
                             "support-bot"],
    "vercel": lambda versions: [f"POST /v10/projects/prj_000001/promote/{versions[1]}"],
    # the kept package (Get Blob from Azurite: a read) published again, then recorded as the app's package
    "azure": lambda versions: ["POST kudu /api/publish", "PUT sites/support-bot/config/appsettings"],
}

KIND = {"aws": "version", "gcp": "revision", "azure": "package", "vercel": "deployment"}


@pytest.fixture(params=sorted(ROLLBACK_CALLS))
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS[request.param](request)


def run(cloud: Cloud, command: str, agent: Path, **kwargs) -> Run:
    """history or rollback in-process (json), for this platform only; errors propagate."""
    out, err = io.StringIO(), io.StringIO()
    args = [str(agent), cloud.name, str(agent.parent / "generated"), "json"] + ([True] if command == "rollback"
                                                                               else [])
    code = getattr(commands, command)(*args, stdout=out, stderr=err, sleep=cloud.sleeps.append, **FAST,
                                      **cloud.options, **kwargs)
    return Run(code, out.getvalue(), err.getvalue())


def versions(cloud: Cloud, agent: Path) -> list[dict]:
    shown = run(cloud, "history", agent)
    assert shown.code == ExitCode.OK, shown.stderr
    return json.loads(shown.stdout)["versions"]


def test_two_deploys_are_two_versions_and_rollback_makes_the_first_live_until_the_next_deploy(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    assert cloud.run("deploy", agent).code == 0
    agent.write_text(agent.read_text().replace(*PROMPT_ONLY))
    assert cloud.run("deploy", agent).code == 0

    listed = versions(cloud, agent)
    assert len(listed) == 2 and [v["live"] for v in listed] == [True, False]  # newest first, the second live
    assert listed[0]["created"] and listed[0]["content"]
    ids = [v["id"] for v in listed]

    cloud.clear()
    rolled = run(cloud, "rollback", agent)
    assert rolled.code == ExitCode.OK, rolled.stderr
    assert cloud.mutating() == ROLLBACK_CALLS[cloud.name](ids)
    assert json.loads(rolled.stdout) == {"from": ids[0], "to": ids[1], "kind": KIND[cloud.name], "changed": True}
    assert [v["live"] for v in versions(cloud, agent)] == [False, True]

    assert cloud.run("plan", agent).code == ExitCode.CHANGES_PENDING  # agent.yaml is not what is live
    assert cloud.run("deploy", agent).code == 0
    assert cloud.run("plan", agent).code == ExitCode.OK
    assert versions(cloud, agent)[0]["live"]


def test_each_version_shows_its_own_content_hash_and_prompt_digest(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    assert cloud.run("deploy", agent).code == 0
    first = validate_file(agent).agent.prompt_digest
    agent.write_text(agent.read_text().replace(*PROMPT_ONLY))
    assert cloud.run("deploy", agent).code == 0
    second = validate_file(agent).agent.prompt_digest

    shown = run(cloud, "history", agent)
    listed = json.loads(shown.stdout)["versions"]
    assert [v["prompt"] for v in listed] == [second, first] and first != second
    assert all(len(v["content"]) == 64 for v in listed) and listed[0]["content"] != listed[1]["content"]
    assert "digest" not in " ".join(json.loads(shown.stdout)["notes"])  # nothing said to be unknown


def test_rollback_to_an_unknown_version_is_a_usage_error_listing_the_versions(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    assert cloud.run("deploy", agent).code == 0
    ids = [v["id"] for v in versions(cloud, agent)]
    cloud.clear()
    with pytest.raises(UsageError, match=f"no .* 'nope' .*{ids[0]}"):
        run(cloud, "rollback", agent, to="nope")
    assert cloud.mutating() == []


def test_rollback_with_one_version_says_there_is_nothing_to_roll_back_to(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    assert cloud.run("deploy", agent).code == 0
    cloud.clear()
    with pytest.raises(DeployError, match="nothing to roll back to"):
        run(cloud, "rollback", agent)
    assert cloud.mutating() == []


@pytest.fixture
def azure(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS["azure"](request)


def test_azure_without_a_storage_account_says_it_keeps_no_package(azure, tmp_path):
    """Premium without sessions.account: no account to keep packages in, said plainly, nothing stored."""
    agent = write_agent(tmp_path, dataclasses.replace(azure, agent=azure_fixtures.PREMIUM))
    assert azure.run("deploy", agent).code == 0
    assert azure.emulator.blobs.mutating == []
    shown = run(azure, "history", agent)
    assert shown.code == ExitCode.FAILED and "need a storage account" in json.loads(shown.stdout)["error"]
    with pytest.raises(DeployError, match="need a storage account"):
        run(azure, "rollback", agent)
