"""concurrency.warm_schedule (issue 14): the warm-up request each runtime recognises (no model call, a
forged marker is an ordinary request), the schedule each build renders, and on AWS (moto) the
EventBridge Scheduler schedule deploy creates once, leaves alone, updates, deletes and destroys."""

from __future__ import annotations

import json
import textwrap

import boto3
import pytest

from framework.platforms import warm
from framework.runtime.agent_runtime import Agent
from tests.deploy import helpers
from tests.deploy.helpers import Recorder

SECRET = "warm-secret-0123456789abcdef"
CONFIG = {"name": "support-bot", "model": "m", "max_tokens": 10, "system_prompt": "s", "timeout": 5,
          "api_key_env": "OPENAI_API_KEY", "base_url": "http://127.0.0.1:9/v1",
          "warmup": {"secret_env": "AGENT_WARMUP_SECRET"}}


def _agent(secret: str | None = SECRET) -> Agent:
    env = {"OPENAI_API_KEY": "sk-test", **({"AGENT_WARMUP_SECRET": secret} if secret else {})}
    return Agent(CONFIG, environ=env)


@pytest.mark.parametrize("header", [
    {"x-agent-warmup": SECRET}, {"authorization": f"Bearer {SECRET}"},
    # a private Google agent's job: Cloud Scheduler's ID token in Authorization, the secret beside it
    {"x-agent-warmup": SECRET, "authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}])
def test_the_schedulers_marked_get_is_answered_without_a_model_call(header, capsys):
    reply = _agent().handle("GET", header, b"", path="/api/agent")
    assert (reply.status, json.loads(reply.body)) == (200, {"warm": True})
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"type": "agent.warmup", "severity": "DEBUG", "agent": "support-bot",
                                "source": "scheduler"}
    assert SECRET not in line


@pytest.mark.parametrize("agent, header", [
    (_agent(), {"x-agent-warmup": "wrong-secret-0123456789"}),
    (_agent(), {"authorization": "Bearer " + SECRET[:-1]}),
    (_agent(secret="short"), {"x-agent-warmup": "short"}),  # under 16 characters: never honoured
    (_agent(secret=None), {"x-agent-warmup": ""}),
])
def test_a_forged_or_unset_marker_is_an_ordinary_request(agent, header):
    reply = agent.handle("GET", header, b"", path="/api/agent")
    assert reply.status == 405  # the contract's answer to a GET: no warm-up, no model call


def test_a_post_with_the_secret_is_not_a_warm_up():
    reply = _agent().handle("POST", {"x-agent-warmup": SECRET}, b"{}", path="/api/agent")
    assert reply.status == 400


@pytest.mark.parametrize("minutes, rate, cron", [
    (1, "rate(1 minute)", "* * * * *"), (5, "rate(5 minutes)", "*/5 * * * *"), (60, "rate(60 minutes)", "0 * * * *"),
    (120, "rate(120 minutes)", "0 */2 * * *"), (1440, "rate(1440 minutes)", "0 0 * * *"), (7, "rate(7 minutes)", None),
    (90, "rate(90 minutes)", None)])
def test_schedule_expressions(minutes, rate, cron):
    assert (warm.rate(minutes), warm.cron(minutes)) == (rate, cron)
    assert warm.ncrontab(minutes) == (None if cron is None else f"0 {cron}")


WARM_AGENT = helpers.AGENT.replace("      warm: 0\n", "      warm: 0\n      warm_schedule: {minutes}\n")


def _write(tmp_path, minutes: int | None):
    body = helpers.AGENT if minutes is None else WARM_AGENT.format(minutes=minutes)
    return helpers.write_agent(tmp_path, body)


def _schedule():
    return boto3.client("scheduler", region_name="us-east-1").get_schedule(Name="support-bot-warmup")


def test_aws_deploy_creates_keeps_updates_and_deletes_the_schedule(moto_env, tmp_path):
    agent = _write(tmp_path, 5)
    recorder = Recorder()
    assert helpers.run("deploy", agent, recorder).code == 0
    assert recorder.mutating[-3:] == ["CreateRole", "PutRolePolicy", "CreateSchedule"]
    schedule = _schedule()
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["Target"]["Arn"].endswith(":function:support-bot:live")
    assert json.loads(schedule["Target"]["Input"]) == warm.AWS_EVENT
    assert schedule["Target"]["RoleArn"].endswith(":role/support-bot-agent-warm")
    trust = boto3.client("iam").get_role(RoleName="support-bot-agent-warm")["Role"]["AssumeRolePolicyDocument"]
    assert "scheduler.amazonaws.com" in json.dumps(trust)

    recorder = Recorder()
    assert helpers.run("deploy", agent, recorder).code == 0
    assert recorder.mutating == []  # nothing changed: no mutating call

    agent = _write(tmp_path, 15)
    recorder = Recorder()
    assert helpers.run("deploy", agent, recorder).code == 0
    assert recorder.mutating == ["UpdateSchedule"]
    assert _schedule()["ScheduleExpression"] == "rate(15 minutes)"

    agent = _write(tmp_path, None)
    recorder = Recorder()
    assert helpers.run("deploy", agent, recorder).code == 0
    assert recorder.mutating == ["DeleteSchedule", "DeleteRolePolicy", "DeleteRole"]
    with pytest.raises(Exception, match="ResourceNotFound"):
        _schedule()


def test_aws_destroy_removes_the_schedule_and_its_role(moto_env, tmp_path):
    agent = _write(tmp_path, 10)
    assert helpers.run("deploy", agent).code == 0
    recorder = Recorder()
    assert helpers.run("destroy", agent, recorder).code == 0
    assert {"DeleteSchedule", "DeleteRole"} <= set(recorder.mutating)
    with pytest.raises(Exception, match="ResourceNotFound"):
        _schedule()
    names = {r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]}
    assert "support-bot-agent-warm" not in names


def test_aws_refuses_a_schedule_of_its_name_that_is_not_ours(moto_env, tmp_path):
    boto3.client("scheduler", region_name="us-east-1").create_schedule(
        Name="support-bot-warmup", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:lambda:us-east-1:123456789012:function:x", "RoleArn": "arn:aws:iam::1:role/x"})
    with pytest.raises(Exception, match="not created by this framework"):
        helpers.run("deploy", _write(tmp_path, 5))


# ---------------------------------------------------------------- Google (Cloud Scheduler) and Vercel (CRON_SECRET)
# on the deploy contract's emulators (tests/deploy/test_deploy_contract.py's Clouds)

from framework.platforms.gcp import warm as gcp_warm  # noqa: E402
from tests.deploy import gcp_fixtures  # noqa: E402
from tests.deploy.test_deploy_contract import (  # noqa: E402, F401
    CLOUDS,
    Cloud,
    gcp_env,
    gcp_server,
    vercel_env,
    vercel_server,
)
from tests.fakes.gcp_server import DEFAULT_SERVICE_ACCOUNT  # noqa: E402

JOB = f"projects/{gcp_fixtures.PROJECT}/locations/{gcp_fixtures.REGION}/jobs/support-bot-warmup"


@pytest.fixture(params=["gcp", "vercel"])
def cron_cloud(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS[request.param](request)


def _cloud_agent(cloud: Cloud, tmp_path, minutes: int | None):
    body = cloud.agent if minutes is None else cloud.agent.replace(
        "      warm: 0\n", f"      warm: 0\n      warm_schedule: {minutes}\n")
    return helpers.write_agent(tmp_path, textwrap.dedent(body))


def _deployed_secret(cloud: Cloud) -> str | None:
    """The secret as the platform holds it (the emulator's own state: Vercel never answers it)."""
    if cloud.name == "gcp":
        env = cloud.emulator.function(gcp_fixtures.FUNCTION)["serviceConfig"].get("environmentVariables") or {}
        return env.get("AGENT_WARMUP_SECRET")
    found = [e for e in cloud.emulator.state.envs.get("prj_000001", []) if e["key"] == "CRON_SECRET"]
    assert all(e["type"] == "sensitive" and e["target"] == ["production"] for e in found)
    return found[0]["value"] if found else None


# what each deploy of the schedule calls on the emulator, beyond the function's own calls
P = gcp_fixtures.P.replace("/v2/", "/v1/")
CREATES = {"gcp": f"POST {P}/jobs", "vercel": "POST /v10/projects/prj_000001/env"}
UPDATES = {"gcp": [f"PATCH /v1/{JOB}"], "vercel": []}  # a Vercel cron lives in vercel.json: a new deployment
REMOVES = {"gcp": f"DELETE /v1/{JOB}", "vercel": "DELETE /v9/projects/prj_000001/env/"}


def test_deploy_creates_keeps_updates_and_removes_the_schedule(cron_cloud, tmp_path):
    cloud = cron_cloud
    agent = _cloud_agent(cloud, tmp_path, 5)
    plan = cloud.run("plan", agent, "json")
    assert plan.code == 2, plan.stderr  # changes pending
    assert {"gcp": "cloud scheduler job", "vercel": "CRON_SECRET"}[cloud.name] in plan.stdout
    run = cloud.run("deploy", agent)
    assert run.code == 0, run.stderr
    assert CREATES[cloud.name] in cloud.mutating()
    secret = _deployed_secret(cloud)
    assert secret and len(secret) >= 32
    for text in (plan.stdout, plan.stderr, run.stdout, run.stderr):
        assert secret not in text
    if cloud.name == "gcp":
        job = cloud.emulator.job(JOB)
        function = cloud.emulator.function(gcp_fixtures.FUNCTION)
        assert job["schedule"] == "*/5 * * * *" and job["timeZone"] == "Etc/UTC"
        assert job["httpTarget"] == {"uri": function["url"], "httpMethod": "GET",
                                     "headers": {warm.HEADER: secret}}
        assert "support-bot" in job["description"]
    else:
        live = next(d for d in cloud.emulator.state.deployments.values() if "support-bot.vercel.app" in d["alias"])
        assert live["meta"]["agentFrameworkSecret_CRON_SECRET"].startswith("scrypt:")  # a digest, never the value
        assert secret not in json.dumps(live["meta"])

    cloud.clear()
    again = cloud.run("deploy", agent, "json")
    assert again.code == 0, again.stderr
    assert cloud.mutating() == []  # nothing changed: no mutating call, and the secret is kept
    assert _deployed_secret(cloud) == secret
    assert secret not in again.stdout + again.stderr

    cloud.clear()
    agent = _cloud_agent(cloud, tmp_path, 15)
    changed = cloud.run("deploy", agent)
    assert changed.code == 0, changed.stderr
    if cloud.name == "gcp":
        assert cloud.mutating() == UPDATES["gcp"]  # the function is as it was: one call, the job's PATCH
        assert cloud.emulator.job(JOB)["schedule"] == "*/15 * * * *"
        assert cloud.emulator.job(JOB)["httpTarget"]["headers"] == {warm.HEADER: secret}
    else:
        assert "POST /v10/projects/prj_000001/env" not in cloud.mutating()  # the secret is not regenerated
    assert _deployed_secret(cloud) == secret

    cloud.clear()
    agent = _cloud_agent(cloud, tmp_path, None)
    removed = cloud.run("deploy", agent)
    assert removed.code == 0, removed.stderr
    assert any(c.startswith(REMOVES[cloud.name]) for c in cloud.mutating())
    assert _deployed_secret(cloud) is None
    if cloud.name == "gcp":
        assert cloud.emulator.job(JOB) is None
    cloud.clear()
    assert cloud.run("deploy", agent).code == 0
    assert cloud.mutating() == []


def test_destroy_removes_the_schedule(cron_cloud, tmp_path):
    cloud = cron_cloud
    agent = _cloud_agent(cloud, tmp_path, 10)
    assert cloud.run("deploy", agent).code == 0
    cloud.clear()
    assert cloud.run("destroy", agent).code == 0
    if cloud.name == "gcp":
        assert cloud.mutating()[0] == f"DELETE /v1/{JOB}"
        assert cloud.emulator.job(JOB) is None
    else:
        assert cloud.mutating() == ["DELETE /v9/projects/prj_000001"]  # the project goes, its variables with it


def test_gcp_refuses_a_job_of_its_name_that_is_not_ours(gcp_env, tmp_path):  # noqa: F811
    from urllib.request import Request, urlopen

    body = json.dumps({"name": JOB, "schedule": "0 * * * *", "httpTarget": {"uri": "https://example.com/"}})
    urlopen(Request(f"{gcp_env.url}/v1/{JOB.rsplit('/jobs/', 1)[0]}/jobs", body.encode(), method="POST",
                    headers={"Content-Type": "application/json"}))
    agent = gcp_fixtures.write_agent(tmp_path, gcp_fixtures.AGENT.replace(
        "      warm: 0\n", "      warm: 0\n      warm_schedule: 5\n"))
    with pytest.raises(Exception, match="not created by this framework"):
        gcp_fixtures.deploy(agent)
    assert gcp_env.job(JOB)["schedule"] == "0 * * * *"


# ---- a `public: false` agent on Google: the job signs in with an OIDC token of the function's runtime
# service account, which deploy grants roles/run.invoker on the function's service (and revokes, only that)

INVOKER = "roles/run.invoker"
MEMBER = f"serviceAccount:{DEFAULT_SERVICE_ACCOUNT}"
SET_POLICY = f"POST {gcp_fixtures.P}/services/support-bot:setIamPolicy"
CREATE_JOB = f"POST {P}/jobs"
ALICE = "user:alice@example.com"
CONDITION = {"title": "office hours", "expression": "request.time.getHours('Europe/Berlin') < 18"}


def _private(tmp_path, minutes: int | None = 5, public: bool = False):
    body = gcp_fixtures.AGENT if minutes is None else gcp_fixtures.AGENT.replace(
        "      warm: 0\n", f"      warm: 0\n      warm_schedule: {minutes}\n")
    return gcp_fixtures.write_agent(tmp_path, body + ("" if public else "    public: false\n"))


def _invokers(fake) -> set[str]:
    """The members holding roles/run.invoker on the function's service without a condition."""
    policy = fake.policy(gcp_fixtures.SERVICE) or {}
    return {m for b in policy.get("bindings", []) if b["role"] == INVOKER and "condition" not in b
            for m in b["members"]}


def _job_is_ours_and_records_the_grant(fake, granted: bool) -> None:
    description = fake.job(JOB)["description"]
    assert "support-bot" in description and description.endswith(gcp_warm.GRANTED) == granted


def test_gcp_private_agent_job_sends_an_oidc_token_its_account_may_use(gcp_env, tmp_path):  # noqa: F811
    agent = _private(tmp_path)
    plan = gcp_fixtures.deploy(agent, apply=False)
    assert [(r.kind, r.action) for r in plan.plan.resources][-2:] == [
        ("cloud scheduler job", "create"), ("warm-up invoker", "create")]
    assert "OIDC token of the function's runtime service account" in plan.text
    gcp_fixtures.deploy(agent)
    # the job records the grant first, then the grant: an interrupted deploy leaves none unrecorded
    assert gcp_fixtures.calls(gcp_env) == gcp_fixtures.CLEAN_DEPLOY[:3] + [CREATE_JOB, SET_POLICY]
    function = gcp_env.function(gcp_fixtures.FUNCTION)
    secret = function["serviceConfig"]["environmentVariables"]["AGENT_WARMUP_SECRET"]
    assert gcp_env.job(JOB)["httpTarget"] == {
        "uri": function["url"], "httpMethod": "GET", "headers": {warm.HEADER: secret},
        "oidcToken": {"serviceAccountEmail": DEFAULT_SERVICE_ACCOUNT, "audience": function["url"]}}
    assert _invokers(gcp_env) == {MEMBER}  # that account only: the agent stays private (no allUsers)
    _job_is_ours_and_records_the_grant(gcp_env, True)

    gcp_env.clear_requests()
    again = gcp_fixtures.deploy(agent)
    assert gcp_env.mutating() == []  # the grant is there and the job matches: no mutating call
    assert "granted by this framework" in again.text


def test_gcp_private_agent_job_uses_the_account_the_function_runs_as(gcp_env, tmp_path):  # noqa: F811
    gcp_fixtures.deploy(_private(tmp_path, None))
    account = "agent-runtime@my-project-123.iam.gserviceaccount.com"  # set outside the framework
    with gcp_env.lock:
        gcp_env.state.functions[gcp_fixtures.FUNCTION]["serviceConfig"]["serviceAccountEmail"] = account
    gcp_fixtures.deploy(_private(tmp_path))
    assert gcp_env.job(JOB)["httpTarget"]["oidcToken"]["serviceAccountEmail"] == account
    assert _invokers(gcp_env) == {f"serviceAccount:{account}"}


@pytest.mark.parametrize("change", ["schedule off", "destroy", "public"])
def test_gcp_revokes_only_the_grant_it_made(gcp_env, tmp_path, change):  # noqa: F811
    gcp_fixtures.deploy(_private(tmp_path))
    gcp_env.add_binding(gcp_fixtures.SERVICE, INVOKER, [ALICE])
    gcp_env.add_binding(gcp_fixtures.SERVICE, INVOKER, [MEMBER], CONDITION)  # the user's own, conditional
    gcp_env.clear_requests()
    if change == "destroy":
        assert gcp_fixtures.destroy(_private(tmp_path)).plan.has_changes
        assert gcp_env.mutating()[:2] == [SET_POLICY, f"DELETE /v1/{JOB}"]  # the grant, then the job recording it
        return
    gcp_fixtures.deploy(_private(tmp_path, None) if change == "schedule off" else _private(tmp_path, public=True))
    assert _invokers(gcp_env) == ({ALICE} if change == "schedule off" else {ALICE, "allUsers"})
    bindings = gcp_env.policy(gcp_fixtures.SERVICE)["bindings"]
    assert {"role": INVOKER, "members": [MEMBER], "condition": CONDITION} in bindings
    if change == "schedule off":
        assert gcp_env.job(JOB) is None
        assert gcp_env.mutating().index(SET_POLICY) < gcp_env.mutating().index(f"DELETE /v1/{JOB}")
    else:  # public: the job sends no token, and no longer records a grant
        assert "oidcToken" not in gcp_env.job(JOB)["httpTarget"]
        _job_is_ours_and_records_the_grant(gcp_env, False)


def test_gcp_leaves_a_grant_it_did_not_make(gcp_env, tmp_path):  # noqa: F811
    gcp_fixtures.deploy(_private(tmp_path, None))
    gcp_env.add_binding(gcp_fixtures.SERVICE, INVOKER, [MEMBER])  # granted by hand before the schedule
    gcp_env.clear_requests()
    turned_on = gcp_fixtures.deploy(_private(tmp_path))
    assert SET_POLICY not in gcp_env.mutating()
    assert "granted outside this framework" in turned_on.text
    _job_is_ours_and_records_the_grant(gcp_env, False)
    gcp_env.clear_requests()
    gcp_fixtures.deploy(_private(tmp_path, None))
    assert SET_POLICY not in gcp_env.mutating()
    assert _invokers(gcp_env) == {MEMBER}


def _redeploy_after_every_binding_is_removed_by_hand(fake, agent) -> None:
    with fake.lock:
        fake.state.services[gcp_fixtures.SERVICE]["bindings"] = []
    fake.clear_requests()
    gcp_fixtures.deploy(agent)


def test_gcp_grants_again_what_was_revoked_by_hand(gcp_env, tmp_path):  # noqa: F811
    agent = _private(tmp_path)
    gcp_fixtures.deploy(agent)
    _redeploy_after_every_binding_is_removed_by_hand(gcp_env, agent)
    assert gcp_env.mutating() == [SET_POLICY]  # the job already records the grant: no PATCH
    assert _invokers(gcp_env) == {MEMBER}


def test_gcp_records_a_grant_before_making_it_when_the_users_one_went(gcp_env, tmp_path):  # noqa: F811
    gcp_fixtures.deploy(_private(tmp_path, None))
    gcp_env.add_binding(gcp_fixtures.SERVICE, INVOKER, [MEMBER])
    agent = _private(tmp_path)
    gcp_fixtures.deploy(agent)
    _redeploy_after_every_binding_is_removed_by_hand(gcp_env, agent)
    assert gcp_env.mutating() == [f"PATCH /v1/{JOB}", SET_POLICY]
    _job_is_ours_and_records_the_grant(gcp_env, True)


def test_gcp_without_a_schedule_never_calls_cloud_scheduler(gcp_env, tmp_path):  # noqa: F811
    assert gcp_fixtures.deploy(gcp_fixtures.write_agent(tmp_path)).plan.has_changes
    gcp_fixtures.deploy(gcp_fixtures.write_agent(tmp_path))
    assert not [r for r in gcp_env.requests if "/jobs" in r.path]
