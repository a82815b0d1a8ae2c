"""The Vercel planner is a pure function of (desired state, snapshot): tested without any server."""

from __future__ import annotations

import dataclasses
import json

import pytest

from framework.deploy.plan import format_json, format_text
from framework.errors import DeployError
from framework.platforms.vercel import planner as vc

FILES = (vc.FileEntry("agent.json", "a" * 40, 10), vc.FileEntry("api/agent.ts", "b" * 40, 20))
SETTINGS = {"model": "gpt-4o-mini", "prompt": "sha256:111111111111", "runtime": "edge", "timeout": 25}
DESIRED = vc.Desired(agent="bot", project="bot", explicit_project=False, team=None, files=FILES, content="c" * 64,
                     settings=SETTINGS, secret_env={"OPENAI_API_KEY": "scrypt:1"})


def deployed(desired: vc.Desired = DESIRED, **meta: str) -> vc.Snapshot:
    """The snapshot of a clean deploy of `desired`."""
    envs = {vc.MARKER: vc.EnvState("env_1", "plain", ("production",), "bot"),
            "OPENAI_API_KEY": vc.EnvState("env_2", "sensitive", ("production",))}
    full = {**desired.meta(), vc.META_SECRET + "OPENAI_API_KEY": "scrypt:1", **meta}
    latest = vc.DeploymentState("dpl_1", "bot-1.vercel.app", "READY", full, ("bot.vercel.app",), True)
    return vc.Snapshot(project=vc.ProjectState("prj_1", "bot", envs), latest=latest)


def kinds(desired: vc.Desired, snap: vc.Snapshot) -> list[str]:
    return [op.kind for op in vc.plan_deploy(desired, snap).plan.operations]


def test_nothing_deployed_plans_project_env_and_deployment():
    result = vc.plan_deploy(DESIRED, vc.Snapshot())
    assert [op.kind for op in result.plan.operations] == [
        "vercel.create_project", "vercel.upsert_env", "vercel.create_deployment"]
    create, upsert, deploy = result.plan.operations
    assert create.args["environmentVariables"][0] == {"key": vc.MARKER, "value": "bot", "type": "plain",
                                                      "target": ["production", "preview", "development"]}
    assert upsert.args["project"] == deploy.args["project"] == {"$output": "project_id"}
    assert upsert.args["value"] == {"$secret": "OPENAI_API_KEY"} and upsert.args["type"] == "sensitive"
    assert deploy.args["target"] == "production" and deploy.args["projectSettings"] == {"framework": None}
    assert deploy.args["meta"][vc.META_AGENT] == "bot" and deploy.args["meta"][vc.META_CONTENT] == "c" * 64
    assert deploy.args["secret_digests"] == {"OPENAI_API_KEY": "new"}
    assert result.missing_secrets == ()


def test_clean_deploy_plans_nothing():
    plan = vc.plan_deploy(DESIRED, deployed()).plan
    assert not plan.has_changes and plan.operations == []
    assert "No changes" in format_text(plan)


def test_content_change_is_one_deployment_with_files_and_settings_shown():
    route = vc.FileEntry("api/agent.ts", "e" * 40, 21)
    desired = dataclasses.replace(DESIRED, content="d" * 64, files=(FILES[0], route),
                                  settings={**SETTINGS, "timeout": 20})
    plan = vc.plan_deploy(desired, deployed()).plan
    assert [op.kind for op in plan.operations] == ["vercel.create_deployment"]
    changes = {c.field: (c.old, c.new) for r in plan.resources for c in r.changes}
    assert changes == {"content": ("c" * 12, "d" * 12), "files changed": (None, ["api/agent.ts"]),
                       "timeout": (25, 20)}
    assert "timeout: 25 -> 20" in format_text(plan)


def test_secret_digest_change_upserts_and_rebuilds():
    desired = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": "scrypt:2"})
    assert kinds(desired, deployed()) == ["vercel.upsert_env", "vercel.create_deployment"]


def test_secret_not_set_here_is_kept_and_carried_into_a_new_deployment():
    desired = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": None}, content="d" * 64)
    result = vc.plan_deploy(desired, deployed())
    assert [op.kind for op in result.plan.operations] == ["vercel.create_deployment"]
    assert result.plan.operations[0].args["secret_digests"] == {"OPENAI_API_KEY": {"$keep": "OPENAI_API_KEY"}}
    assert any("keeps its current value" in n for n in result.plan.notes)


def test_secret_missing_everywhere_is_reported():
    desired = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": None})
    result = vc.plan_deploy(desired, vc.Snapshot())
    assert result.missing_secrets == ("OPENAI_API_KEY",)
    assert "vercel.upsert_env" not in [op.kind for op in result.plan.operations]


def test_env_var_turned_plain_outside_the_framework_is_made_sensitive_again():
    snap = deployed()
    envs = {**snap.project.envs, "OPENAI_API_KEY": vc.EnvState("env_2", "encrypted", ("production", "preview"))}
    snap = dataclasses.replace(snap, project=dataclasses.replace(snap.project, envs=envs))
    plan = vc.plan_deploy(DESIRED, snap).plan
    assert [op.kind for op in plan.operations] == ["vercel.upsert_env", "vercel.create_deployment"]
    assert ("type", "encrypted", "sensitive") in [(c.field, c.old, c.new) for r in plan.resources for c in r.changes]


def test_foreign_project_is_refused_unless_named_explicitly():
    snap = deployed()
    envs = {k: v for k, v in snap.project.envs.items() if k != vc.MARKER}
    foreign = dataclasses.replace(snap, project=dataclasses.replace(snap.project, envs=envs), latest=None)
    with pytest.raises(DeployError, match="set `project: bot`"):
        vc.plan_deploy(DESIRED, foreign)
    plan = vc.plan_deploy(dataclasses.replace(DESIRED, explicit_project=True), foreign).plan
    assert [op.kind for op in plan.operations] == ["vercel.upsert_env", "vercel.create_deployment"]


def test_a_live_deployment_not_ours_is_replaced():
    snap = deployed()
    theirs = dataclasses.replace(snap.latest, meta={"githubCommitSha": "abc"})
    plan = vc.plan_deploy(DESIRED, dataclasses.replace(snap, latest=theirs)).plan
    assert "vercel.create_deployment" in [op.kind for op in plan.operations]
    assert any("not made by the framework" in n for n in plan.notes)


def test_destroy_our_project_is_one_call_and_foreign_project_keeps_everything_but_our_deployments():
    ours = dataclasses.replace(deployed(), ours=(deployed().latest,))
    plan = vc.plan_destroy("bot", "bot", None, ours)
    assert [(op.kind, op.args) for op in plan.operations] == [("vercel.delete_project", {"project": "prj_1"})]
    envs = {k: v for k, v in ours.project.envs.items() if k != vc.MARKER}
    foreign = dataclasses.replace(ours, project=dataclasses.replace(ours.project, envs=envs))
    plan = vc.plan_destroy("bot", "bot", None, foreign)
    assert [(op.kind, op.args) for op in plan.operations] == [("vercel.delete_deployment", {"id": "dpl_1"})]
    assert plan.notes and plan.notes[0].startswith("left alone: Vercel project bot")
    assert vc.plan_destroy("bot", "bot", None, vc.Snapshot()).resources == ()


def test_plan_json_holds_no_secret_digest():
    data = json.loads(format_json(vc.plan_deploy(dataclasses.replace(DESIRED, content="x" * 64), deployed()).plan))
    assert "scrypt:" not in json.dumps(data)


def test_team_query_and_digest():
    assert vc.team_query("team_abc") == {"teamId": "team_abc"}
    assert vc.team_query("acme") == {"slug": "acme"}
    assert vc.team_query(None) == {}
    one = vc.secret_digest("value", "bot", "KEY")
    assert one == vc.secret_digest("value", "bot", "KEY") != vc.secret_digest("value", "other", "KEY")
    assert "value" not in one and one.startswith("scrypt:")


def test_a_variable_in_a_project_we_did_not_create_is_never_deleted():
    foreign_owner = vc.EnvState("env_1", "plain", ("production",), "someone-else")
    desired = dataclasses.replace(DESIRED, explicit_project=True)  # `project:` named in agent.yaml
    snap = deployed(desired, **{vc.META_SECRET + "SEARCH_KEY": "scrypt:2"})
    envs = {**snap.project.envs, vc.MARKER: foreign_owner,
            "SEARCH_KEY": vc.EnvState("env_3", "sensitive", ("production",))}
    snap = dataclasses.replace(snap, project=dataclasses.replace(snap.project, envs=envs))
    plan = vc.plan_deploy(desired, snap).plan
    assert "vercel.delete_env" not in [op.kind for op in plan.operations]
    assert any("SEARCH_KEY" in note and "left alone" in note for note in plan.notes)
