"""A fake Vercel REST API for tests (stdlib only, stateful, on 127.0.0.1).

Implements what the deploy stage uses, with Vercel's documented shapes and quirks:

* every call needs ``Authorization: Bearer <token>`` (403 ``forbidden`` otherwise); the team query
  (``teamId`` / ``slug``) is recorded and, when the fake is given a team, required;
* projects: ``GET /v9/projects/{idOrName}`` (404 ``not_found``), ``POST /v11/projects`` (409 when the
  name exists; ``environmentVariables`` stored with the project), ``DELETE /v9/projects/{idOrName}``
  (204, deletes the project's deployments and environment variables with it);
* environment variables: ``GET /v10/projects/{id}/env`` (``value`` only for plain variables: sensitive
  values are never returned), ``POST /v10/projects/{id}/env`` (object or list; existing key+target ->
  400 ``ENV_ALREADY_EXISTS`` unless ``?upsert=true``; 201 ``{created, failed: []}``),
  ``DELETE /v9/projects/{id}/env/{envId}``;
* files: ``POST /v2/files`` with ``x-vercel-digest`` = SHA-1 of the raw body (400 ``incorrect_file_sha``
  otherwise), stored by digest for the whole account;
* deployments: ``POST /v13/deployments`` answers 400 ``missing_files`` with the list of SHA-1s it does
  not have, else 200 with ``readyState: QUEUED``; each ``GET /v13/deployments/{id}`` moves it one step
  QUEUED -> BUILDING -> READY, and the alias is assigned one poll later (READY comes first); a READY
  production deployment takes the production alias ``<project>.vercel.app`` from the previous one;
  ``GET /v6/deployments`` (also /v7) lists items with ``uid`` (not ``id``), filters projectId, target,
  state (comma list), limit, until; ``DELETE /v13/deployments/{id}`` -> ``{uid, state: "DELETED"}``.

* runtime logs (``logs``, https://vercel.com/docs/rest-api/logs/get-logs-for-a-deployment):
  ``GET /v1/projects/{projectId}/deployments/{deploymentId}/runtime-logs`` answers
  ``application/stream+json``, one JSON object per line (level, message, rowId, source, timestampInMs,
  domain, messageTruncated, requestMethod, requestPath, responseStatusCode), the rows ``add_runtime_log``
  put for that deployment, then closes; 404 for a deployment that is not the project's.

Fault injection: ``fail(status, times, retry_after=None, method=None)`` answers the next `times`
requests (of that method) with `status`; ``interrupt_after(n)`` lets n mutating requests through, then
answers every further one with 400 ``interrupted`` without doing anything (the process "was killed");
``build_fails = True`` makes the next deployment end in ERROR; ``alias_error = True`` sets aliasError.
Every request is recorded (method, path, query, headers, body).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case keys
    body: bytes

    @property
    def mutating(self) -> bool:
        return self.method != "GET"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: str | None = None
    method: str | None = None


@dataclass
class _State:
    projects: dict[str, dict] = field(default_factory=dict)  # id -> project
    envs: dict[str, list[dict]] = field(default_factory=dict)  # project id -> env vars (values kept here only)
    files: dict[str, bytes] = field(default_factory=dict)  # sha1 -> bytes
    deployments: dict[str, dict] = field(default_factory=dict)  # id -> deployment (insertion = creation order)
    runtime_logs: dict[str, list[dict]] = field(default_factory=dict)  # deployment id -> its runtime log rows


class FakeVercel:
    def __init__(self, token: str = "test-vercel-token", team: str | None = None):
        self.token = token
        self.team = team
        self._lock = threading.Lock()
        self.delay = 0.0  # seconds every answer waits, outside the lock (a cloud's latency, for bench/deploy.py)
        self.reset()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------ lifecycle and test controls

    def start(self) -> FakeVercel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeVercel:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.state = _State()
            self._ids = itertools.count(1)
            self._clock = itertools.count(1_700_000_000_000, 1000)
            self.requests: list[Recorded] = []
            self._faults: list[_Fault] = []
            self._interrupt_after: int | None = None
            self._mutations = 0
            self.build_fails = False
            self.alias_error = False

    def clear(self) -> None:
        """Forget recorded requests and faults; keep the stored state."""
        with self._lock:
            self.requests = []
            self._faults = []
            self._interrupt_after = None
            self._mutations = 0

    def fail(self, status: int, times: int = 1, retry_after: str | int | None = None,
             method: str | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(status, times, None if retry_after is None else str(retry_after), method))

    def interrupt_after(self, n: int) -> None:
        with self._lock:
            self._interrupt_after = n
            self._mutations = 0

    @property
    def mutating(self) -> list[str]:
        return [str(r) for r in self.requests if r.mutating]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # seeding, as if done outside the framework (by hand in the dashboard)
    def add_project(self, name: str, envs: list[dict] | None = None) -> dict:
        with self._lock:
            return self._create_project({"name": name, "environmentVariables": envs or []})

    def add_deployment(self, project_id: str, meta: dict | None = None, ready: bool = True) -> dict:
        with self._lock:
            project = self.state.projects[project_id]
            deployment = self._new_deployment(project, {"target": "production", "meta": meta or {}, "files": []})
            if ready:
                deployment["readyState"] = "READY"
                self._assign_alias(deployment)
            return deployment

    def add_runtime_log(self, deployment_id: str, message: str, time_ms: int, level: str = "info") -> None:
        """A line the deployment's function logged at time_ms (as the runtime-logs stream gives it back)."""
        with self._lock:
            deployment = self.state.deployments[deployment_id]
            self.state.runtime_logs.setdefault(deployment_id, []).append({
                "level": level, "message": message, "rowId": self.new_id("row_"), "source": "serverless",
                "timestampInMs": time_ms, "domain": f"{deployment['url']}", "messageTruncated": False,
                "requestMethod": "POST", "requestPath": "/api/agent", "responseStatusCode": 200})

    # ------------------------------------------------------------ the API (called under the lock)

    def _find_project(self, id_or_name: str) -> dict | None:
        if id_or_name in self.state.projects:
            return self.state.projects[id_or_name]
        return next((p for p in self.state.projects.values() if p["name"] == id_or_name), None)

    def _create_project(self, body: dict) -> dict:
        project = {"id": self.new_id("prj_"), "name": body["name"], "framework": body.get("framework"),
                   "accountId": "team_fake" if self.team else "user_fake", "createdAt": next(self._clock)}
        self.state.projects[project["id"]] = project
        self.state.envs[project["id"]] = []
        for env in body.get("environmentVariables") or []:
            self._put_env(project["id"], env, upsert=False)
        return project

    def _put_env(self, project_id: str, env: dict, upsert: bool) -> tuple[dict | None, dict | None]:
        targets = env.get("target") or []
        targets = [targets] if isinstance(targets, str) else list(targets)
        if env.get("type") == "sensitive" and "development" in targets:
            return None, {"code": "invalid_sensitive_target",
                          "message": "sensitive variables cannot target development"}
        for existing in self.state.envs[project_id]:
            if existing["key"] == env["key"] and set(existing["target"]) & set(targets):
                if not upsert:
                    return None, {"code": "ENV_ALREADY_EXISTS", "envVarKey": env["key"],
                                  "message": f"A variable with the name `{env['key']}` already exists"}
                existing.update(value=env.get("value", ""), type=env.get("type", existing["type"]), target=targets,
                                updatedAt=next(self._clock))
                return existing, None
        record = {"id": self.new_id("env_"), "key": env["key"], "value": env.get("value", ""),
                  "type": env.get("type", "encrypted"), "target": targets, "createdAt": next(self._clock)}
        record["updatedAt"] = record["createdAt"]
        self.state.envs[project_id].append(record)
        return record, None

    @staticmethod
    def _public_env(env: dict) -> dict:
        out = {k: v for k, v in env.items() if k != "value"}
        if env["type"] == "plain":
            out["value"] = env["value"]
        elif env["type"] == "encrypted":
            out["value"] = "eyJ2IjoiZW5jcnlwdGVkIn0"  # an opaque ciphertext, never the value
        return out  # sensitive: no value at all

    def _new_deployment(self, project: dict, body: dict) -> dict:
        dpl = self.new_id("dpl_")
        deployment = {
            "id": dpl, "name": project["name"], "projectId": project["id"],
            "url": f"{project['name']}-{dpl[4:]}.vercel.app",
            "readyState": "QUEUED", "target": body.get("target"), "meta": dict(body.get("meta") or {}),
            "alias": [], "aliasAssigned": False, "aliasError": None, "createdAt": next(self._clock),
            "files": list(body.get("files") or []), "projectSettings": body.get("projectSettings"),
            "_polls": 0, "_fails": self.build_fails, "_alias_error": self.alias_error,
        }
        self.state.deployments[dpl] = deployment
        return deployment

    def _assign_alias(self, deployment: dict) -> None:
        if deployment.get("target") != "production":
            deployment["aliasAssigned"] = True
            return
        project = self.state.projects[deployment["projectId"]]
        alias = f"{project['name']}.vercel.app"
        for other in self.state.deployments.values():
            if alias in other["alias"]:
                other["alias"].remove(alias)
        deployment["alias"] = [alias]
        deployment["aliasAssigned"] = True

    def _advance(self, deployment: dict) -> None:
        """One poll moves the deployment one step: QUEUED -> BUILDING -> READY -> alias assigned."""
        state = deployment["readyState"]
        if state == "QUEUED":
            deployment["readyState"] = "BUILDING"
        elif state == "BUILDING":
            if deployment["_fails"]:
                deployment.update(readyState="ERROR", errorCode="BUILD_FAILED",
                                  errorMessage="Command \"vercel build\" exited with 1")
            else:
                deployment["readyState"] = "READY"
        elif state == "READY" and not deployment["aliasAssigned"] and not deployment["aliasError"]:
            if deployment["_alias_error"]:
                deployment["aliasError"] = {"code": "alias_failed", "message": "could not assign the alias"}
            else:
                self._assign_alias(deployment)

    def _public_project(self, project: dict) -> dict:
        """A project as GET /v9/projects/{idOrName} answers: with targets.production, the deployment its
        production domain points at (https://vercel.com/docs/rest-api/projects/find-a-project-by-id-or-name)."""
        alias = f"{project['name']}.vercel.app"
        live = next((d for d in self.state.deployments.values()
                     if d["projectId"] == project["id"] and alias in d["alias"]), None)
        return {**project, **({"targets": {"production": {"id": live["id"], "alias": [alias]}}} if live else {})}

    @staticmethod
    def _public_deployment(deployment: dict, item: bool = False) -> dict:
        out = {k: v for k, v in deployment.items() if not k.startswith("_") and k != "files"}
        if item:  # list items: `uid`, `state`, `created`
            out = {"uid": deployment["id"], "name": deployment["name"], "url": deployment["url"],
                   "state": deployment["readyState"], "readyState": deployment["readyState"],
                   "target": deployment["target"], "meta": deployment["meta"], "created": deployment["createdAt"],
                   "createdAt": deployment["createdAt"], "projectId": deployment["projectId"]}
        return out

    def route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
              body: bytes) -> tuple[int, Any, dict[str, str]]:
        parts = [p for p in path.split("/") if p]
        data: Any = None
        if body and headers.get("content-type", "").startswith("application/json"):
            try:
                data = json.loads(body)
            except ValueError:
                return 400, {"error": {"code": "bad_request", "message": "Invalid JSON"}}, {}

        def not_found(what: str) -> tuple[int, Any, dict]:
            return 404, {"error": {"code": "not_found", "message": f"{what} not found"}}, {}

        if method == "GET" and len(parts) == 6 and parts[:2] == ["v1", "projects"] and parts[3] == "deployments" \
                and parts[5] == "runtime-logs":
            deployment = self.state.deployments.get(parts[4])
            if deployment is None or deployment["projectId"] != parts[2]:
                return not_found("Deployment")
            rows = self.state.runtime_logs.get(parts[4], [])
            return 200, b"".join(json.dumps(row).encode() + b"\n" for row in rows), \
                {"Content-Type": "application/stream+json"}
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v9", "projects"]:
            project = self._find_project(parts[2])
            return (200, self._public_project(project), {}) if project else not_found("Project")
        if method == "POST" and parts == ["v11", "projects"]:
            if not data or not data.get("name"):
                return 400, {"error": {"code": "bad_request", "message": "name is required"}}, {}
            if self._find_project(data["name"]):
                return 409, {"error": {"code": "conflict", "message": "A project with this name already exists"}}, {}
            return 200, self._create_project(data), {}
        if method == "DELETE" and len(parts) == 3 and parts[:2] == ["v9", "projects"]:
            project = self._find_project(parts[2])
            if not project:
                return not_found("Project")
            del self.state.projects[project["id"]]
            self.state.envs.pop(project["id"], None)
            for dpl in [d for d, v in self.state.deployments.items() if v["projectId"] == project["id"]]:
                del self.state.deployments[dpl]
            return 204, None, {}
        if len(parts) >= 4 and parts[1] == "projects" and parts[3] == "env":
            project = self._find_project(parts[2])
            if not project:
                return not_found("Project")
            envs = self.state.envs[project["id"]]
            if method == "GET" and parts[0] == "v10" and len(parts) == 4:
                return 200, {"envs": [self._public_env(e) for e in envs]}, {}
            if method == "POST" and parts[0] == "v10" and len(parts) == 4:
                items = data if isinstance(data, list) else [data]
                created, failed = [], []
                for item in items:
                    record, error = self._put_env(project["id"], item, query.get("upsert") == "true")
                    if error:
                        failed.append({"error": error})
                    else:
                        created.append(self._public_env(record))
                if failed and not created and not isinstance(data, list):
                    return 400, {"error": failed[0]["error"]}, {}
                return 201, {"created": created if isinstance(data, list) else created[0], "failed": failed}, {}
            if method == "DELETE" and parts[0] == "v9" and len(parts) == 5:
                record = next((e for e in envs if e["id"] == parts[4]), None)
                if record is None:
                    return not_found("Environment variable")
                envs.remove(record)
                return 200, self._public_env(record), {}
        if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "projects"] and parts[3] in ("pause",
                                                                                                  "unpause"):
            # Pause / Unpause a project: 200; the project's `paused` follows
            # (https://vercel.com/docs/rest-api/projects/pause-a-project, .../unpause-a-project)
            project = self.state.projects.get(parts[2])
            if project is None:  # "If the project does not exist given the id then the request will fail with 400"
                return 400, {"error": {"code": "bad_request", "message": "Project not found"}}, {}
            project["paused"] = parts[3] == "pause"
            return 200, {}, {}
        if method == "POST" and parts == ["v2", "files"]:
            digest = headers.get("x-vercel-digest") or headers.get("x-now-digest")
            if not digest:
                return 400, {"error": {"code": "missing_digest", "message": "x-vercel-digest is required"}}, {}
            if hashlib.sha1(body).hexdigest() != digest:
                return 400, {"error": {"code": "incorrect_file_sha", "message": "The file SHA does not match"}}, {}
            self.state.files[digest] = body
            return 200, {}, {}
        if method == "POST" and parts == ["v13", "deployments"]:
            project = self._find_project((data or {}).get("project") or (data or {}).get("name") or "")
            if project is None:
                return 400, {"error": {"code": "project_not_found", "message": "Project not found"}}, {}
            missing = [f["sha"] for f in data.get("files") or [] if f["sha"] not in self.state.files]
            if missing:
                return 400, {"error": {"code": "missing_files", "message": "Missing files", "missing": missing}}, {}
            return 200, self._public_deployment(self._new_deployment(project, data)), {}
        if method in ("GET", "DELETE") and len(parts) == 3 and parts[:2] == ["v13", "deployments"]:
            deployment = self.state.deployments.get(parts[2]) or next(
                (d for d in self.state.deployments.values() if d["url"] == parts[2]), None)
            if deployment is None:
                return not_found("Deployment")
            if method == "DELETE":
                del self.state.deployments[deployment["id"]]
                return 200, {"uid": deployment["id"], "state": "DELETED"}, {}
            self._advance(deployment)
            return 200, self._public_deployment(deployment), {}
        if method == "POST" and len(parts) == 5 and parts[:2] == ["v10", "projects"] and parts[3] == "promote":
            # https://vercel.com/docs/rest-api/projects/point-production-traffic-to-a-given-deployment: the
            # project's production domains point at an existing deployment, no rebuild (201)
            project = self._find_project(parts[2])
            deployment = self.state.deployments.get(parts[4])
            if project is None or deployment is None or deployment["projectId"] != project["id"]:
                return not_found("Deployment")
            if deployment["readyState"] != "READY":
                return 409, {"error": {"code": "not_ready", "message": "The deployment is not READY"}}, {}
            self._assign_alias(deployment)
            return 201, {}, {}
        if method == "GET" and parts in (["v6", "deployments"], ["v7", "deployments"]):
            found = [d for d in reversed(self.state.deployments.values())
                     if (not query.get("projectId") or d["projectId"] == query["projectId"])
                     and (not query.get("target") or d["target"] == query["target"])
                     and (not query.get("state") or d["readyState"] in query["state"].split(","))
                     and (not query.get("until") or d["createdAt"] < int(query["until"]))]
            limit = int(query.get("limit") or 20)
            page = found[:limit]
            more = len(found) > limit
            return 200, {"deployments": [self._public_deployment(d, item=True) for d in page],
                         "pagination": {"count": len(page), "next": page[-1]["createdAt"] if more else None,
                                        "prev": None}}, {}
        return 404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}}, {}

    # ------------------------------------------------------------ HTTP plumbing

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        with self._lock:
            self.requests.append(Recorded(method, split.path, query, headers, body))
            if headers.get("authorization") != f"Bearer {self.token}":
                return 403, {"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": True}}, {}
            if self.team and self.team not in (query.get("teamId"), query.get("slug")):
                return 403, {"error": {"code": "forbidden", "message": "You don't have access to this scope"}}, {}
            for fault in self._faults:
                if fault.times > 0 and fault.method in (None, method):
                    fault.times -= 1
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    return fault.status, {"error": {"code": "rate_limited" if fault.status == 429 else "internal",
                                                    "message": f"injected {fault.status}"}}, extra
            if method != "GET":
                if self._interrupt_after is not None and self._mutations >= self._interrupt_after:
                    return 400, {"error": {"code": "interrupted", "message": "the deploying process was killed"}}, {}
                self._mutations += 1
            return self.route(method, split.path, query, headers, body)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                time.sleep(fake.delay)
                status, data, extra = fake._handle(self.command, self.path, headers, body)
                raw = data if isinstance(data, bytes) else b"" if data is None or status == 204 else \
                    json.dumps(data).encode()
                self.send_response(status)
                if raw and "Content-Type" not in extra:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _any

        return Handler
