"""Sessions on Vercel: no resource is created (the Upstash Redis database is the project's
integration); the plan reads the project's environment variables and says which the store lacks."""

from __future__ import annotations

from tests.deploy.vercel_fixtures import VERCEL_AGENT, fake, run, vercel_server, write_agent

__all__ = ["fake", "vercel_server"]  # fixtures used by name below

SESSIONS = VERCEL_AGENT + "    sessions:\n      ttl_hours: 24\n"
MISSING = ("note: sessions need the project's production environment variables UPSTASH_REDIS_REST_URL and "
           "UPSTASH_REDIS_REST_TOKEN (or KV_REST_API_URL and KV_REST_API_TOKEN, which Vercel's Upstash integration "
           "sets); missing: ")


def env(key: str, target=("production",)) -> dict:
    return {"key": key, "value": "x", "type": "encrypted", "target": list(target)}


def test_a_first_deploy_says_both_variables_are_missing_and_creates_nothing_more(fake, tmp_path):
    agent = write_agent(tmp_path, SESSIONS)
    planned = run("plan", agent)
    assert MISSING + "UPSTASH_REDIS_REST_URL (or KV_REST_API_URL), UPSTASH_REDIS_REST_TOKEN (or " \
        "KV_REST_API_TOKEN)." in planned.stdout
    assert "Connect an Upstash Redis database to the project" in planned.stdout
    run("deploy", agent)
    fake.clear()
    again = run("deploy", agent)
    assert fake.mutating == [] and "No changes" in again.stdout
    assert MISSING in again.stdout


def test_the_integration_variables_are_enough(fake, tmp_path):
    fake.add_project("support-bot", envs=[env("KV_REST_API_URL"), env("KV_REST_API_TOKEN")])
    agent = write_agent(tmp_path, SESSIONS.replace("        team: team_fake123\n",
                                                   "        team: team_fake123\n        project: support-bot\n"))
    planned = run("plan", agent)
    assert "note: sessions: Upstash Redis over REST, reading KV_REST_API_URL and KV_REST_API_TOKEN of the project " \
        "(production)" in planned.stdout
    assert "missing:" not in planned.stdout


def test_only_what_is_missing_is_named(fake, tmp_path):
    fake.add_project("support-bot", envs=[env("UPSTASH_REDIS_REST_URL"),
                                          env("UPSTASH_REDIS_REST_TOKEN", target=("preview",))])
    agent = write_agent(tmp_path, SESSIONS.replace("        team: team_fake123\n",
                                                   "        team: team_fake123\n        project: support-bot\n"))
    planned = run("plan", agent)
    assert MISSING + "UPSTASH_REDIS_REST_TOKEN (or KV_REST_API_TOKEN)." in planned.stdout


def test_secrets_listed_in_agent_yaml_count_as_set(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "https://example.upstash.io")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "token")
    agent = write_agent(tmp_path, SESSIONS + "    secrets:\n      UPSTASH_REDIS_REST_URL: {}\n"
                        "      UPSTASH_REDIS_REST_TOKEN: {}\n")
    planned = run("plan", agent)
    assert "reading UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN of the project" in planned.stdout


def test_an_agent_without_sessions_gets_no_such_note(fake, tmp_path):
    assert "sessions" not in run("plan", write_agent(tmp_path)).stdout
