"""One agent.yaml, four clouds, one command: AWS through moto, Google, Azure and Vercel through their fakes."""

from __future__ import annotations

import io
import textwrap

import pytest

from framework.deploy import commands
from framework.errors import DeployError
from tests.deploy.azure_fixtures import GROUP, STORAGE, SUB, azure_env, azure_server  # noqa: F401
from tests.deploy.gcp_fixtures import gcp_env, gcp_server  # noqa: F401
from tests.deploy.helpers import FAKE_KEY
from tests.deploy.vercel_fixtures import fake as vercel_env  # noqa: F401
from tests.deploy.vercel_fixtures import vercel_server  # noqa: F401

AGENT = f"""\
    name: support-bot
    prompt: You are a helpful support assistant.
    model: gpt-4o-mini
    concurrency: {{max: 10, warm: 0}}
    targets:
      aws: {{region: us-east-1}}
      gcp: {{project: my-project-123, region: us-central1}}
      azure: {{subscription: {SUB}, resource_group: {GROUP}, region: westeurope, timeout: 230, storage: {STORAGE}}}
      vercel: {{team: team_fake123, timeout: 25}}
"""
TITLES = ("AWS Lambda", "Google Cloud Functions", "Azure Functions", "Vercel")
# what every cloud's waits and backoffs become in tests: no real sleeping
FAST = {"sleep": lambda seconds: None, "backoff": 0.0, "poll_interval": 0}


def run(command: str, agent: str, out: str, *flags: str) -> tuple[int, str, str]:
    """`python -m framework COMMAND -f agent -o out` for every target, in-process and without sleeping."""
    stdout, stderr = io.StringIO(), io.StringIO()
    function = getattr(commands, command)
    args = [agent, None, out, "text"] + ([True] if command in ("deploy", "destroy") else [])
    code = function(*args, stdout=stdout, stderr=stderr, fail_fast="--fail-fast" in flags, **FAST) \
        if command in ("deploy", "destroy") else function(*args, stdout=stdout, stderr=stderr, **FAST)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def clouds(moto_env, gcp_env, azure_env, vercel_env, tmp_path):  # noqa: F811
    agent = tmp_path / "agent.yaml"
    agent.write_text(textwrap.dedent(AGENT), encoding="utf-8")
    return str(agent), str(tmp_path / "generated")


def test_plan_shows_one_change_set_across_all_targets(clouds):
    agent, out = clouds
    code, text, _ = run("plan", agent, out)
    assert code == 2
    assert text.count("Plan: ") == len(TITLES)
    for title in TITLES:
        assert f"Plan: support-bot on {title}" in text
    assert "All targets:" in text and "to create" in text
    assert FAKE_KEY not in text


def test_one_deploy_ships_every_target_and_a_second_changes_nothing(clouds, gcp_env, azure_env,  # noqa: F811
                                                                    vercel_env):  # noqa: F811
    agent, out = clouds
    code, text, log = run("deploy", agent, out)
    assert code == 0 and text.count("URL: ") == 4
    assert FAKE_KEY not in text + log
    code, text, _ = run("plan", agent, out)
    assert code == 0 and text.count("No changes") == 4
    code, text, _ = run("deploy", agent, out)
    assert code == 0 and text.count("Up to date: ") == 4


def test_a_failing_target_does_not_stop_the_others_and_is_named(clouds, azure_env,  # noqa: F811
                                                                vercel_env):  # noqa: F811
    agent, out = clouds
    azure_env.reset()  # the resource group is gone: Azure refuses, the other clouds go on
    code, text, log = run("deploy", agent, out)
    assert code == 1
    assert "deploy failed for: azure" in log
    assert text.count("URL: ") == 3
    assert any(r.method == "POST" and "/deployments" in r.path for r in vercel_env.requests)


def test_fail_fast_stops_before_anything_is_changed(clouds, azure_env, vercel_env):  # noqa: F811
    agent, out = clouds
    azure_env.reset()
    with pytest.raises(DeployError, match=r"^the resource group agents-rg does not exist in subscription "):
        run("deploy", agent, out, "--fail-fast")
    assert not [r for r in vercel_env.requests if r.method in ("POST", "PATCH", "DELETE")]


def test_a_target_refused_before_its_first_call_does_not_stop_the_others(clouds, monkeypatch):
    agent, out = clouds
    monkeypatch.delenv("OPENAI_API_KEY")  # a first deploy cannot start without it... on every cloud
    code, text, log = run("deploy", agent, out)
    assert code == 1
    assert "deploy failed for: aws, gcp, azure, vercel" in log
    assert "must be set in this environment" in log


def test_json_over_several_targets_has_one_shape_with_errors_in_place(clouds, azure_env):  # noqa: F811
    import json

    agent, out = clouds
    azure_env.reset()
    stdout, stderr = io.StringIO(), io.StringIO()
    code = commands.deploy(agent, None, out, "json", True, stdout=stdout, stderr=stderr, **FAST)
    data = json.loads(stdout.getvalue())
    assert code == 1
    assert set(data["targets"]) == {"aws", "gcp", "azure", "vercel"}
    assert "error" in data["targets"]["azure"]
    assert data["targets"]["aws"]["url"] and data["targets"]["vercel"]["url"]
    stdout = io.StringIO()
    assert commands.plan(agent, None, out, "json", stdout=stdout, stderr=io.StringIO(), **FAST) == 1
    assert set(json.loads(stdout.getvalue())["targets"]) == {"aws", "gcp", "azure", "vercel"}


def test_plan_never_exits_2_for_an_error(clouds, capsys):
    from framework.cli import main

    agent, out = clouds
    text = open(agent).read().replace("  vercel: {team: team_fake123, timeout: 25}\n", "")
    open(agent, "w").write(text)
    assert main(["plan", "-f", agent, "-o", out, "--target", "vercel"]) == 1  # not in agent.yaml: an error
    assert "agent.yaml (it lists: aws, gcp, azure)" in capsys.readouterr().err
