"""Deploy, plan, destroy and info against a stateful fake of Vercel's REST API (real HTTP on 127.0.0.1).

The deploy code talks to tests/fakes/vercel_server.py exactly as it talks to api.fake.com
(VERCEL_API_URL points it there); nothing is patched.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from framework.errors import DeployError
from framework.platforms.vercel import planner as vc
from tests.deploy.helpers import FAKE_KEY
from tests.deploy.vercel_fixtures import (
    CLEAN_DEPLOY,
    FILES,
    TEAM,
    TOKEN,
    VERCEL_AGENT,
    Sleeps,
    fake,
    run,
    vercel_server,
    write_agent,
)
from tests.fakes.vercel_server import FakeVercel

__all__ = ["fake", "vercel_server"]  # fixtures used by name below

PROMPT_LABEL = "prompt (digest; the text is only in the function and the deployment's private source, never served)"


def project(fake, name: str = "support-bot") -> dict:
    return next(p for p in fake.state.projects.values() if p["name"] == name)


def production(fake, name: str = "support-bot") -> dict:
    """The deployment holding the production alias."""
    return next(d for d in fake.state.deployments.values() if f"{name}.vercel.app" in d["alias"])


def test_first_deploy_creates_project_env_and_production_deployment(fake, tmp_path):
    agent = write_agent(tmp_path)
    result = run("deploy", agent, fmt="json")
    assert result.code == 0
    assert fake.mutating == CLEAN_DEPLOY
    outputs = json.loads(result.stdout)
    assert outputs["target"] == "vercel" and outputs["changed"] is True
    assert outputs["url"] == "https://support-bot.vercel.app"
    assert outputs["project_id"] == "prj_000001" and outputs["deployment"].startswith("dpl_")
    assert "support-bot" in outputs["summary"]

    prj = project(fake)
    assert prj["framework"] is None
    envs = {e["key"]: e for e in fake.state.envs[prj["id"]]}
    assert (envs[vc.MARKER]["type"], envs[vc.MARKER]["value"]) == ("plain", "support-bot")
    key = envs["OPENAI_API_KEY"]
    assert (key["type"], key["target"], key["value"]) == ("sensitive", ["production"], FAKE_KEY)

    live = production(fake)
    assert (live["readyState"], live["target"], live["aliasAssigned"]) == ("READY", "production", True)
    assert live["projectSettings"] == {"framework": None}
    assert live["meta"][vc.META_AGENT] == "support-bot"
    assert len(live["meta"][vc.META_CONTENT]) == 64
    assert live["meta"][vc.META_SECRET + "OPENAI_API_KEY"].startswith("scrypt:")
    assert sorted(f["file"] for f in live["files"]) == FILES
    # every file was uploaded under its SHA-1; the edge runtime is declared the way Vercel reads it
    route = next(f for f in live["files"] if f["file"] == "api/agent.ts")
    source = fake.state.files[route["sha"]].decode()
    assert source.splitlines()[0] == 'export const config = { runtime: "edge" };'
    assert all(hashlib.sha1(fake.state.files[f["sha"]]).hexdigest() == f["sha"] for f in live["files"])
    # bearer token and team on every call; sensitive values never come back from the list
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert all(r.query.get("teamId") == TEAM for r in fake.requests)
    uploads = [r for r in fake.requests if r.path == "/v2/files"]
    assert all(r.headers["x-vercel-digest"] == hashlib.sha1(r.body).hexdigest() for r in uploads)


def test_second_deploy_makes_no_mutating_call(fake, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    fake.clear()
    result = run("deploy", agent)
    assert fake.mutating == []
    assert "No changes" in result.stdout and "Up to date:" in result.stdout
    assert "https://support-bot.vercel.app" in result.stdout
    assert run("plan", agent).code == 0


def test_prompt_change_makes_one_deployment_uploading_only_agent_json(fake, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    first = production(fake)["id"]
    write_agent(tmp_path, VERCEL_AGENT.replace("helpful support", "terse support"))
    planned = json.loads(run("plan", agent, fmt="json").stdout)
    ops = [op["kind"] for r in planned["resources"] for op in r["operations"]]
    assert ops == ["vercel.create_deployment"]
    changed = {r["kind"]: [c["field"] for c in r["changes"]]
               for r in planned["resources"] if r["action"] != "unchanged"}
    assert changed == {"production deployment": ["content", "files changed", PROMPT_LABEL]}
    deployment = next(r for r in planned["resources"] if r["kind"] == "production deployment")
    assert next(c for c in deployment["changes"] if c["field"] == "files changed")["new"] == ["agent.json"]
    text = run("plan", agent).stdout
    assert f"{PROMPT_LABEL}: sha256:" in text and " -> sha256:" in text
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == ["POST /v13/deployments", "POST /v2/files", "POST /v13/deployments"]
    assert production(fake)["id"] != first


def test_timeout_change_on_nodejs_redeploys_with_vercel_json(fake, tmp_path):
    body = VERCEL_AGENT.replace("runtime: edge", "runtime: nodejs\n        timeout: 60")
    agent = write_agent(tmp_path, body)
    run("deploy", agent)
    route = next(f for f in production(fake)["files"] if f["file"] == "api/agent.ts")
    assert fake.state.files[route["sha"]].decode().startswith('export const config = { runtime: "nodejs" };')
    write_agent(tmp_path, body.replace("timeout: 60", "timeout: 120"))
    planned = json.loads(run("plan", agent, fmt="json").stdout)
    deployment = next(r for r in planned["resources"] if r["kind"] == "production deployment")
    timeout = next(c for c in deployment["changes"] if c["field"] == "timeout")
    assert (timeout["old"], timeout["new"]) == (60, 120)
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == ["POST /v13/deployments", "POST /v2/files", "POST /v2/files", "POST /v13/deployments"]


def test_secret_rotation_upserts_and_redeploys_and_absent_secret_is_kept(fake, tmp_path, monkeypatch):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY + "-rotated")
    fake.clear()
    result = run("deploy", agent)
    assert fake.mutating == ["POST /v10/projects/prj_000001/env", "POST /v13/deployments"]
    assert "(new value hidden)" in result.stdout
    env = next(e for e in fake.state.envs["prj_000001"] if e["key"] == "OPENAI_API_KEY")
    assert env["value"] == FAKE_KEY + "-rotated"
    # a deploy from an environment without the key keeps the project's value, and changes nothing
    monkeypatch.delenv("OPENAI_API_KEY")
    fake.clear()
    result = run("deploy", agent)
    assert fake.mutating == [] and "keeps its current value" in result.stdout


def test_missing_token_is_a_clear_error(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("VERCEL_TOKEN")
    with pytest.raises(DeployError, match="VERCEL_TOKEN is not set"):
        run("plan", write_agent(tmp_path))
    assert fake.requests == []


def test_wrong_token_is_a_clear_error(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("VERCEL_TOKEN", "not-the-token")
    with pytest.raises(DeployError, match="403 forbidden.*check VERCEL_TOKEN"):
        run("plan", write_agent(tmp_path))


def test_retries_back_off_without_retry_after_then_fail_clearly(fake, tmp_path):
    agent = write_agent(tmp_path)
    sleeps = Sleeps()
    fake.fail(503, times=100)
    with pytest.raises(DeployError, match=r"Vercel answered 503 to GET /v9/projects/support-bot 6 times.*try again"):
        run("plan", agent, sleep=sleeps)
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_failed_build_is_reported_and_the_next_deploy_retries(fake, tmp_path):
    agent = write_agent(tmp_path)
    fake.build_fails = True
    with pytest.raises(DeployError, match="ended ERROR.*exited with 1"):
        run("deploy", agent)
    fake.build_fails = False
    fake.clear()
    run("deploy", agent)
    # project and files are there already; no deployment of ours records the secret's digest, so the
    # value is upserted again (it cannot be read back to compare)
    assert fake.mutating == ["POST /v10/projects/prj_000001/env", "POST /v13/deployments"]


def test_alias_error_stops_the_wait(fake, tmp_path):
    fake.alias_error = True
    with pytest.raises(DeployError, match="production alias failed: alias_failed"):
        run("deploy", write_agent(tmp_path))


def test_destroy_deletes_our_project_with_its_deployments(fake, tmp_path):
    """Its calls and what it spares: the contract's destroy case; here, what the JSON output names."""
    agent = write_agent(tmp_path)
    run("deploy", agent)
    result = run("destroy", agent, fmt="json")
    assert json.loads(result.stdout)["destroyed"] == ["vercel project support-bot"]
    assert fake.state.projects == {} and fake.state.deployments == {}


def test_a_project_not_ours_is_refused_unless_named_and_then_never_deleted(fake, tmp_path):
    site = fake.add_project("support-bot", envs=[{"key": "DATABASE_URL", "value": "x", "type": "encrypted",
                                                    "target": ["production"]}])
    theirs = fake.add_deployment(site["id"], meta={"githubCommitSha": "abc"})
    agent = write_agent(tmp_path)
    with pytest.raises(DeployError, match="not created by this framework.*project: support-bot"):
        run("deploy", agent)
    assert fake.mutating == []
    # named explicitly in agent.yaml: deploy into it
    agent = write_agent(tmp_path, VERCEL_AGENT.replace("runtime: edge", "runtime: edge\n        project: support-bot"))
    result = run("deploy", agent)
    assert "not created by the framework" in result.stdout and "replaces it" in result.stdout
    ours = production(fake)
    assert ours["id"] != theirs["id"] and ours["meta"][vc.META_AGENT] == "support-bot"
    fake.clear()
    assert run("deploy", agent).code == 0 and fake.mutating == []
    # destroy removes only our deployment: the project, its variables and their deployment stay
    result = run("destroy", agent, fmt="json")
    assert fake.mutating == [f"DELETE /v13/deployments/{ours['id']}"]
    assert json.loads(result.stdout)["left_alone"][0].startswith("left alone: Vercel project support-bot")
    assert site["id"] in fake.state.projects and list(fake.state.deployments) == [theirs["id"]]
    assert {e["key"] for e in fake.state.envs[site["id"]]} == {"DATABASE_URL", "OPENAI_API_KEY"}


def test_secret_value_reaches_only_the_env_upsert_body(fake, tmp_path, capsys):
    agent = write_agent(tmp_path)
    outputs = [run("plan", agent), run("plan", agent, fmt="json"), run("deploy", agent),
               run("deploy", agent, fmt="json"), run("info", agent), run("info", agent, fmt="json")]
    write_agent(tmp_path, VERCEL_AGENT.replace("helpful", "kind"))
    outputs += [run("deploy", agent), run("destroy", agent)]
    for result in outputs:
        assert FAKE_KEY not in result.stdout + result.stderr
    captured = capsys.readouterr()
    assert FAKE_KEY not in captured.out + captured.err
    carrying = [r for r in fake.requests if FAKE_KEY.encode() in r.body]
    assert [(r.method, r.path) for r in carrying] == [("POST", "/v10/projects/prj_000001/env")]
    assert json.loads(carrying[0].body) == {"key": "OPENAI_API_KEY", "value": FAKE_KEY, "type": "sensitive",
                                            "target": ["production"]}
    for r in fake.requests:
        assert FAKE_KEY not in json.dumps(r.headers) + json.dumps(r.query) + r.path
    assert not any(FAKE_KEY in p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())


def test_secret_values_are_scrubbed_from_error_messages(fake, tmp_path, monkeypatch):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    original = FakeVercel.route

    def echo(self, method, path, query, headers, body):  # a server that echoes the request in its error
        if path.endswith("/env") and method == "POST":
            return 400, {"error": {"code": "bad_value", "message": f"cannot store {body.decode()}"}}, {}
        return original(self, method, path, query, headers, body)

    monkeypatch.setattr(FakeVercel, "route", echo)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY + "-new")
    with pytest.raises(DeployError) as caught:
        run("deploy", agent)
    assert "bad_value" in str(caught.value) and FAKE_KEY not in str(caught.value) and "***" in str(caught.value)


def test_info_reports_the_live_deployment(fake, tmp_path):
    agent = write_agent(tmp_path)
    assert json.loads(run("info", agent, fmt="json").stdout)[0]["deployed"] is False
    run("deploy", agent)
    report = json.loads(run("info", agent, fmt="json").stdout)[0]
    assert report["deployed"] is True and report["url"] == "https://support-bot.vercel.app"
    assert report["details"]["runtime"] == "edge" and report["details"]["owner"] == "created by the framework"
    text = run("info", agent).stdout
    assert "vercel:" in text and "https://support-bot.vercel.app" in text


def test_removed_secret_is_deleted_from_the_project(fake, tmp_path, monkeypatch):
    body = VERCEL_AGENT.replace("model: gpt-4o-mini", "model: gpt-4o-mini\n    secrets:\n      SEARCH_KEY: {}")
    monkeypatch.setenv("SEARCH_KEY", "search-value-1234")
    agent = write_agent(tmp_path, body)
    run("deploy", agent)
    assert {e["key"] for e in fake.state.envs["prj_000001"]} >= {"SEARCH_KEY", "OPENAI_API_KEY"}
    write_agent(tmp_path, VERCEL_AGENT)
    fake.clear()
    run("deploy", agent)
    assert fake.mutating[0].startswith("DELETE /v9/projects/prj_000001/env/")
    assert fake.mutating[1:] == ["POST /v13/deployments"]
    assert "SEARCH_KEY" not in {e["key"] for e in fake.state.envs["prj_000001"]}
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == []
