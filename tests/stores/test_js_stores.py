"""What the contract suite cannot see of the JavaScript stores (framework/runtime/js/sessions.mjs):
the SigV4 signer against botocore's (moto checks no signature), the strict type check with the
generated Vercel app's settings, Web-standard APIs only (no import, no Node global), and the
Upstash REST front (framework/local/stores/upstash_front.py) read by Upstash's official client."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import build, write_agent
from tests.stores import js_driver

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = ROOT / "framework" / "runtime" / "js" / "sessions.mjs"
UPSTASH_CHECK = ROOT / "tests" / "js" / "upstash"
WHEN = datetime.datetime(2026, 12, 2, 3, 15, 0, tzinfo=datetime.UTC)


def botocore_headers(url: str, body: str, target: str, token: str | None, region: str = "us-east-1") -> dict:
    request = AWSRequest(method="POST", url=url, data=body.encode(), headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target})
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
                  "dynamodb", region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


def js_headers(url: str, body: str, target: str, token: str | None, region: str = "us-east-1") -> dict:
    credentials = {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
    if token:
        credentials["sessionToken"] = token
    answer = js_driver.node_driver().call("sign", request={
        "method": "POST", "url": url, "body": body, "region": region, "service": "dynamodb",
        "credentials": credentials, "date": WHEN.isoformat().replace("+00:00", "Z"),
        "headers": {"content-type": "application/x-amz-json-1.0", "x-amz-target": target}})
    assert "error" not in answer, answer
    return answer["ok"]


SIGNED = [
    ("https://dynamodb.us-east-1.amazonaws.com/", '{"TableName":"T","Key":{"pk":{"S":"s#a"}}}',
     "DynamoDB_20120810.GetItem", "FwoGZXIvYXdzEBYaDH+session/token=="),
    ("https://dynamodb.eu-west-3.amazonaws.com/", json.dumps({"Item": {"messages": {"S": "héllo 🤖 \"q\""}}},
                                                             ensure_ascii=False),
     "DynamoDB_20120810.PutItem", None),
    ("http://127.0.0.1:4566/", "{}", "DynamoDB_20120810.UpdateItem", "tok"),
]


@pytest.mark.parametrize(("url", "body", "target", "token"), SIGNED, ids=["token", "unicode-no-token", "endpoint-port"])
def test_the_signature_is_botocores(url, body, target, token):
    region = "eu-west-3" if "eu-west-3" in url else "us-east-1"
    expected = botocore_headers(url, body, target, token, region)
    got = js_headers(url, body, target, token, region)
    assert got["authorization"] == expected["authorization"]
    assert got["x-amz-date"] == expected["x-amz-date"] == "20261202T031500Z"
    assert got.get("x-amz-security-token") == expected.get("x-amz-security-token")
    assert "host" not in got  # fetch sets it from the URL, the value signed


def test_the_store_type_checks_with_the_generated_vercel_apps_settings(tmp_path, tsc):
    agent = write_agent(tmp_path / "agent", """\
        name: store-bot
        prompt: {file: prompt.txt}
        model: fake-1
        targets:
          vercel:
            stream: true
        """, prompt_file="Be brief.")
    assert build(agent, tmp_path / "generated") == 0
    (app,) = [p.parent.parent for p in (tmp_path / "generated").rglob("lib/agent.mjs")]
    shutil.copy(SESSIONS, app / "lib" / "sessions.mjs")
    assert "lib/**/*.mjs" in json.loads((app / "tsconfig.json").read_text())["include"]
    result = subprocess.run([str(tsc), "--noEmit", "-p", str(app)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_store_uses_web_standard_apis_only():
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", SESSIONS.read_text(encoding="utf-8"), flags=re.S)
    assert not re.search(r"^\s*import\b|\brequire\(|\bimport\(", code, re.M)
    for name in ("process", "Buffer", "globalThis", "node:", "setImmediate", "__dirname"):
        assert name not in code, name


@pytest.fixture(scope="module")
def upstash_front():
    from framework.local.stores.upstash_front import RedisServer, UpstashFront

    with RedisServer() as server, UpstashFront(server.socket, token="front-token") as front:
        yield front


@pytest.fixture(scope="module")
def upstash_client(tmp_path_factory) -> Path:
    """Upstash's official npm client (pinned in tests/js/upstash), installed once per machine."""
    from framework.local import npm
    from tests.conftest import require_node, shared_lock

    require_node()
    sources = {name: (UPSTASH_CHECK / name).read_bytes() for name in ("package.json", "package-lock.json",
                                                                      "check-front.mjs")}
    with shared_lock(tmp_path_factory, "upstash-client-install"):
        folder = npm.install(sources, "upstash-client", "the Upstash client check needs {missing} on PATH",
                             "could not install @upstash/redis with npm")
    return folder / "check-front.mjs"


def test_upstashs_own_client_reads_the_front(upstash_front, upstash_client):
    result = subprocess.run(["node", str(upstash_client), upstash_front.url, "front-token"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["set"] == "OK" and out["get"] == "héllo 🤖"  # base64 encoding (the client's default) undone
    assert out["json"] == {"a": [1, "two"]} and out["missing"] is None
    assert out["hset"] == 2 and out["hgetall"] == {"agent": "bot", "version": 3}
    assert out["incrby"] == 5 and out["ttl"] == 100
    assert out["eval"] == ["check:e", "x", 1]
    assert out["multi"] == [2, 1, 2] and out["pipeline"] == ["OK", "v"]
    assert "WRONGTYPE" in out["wrongtype"]["error"]
    assert out["unauthorized"]["error"].startswith("Unauthorized")


def _post(url: str, body: object, token: str = "front-token", path: str = "/") -> tuple[int, object]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_front_answers_upstashs_documented_shapes(upstash_front):
    url = upstash_front.url
    assert _post(url, ["SET", "shape:k", "v", "EX", 100]) == (200, {"result": "OK"})
    assert _post(url, ["GET", "shape:none"]) == (200, {"result": None})
    assert _post(url, ["GET"]) == (400, {"error": "ERR wrong number of arguments for 'get' command"})
    assert _post(url, ["GET", "shape:k"], token="nope") == (401, {"error": "Unauthorized"})
    status, answer = _post(url, [["INCR", "shape:n"], ["GET", "shape:k"], ["HGET", "shape:k", "f"]], path="/pipeline")
    assert status == 200 and answer[:2] == [{"result": 1}, {"result": "v"}] and "WRONGTYPE" in answer[2]["error"]
    status, answer = _post(url, [["INCR", "shape:n"], ["NOSUCH"]], path="/multi-exec")
    assert status == 400 and answer["error"].startswith("EXECABORT")
    assert _post(url, ["GET", "shape:n"]) == (200, {"result": "1"})  # the aborted transaction changed nothing


def test_the_redis_save_is_one_request_and_load_one(upstash_front):
    store = js_driver.open_js_store({"store": "redis", "ttl_hours": 1, "max_messages": 40},
                                    "bot", {"KV_REST_API_URL": upstash_front.url, "KV_REST_API_TOKEN": "front-token"})
    before = len(upstash_front.requests)
    assert store.save("one-trip", [{"role": "user", "content": "hi"}], 0) == 1
    assert store.load("one-trip") == ([{"role": "user", "content": "hi"}], 1)
    sent = upstash_front.requests[before:]
    assert [r.body[0] for r in sent] == ["EVAL", "HMGET"]
    assert all(r.headers["Authorization"] == "Bearer front-token" for r in sent)
    ttl = upstash_front.client().ttl("s#one-trip")
    assert 3590 <= ttl <= 3600



@pytest.mark.parametrize(("config", "env", "words"), [
    ({"store": "redis", "ttl_hours": 1}, {}, "KV_REST_API_URL and KV_REST_API_TOKEN"),
    ({"store": "redis", "ttl_hours": 1, "url_env": "UP_URL", "token_env": "UP_TOKEN"},
     {"UP_URL": "http://127.0.0.1:1"}, "UP_URL and UP_TOKEN"),
    ({"store": "dynamodb", "ttl_hours": 1, "table": "T"}, {}, "AWS_REGION"),
    ({"store": "dynamodb", "ttl_hours": 1, "table": "T"}, {"AWS_REGION": "us-east-1"}, "AWS_ACCESS_KEY_ID"),
    ({"store": "firestore", "ttl_hours": 1}, {}, "no \"firestore\" session store"),
])
def test_a_store_without_its_settings_is_a_plain_store_error(config, env, words):
    answer = js_driver.node_driver().call("open", config=config, agent="bot", env=env)
    assert answer["error"]["type"] == "StoreError" and words in answer["error"]["message"]


def test_a_wrong_token_is_a_store_error_without_the_token(upstash_front):
    answer = js_driver.node_driver().call("open", config={"store": "redis", "ttl_hours": 1}, agent="bot",
                                          env={"KV_REST_API_URL": upstash_front.url,
                                               "KV_REST_API_TOKEN": "wrong-token-1234"})
    answer = js_driver.node_driver().call("load", store=answer["ok"]["handle"], session_id="s1")
    assert answer["error"]["type"] == "StoreError"
    assert "refused the token in KV_REST_API_TOKEN (HTTP 401)" in answer["error"]["message"]
    assert "wrong-token-1234" not in answer["error"]["message"]
