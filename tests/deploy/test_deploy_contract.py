"""The deploy contract every deployable platform keeps, run against each one's emulator (AWS: moto in
server mode; Google, Azure, Vercel: tests/fakes). A new platform adds one `Cloud` below and inherits
these tests; what only one platform does stays in its own test file."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from framework.deploy import commands
from framework.errors import DeployError
from framework.platforms import registry
from tests.deploy import azure_fixtures, gcp_fixtures, helpers, vercel_fixtures
from tests.deploy.azure_fixtures import azure_env, azure_server  # noqa: F401
from tests.deploy.gcp_fixtures import gcp_env, gcp_server  # noqa: F401
from tests.deploy.helpers import Recorder, Run
from tests.deploy.vercel_fixtures import fake as vercel_env  # noqa: F401
from tests.deploy.vercel_fixtures import vercel_server  # noqa: F401

# what every cloud's waits and backoffs become in tests: no real sleeping
FAST = {"sleep": lambda seconds: None, "backoff": 0.0, "poll_interval": 0}


@dataclass
class Store:
    """What a deploy makes for an agent with sessions on one platform."""

    agent: str  # agent.yaml with sessions on
    creates: list[str]  # the mutating calls that make the store's resources, each made once
    exists: Callable[[], bool]  # whether the store's resources are there


@dataclass
class Cloud:
    """One platform as the contract drives it: its agent.yaml, its emulator, its mutating calls."""

    name: str
    agent: str  # agent.yaml (indented, as in the fixtures)
    emulator: object  # the fake server, or moto's URL
    mutating: Callable[[], list[str]]  # the mutating calls since the last clear()
    clear: Callable[[], None]
    options: dict  # what commands.* get besides FAST (AWS: the recording session)
    # puts a resource with the agent's name but not our mark; returns a check that it is as it was
    plant_foreign: Callable[[], Callable[[], bool]]
    store: Store | None = None  # sessions (a platform whose store needs no resource: None)

    def run(self, command: str, agent: Path, fmt: str = "text") -> Run:
        """A deploy command in-process for this platform only, output captured (errors propagate)."""
        out, err = io.StringIO(), io.StringIO()
        args = [str(agent), self.name, str(agent.parent / "generated"), fmt] + (
            [True] if command in ("deploy", "destroy") else [])
        code = getattr(commands, command)(*args, stdout=out, stderr=err, **FAST, **self.options)
        return Run(code, out.getvalue(), err.getvalue())


def _aws(request: pytest.FixtureRequest) -> Cloud:
    moto = request.getfixturevalue("moto_env")
    recorder = Recorder()

    def plant() -> Callable[[], bool]:
        lam, iam = boto3.client("lambda", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="someone-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(FunctionName="support-bot", Runtime="python3.12", Role=role, Handler="x.y",
                            Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18})
        return lambda: lam.get_function(FunctionName="support-bot")["Configuration"]["Handler"] == "x.y"

    def table() -> bool:
        return "support-bot-sessions" in boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"]

    store = Store(helpers.AGENT + "    sessions:\n      ttl_hours: 24\n",
                  ["PutRolePolicy", "CreateTable", "UpdateTimeToLive"], table)
    return Cloud("aws", helpers.AGENT, moto, lambda: recorder.mutating, recorder.calls.clear,
                 {"session": recorder.session}, plant, store)


def _gcp(request: pytest.FixtureRequest) -> Cloud:
    fake = request.getfixturevalue("gcp_env")

    def plant() -> Callable[[], bool]:
        fake.put_function(gcp_fixtures.FUNCTION, {"buildConfig": {"runtime": "python312", "entryPoint": "main"},
                                                  "labels": {"team": "someone-else"}})
        return lambda: fake.function(gcp_fixtures.FUNCTION)["labels"] == {"team": "someone-else"}

    store = Store(gcp_fixtures.SESSIONS, [f"PATCH /v1/{gcp_fixtures.TTL_FIELD}"],
                  lambda: fake.ttl(gcp_fixtures.TTL_FIELD) is not None)
    return Cloud("gcp", gcp_fixtures.AGENT, fake, fake.mutating, fake.clear_requests, {}, plant, store)


def _azure(request: pytest.FixtureRequest) -> Cloud:
    fake = request.getfixturevalue("azure_env")
    sub, group = azure_fixtures.SUB, azure_fixtures.GROUP

    def plant() -> Callable[[], bool]:
        scope = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Web"
        fake.put_plan(sub, group, "theirs", {"location": "westeurope",
                                             "sku": {"name": "EP1", "tier": "ElasticPremium"}})
        fake.put_site(sub, group, "support-bot", {"location": "westeurope", "tags": {"team": "x"},
                                                  "properties": {"serverFarmId": f"{scope}/serverfarms/theirs"}})
        return lambda: fake.sites[(sub.lower(), group.lower(), "support-bot")]["tags"] == {"team": "x"}

    table = f"storageAccounts/{azure_fixtures.ACCOUNT}/tableServices/default/tables/supportbotsessions"
    store = Store(azure_fixtures.SESSIONS, [f"PUT {table}"],
                  lambda: fake.table_names() == [f"{azure_fixtures.ACCOUNT}/supportbotsessions"])
    return Cloud("azure", azure_fixtures.AGENT, fake, lambda: fake.mutating, fake.clear, {}, plant, store)


def _vercel(request: pytest.FixtureRequest) -> Cloud:
    fake = request.getfixturevalue("vercel_env")

    def plant() -> Callable[[], bool]:
        project = fake.add_project("support-bot", envs=[{"key": "DATABASE_URL", "value": "x", "type": "encrypted",
                                                         "target": ["production"]}])
        theirs = fake.add_deployment(project["id"], meta={"githubCommitSha": "abc"})
        return lambda: project["id"] in fake.state.projects and list(fake.state.deployments) == [theirs["id"]]

    return Cloud("vercel", vercel_fixtures.VERCEL_AGENT, fake, lambda: fake.mutating, fake.clear, {}, plant)


CLOUDS = {"aws": _aws, "gcp": _gcp, "azure": _azure, "vercel": _vercel}


def test_every_deployable_platform_keeps_the_contract():
    """A platform that can deploy and has no Cloud here would skip the contract: it may not."""
    assert set(registry.deployable()) == set(CLOUDS)


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS[request.param](request)


# the platforms whose session store is a cloud resource deploy makes (Vercel's Upstash Redis is
# the project's integration: its plan names the environment variables instead, test_vercel_deploy.py)
STORES = ("aws", "azure", "gcp")


@pytest.fixture(params=STORES)
def store_cloud(request: pytest.FixtureRequest) -> Cloud:
    made = CLOUDS[request.param](request)
    assert made.store is not None
    return made


def write_agent(folder: Path, cloud: Cloud) -> Path:
    return helpers.write_agent(folder, textwrap.dedent(cloud.agent))


def test_a_clean_deploy_plans_nothing_and_calls_nothing_that_changes(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    assert cloud.run("deploy", agent).code == 0
    cloud.clear()
    planned = cloud.run("plan", agent)
    assert planned.code == 0 and "No changes: what is deployed matches agent.yaml." in planned.stdout
    deployed = cloud.run("deploy", agent)
    assert cloud.mutating() == []
    assert "Up to date: " in deployed.stdout and "Deployed" not in deployed.stdout


def test_a_secret_missing_on_a_first_deploy_is_refused_before_any_call(cloud, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    agent = write_agent(tmp_path, cloud)
    planned = cloud.run("plan", agent)
    assert "note: OPENAI_API_KEY is not set in this environment and" in planned.stdout
    assert "does not have it yet: deploy needs it (export OPENAI_API_KEY=..." in planned.stdout
    cloud.clear()
    with pytest.raises(DeployError, match="OPENAI_API_KEY must be set in this environment for the first deploy"):
        cloud.run("deploy", agent)
    assert cloud.mutating() == []


def test_a_secret_not_set_here_is_kept_from_the_deployed_function(cloud, tmp_path, monkeypatch):
    agent = write_agent(tmp_path, cloud)
    cloud.run("deploy", agent)
    monkeypatch.delenv("OPENAI_API_KEY")
    cloud.clear()
    planned = cloud.run("plan", agent)
    assert planned.code == 0
    assert "note: OPENAI_API_KEY is not set in this environment: " in planned.stdout
    assert " keeps its current value" in planned.stdout
    cloud.run("deploy", agent)
    assert cloud.mutating() == []


def test_a_foreign_resource_is_refused_and_destroy_spares_it(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    intact = cloud.plant_foreign()
    cloud.clear()
    with pytest.raises(DeployError, match="not created by this framework"):
        cloud.run("deploy", agent)
    assert cloud.mutating() == []
    destroyed = cloud.run("destroy", agent)
    assert "note: left alone: " in destroyed.stdout and "(not created by this framework for this agent)" in \
        destroyed.stdout
    assert cloud.mutating() == [] and intact()


def test_an_agent_with_sessions_gets_its_store_once_and_destroy_removes_it(store_cloud, tmp_path):
    cloud, store = store_cloud, store_cloud.store
    assert store is not None
    agent = helpers.write_agent(tmp_path, textwrap.dedent(store.agent))
    cloud.clear()
    assert cloud.run("deploy", agent).code == 0
    made = cloud.mutating()
    assert [call for call in made if call in store.creates] == store.creates, made
    assert store.exists()
    cloud.clear()
    assert "No changes" in cloud.run("deploy", agent).stdout
    assert cloud.mutating() == []
    cloud.run("destroy", agent)
    assert not store.exists()
