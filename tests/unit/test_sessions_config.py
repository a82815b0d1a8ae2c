"""agent.yaml's `sessions` and `auth`: what validation refuses, and what each platform's agent.json carries."""

from __future__ import annotations

import json

import pytest

from framework.cli import main
from framework.config.validate import validate_file
from framework.errors import ConfigError

HEAD = """\
name: support-bot
prompt: You help.
model: gpt-4o-mini
"""
TARGETS = """\
targets:
  aws: {}
  gcp: {project: p-123456, region: us-central1}
  azure: {resource_group: rg, region: westeurope, timeout: 230,
          storage: "https://agentsstore.blob.core.windows.net/deploys"}
  vercel: {runtime: nodejs}
"""


def agent_file(tmp_path, body: str):
    path = tmp_path / "agent.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def errors(path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_file(path)
    return [f"{p.path}: {p.message}" for p in caught.value.problems if p.severity == "error"]


def built(tmp_path, body: str) -> dict[str, dict]:
    path = agent_file(tmp_path, body)
    assert main(["build", "-f", str(path), "-o", str(tmp_path / "out")]) == 0
    return {name: json.loads((tmp_path / "out" / name / "agent.json").read_text())
            for name in ("aws", "gcp", "azure", "vercel") if (tmp_path / "out" / name).is_dir()}


def test_auto_means_each_platforms_own_store_with_its_defaults(tmp_path):
    configs = built(tmp_path, "sessions: {ttl_hours: 12}\n" + TARGETS)
    common = {"ttl_hours": 12, "max_messages": 40}
    assert configs["aws"]["sessions"] == {"store": "dynamodb", **common, "table": "support-bot-sessions"}
    assert configs["gcp"]["sessions"] == {"store": "firestore", **common, "project": "p-123456",
                                          "database": "(default)", "collection": "support-bot-sessions"}
    assert configs["azure"]["sessions"] == {"store": "table", **common, "table": "supportbotsessions",
                                            "account": "agentsstore"}
    assert configs["vercel"]["sessions"] == {"store": "redis", **common, "url_env": "UPSTASH_REDIS_REST_URL",
                                             "token_env": "UPSTASH_REDIS_REST_TOKEN"}


def test_a_target_may_name_its_table_and_change_the_agent_wide_settings(tmp_path):
    configs = built(tmp_path, "sessions: {max_messages: 10}\ntargets:\n"
                              "  aws: {sessions: {table: chats, ttl_hours: 2}}\n")
    assert configs["aws"]["sessions"] == {"store": "dynamodb", "ttl_hours": 2, "max_messages": 10, "table": "chats"}


def test_without_sessions_or_auth_agent_json_says_so(tmp_path):
    configs = built(tmp_path, "targets:\n  aws: {}\n")
    assert (configs["aws"]["sessions"], configs["aws"]["auth"]) == (None, None)


def test_auth_reaches_agent_json_and_its_secret_is_deployed_like_any_other(tmp_path):
    path = agent_file(tmp_path, "auth: {api_keys: AGENT_API_KEYS}\nsessions: {}\ntargets:\n"
                                "  aws: {auth: {api_keys: AGENT_API_KEYS, daily_tokens: 5000}}\n"
                                "  gcp: {project: p-123456, region: us-central1}\n")
    agent = validate_file(path).agent
    assert "AGENT_API_KEYS" in agent.secrets
    configs = built(tmp_path, path.read_text().removeprefix(HEAD))
    assert configs["aws"]["auth"] == {"api_keys_env": "AGENT_API_KEYS", "daily_tokens": 5000}
    assert configs["gcp"]["auth"] == {"api_keys_env": "AGENT_API_KEYS", "daily_tokens": None}


@pytest.mark.parametrize(("body", "expected"), [
    ("sessions: {store: redis}\ntargets:\n  aws: {}\n",
     "sessions.store: Redis (Upstash's REST API) is not available on AWS Lambda, which keeps them in DynamoDB: "
     "write `store: auto` (or dynamodb)"),
    ("targets:\n  gcp: {project: p-123456, region: us-central1, sessions: {store: table}}\n",
     "targets.gcp.sessions.store: Azure Table Storage is not available on Google Cloud Functions (2nd gen), which "
     "keeps them in Firestore: write `store: auto` (or firestore)"),
    ("auth: {api_keys: AGENT_API_KEYS, daily_tokens: 100}\ntargets:\n  aws: {}\n",
     "auth.daily_tokens: a daily token quota is counted in the sessions store: add `sessions: {store: auto}` "
     "(or remove daily_tokens)"),
    ("auth: {api_keys: my-keys}\ntargets:\n  aws: {}\n",
     "auth.api_keys: must be the name of a secret in capital letters, digits and underscores (for example: "
     "AGENT_API_KEYS), not a key"),
    ("targets:\n  azure: {resource_group: rg, region: westeurope, sessions: {table: support-bot}}\n",
     "targets.azure.sessions.table: must be 3 to 63 letters and digits, starting with a letter (Azure table names "
     "have no hyphens)"),
])
def test_sessions_and_auth_mistakes_are_plain_errors(tmp_path, body, expected):
    assert expected in errors(agent_file(tmp_path, body))
