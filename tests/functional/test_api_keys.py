"""API keys (agent.yaml `auth.api_keys`: the NAME of a secret holding the accepted keys, one per line)
on every way of running an app: every request but a CORS preflight needs `Authorization: Bearer KEY`
or `x-api-key: KEY`, on the agent's own path and on the OpenAI-compatible endpoint; 401 otherwise
(with WWW-Authenticate); a keys variable that is unset or empty refuses everything with a 500 naming
it; the usage record carries the key's id, never the key.

The apps are built from an agent.yaml with `auth: {api_keys: AGENT_API_KEYS}`, and run the ways the
OpenAI endpoint suite runs them (conftest.running_way: `serve` as typed, the handlers in-process).
"""

from __future__ import annotations

import hashlib
import json

import openai
import pytest

from tests.conftest import API_KEY, build, write_agent
from tests.functional.conftest import APPS, Way, running_way

KEYS_ENV = "AGENT_API_KEYS"
KEY_ONE, KEY_TWO = "key-one-4c7d1e9a2b", "key-two-90f3aa61c5"
KEYS_TEXT = f"\n  {KEY_ONE}  \n\n{KEY_TWO}\n"  # blank lines and surrounding spaces are ignored
ORIGIN = "https://app.example"
MODEL = "keys-bot"
AGENT = """\
name: keys-bot
prompt: You keep things private.
model: fake-model-1
timeout: 10
{client}
auth:
  api_keys: AGENT_API_KEYS
cors:
  origins: ["{origin}"]
targets:
  aws: {{}}
  gcp: {{}}
  azure: {{}}
  vercel: {{runtime: edge, stream: true}}
"""
AUTH = {"api_keys_env": KEYS_ENV, "daily_tokens": None}


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@pytest.fixture(scope="session")
def keys_builds(tmp_path_factory):
    """The keys agent built with the built-in client ("") and the openai SDK ("openai"), auth on."""
    out = {}
    for client in ("", "openai"):
        folder = tmp_path_factory.mktemp(f"keys-{client or 'builtin'}")
        agent = write_agent(folder, AGENT.format(client="client: openai" if client else "", origin=ORIGIN))
        assert build(agent, folder / "generated") == 0
        assert json.loads((folder / "generated" / "aws" / "agent.json").read_text())["auth"] == AUTH
        out[client] = folder / "generated"
    return out


def keys_env(fake_model, keys: str) -> dict[str, str]:
    return {"OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY, KEYS_ENV: keys}


@pytest.fixture(scope="module", params=APPS)
def way(request, fake_model, keys_builds):
    kind, _, client = request.param.partition("+")
    with running_way(kind, keys_builds[client], keys_env(fake_model, KEYS_TEXT)) as found:
        yield found


def ask(way: Way, tag: str, headers: dict) -> tuple[int, dict, dict]:
    status, got, raw = way.raw("POST", "", headers, json.dumps({"message": tag, "stream": False}).encode())
    return status, got, json.loads(raw) if raw else {}


def test_without_a_key_every_request_is_a_401(way, fake_model, tag):
    status, headers, body = ask(way, tag, {})
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert body == {"error": "an API key is required: send Authorization: Bearer KEY or x-api-key: KEY"}
    status, headers, raw = way.raw("GET", "")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
        status, headers, raw = way.raw(method, path, body=json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": tag}]}).encode() if method == "POST" else b"")
        assert status == 401 and headers["www-authenticate"] == "Bearer", (method, path)
        error = json.loads(raw)["error"]
        assert (error["code"], error["type"]) == ("invalid_api_key", "invalid_request_error")
    assert fake_model.find(tag) == []


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer not-a-key"}, {"x-api-key": "not-a-key"},
                                     {"Authorization": f"Basic {KEY_ONE}"}, {"Authorization": KEY_ONE},
                                     {"x-api-key": KEY_ONE[:-1]}])
def test_a_wrong_key_is_a_401(way, fake_model, tag, headers):
    status, got, body = ask(way, tag, headers)
    assert status == 401 and got["www-authenticate"] == "Bearer" and isinstance(body["error"], str)
    assert fake_model.find(tag) == []


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY_ONE}"}, {"x-api-key": KEY_TWO},
                                     {"authorization": f"bearer {KEY_TWO}"},
                                     {"Authorization": "Bearer a-platform-token", "x-api-key": KEY_ONE}])
def test_any_listed_key_in_either_header_is_accepted(way, tag, headers):
    status, _, body = ask(way, tag, headers)
    assert (status, body["response"]) == (200, f"echo: {tag}")


def test_the_official_client_sends_its_key_as_a_bearer(way, tag):
    client = way.client(KEY_TWO)
    assert [m.id for m in client.models.list().data] == [MODEL]
    answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": tag}])
    assert answer.choices[0].message.content == f"echo: {tag}"
    with pytest.raises(openai.AuthenticationError) as raised:
        way.client("sk-wrong").models.list()
    assert (raised.value.status_code, raised.value.code) == (401, "invalid_api_key")


def test_a_preflight_needs_no_key_and_allows_both_headers(way):
    status, headers, _ = way.raw("OPTIONS", "", {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "x-api-key"})
    assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-api-key", "content-type"} <= allowed
    status, headers, _ = way.raw("OPTIONS", "/v1/models", {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert status == 204 and "GET" in headers["access-control-allow-methods"]


def test_the_usage_record_carries_the_key_id_never_the_key(way, tag, capfd):
    if way.base is not None:
        pytest.skip("the served apps' records go to their own process's log: read in-process here")
    capfd.readouterr()
    assert ask(way, tag, {"x-api-key": KEY_TWO})[0] == 200
    assert ask(way, f"{tag}-no-key", {})[0] == 401
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"agent.usage"' in line]
    accepted, refused = lines
    assert (accepted["status"], accepted["key_id"]) == (200, key_id(KEY_TWO))
    assert (refused["status"], refused["severity"], "key_id" in refused) == (401, "WARNING", False)
    assert KEY_TWO not in json.dumps(lines) and KEY_ONE not in json.dumps(lines)


@pytest.mark.parametrize("kind", APPS)
def test_an_unset_keys_variable_refuses_every_request_naming_it(kind, fake_model, keys_builds, tag):
    base, _, client = kind.partition("+")
    with running_way(base, keys_builds[client], keys_env(fake_model, " \n ")) as way:
        status, _, body = ask(way, tag, {"x-api-key": KEY_ONE})
        assert (status, body) == (500, {"error": f"{KEYS_ENV} is not set in the function's environment"})
        status, _, raw = way.raw("GET", "/v1/models", {"Authorization": f"Bearer {KEY_ONE}"})
        assert status == 500 and KEYS_ENV in json.loads(raw)["error"]["message"]
    assert fake_model.find(tag) == []
