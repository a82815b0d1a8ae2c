"""The Firestore fake against the real emulator: the same REST calls, the same statuses, error codes and
shapes (run on the emulator too when this machine has it). The expectations are what the emulator
528.0.0 answered; they follow https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/commit
and the google.rpc mapping of https://cloud.google.com/apis/design/errors."""

from __future__ import annotations

import http.client
import json
import uuid

import pytest

from framework.runtime import agent_sessions
from framework.runtime.agent_sessions import open_store
from tests.stores.conftest import Backends

PARAMS = [pytest.param("firestore-fake", id="fake")]
if __import__("framework.local.stores", fromlist=["x"]).firestore_emulator_present():
    PARAMS.append(pytest.param("firestore-emulator", id="emulator"))


@pytest.fixture(params=PARAMS)
def rest(request, backends: Backends):
    backend = backends.get(request.param)
    host = backend.env["FIRESTORE_EMULATOR_HOST"]
    project = backend.env["GOOGLE_CLOUD_PROJECT"]
    root = f"projects/{project}/databases/(default)/documents"

    def call(method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection(host, timeout=10)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, f"/v1/{path}", data, {"Authorization": "Bearer owner",
                                                  "Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read() or b"{}")
        conn.close()
        return response.status, answer

    call.root = root  # type: ignore[attr-defined]
    call.backend = backend  # type: ignore[attr-defined]
    return call


def name(rest, doc: str) -> str:
    return f"{rest.root}/c/{doc}"


def commit(rest, *writes: dict) -> tuple[int, dict]:
    return rest("POST", f"{rest.root}:commit", {"writes": list(writes)})


def error(answer: dict) -> str:
    return answer["error"]["status"]


def test_get_of_a_missing_document_is_404_not_found(rest):
    status, answer = rest("GET", f"{rest.root}/c/missing-{uuid.uuid4().hex}")
    assert (status, error(answer), answer["error"]["code"]) == (404, "NOT_FOUND", 404)
    assert answer["error"]["message"].startswith("Document (") and answer["error"]["message"].endswith(") not found.")


def test_preconditions(rest):
    doc = name(rest, uuid.uuid4().hex)
    status, answer = commit(rest, {"update": {"name": doc, "fields": {}}, "currentDocument": {"exists": True}})
    assert (status, error(answer)) == (404, "NOT_FOUND")
    status, answer = commit(rest, {"update": {"name": doc, "fields": {}},
                                   "currentDocument": {"updateTime": "2020-01-01T00:00:00Z"}})
    assert (status, error(answer)) == (400, "FAILED_PRECONDITION")
    status, answer = commit(rest, {"update": {"name": doc, "fields": {"a": {"integerValue": 1}}},
                                   "currentDocument": {"exists": False}})
    assert status == 200 and set(answer) == {"writeResults", "commitTime"}
    first = answer["writeResults"][0]["updateTime"]
    status, answer = commit(rest, {"update": {"name": doc, "fields": {}}, "currentDocument": {"exists": False}})
    assert (status, error(answer)) == (409, "ALREADY_EXISTS")
    status, answer = commit(rest, {"update": {"name": doc, "fields": {"a": {"integerValue": "2"}}},
                                   "currentDocument": {"updateTime": first}})
    assert status == 200
    second = answer["writeResults"][0]["updateTime"]
    assert second > first
    status, answer = commit(rest, {"update": {"name": doc, "fields": {}}, "currentDocument": {"updateTime": first}})
    assert (status, error(answer)) == (400, "FAILED_PRECONDITION")
    status, got = rest("GET", doc)
    assert status == 200 and got["updateTime"] == second and got["fields"] == {"a": {"integerValue": "2"}}


def test_a_failed_write_in_a_commit_applies_none(rest):
    one, two = name(rest, uuid.uuid4().hex), name(rest, uuid.uuid4().hex)
    commit(rest, {"update": {"name": two, "fields": {}}})
    status, _ = commit(rest, {"update": {"name": one, "fields": {}}},
                       {"update": {"name": two, "fields": {}}, "currentDocument": {"exists": False}})
    assert status == 409
    assert rest("GET", one)[0] == 404


def test_values_come_back_as_the_service_writes_them(rest):
    doc = name(rest, uuid.uuid4().hex)
    fields = {"i": {"integerValue": 42}, "e": {"arrayValue": {"values": []}}, "s": {"stringValue": "é🤖\u0000"},
              "t": {"timestampValue": "2030-01-01T00:00:00Z"},
              "m": {"mapValue": {"fields": {"x": {"booleanValue": True}}}}}
    assert commit(rest, {"update": {"name": doc, "fields": fields}})[0] == 200
    status, got = rest("GET", doc)
    assert got["fields"]["i"] == {"integerValue": "42"}
    assert got["fields"]["e"] == {"arrayValue": {}}
    assert got["fields"]["s"] == {"stringValue": "é🤖\u0000"}
    assert agent_sessions.parse_rfc3339(got["fields"]["t"]["timestampValue"]) == 1893456000
    assert got["fields"]["m"] == {"mapValue": {"fields": {"x": {"booleanValue": True}}}}
    assert set(got) == {"name", "fields", "createTime", "updateTime"} and got["name"] == doc


def test_update_mask_and_increment(rest):
    doc = name(rest, uuid.uuid4().hex)
    write = {"update": {"name": doc, "fields": {"s": {"stringValue": "x"}}}, "updateMask": {"fieldPaths": ["s"]},
             "updateTransforms": [{"fieldPath": "n", "increment": {"integerValue": "150"}}]}
    status, answer = commit(rest, write)
    assert status == 200 and answer["writeResults"][0]["transformResults"] == [{"integerValue": "150"}]
    write["updateTransforms"][0]["increment"] = {"integerValue": "50"}
    status, answer = commit(rest, write)
    assert answer["writeResults"][0]["transformResults"] == [{"integerValue": "200"}]
    commit(rest, {"update": {"name": doc, "fields": {"k": {"stringValue": "kept?"}}},
                  "updateMask": {"fieldPaths": ["k"]}})
    fields = rest("GET", doc)[1]["fields"]
    assert fields == {"s": {"stringValue": "x"}, "n": {"integerValue": "200"}, "k": {"stringValue": "kept?"}}
    commit(rest, {"update": {"name": doc, "fields": {"z": {"stringValue": "only"}}}})  # no mask: replaces
    assert rest("GET", doc)[1]["fields"] == {"z": {"stringValue": "only"}}


def test_a_body_that_is_not_json_is_400_invalid_argument(rest):
    status, answer = rest("POST", f"{rest.root}:commit", raw=b"not json")
    assert (status, error(answer)) == (400, "INVALID_ARGUMENT")


def test_a_lone_surrogate_round_trips_through_the_store(rest):
    store = open_store({"store": "firestore", "project": rest.backend.env["GOOGLE_CLOUD_PROJECT"]}, "bot",
                       rest.backend.env)
    history = [{"role": "user", "content": "half a pair: \ud83d end"}]
    session = "t-" + uuid.uuid4().hex
    store.save(session, history, 0)
    assert store.load(session) == (history, 1)
