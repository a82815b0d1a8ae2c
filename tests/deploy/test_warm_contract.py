"""concurrency.warm_schedule (issue 14): the warm-up request each runtime recognises (no model call, a
forged marker is an ordinary request), the schedule each build renders, and on AWS (moto) the
EventBridge Scheduler schedule deploy creates once, leaves alone, updates, deletes and destroys."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("header", [{"x-agent-warmup": SECRET}, {"authorization": f"Bearer {SECRET}"}])
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
