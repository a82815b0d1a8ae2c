"""pause / resume (issue 14), the kill switch, on every deployable platform against its emulator (the
deploy contract's Clouds): pause puts the platform's own switch in the refusing state, info and plan
say so, deploy keeps it, resume makes exactly the expected calls, a second pause or resume makes none,
and a stage's pause leaves the agent as written running."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from framework.deploy import pause
from tests.deploy import gcp_fixtures, helpers
from tests.deploy.helpers import Run
from tests.deploy.test_deploy_contract import (  # noqa: F401
    CLOUDS,
    FAST,
    STAGES,
    Cloud,
    azure_env,
    azure_server,
    gcp_env,
    gcp_server,
    vercel_env,
    vercel_server,
    write_agent,
)


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS[request.param](request)


# name -> (the emulator's mutating calls of a pause, of a resume)
CALLS = {
    "aws": (["PutFunctionConcurrency", "TagResource"], ["PutFunctionConcurrency", "UntagResource"]),
    "gcp": ([f"PATCH {gcp_fixtures.P}/functions/{{name}}"], [f"PATCH {gcp_fixtures.P}/functions/{{name}}"]),
    "azure": (["POST sites/{name}/stop"], ["POST sites/{name}/start"]),
    "vercel": (["POST /v1/projects/{project}/pause"], ["POST /v1/projects/{project}/unpause"]),
}


def _paused(cloud: Cloud) -> Callable[[str], bool]:
    """Whether the emulator holds the function named `name` in its refusing state (the platform's switch)."""
    fake = cloud.emulator
    if cloud.name == "aws":
        lam = boto3.client("lambda", region_name="us-east-1")
        return lambda name: lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") == 0
    if cloud.name == "gcp":
        return lambda name: fake.function(f"{gcp_fixtures.FUNCTION.rsplit('/', 1)[0]}/{name}")["serviceConfig"][
            "ingressSettings"] == 2  # ALLOW_INTERNAL_ONLY
    if cloud.name == "azure":
        from tests.deploy import azure_fixtures

        def stopped(name: str) -> bool:
            key = (azure_fixtures.SUB.lower(), azure_fixtures.GROUP.lower(), name)
            return fake.sites[key]["properties"]["state"] == "Stopped"
        return stopped
    return lambda name: bool(next(p for p in fake.state.projects.values() if p["name"] == name).get("paused"))


def _calls(cloud: Cloud, name: str, resume: bool) -> list[str]:
    project = ""
    if cloud.name == "vercel":
        project = next(p["id"] for p in cloud.emulator.state.projects.values() if p["name"] == name)
    return [call.format(name=name, project=project) for call in CALLS[cloud.name][resume]]


def _run(cloud: Cloud, agent: Path, command: str, stage: str | None = None, fmt: str = "json") -> Run:
    out, err = io.StringIO(), io.StringIO()
    common = dict(stage=stage, stdout=out, stderr=err, sleep=cloud.sleeps.append, **FAST, **cloud.options)
    output = str(agent.parent / "generated")
    if command in ("pause", "resume"):
        code = pause.pause(str(agent), cloud.name, output, fmt, True, resume=command == "resume", **common)
    else:
        from framework.deploy import commands

        yes = [True] if command == "deploy" else []
        code = getattr(commands, command)(str(agent), cloud.name, output, fmt, *yes, **common)
    return Run(code, out.getvalue(), err.getvalue())


def test_pause_refuses_at_the_platform_deploy_keeps_it_and_resume_lets_requests_in(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    paused = _paused(cloud)
    assert _run(cloud, agent, "deploy").code == 0 and not paused("support-bot")
    cloud.clear()

    first = _run(cloud, agent, "pause")
    assert first.code == 0, first.stderr
    assert cloud.mutating() == _calls(cloud, "support-bot", resume=False)
    assert paused("support-bot")
    assert json.loads(first.stdout) == {"paused": True, "changed": True,
                                        "calls": json.loads(first.stdout)["calls"],
                                        "title": json.loads(first.stdout)["title"]}

    info = json.loads(_run(cloud, agent, "info").stdout)
    assert info[0]["paused"] is True
    assert "PAUSED" in _run(cloud, agent, "info", fmt="text").stdout
    planned = _run(cloud, agent, "plan", fmt="text")
    assert planned.code == 0 and "note: paused: deploy keeps it paused" in planned.stdout, planned.stdout
    cloud.clear()
    deployed = _run(cloud, agent, "deploy")
    assert deployed.code == 0 and cloud.mutating() == [] and paused("support-bot")

    again = _run(cloud, agent, "pause", fmt="text")
    assert again.code == 0 and cloud.mutating() == []
    assert "aws: already paused" in again.stdout.replace(cloud.name, "aws") and "Already paused" in again.stdout

    resumed = _run(cloud, agent, "resume")
    assert resumed.code == 0, resumed.stderr
    assert cloud.mutating() == _calls(cloud, "support-bot", resume=True)
    assert not paused("support-bot")
    assert json.loads(_run(cloud, agent, "info").stdout)[0]["paused"] is False
    cloud.clear()
    assert _run(cloud, agent, "resume").code == 0 and cloud.mutating() == []
    assert _run(cloud, agent, "plan").code == 0  # resumed as agent.yaml says: nothing to change


def test_pause_of_an_agent_not_deployed_is_refused_without_a_call(cloud, tmp_path):
    agent = write_agent(tmp_path, cloud)
    cloud.clear()
    with pytest.raises(Exception, match="not deployed"):
        _run(cloud, agent, "pause")
    assert cloud.mutating() == []


def test_a_stage_paused_leaves_the_agent_as_written_running(cloud, tmp_path):
    agent = helpers.write_agent(tmp_path, textwrap.dedent(cloud.agent + STAGES))
    paused = _paused(cloud)
    assert _run(cloud, agent, "deploy").code == 0 and _run(cloud, agent, "deploy", "prod").code == 0
    cloud.clear()
    assert _run(cloud, agent, "pause", "prod").code == 0
    assert cloud.mutating() == _calls(cloud, "support-bot-prod", resume=False)
    assert paused("support-bot-prod") and not paused("support-bot")
    assert json.loads(_run(cloud, agent, "info").stdout)[0]["paused"] is False


def test_pause_asks_first_and_refuses_in_ci_without_yes(cloud, tmp_path):
    from framework.errors import ConfirmationRequired

    agent = write_agent(tmp_path, cloud)
    assert _run(cloud, agent, "deploy").code == 0
    cloud.clear()
    with pytest.raises(ConfirmationRequired):
        pause.pause(str(agent), cloud.name, str(tmp_path / "generated"), "text", False,
                    environ={**os.environ, "CI": "true"}, stdout=io.StringIO(), stderr=io.StringIO(),
                    sleep=cloud.sleeps.append, **FAST, **cloud.options)
    assert cloud.mutating() == []


# ---- Google: the warm-up job pauses with its agent. Ingress internal-only would not stop it: Cloud
# Scheduler in the function's project is internal traffic (https://cloud.google.com/run/docs/securing/ingress#settings)

JOB = f"projects/{gcp_fixtures.PROJECT}/locations/{gcp_fixtures.REGION}/jobs/support-bot-warmup"
PATCH_FUNCTION = f"PATCH {gcp_fixtures.P}/functions/support-bot"


@pytest.fixture
def gcp(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS["gcp"](request)


def _warmed(cloud: Cloud, tmp_path: Path, minutes: int | None = 5) -> Path:
    """agent.yaml with concurrency.warm_schedule every `minutes` (None: no schedule)."""
    text = cloud.agent if minutes is None else cloud.agent.replace(
        "      warm: 0\n", f"      warm: 0\n      warm_schedule: {minutes}\n")
    return write_agent(tmp_path, dataclasses.replace(cloud, agent=text))


@pytest.mark.parametrize(("command", "calls", "state"), [
    ("pause", [PATCH_FUNCTION, f"POST /v1/{JOB}:pause"], "PAUSED"),
    ("resume", [PATCH_FUNCTION, f"POST /v1/{JOB}:resume"], "ENABLED"),
])
def test_gcp_pause_and_resume_switch_the_warm_up_job_too(gcp, tmp_path, command, calls, state):
    cloud, agent = gcp, _warmed(gcp, tmp_path)
    assert _run(cloud, agent, "deploy").code == 0
    if command == "resume":
        assert _run(cloud, agent, "pause").code == 0
    cloud.clear()
    assert _run(cloud, agent, command).code == 0
    assert cloud.mutating() == calls and cloud.emulator.job(JOB)["state"] == state
    cloud.clear()
    assert _run(cloud, agent, command).code == 0 and cloud.mutating() == []  # already so: no call


def test_gcp_deploy_keeps_a_paused_agents_warm_up_job_paused(gcp, tmp_path):
    cloud, agent = gcp, _warmed(gcp, tmp_path)
    assert _run(cloud, agent, "deploy").code == 0 and _run(cloud, agent, "pause").code == 0
    cloud.clear()
    assert _run(cloud, agent, "deploy").code == 0 and cloud.mutating() == []
    with cloud.emulator.lock:  # resumed by hand in the console
        cloud.emulator.state.jobs[JOB]["state"] = "ENABLED"
    assert _run(cloud, agent, "deploy").code == 0
    assert cloud.mutating() == [f"POST /v1/{JOB}:pause"] and cloud.emulator.job(JOB)["state"] == "PAUSED"


def test_gcp_a_schedule_added_while_paused_starts_paused(gcp, tmp_path):
    cloud, plain = gcp, _warmed(gcp, tmp_path, None)
    assert _run(cloud, plain, "deploy").code == 0 and _run(cloud, plain, "pause").code == 0
    agent = _warmed(cloud, tmp_path)
    cloud.clear()
    assert _run(cloud, agent, "deploy").code == 0
    assert cloud.mutating()[-2:] == [f"POST /v1/{JOB.rsplit('/', 1)[0]}", f"POST /v1/{JOB}:pause"]
    assert cloud.emulator.job(JOB)["state"] == "PAUSED"
