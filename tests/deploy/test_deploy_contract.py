"""The deploy contract every deployable platform keeps, run against each one's emulator (AWS: moto in
server mode; Google, Azure, Vercel: tests/fakes). A new platform adds one `Cloud` below and inherits
these tests; what only one platform does stays in its own test file."""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from framework.deploy import commands
from framework.errors import DeployError
from framework.platforms import registry
from framework.platforms.aws import planner as aws_planner
from framework.platforms.aws.api import Api, read_snapshot
from framework.platforms.gcp import planner as gcp_planner
from tests.deploy import azure_fixtures, gcp_fixtures, helpers, vercel_fixtures
from tests.deploy.azure_fixtures import azure_env, azure_server  # noqa: F401
from tests.deploy.gcp_fixtures import gcp_env, gcp_server  # noqa: F401
from tests.deploy.helpers import Interrupted, Recorder, Run
from tests.deploy.vercel_fixtures import fake as vercel_env  # noqa: F401
from tests.deploy.vercel_fixtures import vercel_server  # noqa: F401
from tests.fakes import azure_server as azure_fake
from tests.fakes import gcp_server as gcp_fake

# what every cloud's waits and polls become in tests: no real sleeping (the waits are recorded, see Cloud.sleeps)
FAST = {"backoff": 0.0, "poll_interval": 0}
PROMPT_ONLY = ("helpful support", "terse support")  # every Cloud's agent.yaml has this prompt
CONCURRENCY_ONLY = ("max: 10", "max: 25")  # ... and this concurrency
EMPTY_ZIP = b"PK\x05\x06" + b"\0" * 18


class _Raw:
    """A body for botocore's AWSResponse."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


@dataclass(frozen=True)
class Calls:
    """What a change is expected to do: the plan's operations (`Operation.api`) and the emulator's
    mutating calls (as `Cloud.mutating` shows them); both empty: the platform has nothing to change."""

    operations: list[str]
    calls: list[str]


@dataclass
class Store:
    """What a deploy makes for an agent with sessions on one platform."""

    agent: str  # agent.yaml with sessions on
    creates: list[str]  # the mutating calls that make the store's resources, each made once
    exists: Callable[[], bool]  # whether the store's resources are there


@dataclass
class Cloud:
    """One platform as the contract drives it: its agent.yaml, its emulator, its mutating calls, and
    what a first deploy, a prompt-only change, a concurrency-only change and a destroy call."""

    name: str
    agent: str  # agent.yaml (indented, as in the fixtures)
    emulator: object  # the fake server, or moto's URL
    mutating: Callable[[], list[str]]  # the mutating calls since the last clear(), one per call
    clear: Callable[[], None]
    options: dict  # what commands.* get besides FAST and the sleep (AWS: the recording session)
    # puts a resource with the agent's name but not our mark; returns a check that it is as it was
    plant_foreign: Callable[[], Callable[[], bool]]
    first_deploy: list[str]  # the mutating calls of a first deploy, in order
    prompt_only: Calls
    concurrency_only: Calls
    destroy_calls: list[str]  # the mutating calls of a destroy after a first deploy
    reset: Callable[[], None]  # a clean emulator, as at the start of the test
    state: Callable[[], object]  # what is deployed, without what the emulator draws at random
    ours: Callable[[], list[str]]  # what of this agent's exists in the emulator
    # puts resources that are not ours under other names; returns a check that they are as they were
    plant_others: Callable[[], Callable[[], bool]]
    # from now on every mutating call after the n-th fails as if the process died (None: stop failing)
    interrupt: Callable[[int | None], None]
    # the next `count` mutating calls are answered `status` with Retry-After: `retry_after`
    inject: Callable[[int, int, str], None]
    # every mutating try sent since the last clear() (a retried call once per try)
    attempts: Callable[[], list[str]]
    resumed: Callable[[int], list[str]] | None = None  # a re-run's calls after an interruption after n
    honours_retry_after: bool = True  # its waits are the Retry-After asked for (botocore backs off its own way)
    sleeps: list[float] = field(default_factory=list)  # every wait the deploys asked for, none slept
    store: Store | None = None  # sessions (a platform whose store needs no resource: None)

    def run(self, command: str, agent: Path, fmt: str = "text") -> Run:
        """A deploy command in-process for this platform only, output captured (errors propagate)."""
        out, err = io.StringIO(), io.StringIO()
        args = [str(agent), self.name, str(agent.parent / "generated"), fmt] + (
            [True] if command in ("deploy", "destroy") else [])
        code = getattr(commands, command)(*args, stdout=out, stderr=err, sleep=self.sleeps.append, **FAST,
                                          **self.options)
        return Run(code, out.getvalue(), err.getvalue())

    def left_after(self, n: int) -> list[str]:
        """What a re-run does after a first deploy interrupted after n calls: what was left, unless
        the platform says otherwise."""
        return self.resumed(n) if self.resumed else self.first_deploy[n:]


def _aws(request: pytest.FixtureRequest) -> Cloud:
    moto = request.getfixturevalue("moto_env")
    recorder = Recorder()
    sleeps: list[float] = []
    # botocore waits between its retries with time.sleep: recorded instead, with everything else
    request.getfixturevalue("monkeypatch").setattr(botocore.endpoint, "time", SimpleNamespace(
        sleep=sleeps.append, time=botocore.endpoint.time.time))
    lam, iam = boto3.client("lambda", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1")
    sent: list[str] = []
    faults: list[tuple[int, str]] = []

    def before_send(request, **kwargs):  # after before-call: recorder.calls[-1] is the call being sent
        if helpers.is_read(recorder.calls[-1]):
            return None
        sent.append(recorder.calls[-1])
        if faults:
            status, retry_after = faults.pop(0)
            code = "Throttling" if status == 429 else "ServiceUnavailable"
            if "x-www-form-urlencoded" in str(request.headers.get("Content-Type", "")):  # IAM's query protocol
                body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected {status}"
                        "</Message></Error></ErrorResponse>").encode()
            else:
                body = json.dumps({"Type": "Service", "message": f"injected {status}"}).encode()
            return AWSResponse(request.url, status, {"x-amzn-ErrorType": code, "Retry-After": retry_after},
                               _Raw(body))
        return None

    recorder.session.events.register("before-send", before_send)

    def clear() -> None:
        recorder.calls.clear()
        sent.clear()

    def plant() -> Callable[[], bool]:
        role = iam.create_role(RoleName="someone-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(FunctionName="support-bot", Runtime="python3.12", Role=role, Handler="x.y",
                            Code={"ZipFile": EMPTY_ZIP})
        return lambda: lam.get_function(FunctionName="support-bot")["Configuration"]["Handler"] == "x.y"

    def plant_others() -> Callable[[], bool]:
        """A function by another hand, another agent's function, a role named like ours plus a suffix."""
        role = iam.get_role(RoleName="support-bot-agent-exec")["Role"]["Arn"]
        for name, tags in (("support-bot-other", {}), ("support-bot-2", {aws_planner.TAG_AGENT: "support-bot-2"})):
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="x.y",
                                Code={"ZipFile": EMPTY_ZIP}, Tags=tags)
        iam.create_role(RoleName="support-bot-agent-exec-x", AssumeRolePolicyDocument="{}")
        return lambda: ({f["FunctionName"] for f in lam.list_functions()["Functions"]} >= {"support-bot-other",
                                                                                            "support-bot-2"}
                        and "support-bot-agent-exec-x" in {r["RoleName"] for r in iam.list_roles()["Roles"]})

    def state() -> dict:
        data = asdict(read_snapshot(Api("us-east-1"), "support-bot"))
        if data["url"]:
            data["url"]["url"] = data["url"]["url"].startswith("https://")
        versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="support-bot")["Versions"]]
        return {"snapshot": data, "versions": versions}

    def ours() -> list[str]:
        snap = read_snapshot(Api("us-east-1"), "support-bot")
        return [what for what, there in (("role", snap.role), ("function", snap.function)) if there]

    def interrupt(n: int | None) -> None:
        clear()
        recorder.fail_after = n

    def reset() -> None:
        urlopen(Request(f"{moto}/moto-api/reset", method="POST")).close()

    def resumed(n: int) -> list[str]:
        if helpers.CLEAN_DEPLOY[n - 1:n] == ["PublishVersion"]:  # re-publishing an unchanged $LATEST returns
            return ["PublishVersion"] + helpers.CLEAN_DEPLOY[n:]  # that version: the alias gets the same one
        return helpers.CLEAN_DEPLOY[n:]

    prompt = ["UpdateFunctionCode", "TagResource", "PublishVersion", "UpdateAlias"]
    def table() -> bool:
        return "support-bot-sessions" in boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"]

    store = Store(helpers.AGENT + "    sessions:\n      ttl_hours: 24\n",
                  ["PutRolePolicy", "CreateTable", "UpdateTimeToLive"], table)
    return Cloud(
        "aws", helpers.AGENT, moto, lambda: recorder.mutating, clear, {"session": recorder.session}, plant,
        first_deploy=helpers.CLEAN_DEPLOY, prompt_only=Calls(prompt, prompt),
        concurrency_only=Calls(["PutFunctionConcurrency"], ["PutFunctionConcurrency"]),
        destroy_calls=["DeleteFunction", "DetachRolePolicy", "DeleteRole"],
        reset=reset, state=state, ours=ours, plant_others=plant_others,
        interrupt=interrupt, inject=lambda status, count, retry_after: faults.extend([(status, retry_after)] * count),
        attempts=lambda: list(sent), resumed=resumed, honours_retry_after=False, sleeps=sleeps, store=store)


def _gcp(request: pytest.FixtureRequest) -> Cloud:
    fake = request.getfixturevalue("gcp_env")
    P, FUNCTION, SERVICE = gcp_fixtures.P, gcp_fixtures.FUNCTION, gcp_fixtures.SERVICE
    faults: list[tuple[int, str]] = []
    handle = fake.handle

    def handle_with_faults(method: str, raw_path: str, headers: dict, body: bytes):
        """fail_next() answers the next request, read or not: here only the mutating ones are failed."""
        if faults and gcp_fake.is_mutating(method, urlsplit(raw_path).path):
            status, retry_after = faults.pop(0)
            fake.fail_next(status, 1, retry_after)
        return handle(method, raw_path, headers, body)

    request.getfixturevalue("monkeypatch").setattr(fake, "handle", handle_with_faults)

    def plant() -> Callable[[], bool]:
        fake.put_function(FUNCTION, {"buildConfig": {"runtime": "python312", "entryPoint": "main"},
                                     "labels": {"team": "someone-else"}})
        return lambda: fake.function(FUNCTION)["labels"] == {"team": "someone-else"}

    def plant_others() -> Callable[[], bool]:
        foreign = f"projects/{gcp_fixtures.PROJECT}/locations/{gcp_fixtures.REGION}/functions/billing"
        fake.put_function(foreign, {"buildConfig": {"runtime": "python312", "entryPoint": "main"},
                                    "labels": {"team": "billing"}})
        return lambda: fake.function(foreign)["labels"] == {"team": "billing"}

    def state() -> dict:
        function = fake.function(FUNCTION)
        function.pop("updateTime", None)
        function["serviceConfig"].pop("revision")
        function["buildConfig"].pop("source")
        policy = fake.policy(SERVICE) or {}
        invokers = [m for b in policy.get("bindings", []) if b["role"] == gcp_planner.INVOKER for m in b["members"]]
        return {"function": function, "invokers": invokers}

    def ours() -> list[str]:
        return [what for what, there in (("function", fake.function(FUNCTION)), ("policy", fake.policy(SERVICE)))
                if there]

    def interrupt(n: int | None) -> None:
        fake.clear_requests()
        fake.fail_after(n)

    prompt = Calls(["generateUploadUrl + PUT", "UpdateFunction (PATCH)"],
                   [f"POST {P}/functions:generateUploadUrl", "PUT", f"PATCH {P}/functions/support-bot"])
    store = Store(gcp_fixtures.SESSIONS, [f"PATCH /v1/{gcp_fixtures.TTL_FIELD}"],
                  lambda: fake.ttl(gcp_fixtures.TTL_FIELD) is not None)
    return Cloud(
        "gcp", gcp_fixtures.AGENT, fake, lambda: gcp_fixtures.calls(fake), fake.clear_requests, {}, plant,
        first_deploy=gcp_fixtures.CLEAN_DEPLOY, prompt_only=prompt,
        concurrency_only=Calls(["UpdateFunction (PATCH)"], [f"PATCH {P}/functions/support-bot"]),
        destroy_calls=[f"DELETE {P}/functions/support-bot"], reset=fake.reset, state=state, ours=ours,
        plant_others=plant_others, interrupt=interrupt,
        inject=lambda status, count, retry_after: faults.extend([(status, retry_after)] * count),
        attempts=lambda: gcp_fixtures.calls(fake),
        # an uploaded source counts once a function was created from it: until then, the re-run uploads again
        resumed=lambda n: gcp_fixtures.CLEAN_DEPLOY[0 if n < 3 else n:], store=store)


def _azure(request: pytest.FixtureRequest) -> Cloud:
    fake = request.getfixturevalue("azure_env")
    sub, group = azure_fixtures.SUB, azure_fixtures.GROUP
    scope = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Web"

    def key(name: str) -> tuple[str, str, str]:
        return sub.lower(), group.lower(), name.lower()

    def plant() -> Callable[[], bool]:
        fake.put_plan(sub, group, "theirs", {"location": "westeurope",
                                             "sku": {"name": "EP1", "tier": "ElasticPremium"}})
        fake.put_site(sub, group, "support-bot", {"location": "westeurope", "tags": {"team": "x"},
                                                  "properties": {"serverFarmId": f"{scope}/serverfarms/theirs"}})
        return lambda: fake.sites[key("support-bot")]["tags"] == {"team": "x"}

    def plant_others() -> Callable[[], bool]:
        fake.put_plan(sub, group, "someone-plan", {"location": "westeurope",
                                                   "sku": {"name": "EP1", "tier": "ElasticPremium"}})
        fake.put_site(sub, group, "support-bot-other", {
            "location": "westeurope", "kind": "functionapp,linux",
            "properties": {"serverFarmId": f"{scope}/serverfarms/someone-plan"}})
        return lambda: set(fake.sites) >= {key("support-bot-other")} and set(fake.plans) >= {key("someone-plan")}

    def state() -> str:
        site = json.loads(json.dumps(fake.sites[key("support-bot")]))
        site["identity"].pop("principalId")
        deployed = sorted(zipfile.ZipFile(io.BytesIO(fake.packages["support-bot"])).namelist())
        return json.dumps({"plan": fake.plans.get(key("support-bot-plan")), "site": site,
                           "settings": fake.settings[key("support-bot")], "web": fake.web.get(key("support-bot")),
                           "deployed": deployed}, sort_keys=True)

    def ours() -> list[str]:
        return [what for what, there in (("site", key("support-bot") in fake.sites),
                                         ("plan", key("support-bot-plan") in fake.plans)) if there]

    def interrupt(n: int | None) -> None:
        fake.clear()
        fake.kill_after(n)

    def reset() -> None:
        fake.reset()
        fake.add_resource_group(sub, group)

    first = azure_fixtures.CLEAN_DEPLOY
    table = f"storageAccounts/{azure_fixtures.ACCOUNT}/tableServices/default/tables/supportbotsessions"
    store = Store(azure_fixtures.SESSIONS, [f"PUT {table}"],
                  lambda: fake.table_names() == [f"{azure_fixtures.ACCOUNT}/supportbotsessions"])
    return Cloud(
        "azure", azure_fixtures.AGENT, fake, lambda: fake.mutating, fake.clear, {}, plant,
        first_deploy=first,
        # issue 14: the package is kept (Put Blob, to Azurite: not among the fake's calls) before it is published
        prompt_only=Calls(["Put Blob", "POST /api/publish (remote build)", "PUT appsettings (merged)"], first[2:]),
        concurrency_only=Calls(["PATCH sites"], ["PATCH sites/support-bot"]),
        destroy_calls=["DELETE sites/support-bot", "DELETE serverfarms/support-bot-plan"], reset=reset,
        state=state, ours=ours, plant_others=plant_others, interrupt=interrupt,
        inject=lambda status, count, retry_after: fake.fail(status, count, retry_after, match=azure_fake.is_mutating),
        attempts=lambda: fake.mutating,
        # a publish accepted, its record not written yet: the re-run publishes again
        resumed=lambda n: first[2:] if n == 3 else first[n:], store=store)


def _vercel(request: pytest.FixtureRequest) -> Cloud:
    fake = request.getfixturevalue("vercel_env")

    def plant() -> Callable[[], bool]:
        project = fake.add_project("support-bot", envs=[{"key": "DATABASE_URL", "value": "x", "type": "encrypted",
                                                         "target": ["production"]}])
        theirs = fake.add_deployment(project["id"], meta={"githubCommitSha": "abc"})
        return lambda: project["id"] in fake.state.projects and list(fake.state.deployments) == [theirs["id"]]

    def plant_others() -> Callable[[], bool]:
        other = fake.add_project("someone-else")
        theirs = fake.add_deployment(other["id"])
        return lambda: other["id"] in fake.state.projects and theirs["id"] in fake.state.deployments

    def ours() -> list[dict]:
        return [p["name"] for p in fake.state.projects.values() if p["name"] == "support-bot"]

    def state() -> dict:
        projects = [(p["name"], p["framework"]) for p in fake.state.projects.values()]
        envs = sorted((e["key"], e["type"], e["target"], e["value"]) for e in fake.state.envs["prj_000001"])
        live = next(d for d in fake.state.deployments.values() if "support-bot.vercel.app" in d["alias"])
        production = {key: live[key] for key in ("readyState", "target", "aliasAssigned", "projectSettings", "meta")}
        files = sorted((f["file"], f["sha"]) for f in live["files"])
        return {"projects": projects, "envs": envs, "production": production, "files": files}

    def interrupt(n: int | None) -> None:
        fake.clear()
        if n is not None:
            fake.interrupt_after(n)

    first = vercel_fixtures.CLEAN_DEPLOY

    def resumed(n: int) -> list[str]:
        """No deployment of ours records the secret's digest before the last call: once the project is
        there, the value is upserted again (it cannot be read back); then the files not uploaded yet."""
        if n == 0:
            return first
        if n == len(first) - 1:  # every file there: the deployment is created at once
            return first[1:2] + first[-1:]
        return first[1:3] + first[max(n, 3):]

    deployment = ["POST /v13/deployments", "POST /v2/files", "POST /v13/deployments"]  # agent.json only
    return Cloud(
        "vercel", vercel_fixtures.VERCEL_AGENT, fake, lambda: fake.mutating, fake.clear, {}, plant,
        first_deploy=first,
        prompt_only=Calls(["POST /v13/deployments (+ missing files)"], deployment),
        # Vercel scales by itself (targets.vercel.concurrency is refused): top-level concurrency is not its concern
        concurrency_only=Calls([], []),
        destroy_calls=["DELETE /v9/projects/prj_000001"], reset=fake.reset, state=state, ours=ours,
        plant_others=plant_others, interrupt=interrupt,
        inject=lambda status, count, retry_after: fake.fail(status, count, retry_after, method="POST"),
        attempts=lambda: fake.mutating, resumed=resumed)


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


def _operations(plan_json: str) -> list[str]:
    return [op["api"] for r in json.loads(plan_json)["resources"] for op in r["operations"]]


def _assert_change_does_exactly(cloud: Cloud, tmp_path: Path, before: str, after: str, expected: Calls) -> None:
    agent = write_agent(tmp_path, cloud)
    cloud.run("deploy", agent)
    helpers.write_agent(tmp_path, textwrap.dedent(cloud.agent).replace(before, after))
    cloud.clear()
    planned = cloud.run("plan", agent, fmt="json")
    assert (_operations(planned.stdout), cloud.mutating()) == (expected.operations, [])
    assert planned.code == (2 if expected.operations else 0)
    cloud.run("deploy", agent)
    assert cloud.mutating() == expected.calls
    cloud.clear()
    assert cloud.run("plan", agent).code == 0 and cloud.mutating() == []


def test_a_prompt_only_change_makes_exactly_the_expected_calls(cloud, tmp_path):
    _assert_change_does_exactly(cloud, tmp_path, *PROMPT_ONLY, cloud.prompt_only)


def test_a_concurrency_only_change_makes_exactly_the_expected_calls(cloud, tmp_path):
    _assert_change_does_exactly(cloud, tmp_path, *CONCURRENCY_ONLY, cloud.concurrency_only)


def test_a_first_deploy_interrupted_after_every_nth_call_converges(cloud, tmp_path):
    """Killed after the N-th mutating call, for every N a first deploy makes: the re-run does what was
    left, ends where an uninterrupted deploy ends, and a further deploy changes nothing."""
    agent = write_agent(tmp_path, cloud)
    cloud.clear()
    assert cloud.run("deploy", agent).code == 0
    assert cloud.mutating() == cloud.first_deploy
    clean = cloud.state()
    for n in range(len(cloud.first_deploy)):
        cloud.reset()
        cloud.interrupt(n)
        with pytest.raises((DeployError, Interrupted), match="interrupt|killed"):
            cloud.run("deploy", agent)
        assert cloud.mutating()[:n] == cloud.first_deploy[:n], n
        cloud.interrupt(None)
        cloud.clear()
        assert cloud.run("deploy", agent).code == 0, n
        assert cloud.mutating() == cloud.left_after(n), n  # what was left, nothing else done twice
        assert cloud.state() == clean, n
        cloud.clear()
        assert cloud.run("plan", agent).code == 0, n
        cloud.run("deploy", agent)
        assert cloud.mutating() == [], n


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_and_unavailable_answers_are_retried_without_sleeping(cloud, tmp_path, status):
    agent = write_agent(tmp_path, cloud)
    cloud.clear()
    cloud.inject(status, 2, "7")
    assert cloud.run("deploy", agent).code == 0
    first = cloud.first_deploy
    assert cloud.attempts() == first[:1] * 2 + first  # the first mutating call tried twice more, then all
    if cloud.honours_retry_after:
        assert cloud.sleeps[:2] == [7.0, 7.0]
    else:
        assert len(cloud.sleeps) >= 2
    cloud.clear()
    assert cloud.run("plan", agent).code == 0 and cloud.mutating() == []


def test_destroy_after_deploy_leaves_nothing_of_ours_and_spares_the_rest(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    cloud.run("deploy", agent)
    intact = cloud.plant_others()
    cloud.clear()
    destroyed = cloud.run("destroy", agent)
    assert destroyed.code == 0 and cloud.mutating() == cloud.destroy_calls
    assert cloud.ours() == [] and intact()
    cloud.clear()
    assert "Nothing to destroy" in cloud.run("destroy", agent).stdout and cloud.mutating() == []


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


STAGES = "    stages:\n      dev: {}\n      prod: {}\n"


def test_a_stage_reads_and_touches_only_its_own_resources(cloud, tmp_path):
    """dev, the agent as written and prod side by side: each deploy, plan and destroy of one leaves the
    others exactly as they were (their resources are <name>-<stage>, marked as the stage's)."""
    agent = helpers.write_agent(tmp_path, textwrap.dedent(cloud.agent + STAGES))

    def run(command: str, stage: str | None, fmt: str = "json") -> Run:
        out, err = io.StringIO(), io.StringIO()
        yes = [True] if command in ("deploy", "destroy") else []
        code = getattr(commands, command)(str(agent), cloud.name, str(tmp_path / "generated"), fmt, *yes,
                                          stage=stage, stdout=out, stderr=err, sleep=cloud.sleeps.append, **FAST,
                                          **cloud.options)
        return Run(code, out.getvalue(), err.getvalue())

    assert run("deploy", None).code == 0
    written = run("info", None).stdout  # what info reads back: versions, URLs, deployment ids
    assert run("deploy", "dev").code == 0
    assert run("info", None).stdout == written  # the agent as written: untouched by a stage's deploy
    prod = json.loads(run("plan", "prod").stdout)
    actions = {(r["kind"], r["name"]): r["action"] for r in prod["resources"]}
    assert "create" in actions.values() and not {"update", "delete"} & set(actions.values()), actions
    named = [name for kind, name in actions if kind != "environment variable"]  # a variable is the project's
    assert all("support-bot-prod" in name for name in named), actions  # dev's and the agent's are not prod's
    assert run("deploy", "prod").code == 0
    markdown = run("plan", "prod", "markdown")
    assert markdown.code == 0 and markdown.stdout.startswith("<!-- agenthost-plan -->\n")
    assert "### support-bot · prod" in markdown.stdout and "No changes" in markdown.stdout
    cloud.clear()
    assert run("destroy", "dev").code == 0
    assert run("info", None).stdout == written and run("plan", None).code == 0  # ... nor by a stage's destroy
    assert run("plan", "prod").code == 0  # prod: still there, nothing to change
    assert run("plan", "dev").code == 2  # dev: gone, to be created again
