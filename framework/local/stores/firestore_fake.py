"""A stateful fake of the Firestore REST v1 API (the part the session stores use), on 127.0.0.1, written
from the documented contract and checked against the gcloud emulator (528.0.0) where they could differ.

- GET /v1/{document name}: the Document, or 404 NOT_FOUND "Document (<name>) not found."
  (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/get)
- POST /v1/projects/P/databases/D/documents:commit {"writes": [...]}: all writes or none, atomically
  (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/commit).
  A Write (https://cloud.google.com/firestore/docs/reference/rest/v1/Write) is `update` (a Document;
  without `updateMask` it replaces the whole document, with one only the listed fields change, and an
  absent document is created) or `delete` (a name); `updateTransforms` apply after the update, in order
  (`increment`: a missing or non-numeric field becomes the operand; `setToServerValue: REQUEST_TIME`);
  `currentDocument` (https://cloud.google.com/firestore/docs/reference/rest/v1/Precondition) is
  `exists` or `updateTime`. Answers {"writeResults": [{"updateTime", "transformResults"?}], "commitTime"}.
- DELETE /v1/{document name} (with currentDocument.exists / .updateTime query parameters).
Failed preconditions, as the emulator answers them: exists=false on a document that is there 409
ALREADY_EXISTS; exists=true on a missing one 404 NOT_FOUND; a stale updateTime (or one on a missing
document) 400 FAILED_PRECONDITION. A body that is not JSON, or a write naming another database, 400
INVALID_ARGUMENT (the emulator accepts another project's name; the service does not). Errors are
google.rpc.Status: {"error": {"code", "message", "status"}} (https://cloud.google.com/apis/design/errors).
Values come back as the service writes them: integers as strings, an empty array as {"arrayValue": {}}.
Timestamps are RFC 3339 UTC with microseconds; each commit's time is later than the last.

Auth: like the emulator, any or no Authorization header is accepted, unless `token` is given, when
only "Bearer <token>" is (else 401 UNAUTHENTICATED).
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DOC_PATH = re.compile(r"/v1/(projects/[^/]+/databases/[^/]+/documents/.+)")
COMMIT_PATH = re.compile(r"/v1/(projects/[^/]+/databases/[^/]+)/documents:commit")


class RpcError(Exception):
    def __init__(self, code: int, status: str, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def stamp(micros: int) -> str:
    moment = datetime.datetime.fromtimestamp(micros / 1e6, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> int:
    """RFC 3339 to microseconds (nanosecond digits beyond the sixth are dropped)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    if not match:
        raise RpcError(400, "INVALID_ARGUMENT", f"Invalid timestamp: {text!r}")
    base = datetime.datetime.fromisoformat(match.group(1) + (match.group(3).replace("Z", "+00:00")))
    fraction = (match.group(2) or "").ljust(6, "0")[:6]
    return int(base.timestamp()) * 1_000_000 + int(fraction)


def normalize(value: Any) -> dict:
    """A Value as the service stores and returns it."""
    if not isinstance(value, dict) or len(value) != 1:
        raise RpcError(400, "INVALID_ARGUMENT", "Invalid value: a Value has exactly one field.")
    (kind, inner), = value.items()
    if kind == "integerValue":
        try:
            return {kind: str(int(inner))}
        except (TypeError, ValueError):
            raise RpcError(400, "INVALID_ARGUMENT", f"Invalid value at 'integer_value': {inner!r}") from None
    if kind == "doubleValue":
        return {kind: float(inner)}
    if kind == "timestampValue":
        return {kind: stamp(parse_stamp(inner)).replace(".000000Z", "Z")}
    if kind == "arrayValue":
        values = [normalize(v) for v in (inner or {}).get("values", [])]
        return {kind: {"values": values} if values else {}}
    if kind == "mapValue":
        fields = {k: normalize(v) for k, v in ((inner or {}).get("fields") or {}).items()}
        return {kind: {"fields": fields} if fields else {}}
    if kind in ("stringValue", "booleanValue", "nullValue", "bytesValue", "referenceValue", "geoPointValue"):
        return {kind: inner}
    raise RpcError(400, "INVALID_ARGUMENT", f"Invalid value type {kind!r}.")


class FakeFirestore:
    def __init__(self, token: str | None = None):
        self.token = token
        self.documents: dict[str, dict] = {}  # name -> {"fields", "createTime", "updateTime"} (micros)
        self.lock = threading.Lock()
        self.last_time = 0
        self.requests: list[tuple[str, str]] = []
        self.server: ThreadingHTTPServer | None = None

    # --- lifecycle ---
    def start(self) -> FakeFirestore:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    if fake.token is not None and self.headers.get("Authorization") != f"Bearer {fake.token}":
                        raise RpcError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
                    status, answer = fake.handle(method, self.path, body)
                except RpcError as err:
                    status, answer = err.code, {"error": {"code": err.code, "message": err.message,
                                                          "status": err.status}}
                self._answer(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> FakeFirestore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the API ---
    def handle(self, method: str, target: str, body: bytes) -> tuple[int, dict]:
        parts = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(parts.path)
        query = urllib.parse.parse_qs(parts.query)
        self.requests.append((method, path))
        commit = COMMIT_PATH.fullmatch(path)
        if method == "POST" and commit:
            try:
                request = json.loads(body)
            except ValueError:
                raise RpcError(400, "INVALID_ARGUMENT", "Payload isn't valid for request.") from None
            if not isinstance(request, dict) or not isinstance(request.get("writes", []), list):
                raise RpcError(400, "INVALID_ARGUMENT", "Payload isn't valid for request.")
            return 200, self.commit(commit.group(1), request.get("writes", []))
        document = DOC_PATH.fullmatch(path)
        if document and method == "GET":
            return 200, self.get(document.group(1))
        if document and method == "DELETE":
            precondition = {}
            if "currentDocument.exists" in query:
                precondition["exists"] = query["currentDocument.exists"][0] == "true"
            if "currentDocument.updateTime" in query:
                precondition["updateTime"] = query["currentDocument.updateTime"][0]
            database = document.group(1).split("/documents/", 1)[0]
            self.commit(database, [{"delete": document.group(1), "currentDocument": precondition}])
            return 200, {}
        raise RpcError(404, "NOT_FOUND", "Not Found")

    def get(self, name: str) -> dict:
        with self.lock:
            doc = self.documents.get(name)
            if doc is None:
                raise RpcError(404, "NOT_FOUND", f"Document ({name}) not found.")
            return self.render(name, doc)

    @staticmethod
    def render(name: str, doc: dict) -> dict:
        answer: dict[str, Any] = {"name": name}
        if doc["fields"]:
            answer["fields"] = copy.deepcopy(doc["fields"])
        answer["createTime"] = stamp(doc["createTime"])
        answer["updateTime"] = stamp(doc["updateTime"])
        return answer

    def _now(self) -> int:
        micros = int(datetime.datetime.now(datetime.UTC).timestamp() * 1e6)
        self.last_time = max(micros, self.last_time + 1)
        return self.last_time

    def commit(self, database: str, writes: list) -> dict:
        with self.lock:
            staged = dict(self.documents)
            now = self._now()
            results = []
            for write in writes:
                results.append(self._apply(database, staged, write, now))
            self.documents = staged
            return {"writeResults": results, "commitTime": stamp(now)}

    def _apply(self, database: str, staged: dict, write: Any, now: int) -> dict:
        if not isinstance(write, dict):
            raise RpcError(400, "INVALID_ARGUMENT", "Payload isn't valid for request.")
        if "update" in write:
            name = (write["update"] or {}).get("name", "")
        elif "delete" in write:
            name = write["delete"]
        else:
            raise RpcError(400, "INVALID_ARGUMENT", "A write must have an update or a delete.")
        if not isinstance(name, str) or not name.startswith(database + "/documents/") \
                or len(name[len(database) + 11:].split("/")) % 2:
            raise RpcError(400, "INVALID_ARGUMENT", f"Document name {name!r} is not valid for this database.")
        current = staged.get(name)
        self._check(name, current, write.get("currentDocument") or {})
        if "delete" in write:
            staged.pop(name, None)
            return {"updateTime": stamp(now)}
        fields_in = write["update"].get("fields") or {}
        if not isinstance(fields_in, dict):
            raise RpcError(400, "INVALID_ARGUMENT", "Invalid fields.")
        fields = {key: normalize(value) for key, value in fields_in.items()}
        mask = write.get("updateMask")
        if mask is not None:
            paths = (mask or {}).get("fieldPaths") or []
            merged = copy.deepcopy(current["fields"]) if current else {}
            for field_path in paths:
                if field_path in fields:
                    merged[field_path] = fields[field_path]
                else:
                    merged.pop(field_path, None)  # a masked field absent from the update is deleted
            fields = merged
        results = []
        for transform in write.get("updateTransforms") or []:
            results.append(self._transform(fields, transform, now))
        staged[name] = {"fields": fields, "createTime": current["createTime"] if current else now,
                        "updateTime": now}
        answer: dict[str, Any] = {"updateTime": stamp(now)}
        if results:
            answer["transformResults"] = results
        return answer

    @staticmethod
    def _check(name: str, current: dict | None, precondition: dict) -> None:
        if "exists" in precondition:
            if precondition["exists"] and current is None:
                raise RpcError(404, "NOT_FOUND", f"no entity to update: {name}")
            if not precondition["exists"] and current is not None:
                raise RpcError(409, "ALREADY_EXISTS", f"entity already exists: {name}")
        if "updateTime" in precondition:
            wanted = parse_stamp(precondition["updateTime"])
            stored = current["updateTime"] if current else 0
            if stored != wanted:
                raise RpcError(400, "FAILED_PRECONDITION", f"the stored version ({stored}) does not match "
                                                           f"the required base version ({wanted})")

    @staticmethod
    def _transform(fields: dict, transform: dict, now: int) -> dict:
        path = transform.get("fieldPath")
        if not isinstance(path, str) or not path:
            raise RpcError(400, "INVALID_ARGUMENT", "A field transform needs a fieldPath.")
        if "increment" in transform:
            operand = normalize(transform["increment"])
            old = fields.get(path, {})
            if "integerValue" in operand and "integerValue" in old:
                value = {"integerValue": str(int(old["integerValue"]) + int(operand["integerValue"]))}
            elif ("doubleValue" in operand or "integerValue" in operand) and \
                    ("doubleValue" in old or "integerValue" in old):
                total = float(next(iter(old.values()))) + float(next(iter(operand.values())))
                value = {"doubleValue": total}
            elif "integerValue" in operand or "doubleValue" in operand:
                value = operand  # missing or not a number: set to the operand
            else:
                raise RpcError(400, "INVALID_ARGUMENT", "increment takes an integer or a double.")
            fields[path] = value
            return copy.deepcopy(value)
        if transform.get("setToServerValue") == "REQUEST_TIME":
            fields[path] = {"timestampValue": stamp(now)}
            return copy.deepcopy(fields[path])
        raise RpcError(400, "INVALID_ARGUMENT", "Unsupported field transform.")


if __name__ == "__main__":
    with FakeFirestore() as fake:
        print(f"FIRESTORE_EMULATOR_HOST=127.0.0.1:{fake.port}", flush=True)
        threading.Event().wait()
