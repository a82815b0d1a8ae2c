"""The store contract suite's fixtures: the local back-ends (started once per test session, only when a
test asks for them) and the driver registry.

To add a driver (another language's stores), append a Driver to DRIVERS:

    DRIVERS.append(Driver("js", ("dynamodb", "firestore-fake", "table", "redis"), open_js_store))

`open(config, agent, env)` returns an object with the Python protocol's synchronous methods (load, save,
add_tokens, tokens_used, max_bytes; optionally close()), raising agent_sessions.StoreConflict /
StoreError (or subclasses of them). A back-end name a driver lists but BACKENDS lacks is an error; a
back-end this machine cannot run (the Firestore emulator) is left out of the parameters, never skipped.
To add a back-end, add a function to BACKENDS that returns a Backend (with `raw`, the direct record
access the suite needs: see Raw) and registers its shutdown with `stack.callback`.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from framework.local import stores as local_stores

AGENT = "contract-bot"
TABLE = "agent-sessions"
AZURE_TABLE = "agentsessions"  # Azure table names are ^[A-Za-z][A-Za-z0-9]{2,62}$: no dash
COLLECTION = "sessions"


class Raw(Protocol):
    """Direct access to a back-end's records, in the shared layout (docs: tests/stores/conftest.py)."""

    def put(self, session_id: str, agent: str, messages: str, version: int, expires: int) -> None: ...
    def expires(self, session_id: str) -> int | None: ...  # the stored `expires`, epoch seconds
    def counter_expires(self, key_id: str, day: str) -> int | None: ...  # the same, of a token counter


@dataclass
class Backend:
    name: str
    config: dict[str, Any]         # agent.json's "sessions" block for this store
    env: dict[str, str]            # the environment the store reads
    raw: Raw
    unreachable_env: dict[str, str] = field(default_factory=dict)  # the same, pointing at a closed port


@dataclass(frozen=True)
class Driver:
    name: str
    backends: tuple[str, ...]
    open: Callable[[dict[str, Any], str, Mapping[str, str]], Any]


def open_python_store(config: dict[str, Any], agent: str, env: Mapping[str, str]) -> Any:
    from framework.runtime import agent_sessions

    return agent_sessions.open_store(config, agent, env)


PY_BACKENDS = ("dynamodb", "firestore-fake", "firestore-emulator", "table")
DRIVERS: list[Driver] = [
    Driver("py", PY_BACKENDS, open_python_store),
]


def closed_port() -> int:
    """A port nothing listens on (bound, then released: connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- back-ends ---------------------------------------------------------------------------------------

def dynamodb_backend(stack: contextlib.ExitStack) -> Backend:
    import boto3

    local = stack.enter_context(local_stores.start_dynamodb())
    local_stores.prepare_dynamodb(local.env, TABLE)
    client = boto3.client("dynamodb", endpoint_url=local.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106

    class DynamoRaw:
        def put(self, session_id, agent, messages, version, expires):
            client.put_item(TableName=TABLE, Item={
                "pk": {"S": f"s#{session_id}"}, "agent": {"S": agent}, "messages": {"S": messages},
                "version": {"N": str(version)}, "expires": {"N": str(expires)}})

        def expires(self, session_id):
            item = client.get_item(TableName=TABLE, Key={"pk": {"S": f"s#{session_id}"}},
                                   ConsistentRead=True).get("Item")
            return int(item["expires"]["N"]) if item else None

        def counter_expires(self, key_id, day):
            item = client.get_item(TableName=TABLE, Key={"pk": {"S": f"q#{key_id}#{day}"}},
                                   ConsistentRead=True).get("Item")
            return int(item["expires"]["N"]) if item else None

    unreachable = {**local.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}
    return Backend("dynamodb", {"store": "dynamodb", "ttl_hours": 24, "max_messages": 40, "table": TABLE},
                   dict(local.env), DynamoRaw(), unreachable)


def _firestore_backend(stack: contextlib.ExitStack, local: local_stores.LocalStore, name: str) -> Backend:
    import http.client

    host = local.env["FIRESTORE_EMULATOR_HOST"]
    project = local.env["GOOGLE_CLOUD_PROJECT"]
    root = f"projects/{project}/databases/(default)/documents"

    def call(method: str, path: str, body: dict | None = None) -> dict:
        conn = http.client.HTTPConnection(host, timeout=10)
        conn.request(method, f"/v1/{path}", json.dumps(body).encode() if body is not None else None,
                     {"Authorization": "Bearer owner", "Content-Type": "application/json"})
        response = conn.getresponse()
        data = json.loads(response.read() or b"{}")
        conn.close()
        if response.status not in (200, 404):
            raise AssertionError(f"firestore {method} {path}: {response.status} {data}")
        return data if response.status == 200 else {}

    class FirestoreRaw:
        def put(self, session_id, agent, messages, version, expires):
            import datetime

            stamp = datetime.datetime.fromtimestamp(expires, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            call("POST", f"{root}:commit", {"writes": [{"update": {
                "name": f"{root}/{COLLECTION}/s-{session_id}",
                "fields": {"agent": {"stringValue": agent}, "messages": {"stringValue": messages},
                           "version": {"integerValue": str(version)}, "expires": {"timestampValue": stamp}}}}]})

        def expires(self, session_id):
            return self._expires(f"s-{session_id}")

        def counter_expires(self, key_id, day):
            return self._expires(f"q-{key_id}-{day}")

        def _expires(self, doc_id):
            import datetime

            doc = call("GET", f"{root}/{COLLECTION}/{doc_id}")
            if not doc:
                return None
            stamp = doc["fields"]["expires"]["timestampValue"]
            return int(datetime.datetime.fromisoformat(stamp).timestamp())

    config = {"store": "firestore", "ttl_hours": 24, "max_messages": 40, "project": project,
              "database": "(default)", "collection": COLLECTION}
    unreachable = {**local.env, "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{closed_port()}"}
    return Backend(name, config, dict(local.env), FirestoreRaw(), unreachable)


def firestore_fake_backend(stack: contextlib.ExitStack) -> Backend:
    return _firestore_backend(stack, stack.enter_context(local_stores.start_firestore_fake()), "firestore-fake")


def firestore_emulator_backend(stack: contextlib.ExitStack) -> Backend:
    local = stack.enter_context(local_stores.start_firestore_emulator())
    return _firestore_backend(stack, local, "firestore-emulator")


def table_backend(stack: contextlib.ExitStack) -> Backend:
    from framework.runtime import agent_sessions

    local = stack.enter_context(local_stores.start_azurite())
    local_stores.prepare_table(local.env, AZURE_TABLE)
    config = {"store": "table", "ttl_hours": 24, "max_messages": 40, "table": AZURE_TABLE,
              "account": local_stores.AZURITE_ACCOUNT}
    admin = agent_sessions.open_store(config, "-", local.env)

    class TableRaw:
        def put(self, session_id, agent, messages, version, expires):
            entity = {"PartitionKey": "s", "RowKey": session_id, "agent": agent,
                      "version": str(version), "version@odata.type": "Edm.Int64",
                      "expires": str(expires), "expires@odata.type": "Edm.Int64", "m0": messages}
            status, _, body = admin.request("PUT", f"(PartitionKey='s',RowKey='{session_id}')", entity)
            assert status == 204, (status, body)

        def expires(self, session_id):
            status, _, body = admin.request("GET", f"(PartitionKey='s',RowKey='{session_id}')")
            return int(json.loads(body)["expires"]) if status == 200 else None

        def counter_expires(self, key_id, day):
            status, _, body = admin.request("GET", f"(PartitionKey='q',RowKey='{key_id}-{day}')")
            return int(json.loads(body)["expires"]) if status == 200 else None

    unreachable = {**local.env, "AZURE_TABLE_ENDPOINT": f"http://127.0.0.1:{closed_port()}/"
                                                        f"{local_stores.AZURITE_ACCOUNT}"}
    return Backend("table", config, dict(local.env), TableRaw(), unreachable)


BACKENDS: dict[str, Callable[[contextlib.ExitStack], Backend]] = {
    "dynamodb": dynamodb_backend,
    "firestore-fake": firestore_fake_backend,
    "firestore-emulator": firestore_emulator_backend,
    "table": table_backend,
}
AVAILABLE = {"firestore-emulator": local_stores.firestore_emulator_present}

# The JavaScript stores (framework/runtime/js/sessions.mjs), through one node process (tests/js/store-driver.mjs).
from tests.stores import js_driver  # noqa: E402

BACKENDS["redis"] = lambda stack: Backend("redis", **js_driver.redis_backend(stack))
DRIVERS.append(Driver("js", ("dynamodb", "redis"), js_driver.open_js_store))


class Backends:
    """Each back-end started on first use, once per test session."""

    def __init__(self, stack: contextlib.ExitStack):
        self.stack = stack
        self.started: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        if name not in self.started:
            self.started[name] = BACKENDS[name](self.stack)
        return self.started[name]


@pytest.fixture(scope="session")
def backends():
    with contextlib.ExitStack() as stack:
        yield Backends(stack)


def _params() -> list:
    params = []
    for driver in DRIVERS:
        for backend in driver.backends:
            if backend not in BACKENDS:
                raise LookupError(f"driver {driver.name} names an unknown back-end {backend}")
            if AVAILABLE.get(backend, lambda: True)():
                params.append(pytest.param((driver, backend), id=f"{driver.name}-{backend}"))
    return params


@dataclass
class StoreCase:
    driver: Driver
    backend: Backend
    opened: list = field(default_factory=list)

    def open(self, agent: str = AGENT, env: Mapping[str, str] | None = None, **config: Any) -> Any:
        store = self.driver.open({**self.backend.config, **config}, agent,
                                 self.backend.env if env is None else env)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            if hasattr(store, "close"):
                store.close()


@pytest.fixture(params=_params())
def store_case(request, backends):
    driver, name = request.param
    case = StoreCase(driver, backends.get(name))
    yield case
    case.close()


@pytest.fixture
def store(store_case):
    return store_case.open()
