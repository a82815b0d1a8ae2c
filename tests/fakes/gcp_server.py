"""A local fake of the Google Cloud Functions v2 REST API (and the bits of Cloud Run v2 and Cloud
Storage signed URLs a deploy touches), stateful, on 127.0.0.1, for the real google-cloud clients.

What it implements (the documented REST contract, camelCase JSON, enums as integers because the
clients send `$alt=json;enum-encoding=int`; the query is stripped before matching paths):
- functions v2: GET/PATCH/DELETE /v2/projects/P/locations/R/functions/ID, POST .../functions?functionId=ID
  (409 ALREADY_EXISTS when it exists), POST .../functions:generateUploadUrl, POST .../ID:generateDownloadUrl,
  GET .../operations/OP. Create/update/delete answer a long-running Operation that completes after one or
  two polls (a GET of the operation or of the function advances it); while it runs the function is
  DEPLOYING (or DELETING) and another update gets 409 ABORTED.
- the signed upload URL: PUT /upload/BUCKET/OBJECT (refuses an Authorization header, as a signed URL
  does, and a content type other than the one it was signed for), and the signed download URL.
- Cloud Run v2: GET .../services/S:getIamPolicy, POST .../services/S:setIamPolicy (etag checked: 409 ABORTED
  on a stale etag).
- Firestore admin v1 (the TTL policy, https://cloud.google.com/firestore/docs/reference/rest/v1/
  projects.databases.collectionGroups.fields): GET /v1/projects/P/databases/D/collectionGroups/C/fields/F
  (any field: ttlConfig only when set), PATCH ...?updateMask=ttlConfig with {"ttlConfig": {}} (on: CREATING,
  ACTIVE once its operation is polled) or {} (off), answering an Operation; GET /v1/projects/P/databases/D/
  operations/OP (done at once, with ttlConfig ACTIVE). The mask must be exactly ttlConfig (400 otherwise).
- Cloud Logging v2 (`logs`, https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list):
  POST /v2/entries:list {resourceNames: ["projects/P"], filter, orderBy, pageSize, pageToken} ->
  {entries: [LogEntry], nextPageToken}; the filter is the subset of the Logging query language
  (https://cloud.google.com/logging/docs/view/logging-query-language) the framework sends: comparisons
  `field="value"` / `timestamp>="RFC 3339"` and a quoted global search term `"text"`, joined by AND
  (anything else is 400). Entries come from `add_log_entry` (a LogEntry: logName, resource, timestamp,
  insertId, jsonPayload or textPayload).
- Cloud Scheduler v1 (the warm-up job, https://cloud.google.com/scheduler/docs/reference/rest/v1/
  projects.locations.jobs): POST /v1/projects/P/locations/L/jobs (a Job; 409 ALREADY_EXISTS when its name
  exists; 400 without a schedule, an http(s) httpTarget.uri, or with a body on a GET), GET / PATCH
  ?updateMask=a,b / DELETE /v1/projects/P/locations/L/jobs/J (404 NOT_FOUND when absent). The stored Job
  gets state ENABLED and userUpdateTime, as the service sets them; `job(name)` reads it.
Errors: {"error": {"code": N, "message": ..., "status": ...}} (google.rpc.Status over HTTP, as in
https://cloud.google.com/apis/design/errors). The signed upload follows the v2 generateUploadUrl reference:
PUT with content-type application/zip and no Authorization header.

Test hooks: every request is recorded (method, path, query, headers, body); `fail_next(status, count,
retry_after)` answers the next requests with an error; `fail_after(n)` refuses every mutating request
after the n-th (the deploying process "killed" between two calls); `put_function` adds a foreign function.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACTIVE, FAILED, DEPLOYING, DELETING = 1, 2, 3, 4
FUNCTION_TYPE = "type.googleapis.com/google.cloud.functions.v2.Function"
METADATA_TYPE = "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"
STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
# https://cloud.google.com/functions/docs/configuring/memory: CPU given by default for a memory size
DEFAULT_CPU = [(128, "0.0833"), (256, "0.1666"), (512, "0.3333"), (1024, "0.5833"), (2048, "1"), (8192, "2"),
               (16384, "4"), (32768, "8")]
UNITS = {"k": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "Mi": 1024 ** 2, "Gi": 1024 ** 3}


def memory_mib(text: str) -> float:
    for unit in ("Mi", "Gi", "k", "M", "G"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * UNITS[unit] / 1024 ** 2
    return float(text) / 1024 ** 2


def camel(path: str) -> str:
    return ".".join(part.split("_")[0] + "".join(w.title() for w in part.split("_")[1:]) for part in path.split("."))


def _nanos(stamp: str) -> tuple[str, str]:
    """An RFC 3339 UTC timestamp ordered by its time: its seconds, then its fraction padded to nanoseconds."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole, fraction.ljust(9, "0")


def _field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _entry_test(term: str):
    """One comparison of a Logging filter, as a test of an entry (400 for what this fake does not know)."""
    term = term.strip()
    if len(term) >= 2 and term[0] == term[-1] == '"' and '"' not in term[1:-1]:
        text = term[1:-1]
        return lambda e: text in json.dumps(e)
    for op in (">=", "="):
        name, found, value = term.partition(op)
        if found and len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
            if name == "timestamp" and op == ">=":
                return lambda e: _nanos(e["timestamp"]) >= _nanos(value)
            if op == "=" and name != "timestamp":
                return lambda e: _field(e, name) == value
    raise ApiError(400, f"this fake does not understand the filter term {term!r}")


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or STATUS.get(code, "UNKNOWN")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def mutating(self) -> bool:
        return is_mutating(self.method, self.path)


def is_mutating(method: str, path: str) -> bool:
    return method != "GET" and not path.endswith((":getIamPolicy", ":generateDownloadUrl", "/entries:list"))


@dataclass
class Pending:
    """A long-running operation: completes (applies `finish`) after `polls` polls."""

    name: str
    target: str
    verb: str
    polls: int
    finish: Any
    done: bool = False
    response: dict[str, Any] | None = None
    response_type: str = FUNCTION_TYPE
    error: dict[str, Any] | None = None


@dataclass
class State:
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, Pending] = field(default_factory=dict)
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    signed: dict[tuple[str, str], str] = field(default_factory=dict)  # (bucket, object) -> content type
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # service name -> IAM policy
    running: dict[str, str] = field(default_factory=dict)  # function name -> its operation in progress
    revisions: dict[str, int] = field(default_factory=dict)  # function name -> revisions made
    ttl: dict[str, str] = field(default_factory=dict)  # Firestore field name -> its ttlConfig state
    ttl_operations: dict[str, str] = field(default_factory=dict)  # operation name -> the field it enables
    # Cloud Run service name -> {"revisions": [Revision, oldest first], "traffic": [TrafficTarget]}
    run: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_entries: list[dict[str, Any]] = field(default_factory=list)  # Cloud Logging LogEntry objects
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # Cloud Scheduler Job name -> Job (warm-up)


class FakeGcp:
    """The server and its state. `url` is the endpoint for both GCP_FUNCTIONS_ENDPOINT and GCP_RUN_ENDPOINT."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.state = State()
        self.requests: list[Recorded] = []
        self._faults: list[tuple[int, str | None, str]] = []
        self._fail_after: int | None = None
        self._build_error: str | None = None
        self._mutations = 0
        self._ids = itertools.count(1)
        self.polls_per_operation = 2
        self.delay = 0.0  # seconds every answer waits, outside the lock (a cloud's latency, for bench/deploy.py)
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeGcp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------ test hooks

    def reset(self) -> None:
        with self.lock:
            self.state = State()
            self.requests.clear()
            self._faults.clear()
            self._fail_after = None
            self._build_error = None
            self._mutations = 0
            self.polls_per_operation = 2

    def fail_next(self, status: int, count: int = 1, retry_after: str | None = None,
                  message: str = "injected by the test") -> None:
        """Answer the next `count` requests with `status` (and Retry-After when given)."""
        with self.lock:
            self._faults.extend([(status, retry_after, message)] * count)

    def fail_build(self, message: str = "Build failed: pip could not install requirements.txt") -> None:
        """The next create/update operation ends with an error and leaves the function FAILED."""
        with self.lock:
            self._build_error = message

    def fail_after(self, mutations: int | None) -> None:
        """Refuse every mutating request after `mutations` more have been accepted (None: stop)."""
        with self.lock:
            self._fail_after = None if mutations is None else self._mutations + mutations

    def mutating(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests if r.mutating]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def put_function(self, name: str, function: dict[str, Any]) -> None:
        """Add a function as if someone else had deployed it (ACTIVE at once)."""
        with self.lock:
            stored = {**copy.deepcopy(function), "name": name, "state": ACTIVE}
            self._finish_service(stored)
            self.state.functions[name] = stored

    def function(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.state.functions.get(name)
            return copy.deepcopy(found) if found else None

    def ttl(self, field_name: str) -> str | None:
        """The ttlConfig state of a Firestore field (None: no TTL policy)."""
        with self.lock:
            return self.state.ttl.get(field_name)

    def put_ttl(self, field_name: str, state: str = "ACTIVE") -> None:
        with self.lock:
            self.state.ttl[field_name] = state

    def add_log_entry(self, entry: dict[str, Any]) -> None:
        """A LogEntry in Cloud Logging, as a function's output becomes one."""
        with self.lock:
            self.state.log_entries.append(copy.deepcopy(entry))

    def job(self, name: str) -> dict[str, Any] | None:
        """A Cloud Scheduler job as stored (None: no such job)."""
        with self.lock:
            found = self.state.jobs.get(name)
            return copy.deepcopy(found) if found else None

    def policy(self, service: str) -> dict[str, Any] | None:
        with self.lock:
            return copy.deepcopy(self.state.services.get(service))

    # ------------------------------------------------------------ dispatch

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        split = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(split.path)
        query = urllib.parse.parse_qs(split.query)
        with self.lock:
            self.requests.append(Recorded(method, path, query, dict(headers), body))
            if self._faults:
                status, retry_after, message = self._faults.pop(0)
                extra = {"Retry-After": retry_after} if retry_after is not None else {}
                return self._error(ApiError(status, message), extra)
            if is_mutating(method, path):
                if self._fail_after is not None and self._mutations >= self._fail_after:
                    return self._error(ApiError(400, "injected interruption: the deploying process was killed",
                                                "FAILED_PRECONDITION"))
                self._mutations += 1
            try:
                status, answer = self._route(method, path, query, headers, body)
            except ApiError as error:
                return self._error(error)
        if isinstance(answer, bytes):
            return status, {"Content-Type": "application/octet-stream"}, answer
        return status, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    @staticmethod
    def _error(error: ApiError, headers: dict | None = None) -> tuple[int, dict, bytes]:
        body = {"error": {"code": error.code, "message": error.message, "status": error.status}}
        return error.code, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()

    def _route(self, method, path, query, headers, body) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[0] == "upload" and method == "PUT":
            return self._upload(parts, headers, body)
        if parts[0] == "download" and method == "GET":
            key = (parts[1], "/".join(parts[2:]))
            if key not in self.state.objects:
                raise ApiError(404, "No such object")
            return 200, self.state.objects[key]
        if parts[0] == "v1" and len(parts) in (6, 7) and parts[1] == "projects" and parts[3] == "locations" \
                and parts[5] == "jobs":
            return self._scheduler(method, parts, query, body)
        if parts[0] == "v1" and parts[1:2] == ["projects"] and len(parts) >= 5 and parts[3] == "databases":
            return self._firestore(method, parts, query, body)
        if parts == ["v2", "entries:list"] and method == "POST":
            return 200, self._list_entries(json.loads(body or b"{}"))
        if parts[0] != "v2" or len(parts) < 5 or parts[1] != "projects" or parts[3] != "locations":
            raise ApiError(404, f"unknown path {path}")
        data = json.loads(body or b"{}")
        rest = parts[5:]
        location = "/".join(parts[1:5])
        if rest[:1] == ["services"] and len(rest) == 3 and rest[2] == "revisions" and method == "GET":
            return 200, self._list_revisions("/".join(parts[1:7]))
        if rest[:1] == ["services"] and len(rest) == 2 and ":" not in rest[1]:
            if method == "GET":
                return 200, self._run_service("/".join(parts[1:7]))
            if method == "PATCH":
                return 200, self._update_traffic("/".join(parts[1:7]), data)
        if rest[:1] == ["services"] and len(rest) == 2:
            name, _, verb = "/".join(parts[1:7]).partition(":")
            if verb == "getIamPolicy" and method == "GET":
                return 200, self._get_policy(name)
            if verb == "setIamPolicy" and method == "POST":
                return 200, self._set_policy(name, data)
        if rest[:1] == ["operations"] and len(rest) == 2 and method == "GET":
            return 200, self._poll("/".join(parts[1:7]))
        if rest == ["functions"] and method == "POST":
            return 200, self._create(location, query, data)
        if rest == ["functions:generateUploadUrl"] and method == "POST":
            return 200, self._upload_url()
        if rest[:1] == ["functions"] and len(rest) == 2:
            name, _, verb = "/".join(parts[1:7]).partition(":")
            if verb == "generateDownloadUrl" and method == "POST":
                return 200, self._download_url(name)
            if not verb and method == "GET":
                return 200, self._get(name)
            if not verb and method == "PATCH":
                return 200, self._patch(name, query, data)
            if not verb and method == "DELETE":
                return 200, self._delete(name)
        raise ApiError(404, f"unknown method {method} {path}")

    # ------------------------------------------------------------ Cloud Scheduler (the warm-up job)

    @staticmethod
    def _check_job(job: dict[str, Any]) -> None:
        # https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#Job, #HttpTarget
        target = job.get("httpTarget") or {}
        if not job.get("schedule"):
            raise ApiError(400, "Job.schedule is required")
        if not str(target.get("uri", "")).startswith(("http://", "https://")):
            raise ApiError(400, "HttpTarget.uri must begin with http:// or https://")
        if target.get("body") and target.get("httpMethod", "POST") not in ("POST", "PUT", "PATCH"):
            raise ApiError(400, "a body is allowed only with POST, PUT or PATCH")

    def _scheduler(self, method, parts, query, body) -> tuple[int, Any]:
        data = json.loads(body or b"{}")
        parent = "/".join(parts[1:5])
        if len(parts) == 6:
            if method != "POST":
                raise ApiError(404, f"unknown method {method} on {parent}/jobs")
            name = data.get("name") or ""
            if name.rsplit("/jobs/", 1)[0] != parent:
                raise ApiError(400, f"Job.name must be {parent}/jobs/JOB_ID")
            if name in self.state.jobs:
                raise ApiError(409, f"Job {name} already exists")
            self._check_job(data)
            job = {**data, "state": "ENABLED", "userUpdateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
            job["httpTarget"].setdefault("httpMethod", "POST")  # the documented default
            self.state.jobs[name] = job
            return 200, job
        name = "/".join(parts[1:7])
        if name not in self.state.jobs:
            raise ApiError(404, f"Job {name} not found")
        if method == "GET":
            return 200, self.state.jobs[name]
        if method == "DELETE":
            del self.state.jobs[name]
            return 200, {}
        if method == "PATCH":
            mask = [m for item in query.get("updateMask", []) for m in item.split(",") if m]
            if not mask:
                raise ApiError(400, "updateMask is required by this fake")
            job = copy.deepcopy(self.state.jobs[name])
            for key in mask:
                if key not in data:
                    job.pop(key, None)
                else:
                    job[key] = data[key]
            self._check_job(job)
            job["userUpdateTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ")
            self.state.jobs[name] = job
            return 200, job
        raise ApiError(404, f"unknown method {method} {name}")

    # ------------------------------------------------------------ Cloud Logging (entries:list)

    def _list_entries(self, data: dict[str, Any]) -> dict[str, Any]:
        resources = data.get("resourceNames") or []
        if not resources or not all(r.startswith("projects/") for r in resources):
            raise ApiError(400, "resourceNames must name at least one projects/PROJECT")
        tests = [_entry_test(term) for term in (data.get("filter") or "").split(" AND ") if term.strip()]
        found = [e for e in self.state.log_entries
                 if any(e.get("logName", "").startswith(f"{r}/logs/") for r in resources)
                 and all(test(e) for test in tests)]
        if data.get("orderBy", "timestamp asc") not in ("timestamp asc", "timestamp desc"):
            raise ApiError(400, "orderBy must be timestamp asc or timestamp desc")
        found.sort(key=lambda e: _nanos(e["timestamp"]), reverse=data.get("orderBy") == "timestamp desc")
        start = int(data.get("pageToken") or 0)
        size = min(int(data.get("pageSize") or 50), 1000)
        page = found[start:start + size]
        answer: dict[str, Any] = {"entries": copy.deepcopy(page)} if page else {}
        if start + size < len(found):
            answer["nextPageToken"] = str(start + size)
        return answer

    # ------------------------------------------------------------ Firestore admin (TTL policies)

    def _firestore(self, method, parts, query, body) -> tuple[int, Any]:
        name = "/".join(parts[1:])
        rest = parts[5:]
        if rest[:1] == ["operations"] and len(rest) == 2 and method == "GET":
            field_name = self.state.ttl_operations.get(name)
            if field_name is None:
                raise ApiError(404, f"no operation {name}")
            if self.state.ttl.get(field_name) == "CREATING":
                self.state.ttl[field_name] = "ACTIVE"
            return 200, {"name": name, "done": True, "response": {
                "@type": "type.googleapis.com/google.firestore.admin.v1.Field", "name": field_name}}
        if len(rest) != 4 or rest[0] != "collectionGroups" or rest[2] != "fields":
            raise ApiError(404, f"unknown Firestore path {name}")
        view: dict[str, Any] = {"name": name, "indexConfig": {"usesAncestorConfig": True}}
        if method == "GET":
            if name in self.state.ttl:
                view["ttlConfig"] = {"state": self.state.ttl[name]}
            return 200, view
        if method == "PATCH":
            if query.get("updateMask") != ["ttlConfig"]:
                raise ApiError(400, "updateMask must be ttlConfig here")
            data = json.loads(body or b"{}")
            if "ttlConfig" in data:
                self.state.ttl[name] = "CREATING"
            else:
                self.state.ttl.pop(name, None)
            operation = f"{'/'.join(parts[1:5])}/operations/ttl{next(self._ids)}"
            self.state.ttl_operations[operation] = name
            return 200, {"name": operation, "metadata": {
                "@type": "type.googleapis.com/google.firestore.admin.v1.FieldOperationMetadata", "field": name}}
        raise ApiError(404, f"unknown method {method} on {name}")

    # ------------------------------------------------------------ storage

    def _upload_url(self) -> dict[str, Any]:
        bucket, obj = "gcf-v2-uploads-123456789012-us-central1", f"{next(self._ids):08d}-source.zip"
        self.state.signed[(bucket, obj)] = "application/zip"
        return {"uploadUrl": f"{self.url}/upload/{bucket}/{obj}?GoogleAccessId=fake&Expires=9999999999&Signature=x",
                "storageSource": {"bucket": bucket, "object": obj}}

    def _upload(self, parts, headers, body) -> tuple[int, Any]:
        key = (parts[1], "/".join(parts[2:]))
        lower = {k.lower(): v for k, v in headers.items()}
        if key not in self.state.signed:
            raise ApiError(403, "SignatureDoesNotMatch", "PERMISSION_DENIED")
        if "authorization" in lower:  # a signed URL already authenticates the request
            raise ApiError(400, "Cannot insert legacy ACL for an object when uniform bucket-level access is enabled "
                                "/ multiple authentication mechanisms", "INVALID_ARGUMENT")
        if lower.get("content-type") != self.state.signed[key]:
            raise ApiError(403, "SignatureDoesNotMatch: content-type differs from the signed one", "PERMISSION_DENIED")
        self.state.objects[key] = body
        return 200, {}

    def _download_url(self, name: str) -> dict[str, Any]:
        function = self._existing(name)
        source = function.get("buildConfig", {}).get("source", {}).get("storageSource", {})
        return {"downloadUrl": f"{self.url}/download/{source.get('bucket')}/{source.get('object')}?Signature=x"}

    # ------------------------------------------------------------ functions

    def _existing(self, name: str) -> dict[str, Any]:
        if name not in self.state.functions:
            raise ApiError(404, f"Resource '{name}' was not found")
        return self.state.functions[name]

    def _advance_running(self, name: str) -> None:
        op = self.state.running.get(name)
        if op:
            self._step(self.state.operations[op])

    def _get(self, name: str) -> dict[str, Any]:
        self._advance_running(name)
        return copy.deepcopy(self._existing(name))

    def _check_source(self, function: dict[str, Any]) -> None:
        source = function.get("buildConfig", {}).get("source", {}).get("storageSource")
        if not source or (source.get("bucket"), source.get("object")) not in self.state.objects:
            raise ApiError(400, "buildConfig.source.storageSource: the object does not exist (upload it first)")

    def _check(self, function: dict[str, Any]) -> None:
        build = function.get("buildConfig", {})
        if not build.get("runtime") or not build.get("entryPoint"):
            raise ApiError(400, "buildConfig.runtime and buildConfig.entryPoint are required")
        for key, value in function.get("labels", {}).items():
            if len(key) > 63 or len(str(value)) > 63:
                raise ApiError(400, f"label {key}: keys and values are at most 63 characters")
        service = function.get("serviceConfig", {})
        memory = memory_mib(service.get("availableMemory", "256M"))
        if not 128 <= memory <= 32768:
            raise ApiError(400, "availableMemory must be between 128Mi and 32Gi")
        cpu = float(service.get("availableCpu") or self._default_cpu(memory))
        if memory > 4096 and cpu < 2:
            raise ApiError(400, "memory above 4Gi needs at least 2 vCPU (availableCpu)")
        if service.get("maxInstanceRequestConcurrency", 1) > 1 and cpu < 1:
            raise ApiError(400, "maxInstanceRequestConcurrency > 1 needs at least 1 vCPU")
        if not 1 <= service.get("timeoutSeconds", 60) <= 3600:
            raise ApiError(400, "timeoutSeconds must be between 1 and 3600")
        for secret in service.get("secretEnvironmentVariables", []):
            if not {"key", "secret", "version"} <= set(secret):
                raise ApiError(400, "secretEnvironmentVariables need key, secret and version")

    @staticmethod
    def _default_cpu(memory: float) -> str:
        for size, cpu in DEFAULT_CPU:
            if memory <= size:
                return cpu
        return "8"

    def _create(self, location: str, query, data: dict[str, Any]) -> dict[str, Any]:
        function_id = (query.get("functionId") or [""])[0]
        name = f"{location}/functions/{function_id}"
        if name in self.state.functions:
            raise ApiError(409, f"Function {function_id} in region {location.split('/')[-1]} already exists")
        if not function_id or not function_id.replace("-", "").isalnum() or not function_id[0].isalpha():
            raise ApiError(400, f"invalid functionId {function_id!r}")
        self._check(data)
        self._check_source(data)
        function = {**copy.deepcopy(data), "name": name, "state": DEPLOYING, "environment": data.get("environment", 2)}
        self.state.functions[name] = function

        def finish() -> dict[str, Any]:
            self._finish_service(function)
            function["state"] = ACTIVE
            return function
        return self._start(name, "create", finish)

    def _patch(self, name: str, query, data: dict[str, Any]) -> dict[str, Any]:
        function = self._existing(name)
        if name in self.state.running:
            raise ApiError(409, f"An operation on function {name} is already in progress. Please try again later.",
                           "ABORTED")
        masks = [camel(p) for m in query.get("updateMask", []) for p in m.split(",") if p]
        updated = copy.deepcopy(function)
        if not masks:  # no mask: every field given
            masks = [k for k in data if k not in ("name", "state", "url", "updateTime")]
        for path in masks:
            source, target, keys = data, updated, path.split(".")
            for key in keys[:-1]:
                source = source.get(key, {}) if isinstance(source, dict) else {}
                target = target.setdefault(key, {})
            if keys[-1] in source:
                target[keys[-1]] = copy.deepcopy(source[keys[-1]])
            else:
                target.pop(keys[-1], None)  # in the mask but not in the body: reset to the default
        self._check(updated)
        if any(m.startswith("buildConfig") for m in masks):
            self._check_source(updated)
        updated["state"] = DEPLOYING
        function.clear()
        function.update(updated)

        def finish() -> dict[str, Any]:
            self._finish_service(function, new_revision=True)
            function["state"] = ACTIVE
            return function
        return self._start(name, "update", finish)

    def _delete(self, name: str) -> dict[str, Any]:
        function = self._existing(name)
        function["state"] = DELETING
        self.state.running.pop(name, None)

        def finish() -> None:
            gone = self.state.functions.pop(name, None)
            if gone:
                self.state.services.pop(gone.get("serviceConfig", {}).get("service", ""), None)
                self.state.run.pop(gone.get("serviceConfig", {}).get("service", ""), None)
            return None
        return self._start(name, "delete", finish)

    def _finish_service(self, function: dict[str, Any], new_revision: bool = False) -> None:
        name = function["name"]
        _, project, _, region, _, function_id = name.split("/")
        service = function.setdefault("serviceConfig", {})
        service_name = f"projects/{project}/locations/{region}/services/{function_id}"
        count = self.state.revisions.get(name, 0) + (1 if new_revision or name not in self.state.revisions else 0)
        self.state.revisions[name] = count
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        service.update(service=service_name, uri=f"https://{function_id}-{digest}-uc.a.run.app",
                       revision=f"{function_id}-{count:05d}-{digest[:3]}")
        service.setdefault("availableMemory", "256M")
        service.setdefault("availableCpu", self._default_cpu(memory_mib(service["availableMemory"])))
        service.setdefault("timeoutSeconds", 60)
        service.setdefault("maxInstanceRequestConcurrency", 1)
        service.setdefault("ingressSettings", 1)
        service.setdefault("maxInstanceCount", 100)
        function["url"] = f"https://{region}-{project}.cloudfunctions.net/{function_id}"
        function["updateTime"] = f"2026-01-01T00:00:{count:02d}Z"
        self.state.services.setdefault(service_name, {"etag": base64.b64encode(b"etag-1").decode()})
        run = self.state.run.setdefault(service_name, {"revisions": [], "traffic": []})
        if not run["revisions"] or run["revisions"][-1]["name"].rsplit("/", 1)[-1] != service["revision"]:
            # a revision keeps the environment it was deployed with: Revision.containers[].env
            # (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions)
            env = [{"name": k, "value": v} for k, v in sorted(service.get("environmentVariables", {}).items())]
            run["revisions"].append({"name": f"{service_name}/revisions/{service['revision']}", "service": service_name,
                                     "createTime": function["updateTime"], "containers": [{"env": env}]})
        # "On CreateFunction and UpdateFunction, when set to true, the revision being deployed will serve
        # 100% of traffic" (https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions)
        if service.get("allTrafficOnLatestRevision") or not run["traffic"]:
            run["traffic"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
            service["allTrafficOnLatestRevision"] = True

    # ------------------------------------------------------------ Cloud Run services and revisions
    # https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services (get, patch) and
    # .../services.revisions/list: what a function's service shows of its revisions and traffic

    def _run_state(self, service: str) -> dict[str, Any]:
        if service not in self.state.run:
            raise ApiError(404, f"Resource '{service}' was not found")
        return self.state.run[service]

    def _run_service(self, service: str) -> dict[str, Any]:
        run = self._run_state(service)
        latest = run["revisions"][-1]["name"]
        statuses = [{**t, **({"revision": latest.rsplit("/", 1)[-1]} if "revision" not in t else {})}
                    for t in run["traffic"]]
        return {"name": service, "latestReadyRevision": latest, "latestCreatedRevision": latest,
                "traffic": copy.deepcopy(run["traffic"]), "trafficStatuses": statuses}

    def _list_revisions(self, service: str) -> dict[str, Any]:
        return {"revisions": copy.deepcopy(list(reversed(self._run_state(service)["revisions"])))}

    def _update_traffic(self, service: str, data: dict[str, Any]) -> dict[str, Any]:
        run = self._run_state(service)
        traffic = data.get("traffic") or []
        known = {r["name"].rsplit("/", 1)[-1] for r in run["revisions"]}
        for target in traffic:
            if target.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION" and target.get("revision") not in known:
                raise ApiError(400, f"Revision '{target.get('revision')}' does not exist", "INVALID_ARGUMENT")
        if sum(int(t.get("percent") or 0) for t in traffic) != 100:
            raise ApiError(400, "traffic percentages must add up to 100", "INVALID_ARGUMENT")
        latest = run["revisions"][-1]["name"].rsplit("/", 1)[-1]
        function = next(f for f in self.state.functions.values()
                        if f.get("serviceConfig", {}).get("service") == service)

        def finish() -> dict[str, Any]:
            run["traffic"] = copy.deepcopy(traffic)
            on_latest = all(t.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST" or t.get("revision") == latest
                            for t in traffic if int(t.get("percent") or 0))
            function["serviceConfig"]["allTrafficOnLatestRevision"] = on_latest
            return self._run_service(service)
        location = "/".join(service.split("/")[:4])
        name = f"{location}/operations/operation-{next(self._ids):06d}"
        pending = Pending(name, service, "update", self.polls_per_operation, finish,
                          response_type="type.googleapis.com/google.cloud.run.v2.Service")
        self.state.operations[name] = pending
        return self._operation(pending)

    # ------------------------------------------------------------ operations

    def _start(self, target: str, verb: str, finish) -> dict[str, Any]:
        location = "/".join(target.split("/")[:4])
        name = f"{location}/operations/operation-{next(self._ids):06d}"
        if self._build_error and verb != "delete":
            message, self._build_error = self._build_error, None
            function = self.state.functions[target]

            def failed() -> None:
                function["state"] = FAILED
                function["stateMessages"] = [{"severity": 1, "type": "BuildFailed", "message": message}]
                raise ApiError(400, message, "FAILED_PRECONDITION")
            finish = failed
        pending = Pending(name, target, verb, self.polls_per_operation, finish)
        self.state.operations[name] = pending
        self.state.running[target] = name
        return self._operation(pending)

    def _step(self, pending: Pending) -> None:
        if pending.done:
            return
        pending.polls -= 1
        if pending.polls > 0:
            return
        pending.done = True
        self.state.running.pop(pending.target, None)
        try:
            result = pending.finish()
        except ApiError as error:  # the operation ends with google.rpc.Status (3: FAILED_PRECONDITION -> 9)
            pending.error = {"code": 9, "message": error.message}
            return
        pending.response = ({"@type": pending.response_type, **copy.deepcopy(result)} if result
                            else {"@type": EMPTY_TYPE})

    def _poll(self, name: str) -> dict[str, Any]:
        if name not in self.state.operations:
            raise ApiError(404, f"Operation {name} not found")
        pending = self.state.operations[name]
        self._step(pending)
        return self._operation(pending)

    @staticmethod
    def _operation(pending: Pending) -> dict[str, Any]:
        answer: dict[str, Any] = {"name": pending.name, "metadata": {
            "@type": METADATA_TYPE, "target": pending.target, "verb": pending.verb, "apiVersion": "v2",
            "stages": [{"name": 1, "state": 3 if pending.done else 2}]}}
        if pending.done:
            answer["done"] = True
            if pending.error:
                answer["error"] = pending.error
            else:
                answer["response"] = pending.response
        return answer

    # ------------------------------------------------------------ Cloud Run IAM

    def _get_policy(self, service: str) -> dict[str, Any]:
        if service not in self.state.services:
            raise ApiError(404, f"Resource '{service}' was not found")
        return copy.deepcopy(self.state.services[service])

    def _set_policy(self, service: str, data: dict[str, Any]) -> dict[str, Any]:
        current = self._get_policy(service)
        policy = data.get("policy") or {}
        if policy.get("etag") and policy["etag"] != current.get("etag"):
            raise ApiError(409, "There were concurrent policy changes (etag mismatch)", "ABORTED")
        number = int(base64.b64decode(current["etag"]).decode().split("-")[1]) + 1
        stored = {k: v for k, v in policy.items() if k in ("bindings", "version")}
        stored["etag"] = base64.b64encode(f"etag-{number}".encode()).decode()
        self.state.services[service] = stored
        return copy.deepcopy(stored)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGcp
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall per request

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        time.sleep(self.fake.delay)
        status, headers, payload = self.fake.handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass
