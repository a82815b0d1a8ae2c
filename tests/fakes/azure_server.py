"""A fake Azure Resource Manager (Microsoft.Web) + Kudu server for deploy tests (stdlib only, stateful).

Usage::

    with FakeAzure(token="t") as fake:
        fake.url                      # "http://127.0.0.1:PORT" -> AZURE_ARM_ENDPOINT
        fake.scm_url                  # "http://127.0.0.1:PORT/scm/{app}" -> AZURE_SCM_ENDPOINT
        fake.add_resource_group(sub, "agents-rg")
        fake.requests                 # every request: method, path, query, headers, body
        fake.fail(503, count=2, retry_after="0")  # the next 2 requests answer 503
        fake.kill_after(3)            # mutating requests after the 3rd answer 400 "Interrupted"

What it implements (the documented REST contract, ../shared/reference/cloud-deploy-apis.md):

ARM, under /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Web (api-version required,
bearer token required, 404 ResourceGroupNotFound for an unknown group, names case-insensitive):
* serverfarms/{plan}: GET, PUT (create answers 202 + Location to an operation that answers 202
  once, then 200; update answers 200), DELETE (409 while it hosts sites, 404 when missing).
* sites/{app}: GET (siteConfig without appSettings, like ARM), PUT (200; validates the plan exists,
  one app per Flex plan, Flex's functionAppConfig and the settings Flex rejects), PATCH (deep
  merge), DELETE (also deletes a plan left empty unless deleteEmptyServerFarm=false; 404 when missing).
* sites/{app}/config/appsettings/list (POST), config/appsettings (PUT, replaces the whole set),
  config/web (GET, PATCH), functions/{fn}/listkeys (POST, flat {"default": key}, 404 until a
  deployment succeeded), host/default/listkeys (POST), syncfunctiontriggers (POST).

ARM, under /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{account}
(accounts made with add_storage_account; 404 ParentResourceNotFound otherwise):
* tableServices/default/tables/{table}: GET (404 TableNotFound when missing), PUT (200, creates or
  keeps), DELETE (200; 204 when missing), as https://learn.microsoft.com/en-us/rest/api/storagerp/table.

Application Insights query API (`logs`, https://learn.microsoft.com/en-us/rest/api/application-insights/query/execute):
* POST /v1/apps/{appId}/query {"query": KQL, "timespan": ...} (bearer token required; an unknown app 404
  PathNotFoundError) -> {"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[...]]}]}.
  The query must be the form the framework sends: `traces`, then `| where timestamp >= datetime(T)`,
  `| where cloud_RoleName =~ 'APP'`, optionally `| where message contains 'TEXT'`, `| order by timestamp asc`,
  `| project timestamp, itemId, message` (anything else 400 BadArgumentError). Rows come from `add_trace`.

Kudu, under /scm/{app} (bearer token required):
* POST /api/publish?RemoteBuild=true (Flex only, Content-Type application/zip else 415, a valid
  zip else 400, 409 while a deployment runs) -> 202, body = the deployment id as a JSON string.
* POST /api/zipdeploy?isAsync=true (Premium only; 404 on Flex like the real service) -> 202 +
  Location /api/deployments/latest.
* GET /api/deployments/latest (202 while running, 200 when complete) and /api/deployments/{id}
  (always 200). Each poll moves a deployment one step: 0 Pending -> 1 Building -> 4 Success with
  complete: true (or 3 Failed after fail_next_deployment()).
"""

from __future__ import annotations

import copy
import io
import json
import re
import secrets
import socket
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
FLEX_REJECTED_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "SCM_DO_BUILD_DURING_DEPLOYMENT",
                          "ENABLE_ORYX_BUILD", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTSHARE",
                          "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def mutating(self) -> bool:
        return is_mutating(self.method, self.path)


def is_mutating(method: str, path: str) -> bool:
    if method in ("GET", "HEAD"):
        return False
    if method == "POST" and path.lower().rstrip("/").endswith(("/list", "/listkeys", "/query")):
        return False
    return True


class Error(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeAzure:
    def __init__(self, token: str | None = None):
        self.token = token
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.groups: set[tuple[str, str]] = set()
        self.plans: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.sites: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.settings: dict[tuple[str, str, str], dict[str, str]] = {}
        self.web: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.keys: dict[tuple[str, str, str], str] = {}
        self.deployments: dict[str, list[dict[str, Any]]] = {}  # app (lower) -> deployments, latest last
        self.packages: dict[str, bytes] = {}  # app (lower) -> the last successfully deployed zip
        self.operations: dict[str, int] = {}  # operation id -> polls left before done
        self.accounts: set[tuple[str, str, str]] = set()  # storage accounts: (sub, group, account)
        self.tables: dict[tuple[str, str, str, str], dict[str, Any]] = {}  # (sub, group, account, table)
        self.traces: dict[str, list[dict[str, Any]]] = {}  # Application Insights app id -> its traces rows
        self._faults: list[tuple[int, str | None, Any, str]] = []  # (status, retry_after, predicate, message)
        self._kill_after: int | None = None
        self._fail_deployment = False
        self.served = 0  # mutating requests answered successfully (for kill_after)
        self.delay = 0.0  # seconds every answer waits, outside the lock (a cloud's latency, for bench/deploy.py)
        self.server = ThreadingHTTPServer((HOST, 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------ control
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    @property
    def scm_url(self) -> str:
        return self.url + "/scm/{app}"

    def __enter__(self) -> FakeAzure:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.groups.clear()
            for store in (self.plans, self.sites, self.settings, self.web, self.keys, self.deployments,
                          self.packages, self.operations, self.tables, self.traces):
                store.clear()
            self.accounts.clear()
            self._faults.clear()
            self._kill_after = None
            self._fail_deployment = False
            self.served = 0

    def add_resource_group(self, subscription: str, name: str) -> None:
        with self.lock:
            self.groups.add((subscription.lower(), name.lower()))

    def add_insights_app(self, app_id: str) -> None:
        """An Application Insights resource (its ApplicationId), with no traces yet."""
        with self.lock:
            self.traces.setdefault(app_id, [])

    def add_trace(self, app_id: str, role: str, timestamp: str, message: str) -> None:
        """A row of the app's traces table: what a function app (cloud_RoleName `role`) logged at `timestamp`."""
        with self.lock:
            self.traces[app_id].append({"timestamp": timestamp, "itemId": str(uuid.uuid4()), "message": message,
                                        "cloud_RoleName": role})

    def add_storage_account(self, subscription: str, group: str, account: str) -> None:
        with self.lock:
            self.accounts.add((subscription.lower(), group.lower(), account.lower()))

    def put_table(self, subscription: str, group: str, account: str, table: str) -> None:
        """Create a table directly (one this framework did not make), without recording a request."""
        with self.lock:
            self.tables[(subscription.lower(), group.lower(), account.lower(), table.lower())] = {"name": table}

    def table_names(self) -> list[str]:
        with self.lock:
            return sorted(f"{key[2]}/{value['name']}" for key, value in self.tables.items())

    def fail(self, status: int, count: int = 1, retry_after: str | None = None, match=None,
             message: str = "injected failure") -> None:
        """The next `count` requests (matching `match(method, path)` if given) answer `status`."""
        with self.lock:
            self._faults += [(status, retry_after, match, message)] * count

    def kill_after(self, n: int | None) -> None:
        """Refuse every mutating request after the n-th (as if the deploying process had died)."""
        with self.lock:
            self._kill_after = n
            self.served = 0

    def fail_next_deployment(self) -> None:
        with self.lock:
            self._fail_deployment = True

    @property
    def mutating(self) -> list[str]:
        return [f"{r.method} {_short(r.path)}" for r in self.requests if r.mutating]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def put_site(self, subscription: str, group: str, name: str, body: dict[str, Any]) -> None:
        """Create a site directly (a foreign resource for tests), without recording a request."""
        with self.lock:
            self._put_site((subscription.lower(), group.lower(), name.lower()), name, body,
                           f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Web/sites/{name}")

    def put_plan(self, subscription: str, group: str, name: str, body: dict[str, Any]) -> None:
        with self.lock:
            key = (subscription.lower(), group.lower(), name.lower())
            self._store_plan(key, name, body,
                             f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Web/"
                             f"serverfarms/{name}")

    # ------------------------------------------------------------ HTTP plumbing
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without this, Nagle + delayed ACK add ~40 ms each
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                record = Recorded(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                time.sleep(fake.delay)
                try:
                    status, payload, headers = fake._dispatch(record)
                except Error as error:
                    status, headers = error.status, error.headers
                    payload = {"error": {"code": error.code, "message": error.message}}
                data = b"" if payload is None else (payload if isinstance(payload, bytes) else
                                                    json.dumps(payload).encode())
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

        return Handler

    def _dispatch(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append(request)
            for index, (status, retry_after, match, message) in enumerate(self._faults):
                if match is None or match(request.method, request.path):
                    del self._faults[index]
                    headers = {"Retry-After": retry_after} if retry_after is not None else {}
                    code = {429: "TooManyRequests", 400: "BadRequest"}.get(status, "ServiceUnavailable")
                    raise Error(status, code, message, headers)
            if request.mutating and self._kill_after is not None and self.served >= self._kill_after:
                self.requests.pop()
                raise Error(400, "Interrupted", "injected interruption: the deploying process died here")
            if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
                raise Error(401, "AuthenticationFailed", "missing or invalid bearer token")
            if request.path.startswith("/v1/apps/"):
                return self._query(request)
            answer = self._kudu(request) if request.path.startswith("/scm/") else self._arm(request)
            if request.mutating:
                self.served += 1
            return answer

    # ------------------------------------------------------------ Application Insights query API
    QUERY = re.compile(r"traces\s*\| where timestamp >= datetime\(([^)]+)\)\s*\| where cloud_RoleName =~ '([^']*)'"
                       r"(?:\s*\| where message contains '([^']*)')?\s*\| order by timestamp asc"
                       r"\s*\| project timestamp, itemId, message\s*")

    def _query(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        segments = request.path.strip("/").split("/")
        if request.method != "POST" or len(segments) != 4 or segments[3] != "query":
            raise Error(404, "PathNotFoundError", f"no route {request.method} {request.path}")
        if segments[2] not in self.traces:
            raise Error(404, "PathNotFoundError", f"The requested path does not exist: application {segments[2]}")
        match = self.QUERY.fullmatch(json.loads(request.body or b"{}").get("query") or "")
        if match is None:
            raise Error(400, "BadArgumentError", "this fake knows only the framework's traces query")
        since, role, text = match.groups()
        rows = sorted((t for t in self.traces[segments[2]]
                       if t["timestamp"] >= since and t["cloud_RoleName"].lower() == role.lower()
                       and (text is None or text.lower() in t["message"].lower())), key=lambda t: t["timestamp"])
        columns = [{"name": "timestamp", "type": "datetime"}, {"name": "itemId", "type": "string"},
                   {"name": "message", "type": "string"}]
        return 200, {"tables": [{"name": "PrimaryResult", "columns": columns,
                                 "rows": [[t["timestamp"], t["itemId"], t["message"]] for t in rows]}]}, {}

    # ------------------------------------------------------------ ARM
    def _arm(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        if "api-version" not in request.query:
            raise Error(400, "MissingApiVersionParameter", "The api-version query parameter is required")
        segments = request.path.strip("/").split("/")
        lower = [s.lower() for s in segments]
        if len(lower) >= 7 and lower[0] == "subscriptions" and lower[2] == "providers" and lower[4] == "locations" \
                and lower[6] == "operationresults":
            return self._operation(segments[7])
        if len(lower) < 8 or lower[0] != "subscriptions" or lower[2] != "resourcegroups" \
                or lower[4:6] not in (["providers", "microsoft.web"], ["providers", "microsoft.storage"]):
            raise Error(404, "NotFound", f"no route for {request.path}")
        sub, group = segments[1], segments[3]
        if (sub.lower(), group.lower()) not in self.groups:
            raise Error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
        if lower[5] == "microsoft.storage":
            return self._table(request, lower, segments)
        kind, name, rest = lower[6], segments[7], lower[8:]
        key = (sub.lower(), group.lower(), name.lower())
        base = "/" + "/".join(segments[:8])
        body = json.loads(request.body) if request.body else {}
        if kind == "serverfarms" and not rest:
            return self._serverfarm(request.method, key, name, base, body)
        if kind == "sites":
            return self._site(request, key, name, base, rest, body)
        raise Error(404, "NotFound", f"no route for {request.path}")

    def _table(self, request: Recorded, lower: list[str], segments: list[str]) -> tuple[int, Any, dict[str, str]]:
        if len(lower) != 12 or lower[6] != "storageaccounts" or lower[8:11] != ["tableservices", "default", "tables"]:
            raise Error(404, "NotFound", f"no route for {request.path}")
        account, name = segments[7], segments[11]
        if (lower[1], lower[3], lower[7]) not in self.accounts:
            raise Error(404, "ParentResourceNotFound", f"Storage account {account} not found.")
        key = (lower[1], lower[3], lower[7], lower[11])
        view = {"id": request.path, "name": name, "type": "Microsoft.Storage/storageAccounts/tableServices/tables",
                "properties": {"tableName": name}}
        if request.method == "GET":
            if key not in self.tables:
                raise Error(404, "TableNotFound", f"The table {name} was not found.")
            return 200, view, {}
        if request.method == "PUT":
            self.tables.setdefault(key, {"name": name})
            return 200, view, {}
        if request.method == "DELETE":
            return (200, None, {}) if self.tables.pop(key, None) is not None else (204, None, {})
        raise Error(405, "MethodNotAllowed", f"{request.method} on a table")

    def _operation(self, op_id: str) -> tuple[int, Any, dict[str, str]]:
        if op_id not in self.operations:
            raise Error(404, "NotFound", "operation not found")
        if self.operations[op_id] > 0:
            self.operations[op_id] -= 1
            return 202, None, {"Retry-After": "0"}
        return 200, {"status": "Succeeded"}, {}

    def _store_plan(self, key, name, body, rid) -> dict[str, Any]:
        plan = {"id": rid, "name": name, "type": "Microsoft.Web/serverfarms", "location": body.get("location"),
                "kind": body.get("kind"), "sku": copy.deepcopy(body.get("sku") or {}),
                "tags": copy.deepcopy(body.get("tags") or {}),
                "properties": {**copy.deepcopy(body.get("properties") or {}), "provisioningState": "Succeeded",
                               "status": "Ready"}}
        self.plans[key] = plan
        return plan

    def _plan_view(self, key) -> dict[str, Any]:
        plan = copy.deepcopy(self.plans[key])
        plan["properties"]["numberOfSites"] = sum(
            1 for site in self.sites.values() if site["properties"]["serverFarmId"].lower() == plan["id"].lower())
        return plan

    def _serverfarm(self, method, key, name, base, body) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            if key not in self.plans:
                raise Error(404, "ResourceNotFound", f"App Service plan {name} not found.")
            return 200, self._plan_view(key), {}
        if method == "PUT":
            if not body.get("location") or not body.get("sku"):
                raise Error(400, "BadRequest", "location and sku are required")
            existed = key in self.plans
            if existed and self.plans[key]["sku"].get("tier") != body["sku"].get("tier"):
                raise Error(409, "Conflict", "cannot change the tier of this plan")
            self._store_plan(key, name, body, base)
            if existed:
                return 200, self._plan_view(key), {}
            op_id = uuid.uuid4().hex
            self.operations[op_id] = 1
            sub = key[0]
            location = f"{self.url}/subscriptions/{sub}/providers/Microsoft.Web/locations/{body['location']}/" \
                       f"operationResults/{op_id}?api-version=2025-05-01"
            return 202, None, {"Location": location, "Retry-After": "0"}
        if method == "DELETE":
            if key not in self.plans:
                raise Error(404, "ResourceNotFound", f"App Service plan {name} not found.")
            if self._plan_view(key)["properties"]["numberOfSites"]:
                raise Error(409, "Conflict", "Server farm cannot be deleted because it has web app(s) in it.")
            del self.plans[key]
            return 200, None, {}
        raise Error(405, "MethodNotAllowed", method)

    def _put_site(self, key, name, body, rid) -> dict[str, Any]:
        properties = copy.deepcopy(body.get("properties") or {})
        farm = (properties.get("serverFarmId") or "")
        farm_key = tuple(farm.lower().split("/")[i] for i in (2, 4, 8)) if farm.count("/") >= 8 else None
        plan = self.plans.get(farm_key) if farm_key else None
        if plan is None:
            raise Error(404, "NotFound", f"The server farm {farm.rsplit('/', 1)[-1]} was not found.")
        flex = plan["sku"].get("tier") == "FlexConsumption"
        settings = {item["name"]: item["value"] for item in
                    (properties.get("siteConfig") or {}).pop("appSettings", None) or []}
        if flex:
            others = [s for k, s in self.sites.items() if k != key and s["properties"]["serverFarmId"].lower()
                      == farm.lower()]
            if others:
                raise Error(400, "BadRequest", "A Flex Consumption plan can host only one app.")
            self._check_flex(properties.get("functionAppConfig"), settings)
        site = {"id": rid, "name": name, "type": "Microsoft.Web/sites", "kind": body.get("kind"),
                "location": body.get("location"), "tags": copy.deepcopy(body.get("tags") or {}),
                "identity": {**(body.get("identity") or {}), "principalId": str(uuid.uuid4())},
                "properties": {**properties, "state": "Running", "defaultHostName": f"{name}.azurewebsites.net",
                               "hostNameSslStates": [
                                   {"name": f"{name}.azurewebsites.net", "hostType": "Standard"},
                                   {"name": f"{name}.scm.azurewebsites.net", "hostType": "Repository"}],
                               "sku": plan["sku"].get("tier")}}
        web = site["properties"].pop("siteConfig", None) or {}
        self.sites[key] = site
        self.web[key] = _merge(self.web.get(key, {}), web)
        self.settings[key] = settings if settings or key not in self.settings else self.settings[key]
        return site

    @staticmethod
    def _check_flex(config: dict[str, Any] | None, settings: dict[str, str]) -> None:
        if not config:
            raise Error(400, "BadRequest", "functionAppConfig is required for Flex Consumption apps")
        storage = (config.get("deployment") or {}).get("storage") or {}
        if storage.get("type") != "blobContainer" or not str(storage.get("value", "")).startswith("https://"):
            raise Error(400, "BadRequest", "functionAppConfig.deployment.storage must be a blob container URL")
        runtime = config.get("runtime") or {}
        if runtime.get("name") != "python" or runtime.get("version") not in ("3.10", "3.11", "3.12", "3.13"):
            raise Error(400, "BadRequest", f"unsupported runtime {runtime}")
        scale = config.get("scaleAndConcurrency") or {}
        if scale.get("instanceMemoryMB") not in (512, 2048, 4096):
            raise Error(400, "BadRequest", "instanceMemoryMB must be 512, 2048 or 4096")
        if not 1 <= int(scale.get("maximumInstanceCount") or 100) <= 1000:
            raise Error(400, "BadRequest", "maximumInstanceCount must be between 1 and 1000")
        rejected = sorted(set(settings) & FLEX_REJECTED_SETTINGS)
        if rejected:
            raise Error(400, "BadRequest", f"Flex Consumption apps do not support the app settings {rejected}")

    def _flex(self, key) -> bool:
        site = self.sites[key]
        return site["properties"].get("sku") == "FlexConsumption"

    def _site_view(self, key) -> dict[str, Any]:
        site = copy.deepcopy(self.sites[key])
        site["properties"]["siteConfig"] = {"appSettings": None, "linuxFxVersion": None,
                                            "minimumElasticInstanceCount": 0, "functionAppScaleLimit": None}
        return site

    def _site(self, request, key, name, base, rest, body) -> tuple[int, Any, dict[str, str]]:
        method = request.method
        if not rest:
            if method == "PUT":
                if key in self.sites:
                    body = _merge(self._site_view(key), body)
                self._put_site(key, name, body, base)
                return 200, self._site_view(key), {}
            if key not in self.sites:
                raise Error(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{name}' was not found.")
            if method == "GET":
                return 200, self._site_view(key), {}
            if method == "PATCH":
                site = self.sites[key]
                patch = copy.deepcopy(body)
                web = (patch.get("properties") or {}).pop("siteConfig", None)
                merged = _merge(site, {k: v for k, v in patch.items() if k in ("tags", "properties")})
                if self._flex(key):
                    self._check_flex(merged["properties"].get("functionAppConfig"), {})
                self.sites[key] = merged
                if web:
                    self.web[key] = _merge(self.web.get(key, {}), web)
                return 200, self._site_view(key), {}
            if method == "DELETE":
                site = self.sites.pop(key)
                for store in (self.settings, self.web, self.keys):
                    store.pop(key, None)
                self.deployments.pop(name.lower(), None)
                self.packages.pop(name.lower(), None)
                if request.query.get("deleteEmptyServerFarm", ["true"])[0].lower() != "false":
                    farm = site["properties"]["serverFarmId"].lower()
                    for plan_key, plan in list(self.plans.items()):
                        if plan["id"].lower() == farm and not self._plan_view(plan_key)["properties"]["numberOfSites"]:
                            del self.plans[plan_key]
                return 200, None, {}
            raise Error(405, "MethodNotAllowed", method)
        if key not in self.sites:
            raise Error(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{name}' was not found.")
        path = "/".join(rest)
        if path == "config/appsettings/list" and method == "POST":
            return 200, self._settings_view(key, base), {}
        if path == "config/appsettings" and method == "PUT":
            values = {str(k): str(v) for k, v in (body.get("properties") or {}).items()}
            if self._flex(key):
                self._check_flex(self.sites[key]["properties"].get("functionAppConfig"), values)
            self.settings[key] = values
            return 200, self._settings_view(key, base), {}
        if path == "config/web":
            if method == "PATCH" or method == "PUT":
                self.web[key] = _merge(self.web.get(key, {}), (body.get("properties") or {}))
            elif method != "GET":
                raise Error(405, "MethodNotAllowed", method)
            return 200, {"id": f"{base}/config/web", "name": "web", "type": "Microsoft.Web/sites/config",
                         "properties": copy.deepcopy(self.web.get(key, {}))}, {}
        if path == f"functions/{rest[1] if len(rest) > 1 else ''}/listkeys" and method == "POST":
            if rest[1] != "agent" or key not in self.keys:
                raise Error(404, "NotFound", f"function {rest[1]} not found")
            return 200, {"default": self.keys[key]}, {}
        if path == "host/default/listkeys" and method == "POST":
            return 200, {"masterKey": "master-" + key[2], "functionKeys": {"default": self.keys.get(key, "")},
                         "systemKeys": {}}, {}
        if path == "syncfunctiontriggers" and method == "POST":
            return 204, None, {}
        if path in ("stop", "start") and method == "POST":
            # Web Apps - Stop / Start: 200, no body; the site's properties.state becomes Stopped / Running
            # (https://learn.microsoft.com/en-us/rest/api/appservice/web-apps/stop)
            self.sites[key]["properties"]["state"] = "Stopped" if path == "stop" else "Running"
            return 200, None, {}
        raise Error(404, "NotFound", f"no route for {request.path}")

    def _settings_view(self, key, base) -> dict[str, Any]:
        return {"id": f"{base}/config/appsettings", "name": "appsettings", "type": "Microsoft.Web/sites/config",
                "properties": dict(self.settings.get(key, {}))}

    # ------------------------------------------------------------ Kudu
    def _site_by_app(self, app: str):
        for key in self.sites:
            if key[2] == app.lower():
                return key
        raise Error(404, "NotFound", f"no site {app}")

    def _kudu(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        _, _, app, *rest = request.path.split("/")
        path = "/" + "/".join(rest)
        key = self._site_by_app(app)
        scm = self.scm_url.format(app=app)
        running = [d for d in self.deployments.get(app.lower(), []) if not d["complete"]]
        if request.method == "POST" and path in ("/api/publish", "/api/zipdeploy"):
            flex = self._flex(key)
            if (path == "/api/publish") != flex:
                # Flex has no zipdeploy; publish (OneDeploy) is exercised here only on Flex
                raise Error(404, "NotFound", "This API isn't available in this environment yet!")
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            allowed = ("application/zip",) if flex else ("application/zip", "application/octet-stream")
            if content_type not in allowed:
                raise Error(415, "UnsupportedMediaType", f"unsupported content type {content_type!r}")
            try:
                zipfile.ZipFile(io.BytesIO(request.body)).testzip()
            except zipfile.BadZipFile:
                raise Error(400, "BadRequest", "the body is not a zip file")
            if running:
                raise Error(409, "Conflict", "There is a deployment currently in progress.")
            deployment = {"id": uuid.uuid4().hex, "status": 0, "status_text": "Pending", "complete": False,
                          "active": False, "deployer": "OneDeploy" if flex else "Push-Deployer",
                          "remote_build": request.query.get("RemoteBuild", ["false"])[0].lower() == "true",
                          "fail": self._fail_deployment, "_zip": request.body}
            self._fail_deployment = False
            self.deployments.setdefault(app.lower(), []).append(deployment)
            if flex:
                return 202, json.dumps(deployment["id"]).encode(), {"Location": f"{scm}/api/deployments/"
                                                                                f"{deployment['id']}"}
            return 202, None, {"Location": f"{scm}/api/deployments/latest?deployer=Push-Deployer"}
        if request.method == "GET" and path.startswith("/api/deployments/"):
            ident = path.rsplit("/", 1)[-1]
            deployments = self.deployments.get(app.lower(), [])
            found = deployments[-1:] if ident == "latest" else [d for d in deployments if d["id"] == ident]
            if not found:
                raise Error(404, "NotFound", "deployment not found")
            deployment = found[0]
            self._advance(key, app, deployment)
            view = {k: v for k, v in deployment.items() if not k.startswith("_") and k != "fail"}
            status = 202 if ident == "latest" and not deployment["complete"] else 200
            return status, view, {}
        raise Error(404, "NotFound", f"no Kudu route for {request.method} {path}")

    def _advance(self, key, app: str, deployment: dict[str, Any]) -> None:
        if deployment["complete"]:
            return
        if deployment["status"] == 0:
            deployment.update(status=1, status_text="Building")
            return
        if deployment["fail"]:
            deployment.update(status=3, status_text="Failed", complete=True)
            return
        deployment.update(status=4, status_text="Success", complete=True, active=True)
        self.packages[app.lower()] = deployment["_zip"]
        self.keys.setdefault(key, secrets.token_urlsafe(24))

    def deployed_file(self, app: str, name: str) -> bytes:
        with zipfile.ZipFile(io.BytesIO(self.packages[app.lower()])) as archive:
            return archive.read(name)


def _short(path: str) -> str:
    """A request path without the subscription/group prefix: 'sites/bot/config/appsettings'."""
    lower = path.lower()
    if "/providers/microsoft.storage/" in lower:
        return path[lower.index("/providers/microsoft.storage/") + len("/providers/microsoft.storage/"):]
    if "/providers/microsoft.web/" in lower:
        return path[lower.index("/providers/microsoft.web/") + len("/providers/microsoft.web/"):]
    if path.startswith("/scm/"):
        return "kudu " + "/" + "/".join(path.split("/")[3:])
    return path
