"""Session stores: one conversation per record, in the platform's own database (issue 12).

Standard library only; boto3 (shipped in Lambda's Python runtime) is imported inside the DynamoDB store
alone. Every store keeps the same record: `agent` (a record of another agent is refused as foreign),
`messages` (the JSON text of the chat messages), `version` (1 for the first save) and `expires` (epoch
seconds, now + ttl_hours, renewed on every save; an expired record loads as absent: DynamoDB and
Firestore delete expired records lazily, up to days later, and Table Storage never does). `save` writes
only if the stored version is still the one loaded (optimistic concurrency), else StoreConflict.

The API facts relied on are in docs/research/session-stores.md; the documentation is cited inline.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIMEOUT = 10.0  # seconds per HTTP request
VERSIONS_KEPT = 1024  # the (version -> precondition) pairs a Firestore or Table store remembers


class StoreConflict(Exception):
    """The record changed since it was loaded: load again and retry, or answer 409."""


class StoreError(Exception):
    """The store is unreachable, refused the request, or holds an unreadable or foreign record.
    The message is a plain sentence that names no secret."""


class Store(Protocol):
    max_bytes: int

    def load(self, session_id: str) -> tuple[list[dict], int]: ...
    def save(self, session_id: str, messages: list[dict], version: int) -> int: ...
    def add_tokens(self, key_id: str, day: str, tokens: int) -> int: ...
    def tokens_used(self, key_id: str, day: str) -> int: ...


def open_store(config: Mapping[str, Any], agent: str, env: Mapping[str, str]) -> Store:
    """The store agent.json's "sessions" block names ("dynamodb", "firestore", "table")."""
    kind = config.get("store")
    stores = {"dynamodb": DynamoStore, "firestore": FirestoreStore, "table": TableStore}
    if kind not in stores:
        raise StoreError(f"unknown session store {kind!r}")
    return stores[kind](config, agent, env)


# --- what every store shares ---------------------------------------------------------------------------

def encode(messages: list[dict], max_bytes: int) -> str:
    text = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: kept as a \uXXXX escape, which round-trips
        text = json.dumps(messages, separators=(",", ":"))
        size = len(text)
    if size > max_bytes:
        raise StoreError(f"the conversation is larger than this store keeps ({max_bytes} bytes of JSON)")
    return text


def decode(session_id: str, agent: str, record_agent: Any, text: Any) -> list[dict]:
    if record_agent != agent:
        raise StoreError(f"session {session_id} belongs to another agent")
    try:
        messages = json.loads(text)
    except (TypeError, ValueError):
        messages = None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise StoreError(f"session {session_id} holds an unreadable conversation")
    return messages


def check_id(session_id: str) -> None:
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise StoreError("a session id is 1 to 128 of A-Z, a-z, 0-9, _ and -")


def check_key(key_id: str, day: str) -> None:
    if not isinstance(key_id, str) or not SESSION_ID.fullmatch(key_id):
        raise StoreError("a key id is 1 to 128 of A-Z, a-z, 0-9, _ and -")
    if not isinstance(day, str) or not DAY.fullmatch(day):
        raise StoreError("a day is YYYY-MM-DD")


def counter_expiry(day: str) -> int:
    """A day's counter expires two days after the day (UTC midnight at its start)."""
    start = datetime.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
    return int(start.timestamp()) + 2 * 86400


def ttl_seconds(config: Mapping[str, Any]) -> int:
    hours = config.get("ttl_hours", 24)
    return int(float(hours) * 3600)


def rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(stamp: str) -> int:
    return int(datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


class Versions:
    """version -> (the precondition that proves it): Firestore's updateTime, Table Storage's ETag, learned
    on load and save, so that a save needs no read of its own. Bounded; shared by threads."""

    def __init__(self) -> None:
        self._known: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str, version: int) -> str | None:
        with self._lock:
            known = self._known.get(session_id)
        return known[1] if known and known[0] == version else None

    def put(self, session_id: str, version: int, proof: str, force: bool = False) -> None:
        with self._lock:
            known = self._known.get(session_id)
            if known and known[0] > version and not force:
                return  # a newer one is known already
            self._known[session_id] = (version, proof)
            self._known.move_to_end(session_id)
            while len(self._known) > VERSIONS_KEPT:
                self._known.popitem(last=False)


class Http:
    """One keep-alive connection per thread and origin (TLS handshakes cost more than the requests)."""

    def __init__(self, base: str, what: str):
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError(f"the {what} endpoint is not an http(s) URL")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.what = what
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=TIMEOUT)
            self._local.conn = conn
            self._local.used = False
        return conn

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]
                ) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):
            conn = self._connection()
            reused = self._local.used
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                data = response.read()
                self._local.used = True
                if response.getheader("connection", "").lower() == "close":
                    self._drop()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                if reused and attempt == 1:
                    continue  # the server closed the idle connection before reading the request
                raise StoreError(f"the {self.what} is unreachable ({type(exc).__name__})") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise StoreError(f"the {self.what} is unreachable ({reason})") from None
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None


def json_body(data: bytes) -> Any:
    try:
        return json.loads(data or b"null")
    except ValueError:
        return None


# --- DynamoDB ------------------------------------------------------------------------------------------

class DynamoStore:
    """One item per record, partition key `pk`: `s#<session id>`, `q#<key id>#<day>`.
    Conditional writes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
    TTL (expired items may be read for days): https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html
    Item limit 400 KB: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html"""

    max_bytes = 350_000

    def __init__(self, config: Mapping[str, Any], agent: str, env: Mapping[str, str]):
        import boto3
        from botocore.config import Config

        self.agent, self.table, self.ttl = agent, str(config.get("table") or ""), ttl_seconds(config)
        if not self.table:
            raise StoreError("the DynamoDB session store needs a table name")
        options: dict[str, Any] = {
            "region_name": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            "config": Config(connect_timeout=3, read_timeout=TIMEOUT,
                             retries={"max_attempts": 3, "mode": "standard"})}
        if env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL"):
            options["endpoint_url"] = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL")
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            options.update(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                           aws_session_token=env.get("AWS_SESSION_TOKEN") or None)
        self.client = boto3.client("dynamodb", **options)

    def _call(self, operation: str, **request: Any) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(TableName=self.table, **request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise StoreConflict("the conversation changed since it was loaded") from None
            raise StoreError(f"the DynamoDB table {self.table} refused the request ({code or 'error'})") from None
        except BotoCoreError as exc:
            raise StoreError(f"the DynamoDB table {self.table} is unreachable ({type(exc).__name__})") from None

    def load(self, session_id: str) -> tuple[list[dict], int]:
        check_id(session_id)
        # ConsistentRead: a retry after a conflict sees the write that caused it
        # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GetItem.html)
        item = self._call("get_item", Key={"pk": {"S": f"s#{session_id}"}}, ConsistentRead=True).get("Item")
        if not item:
            return [], 0
        try:
            expires, version = int(item["expires"]["N"]), int(item["version"]["N"])
            agent, text = item["agent"]["S"], item["messages"]["S"]
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"session {session_id} holds an unreadable conversation") from None
        if expires <= time.time():
            return [], 0
        return decode(session_id, self.agent, agent, text), version

    def save(self, session_id: str, messages: list[dict], version: int) -> int:
        check_id(session_id)
        now = int(time.time())
        item = {"pk": {"S": f"s#{session_id}"}, "agent": {"S": self.agent},
                "messages": {"S": encode(messages, self.max_bytes)},
                "version": {"N": str(version + 1)}, "expires": {"N": str(now + self.ttl)}}
        if version == 0:  # no live record: absent, or expired but not yet deleted by TTL
            condition = "attribute_not_exists(pk) OR #e <= :now"
            values = {":now": {"N": str(now)}}
            names = {"#e": "expires"}
        else:
            condition = "#v = :v AND #a = :a AND #e > :now"
            values = {":v": {"N": str(version)}, ":a": {"S": self.agent}, ":now": {"N": str(now)}}
            names = {"#v": "version", "#a": "agent", "#e": "expires"}
        self._call("put_item", Item=item, ConditionExpression=condition, ExpressionAttributeNames=names,
                   ExpressionAttributeValues=values)
        return version + 1

    def add_tokens(self, key_id: str, day: str, tokens: int) -> int:
        check_key(key_id, day)
        # ADD starts from 0 on a missing item or attribute
        # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html)
        answer = self._call("update_item", Key={"pk": {"S": f"q#{key_id}#{day}"}},
                            UpdateExpression="ADD #t :n SET #e = :e",
                            ExpressionAttributeNames={"#t": "tokens", "#e": "expires"},
                            ExpressionAttributeValues={":n": {"N": str(int(tokens))},
                                                       ":e": {"N": str(counter_expiry(day))}},
                            ReturnValues="UPDATED_NEW")
        return int(answer["Attributes"]["tokens"]["N"])

    def tokens_used(self, key_id: str, day: str) -> int:
        check_key(key_id, day)
        item = self._call("get_item", Key={"pk": {"S": f"q#{key_id}#{day}"}}, ConsistentRead=True).get("Item")
        return int(item["tokens"]["N"]) if item and "tokens" in item else 0


# --- Firestore -----------------------------------------------------------------------------------------

class FirestoreStore:
    """Documents `<collection>/s-<id>` and `<collection>/q-<key id>-<day>` through the REST v1 API.
    Reads: documents.get (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/get).
    Writes: documents.commit only (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/commit),
    with `currentDocument` preconditions (Precondition: exists / updateTime,
    https://cloud.google.com/firestore/docs/reference/rest/v1/Precondition) and `increment` transforms
    (https://cloud.google.com/firestore/docs/reference/rest/v1/Write#FieldTransform); the emulator ignores
    a PATCH's updateTime query parameter, a commit's is honoured. `expires` is a timestampValue, the TTL
    policy's field (https://cloud.google.com/firestore/docs/ttl). Document limit 1 MiB
    (https://cloud.google.com/firestore/quotas)."""

    max_bytes = 900_000

    def __init__(self, config: Mapping[str, Any], agent: str, env: Mapping[str, str]):
        self.agent, self.ttl = agent, ttl_seconds(config)
        project = config.get("project") or env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT")
        if not project:
            raise StoreError("the Firestore session store needs a project")
        database = config.get("database") or "(default)"
        self.collection = config.get("collection") or "sessions"
        self.root = f"projects/{project}/databases/{database}/documents"
        self.env = env
        emulator = env.get("FIRESTORE_EMULATOR_HOST")
        if emulator:
            # the emulator takes "Bearer owner" (https://cloud.google.com/firestore/docs/emulator)
            base, self.static_token = f"http://{emulator}", "owner"
        else:
            base = env.get("FIRESTORE_ENDPOINT") or "https://firestore.googleapis.com"
            self.static_token = env.get("GOOGLE_OAUTH_ACCESS_TOKEN") or None
        self.http = Http(base, "Firestore database")
        self.versions = Versions()
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    # auth: the metadata server's token for the function's service account, cached until a minute
    # before it expires (https://cloud.google.com/run/docs/securing/service-identity#fetching_identity_and_access_tokens)
    def _bearer(self) -> str:
        if self.static_token:
            return self.static_token
        with self._token_lock:
            if self._token and self._token[1] > time.monotonic():
                return self._token[0]
            host = self.env.get("GCP_METADATA_HOST") or self.env.get("GCE_METADATA_HOST") or "metadata.google.internal"
            metadata = Http(f"http://{host}", "Google metadata server")
            status, _, data = metadata.request(
                "GET", "/computeMetadata/v1/instance/service-accounts/default/token", None,
                {"Metadata-Flavor": "Google"})
            answer = json_body(data)
            if status != 200 or not isinstance(answer, dict) or not answer.get("access_token"):
                raise StoreError(f"the Google metadata server gave no access token (HTTP {status})")
            lifetime = float(answer.get("expires_in") or 300)
            self._token = (answer["access_token"], time.monotonic() + max(lifetime - 60, 0))
            return self._token[0]

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self._bearer()}", "Content-Type": "application/json"}
        status, _, data = self.http.request(method, f"{self.http.prefix}/v1/{path}",
                                            json.dumps(body).encode() if body is not None else None, headers)
        return status, json_body(data)

    def _refused(self, status: int, answer: Any) -> StoreError:
        # error shape: {"error": {"code", "message", "status"}} (https://cloud.google.com/apis/design/errors)
        error = answer.get("error") if isinstance(answer, dict) else None
        reason = error.get("status") if isinstance(error, dict) else None
        detail = f", {reason}" if reason else ""
        return StoreError(f"the Firestore database refused the request (HTTP {status}{detail})")

    def _get(self, doc: str) -> dict | None:
        status, answer = self._call("GET", f"{self.root}/{self.collection}/{doc}")
        if status == 404:
            return None
        if status != 200 or not isinstance(answer, dict):
            raise self._refused(status, answer)
        return answer

    def _commit(self, write: dict) -> dict:
        status, answer = self._call("POST", f"{self.root}:commit", {"writes": [write]})
        if status == 200:
            try:
                result = answer["writeResults"][0]
                if isinstance(result, dict) and isinstance(result["updateTime"], str):
                    return result
            except (KeyError, IndexError, TypeError):
                pass
            raise StoreError("the Firestore database gave an answer that is not a commit response")
        error = answer.get("error") if isinstance(answer, dict) else None
        reason = error.get("status") if isinstance(error, dict) else None
        # a failed precondition is 400 FAILED_PRECONDITION (stale updateTime), 409 ALREADY_EXISTS
        # (exists: false), 404 NOT_FOUND (exists: true); contention is 409 ABORTED
        if reason in ("FAILED_PRECONDITION", "ALREADY_EXISTS", "NOT_FOUND", "ABORTED"):
            raise StoreConflict("the conversation changed since it was loaded")
        raise self._refused(status, answer)

    def load(self, session_id: str) -> tuple[list[dict], int]:
        check_id(session_id)
        doc = self._get(f"s-{session_id}")
        if doc is None:
            return [], 0
        fields = doc.get("fields") or {}
        try:
            version = int(fields["version"]["integerValue"])
            expires = parse_rfc3339(fields["expires"]["timestampValue"])
            agent, text = fields["agent"]["stringValue"], fields["messages"]["stringValue"]
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"session {session_id} holds an unreadable conversation") from None
        if expires <= time.time():
            self.versions.put(session_id, 0, "updateTime:" + doc["updateTime"], force=True)  # a save overwrites it
            return [], 0
        messages = decode(session_id, self.agent, agent, text)
        self.versions.put(session_id, version, "updateTime:" + doc["updateTime"])
        return messages, version

    def save(self, session_id: str, messages: list[dict], version: int) -> int:
        check_id(session_id)
        text = encode(messages, self.max_bytes)
        proof = self.versions.get(session_id, version)
        if proof is None and version > 0:
            self.load(session_id)  # another instance loaded it: learn its updateTime
            proof = self.versions.get(session_id, version)
            if proof is None:
                raise StoreConflict("the conversation changed since it was loaded")
        if proof is not None:
            precondition = {"updateTime": proof.removeprefix("updateTime:")}
        else:
            precondition = {"exists": False}
        name = f"{self.root}/{self.collection}/s-{session_id}"
        fields = {"agent": {"stringValue": self.agent}, "messages": {"stringValue": text},
                  "version": {"integerValue": str(version + 1)},
                  "expires": {"timestampValue": rfc3339(int(time.time()) + self.ttl)}}
        try:
            result = self._commit({"update": {"name": name, "fields": fields}, "currentDocument": precondition})
        except StoreConflict:
            if version == 0 and proof is None:
                # a record is there: an expired one is overwritten, a live one is a conflict
                _, found = self.load(session_id)
                if found == 0 and self.versions.get(session_id, 0):
                    return self.save(session_id, messages, 0)
            raise
        self.versions.put(session_id, version + 1, "updateTime:" + result["updateTime"])
        return version + 1

    def add_tokens(self, key_id: str, day: str, tokens: int) -> int:
        check_key(key_id, day)
        # an update with a mask and no precondition is an upsert; the increment sets a missing field
        # to the given value (google/firestore/v1/write.proto, FieldTransform.increment)
        name = f"{self.root}/{self.collection}/q-{key_id}-{day}"
        result = self._commit({
            "update": {"name": name, "fields": {"expires": {"timestampValue": rfc3339(counter_expiry(day))}}},
            "updateMask": {"fieldPaths": ["expires"]},
            "updateTransforms": [{"fieldPath": "tokens", "increment": {"integerValue": str(int(tokens))}}]})
        try:
            return int(result["transformResults"][0]["integerValue"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise StoreError("the Firestore database did not return the counter's total") from None

    def tokens_used(self, key_id: str, day: str) -> int:
        check_key(key_id, day)
        doc = self._get(f"q-{key_id}-{day}")
        try:
            return int(doc["fields"]["tokens"]["integerValue"]) if doc else 0
        except (KeyError, TypeError, ValueError):
            return 0


# --- Azure Table Storage ---------------------------------------------------------------------------------

class TableStore:
    """Entities PartitionKey `s` / `q`, RowKey the session id / `<key id>-<day>`, in one table.
    Operations and If-Match (412 on a stale ETag, 409 on inserting an existing entity):
    https://learn.microsoft.com/en-us/rest/api/storageservices/insert-entity,
    https://learn.microsoft.com/en-us/rest/api/storageservices/update-entity2,
    https://learn.microsoft.com/en-us/rest/api/storageservices/query-entities.
    Table Storage has no TTL: `expires` is stored, an expired record loads as absent and is overwritten
    by the next save, but nothing deletes it. A property holds 64 KiB (32 K UTF-16 units), an entity 1 MiB
    (https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model):
    the messages are split into m0, m1, ... of at most 30,000 UTF-16 units each."""

    max_bytes = 450_000  # UTF-8 bytes, so at most 450,000 UTF-16 units: 900 KB of the entity's 1 MiB
    CHUNK = 30_000
    VERSION = "2019-02-02"  # the first x-ms-version that takes OAuth bearer tokens

    def __init__(self, config: Mapping[str, Any], agent: str, env: Mapping[str, str]):
        self.agent, self.ttl, self.env = agent, ttl_seconds(config), env
        self.table = str(config.get("table") or "")
        if not self.table:
            raise StoreError("the Table Storage session store needs a table name")
        settings = parse_connection_string(env.get("AZURE_STORAGE_CONNECTION_STRING")
                                           or env.get("AzureWebJobsStorage") or "")
        self.account = str(config.get("account") or settings.get("AccountName") or "")
        endpoint = env.get("AZURE_TABLE_ENDPOINT") or settings.get("TableEndpoint")
        if not endpoint:
            if not self.account:
                raise StoreError("the Table Storage session store needs a storage account")
            endpoint = f"https://{self.account}.table.core.windows.net"
        self.http = Http(endpoint, "Azure table")
        self.managed = bool(env.get("IDENTITY_ENDPOINT") and env.get("IDENTITY_HEADER"))
        self.key: bytes | None = None
        self.key_account = settings.get("AccountName") or self.account
        if not self.managed:
            try:
                self.key = base64.b64decode(settings.get("AccountKey") or "", validate=True) or None
            except ValueError:
                self.key = None
            if self.key is None:
                raise StoreError("the Table Storage session store found neither a managed identity nor an "
                                 "account key (AZURE_STORAGE_CONNECTION_STRING or AzureWebJobsStorage)")
        self.versions = Versions()
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    # managed identity: https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference
    def _bearer(self) -> str:
        with self._token_lock:
            if self._token and self._token[1] > time.time():
                return self._token[0]
            endpoint = self.env["IDENTITY_ENDPOINT"]
            query = urllib.parse.urlencode({"resource": "https://storage.azure.com/", "api-version": "2019-08-01"})
            identity = Http(endpoint, "Azure managed identity endpoint")
            path = urllib.parse.urlsplit(endpoint).path or "/"
            status, _, data = identity.request("GET", f"{path}?{query}", None,
                                               {"X-IDENTITY-HEADER": self.env["IDENTITY_HEADER"]})
            answer = json_body(data)
            if status != 200 or not isinstance(answer, dict) or not answer.get("access_token"):
                raise StoreError(f"the Azure managed identity endpoint gave no token (HTTP {status})")
            expires_on = float(answer.get("expires_on") or time.time() + 600)
            self._token = (answer["access_token"], expires_on - 300)
            return self._token[0]

    def request(self, method: str, resource: str, body: dict | None = None, headers: dict[str, str] | None = None,
                table_path: bool = True) -> tuple[int, dict[str, str], bytes]:
        """One signed request; `resource` follows the table's name ("(PartitionKey='s',RowKey='x')"), or is
        the whole path after the endpoint when not table_path ("/Tables")."""
        path = f"{self.http.prefix}/{self.table}{resource}" if table_path else f"{self.http.prefix}{resource}"
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
        sent = {"x-ms-date": date, "x-ms-version": self.VERSION, "Accept": "application/json;odata=nometadata",
                "DataServiceVersion": "3.0;NetFx", "MaxDataServiceVersion": "3.0;NetFx", **(headers or {})}
        data = None
        if body is not None:
            # ASCII (\uXXXX escapes): Azurite 3.37 decodes a large body piecewise and garbles a character
            # that falls across two of its pieces
            data = json.dumps(body).encode("ascii")
            sent["Content-Type"] = "application/json"
        if self.managed:
            sent["Authorization"] = f"Bearer {self._bearer()}"
        else:
            # SharedKeyLite for the Table service: StringToSign = x-ms-date + "\n" + CanonicalizedResource,
            # the resource being "/" + account + the URI path (Azurite's path-style URI names the account
            # again) (https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-shared-key)
            canonical = f"/{self.key_account}{path.split('?', 1)[0]}"
            signature = base64.b64encode(hmac.new(self.key, f"{date}\n{canonical}".encode(), hashlib.sha256).digest())
            sent["Authorization"] = f"SharedKeyLite {self.key_account}:{signature.decode()}"
        return self.http.request(method, path, data, sent)

    def _refused(self, status: int, data: bytes) -> StoreError:
        # errors: {"odata.error": {"code", "message"}}; auth failures come as XML
        # (https://learn.microsoft.com/en-us/rest/api/storageservices/table-service-error-codes)
        answer = json_body(data)
        code = None
        if isinstance(answer, dict) and isinstance(answer.get("odata.error"), dict):
            code = answer["odata.error"].get("code")
        elif b"<Code>" in data:
            code = data.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode(errors="replace")[:60]
        detail = f", {code}" if code else ""
        return StoreError(f"the Azure table {self.table} refused the request (HTTP {status}{detail})")

    def _entity(self, partition: str, row: str) -> tuple[dict | None, str]:
        status, headers, data = self.request("GET", f"(PartitionKey='{partition}',RowKey='{row}')")
        if status == 404:
            return None, ""
        entity = json_body(data)
        if status != 200 or not isinstance(entity, dict):
            raise self._refused(status, data)
        return entity, headers.get("etag", "")

    def load(self, session_id: str) -> tuple[list[dict], int]:
        check_id(session_id)
        entity, etag = self._entity("s", session_id)
        if entity is None:
            return [], 0
        try:
            version, expires = int(entity["version"]), int(entity["expires"])
            parts, index = [], 0
            while f"m{index}" in entity:
                parts.append(entity[f"m{index}"])
                index += 1
            text, agent = "".join(parts), entity["agent"]
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"session {session_id} holds an unreadable conversation") from None
        if expires <= time.time():
            self.versions.put(session_id, 0, etag, force=True)  # the next save overwrites it
            return [], 0
        messages = decode(session_id, self.agent, agent, text)
        self.versions.put(session_id, version, etag)
        return messages, version

    def save(self, session_id: str, messages: list[dict], version: int) -> int:
        check_id(session_id)
        text = encode(messages, self.max_bytes)
        entity: dict[str, Any] = {"PartitionKey": "s", "RowKey": session_id, "agent": self.agent,
                                  "version": str(version + 1), "version@odata.type": "Edm.Int64",
                                  "expires": str(int(time.time()) + self.ttl), "expires@odata.type": "Edm.Int64"}
        for index, part in enumerate(utf16_chunks(text, self.CHUNK)):
            entity[f"m{index}"] = part
        etag = self.versions.get(session_id, version)
        if etag is None and version > 0:
            self.load(session_id)
            etag = self.versions.get(session_id, version)
            if etag is None:
                raise StoreConflict("the conversation changed since it was loaded")
        if etag is None:  # insert: 409 EntityAlreadyExists when a record is there
            status, headers, data = self.request("POST", "", entity, {"Prefer": "return-no-content"})
        else:  # replace, if the ETag still matches: else 412 UpdateConditionNotSatisfied
            status, headers, data = self.request("PUT", f"(PartitionKey='s',RowKey='{session_id}')", entity,
                                                 {"If-Match": etag})
        if status in (201, 204):
            self.versions.put(session_id, version + 1, headers.get("etag", ""))
            return version + 1
        if status == 409 and version == 0:
            _, found = self.load(session_id)
            if found == 0 and self.versions.get(session_id, 0):  # expired: overwrite it
                return self.save(session_id, messages, 0)
            raise StoreConflict("the conversation changed since it was loaded")
        if status in (404, 412):
            raise StoreConflict("the conversation changed since it was loaded")
        raise self._refused(status, data)

    def add_tokens(self, key_id: str, day: str, tokens: int) -> int:
        """Table Storage has no increment: read, then write with If-Match, until no one came between."""
        check_key(key_id, day)
        row = f"{key_id}-{day}"
        for attempt in range(100):
            entity, etag = self._entity("q", row)
            total = (int(entity.get("tokens", 0)) if entity else 0) + int(tokens)
            body = {"PartitionKey": "q", "RowKey": row, "tokens": str(total), "tokens@odata.type": "Edm.Int64",
                    "expires": str(counter_expiry(day)), "expires@odata.type": "Edm.Int64"}
            if entity is None:
                status, _, data = self.request("POST", "", body, {"Prefer": "return-no-content"})
            else:
                status, _, data = self.request("PUT", f"(PartitionKey='q',RowKey='{row}')", body, {"If-Match": etag})
            if status in (201, 204):
                return total
            if status not in (404, 409, 412):
                raise self._refused(status, data)
            time.sleep(min(0.002 * (attempt + 1), 0.05))
        raise StoreError(f"the Azure table {self.table} stayed too busy to count tokens")

    def tokens_used(self, key_id: str, day: str) -> int:
        check_key(key_id, day)
        entity, _ = self._entity("q", f"{key_id}-{day}")
        try:
            return int(entity["tokens"]) if entity else 0
        except (KeyError, TypeError, ValueError):
            return 0


def utf16_chunks(text: str, units: int) -> list[str]:
    """Split text into pieces of at most `units` UTF-16 code units (a character above U+FFFF is two)."""
    chunks, start, count = [], 0, 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if count + width > units:
            chunks.append(text[start:index])
            start, count = index, 0
        count += width
    chunks.append(text[start:])
    return chunks


def parse_connection_string(value: str) -> dict[str, str]:
    """`Key=Value;...` (https://learn.microsoft.com/en-us/azure/storage/common/storage-configure-connection-string);
    UseDevelopmentStorage=true means Azurite's well-known account."""
    settings: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep:
            settings[key] = val
    if settings.get("UseDevelopmentStorage", "").lower() == "true":
        settings.setdefault("AccountName", "devstoreaccount1")
        settings.setdefault("AccountKey", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZ"
                                          "FPTOtr/KBHBeksoGMGw==")
        settings.setdefault("TableEndpoint", "http://127.0.0.1:10002/devstoreaccount1")
    return settings
