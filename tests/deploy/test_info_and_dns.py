"""info reports every target and names the one that failed; a host name that does not resolve
fails at once, naming the host and the variable that points the endpoint elsewhere."""

from __future__ import annotations

import io
import json
import socket
import textwrap

import pytest

from framework.deploy import commands
from framework.deploy.network import UnresolvedHost, unresolved
from tests.deploy.azure_fixtures import GROUP, STORAGE, SUB, azure_env, azure_server  # noqa: F401
from tests.deploy.gcp_fixtures import gcp_env, gcp_server  # noqa: F401
from tests.deploy.vercel_fixtures import fake as vercel_env  # noqa: F401
from tests.deploy.vercel_fixtures import vercel_server  # noqa: F401

AGENT = f"""\
    name: support-bot
    prompt: You are a helpful support assistant.
    model: gpt-4o-mini
    targets:
      aws: {{region: us-east-1}}
      gcp: {{project: my-project-123, region: us-central1}}
      azure: {{subscription: {SUB}, resource_group: {GROUP}, region: westeurope, timeout: 230, storage: {STORAGE}}}
      vercel: {{team: team_fake123, timeout: 25}}
"""
NOWHERE = "nowhere.invalid"


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """Every name looked up under NOWHERE fails as DNS fails offline; the others resolve as usual."""
    real, seen = socket.getaddrinfo, []

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(NOWHERE):
            seen.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


@pytest.fixture
def clouds(moto_env, gcp_env, azure_env, vercel_env, tmp_path):  # noqa: F811
    agent = tmp_path / "agent.yaml"
    agent.write_text(textwrap.dedent(AGENT), encoding="utf-8")
    return str(agent), str(tmp_path / "generated")


def info(agent: str, out: str, target: str | None = None, fmt: str = "text") -> tuple[int, str, str, list]:
    stdout, stderr, sleeps = io.StringIO(), io.StringIO(), []
    code = commands.info(agent, target, out, fmt, stdout=stdout, stderr=stderr, sleep=sleeps.append,
                         backoff=0.0, poll_interval=0)
    return code, stdout.getvalue(), stderr.getvalue(), sleeps


# (target, the variable that points its endpoint elsewhere)
ENDPOINTS = [("vercel", "VERCEL_API_URL"), ("gcp", "GCP_FUNCTIONS_ENDPOINT"), ("azure", "AZURE_ARM_ENDPOINT")]


@pytest.mark.parametrize(("target", "variable"), ENDPOINTS)
def test_an_unresolvable_endpoint_fails_at_once_naming_host_and_variable(clouds, lookups, monkeypatch,
                                                                          target, variable):
    agent, out = clouds
    monkeypatch.setenv(variable, f"http://api.{NOWHERE}")
    code, _, err, sleeps = info(agent, out, target)
    assert code == 1
    assert f"error: {target}: cannot find the server api.{NOWHERE}" in err
    assert f"set {variable} to the address to use" in err
    assert lookups == [f"api.{NOWHERE}"], "looked up once, never retried"
    assert sleeps == []
    assert "Traceback" not in err


def test_kudu_gives_up_at_once_on_an_unresolvable_scm_site(azure_env, lookups):  # noqa: F811
    from framework.platforms.azure.api import Api

    sleeps: list[float] = []
    api = Api(SUB, GROUP, {"AZURE_ACCESS_TOKEN": "token"}, sleep=sleeps.append)
    with pytest.raises(UnresolvedHost, match="AZURE_SCM_ENDPOINT"):
        api.kudu("GET", f"https://app.scm.{NOWHERE}/api/deployments/latest")
    assert len(lookups) == 1 and sleeps == []


def test_a_refused_connection_is_still_retried_it_may_come_back():
    import urllib.error

    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert not unresolved(refused)
    assert unresolved(urllib.error.URLError(socket.gaierror(-2, "Name or service not known")))


def test_info_reports_every_target_and_names_the_one_that_failed(clouds, lookups, monkeypatch):
    agent, out = clouds
    monkeypatch.setenv("VERCEL_API_URL", f"http://api.{NOWHERE}")
    code, text, err, _ = info(agent, out)
    assert code == 1
    assert [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")] == ["aws", "gcp", "azure"]
    assert "info failed for: vercel" in err


def test_info_json_keeps_every_target_with_the_error_in_place(clouds, lookups, monkeypatch):
    agent, out = clouds
    monkeypatch.setenv("GCP_FUNCTIONS_ENDPOINT", f"http://api.{NOWHERE}")
    code, text, _, _ = info(agent, out, fmt="json")
    reports = {report["target"]: report for report in json.loads(text)}
    assert code == 1
    assert list(reports) == ["aws", "gcp", "azure", "vercel"]
    assert "cannot find the server" in reports["gcp"]["error"]
    assert reports["aws"]["deployed"] is False and "error" not in reports["vercel"]


def test_info_for_a_target_agent_yaml_does_not_list_is_a_usage_error(clouds):
    from framework.errors import UsageError

    agent, out = clouds
    text = open(agent).read().replace("  vercel: {team: team_fake123, timeout: 25}\n", "")
    open(agent, "w").write(text)
    with pytest.raises(UsageError, match=r"not in \S*agent.yaml \(it lists"):
        info(agent, out, "vercel")
