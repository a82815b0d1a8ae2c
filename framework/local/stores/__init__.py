"""The local back-ends of the session stores, started on 127.0.0.1 for `serve` and the store contract
suite: moto's DynamoDB (server mode), Azurite's table service (npm, installed once per machine), and
the Firestore emulator when this machine has it (else the REST fake, firestore_fake.py).

Each `start_*` returns a LocalStore: the environment variables that point a store at it (the same names
the deployed stores read: AWS_ENDPOINT_URL, FIRESTORE_EMULATOR_HOST / FIRESTORE_ENDPOINT,
AZURE_TABLE_ENDPOINT + AZURE_STORAGE_CONNECTION_STRING) and `close()`. `prepare_*` creates what a
deployed agent would find already there (the DynamoDB table, the Azure table)."""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from framework.errors import LocalRunError
from framework.local import npm
from framework.local.http import upstream_port, wait_for_port
from framework.local.process import Child

HERE = Path(__file__).resolve().parent
FIRESTORE_EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator")
# Azurite's well-known development account (https://github.com/Azure/Azurite#default-storage-account):
# public by design, it opens nothing but the local emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LOCAL_PROJECT = "demo-agent-sessions"  # a demo- project id: the emulator never reaches Google with it


@dataclass
class LocalStore:
    kind: str                         # "dynamodb", "firestore-emulator", "firestore-fake", "table"
    env: dict[str, str]               # what points a store at this back-end
    _close: Callable[[], None] = field(repr=False, default=lambda: None)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- DynamoDB: moto in server mode -------------------------------------------------------------------

def start_dynamodb() -> LocalStore:
    """moto's server in this process (as moto.server.ThreadedMotoServer starts it,
    https://docs.getmoto.org/en/latest/docs/server_mode.html), one request at a time.
    moto checks no signature, so any credentials do; it never applies TTL (expired items stay readable)."""
    try:
        from moto.moto_server.threaded_moto_server import MotoRequestHandler
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as exc:
        raise LocalRunError("a local DynamoDB needs moto's server: pip install 'moto[server]'") from exc
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        # DynamoDB applies each write atomically (conditions, ADD); moto does not lock its tables, so
        # two concurrent requests could both pass a condition. One request at a time keeps that rule.
        with lock:
            return list(app(environ, start_response))

    port = upstream_port()
    server = make_server("127.0.0.1", port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if not wait_for_port(port, 10, lambda: True):
        server.shutdown()
        raise LocalRunError("moto's DynamoDB server did not start")
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # noqa: S105 - moto checks none
    return LocalStore("dynamodb", env, server.shutdown)


def prepare_dynamodb(env: dict[str, str], table: str) -> None:
    """The table as deploy makes it: on-demand, key `pk` (S), TTL on `expires`
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html)."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    try:
        client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    except client.exceptions.ResourceInUseException:
        return
    client.update_time_to_live(TableName=table,
                               TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})


# --- Azure Table Storage: Azurite's table service ------------------------------------------------------

def ensure_azurite() -> Path:
    """Azurite's azurite-table command, installed once per machine from the pinned lock file."""
    sources = {name: (HERE / "azurite" / name).read_bytes() for name in ("package.json", "package-lock.json")}
    folder = npm.install(
        sources, "azurite",
        "a local Azure Table Storage runs Microsoft's emulator Azurite (npm azurite), which needs Node.js "
        "and npm; missing on PATH: {missing} (Debian/Ubuntu: apt-get install nodejs npm)",
        "could not install Azurite (npm azurite)", what="Microsoft's Azure Storage emulator (azurite)",
        expected="about 30 s")
    return folder / "node_modules" / ".bin" / "azurite-table"


def start_azurite(log: bool = False) -> LocalStore:
    """`azurite-table --inMemoryPersistence` (https://github.com/Azure/Azurite#command-line-options):
    path-style URLs, http://127.0.0.1:<port>/devstoreaccount1/<table>."""
    command = ensure_azurite()
    port = upstream_port()
    child = Child([str(command), "--tableHost", "127.0.0.1", "--tablePort", str(port), "--inMemoryPersistence",
                   "--skipApiVersionCheck", "--silent"], port, dict(os.environ), command.parent, log,
                  "Azurite's table service", startup=30)
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    env = {"AZURE_TABLE_ENDPOINT": endpoint,
           "AZURE_STORAGE_CONNECTION_STRING": f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                                              f"AccountKey={AZURITE_KEY};TableEndpoint={endpoint};"}
    return LocalStore("table", env, child.close)


def prepare_table(env: dict[str, str], table: str) -> None:
    """Create Table (https://learn.microsoft.com/en-us/rest/api/storageservices/create-table); 409 is fine."""
    from framework.runtime import agent_sessions

    store = agent_sessions.open_store({"store": "table", "table": table, "account": AZURITE_ACCOUNT}, "-", env)
    status, _, body = store.request("POST", "/Tables", {"TableName": table}, table_path=False)
    if status not in (201, 204, 409):
        raise LocalRunError(f"could not create the local Azure table {table}: HTTP {status} {body[:200]!r}")


# --- Firestore: the emulator, else the REST fake --------------------------------------------------------

def firestore_emulator_present() -> bool:
    return FIRESTORE_EMULATOR.is_file() and os.access(FIRESTORE_EMULATOR, os.X_OK)


def start_firestore(prefer_emulator: bool = True, log: bool = False) -> LocalStore:
    if prefer_emulator and firestore_emulator_present():
        return start_firestore_emulator(log)
    return start_firestore_fake()


def start_firestore_emulator(log: bool = False) -> LocalStore:
    """Google's emulator (gcloud's cloud-firestore-emulator, Java), in memory; FIRESTORE_EMULATOR_HOST
    (https://cloud.google.com/firestore/docs/emulator#android_apple_platforms_and_web_sdks)."""
    port = upstream_port()
    # java itself, not the wrapper script, which would leave java running when it is terminated
    jar = FIRESTORE_EMULATOR.parent / "cloud-firestore-emulator.jar"
    child = Child([os.environ.get("JAVA") or "java", "-Duser.language=en", "-cp", str(jar),
                   "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start", "--host=127.0.0.1",
                   f"--port={port}",
                   f"--project_id={LOCAL_PROJECT}"], port, dict(os.environ), FIRESTORE_EMULATOR.parent, log,
                  "the Firestore emulator", startup=60)
    _wait_http(port)
    return LocalStore("firestore-emulator", {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{port}",
                                             "GOOGLE_CLOUD_PROJECT": LOCAL_PROJECT}, child.close)


def start_firestore_fake() -> LocalStore:
    from framework.local.stores.firestore_fake import FakeFirestore

    fake = FakeFirestore().start()
    return LocalStore("firestore-fake", {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{fake.port}",
                                         "GOOGLE_CLOUD_PROJECT": LOCAL_PROJECT}, fake.stop)


def _wait_http(port: int, timeout: float = 30) -> None:
    """The emulator listens before it answers: wait for its first HTTP answer."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise LocalRunError("the Firestore emulator did not answer")


LOCAL_UPSTASH_TOKEN = "local-upstash-token"  # noqa: S105 - the local REST front's own, opens nothing else


def start(kind: str) -> contextlib.AbstractContextManager[LocalStore]:
    """The local store of a kind of agent.json's sessions block."""
    starters = {"dynamodb": start_dynamodb, "firestore": start_firestore, "table": start_azurite, "redis": start_redis}
    if kind not in starters:
        raise LocalRunError(f"there is no local {kind} session store")
    return starters[kind]()


@contextlib.contextmanager
def start_redis():
    """redis-server behind the Upstash REST front (what Vercel's store speaks)."""
    try:
        from framework.local.stores.upstash_front import RedisServer, UpstashFront
    except ImportError as exc:
        raise LocalRunError("a local Upstash Redis needs the redis package (pip install redis)") from exc
    with RedisServer() as server, UpstashFront(server.socket, token=LOCAL_UPSTASH_TOKEN) as front:
        yield LocalStore("redis", {"KV_REST_API_URL": front.url, "KV_REST_API_TOKEN": LOCAL_UPSTASH_TOKEN})
