"""The sessions' TTL policy on Google, against the fake (Firestore admin route): set once on
`<collection>.expires`, recorded on the function's label, a no-change deploy with 0 mutating calls,
destroy removing only a policy it set (the documents stay, and the plan says so)."""

from __future__ import annotations

from framework.platforms.gcp import planner as gcp
from tests.deploy import gcp_fixtures
from tests.deploy.gcp_fixtures import AGENT, FUNCTION, SESSIONS, TTL_FIELD, deploy, destroy, write_agent

gcp_server, gcp_env = gcp_fixtures.gcp_server, gcp_fixtures.gcp_env  # the fixtures, used by name

PATCH_TTL = f"PATCH /v1/{TTL_FIELD}"


def test_first_deploy_sets_the_ttl_policy_once(gcp_env, tmp_path):
    agent = write_agent(tmp_path, SESSIONS)
    first = deploy(agent)
    assert "+ create    firestore ttl policy support-bot-sessions.expires" in first.text
    assert "PATCH collectionGroups/fields?updateMask=ttlConfig" in first.apis
    assert gcp_env.mutating().count(PATCH_TTL) == 1
    assert gcp_env.ttl(TTL_FIELD) == "ACTIVE"
    assert gcp_env.function(FUNCTION)["labels"][gcp.LABEL_TTL] == "expires"
    patch = [r for r in gcp_env.requests if r.method == "PATCH" and r.path == f"/v1/{TTL_FIELD}"][0]
    assert patch.query == {"updateMask": ["ttlConfig"]} and patch.body == b'{"ttlConfig": {}}'
    assert "destroy removes the TTL policy and leaves the documents of support-bot-sessions" in first.text
    assert "needs roles/datastore.user" in first.text

    gcp_env.clear_requests()
    again = deploy(agent)
    assert gcp_env.mutating() == [] and not again.plan.has_changes
    assert "= unchanged firestore ttl policy support-bot-sessions.expires (active)" in again.text

    gone = destroy(agent)
    assert "- delete    firestore ttl policy support-bot-sessions.expires" in gone.text
    assert "the documents of support-bot-sessions stay" in gone.text
    assert gcp_env.ttl(TTL_FIELD) is None and gcp_env.function(FUNCTION) is None


def test_an_agent_without_sessions_makes_no_firestore_call(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    deploy(agent)
    destroy(agent)
    assert not any(r.path.startswith("/v1/") for r in gcp_env.requests)


def test_a_policy_set_by_someone_else_is_left_alone(gcp_env, tmp_path):
    gcp_env.put_ttl(TTL_FIELD)
    agent = write_agent(tmp_path, SESSIONS)
    done = deploy(agent)
    assert PATCH_TTL not in gcp_env.mutating()
    assert gcp.LABEL_TTL not in gcp_env.function(FUNCTION)["labels"]
    assert "was not set by this framework for this agent: destroy leaves it" in done.text
    gone = destroy(agent)
    assert "note: left alone: the TTL policy on support-bot-sessions.expires" in gone.text
    assert gcp_env.ttl(TTL_FIELD) == "ACTIVE"


def test_sessions_turned_on_later_set_the_policy_and_label(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    deploy(agent)
    write_agent(tmp_path, SESSIONS)
    gcp_env.clear_requests()
    deploy(agent)
    assert gcp_env.mutating().count(PATCH_TTL) == 1
    assert gcp_env.function(FUNCTION)["labels"][gcp.LABEL_TTL] == "expires"


def test_a_policy_needing_repair_is_set_again(gcp_env, tmp_path):
    agent = write_agent(tmp_path, SESSIONS)
    deploy(agent)
    gcp_env.put_ttl(TTL_FIELD, "NEEDS_REPAIR")
    gcp_env.clear_requests()
    again = deploy(agent)
    assert "~ update    firestore ttl policy" in again.text
    assert gcp_env.mutating() == [PATCH_TTL] and gcp_env.ttl(TTL_FIELD) == "ACTIVE"


def test_the_collection_setting_names_the_field(gcp_env, tmp_path):
    agent = write_agent(tmp_path, AGENT + "        sessions:\n          collection: chats\n")
    deploy(agent)
    assert gcp_env.ttl(TTL_FIELD.replace("support-bot-sessions", "chats")) == "ACTIVE"
