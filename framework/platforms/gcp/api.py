"""Google Cloud Functions (2nd gen) deploy, the I/O part (the only module importing google-cloud):
read the deployed state into a Snapshot, and the handlers that apply a Plan's operations, each
waiting on its long-running operation.

Clients: functions_v2.FunctionServiceClient and run_v2.ServicesClient over REST. Endpoints can be
overridden with GCP_FUNCTIONS_ENDPOINT / GCP_RUN_ENDPOINT (e.g. http://127.0.0.1:PORT, a local fake).
The sessions' TTL policy goes to Firestore's admin REST API (plain HTTPS with the same credentials;
endpoint GCP_FIRESTORE_ENDPOINT, default https://firestore.googleapis.com, no token over plain http).
concurrency.warm_schedule's Cloud Scheduler job goes to its REST API the same way (framework/platforms/gcp/warm.py,
endpoint GCP_SCHEDULER_ENDPOINT, default https://cloudscheduler.googleapis.com).
Credentials: GOOGLE_OAUTH_ACCESS_TOKEN (a plain token) if set, anonymous against a plain-http
endpoint override, else Application Default Credentials (gcloud auth application-default login,
a CI workload identity, the metadata server).
Retries: the generated clients retry nothing by default (every method is wrapped with no default
retry), so each call goes through Api.call, under framework/deploy/http.py's policy: 429/500/502/503/504
and connection errors retried, 6 tries, backoff from 0.5 s capped at 30 s, Retry-After honoured.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

import google.auth
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import functions_v2, run_v2
from google.protobuf import field_mask_pb2

from framework.deploy import http
from framework.deploy.executor import Context, Executor, Progress, Registry
from framework.deploy.loglines import LogReader
from framework.deploy.network import UnresolvedHost
from framework.deploy.package import DOCS, build_zip, content_hash
from framework.deploy.plan import Plan
from framework.deploy.secrets import digest
from framework.deploy.skeleton import DeployerBase, DeployOptions, DeployPlan, session_store
from framework.deploy.versions import History, Version, read_note
from framework.errors import DeployError, PackageError
from framework.model import Agent, TargetSettings
from framework.platforms.gcp import planner as gcp
from framework.render import File

title = "Google Cloud Functions"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
ATTEMPTS = 6
RETRY = http.Policy("gcp", attempts=ATTEMPTS, first=0.5, cap=30.0)
# The source zip goes through functions:generateUploadUrl + PUT. The v2 method's reference
# (cloud.google.com/workflows/docs/reference/googleapis/cloudfunctions/v2/projects.locations.functions/
# generateUploadUrl) asks for "content-type: application/zip" and says "Authorization: Bearer ... SHOULD
# NOT be specified"; the 100 MB "max deployment size" of cloud.google.com/functions/quotas is 1st gen only
# ("N/A" for 2nd gen), so no size limit is checked here (the zip holds only the app: Cloud Build installs
# requirements.txt).
OPERATION_POLLS = 720  # with delays growing to 5 s: about an hour, the longest a build may take
STATE_WAIT_POLLS = 360
FIRESTORE = "https://firestore.googleapis.com"


class RetriesExhausted(DeployError):
    pass


def _failure(error: Exception) -> http.Failure | None:
    """A failed try as the retry policy reads it: the status of an API or HTTP error (a connection error
    has none); anything else is no HTTP failure."""
    if not isinstance(error, (gexc.GoogleAPICallError, requests.HTTPError, requests.ConnectionError)):
        return None
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    code = getattr(error, "code", None)
    status = code if isinstance(code, int) else getattr(response, "status_code", None)
    if status is None and not isinstance(error, requests.ConnectionError):
        status = 0  # an API error without a status: not transient
    return http.Failure(status, headers.get("Retry-After"))


def credentials(environ: Mapping[str, str]):
    token = environ.get("GOOGLE_OAUTH_ACCESS_TOKEN")
    if token:
        from google.oauth2.credentials import Credentials

        return Credentials(token)
    endpoint = environ.get("GCP_FUNCTIONS_ENDPOINT", "")
    if endpoint.startswith("http://"):  # a local emulator: never send real credentials over plain http
        return AnonymousCredentials()
    found, _ = google.auth.default(scopes=SCOPES)
    return found


class Api:
    """The two clients, plain HTTP for signed URLs, and retrying calls (sleep is injectable)."""

    def __init__(self, environ: Mapping[str, str], sleep: Callable[[float], None] = time.sleep,
                 stderr: TextIO | None = None):
        self.environ = environ
        self.sleep = sleep
        self.stderr = stderr
        self._functions = None
        self._run = None
        self._revisions = None
        self._credentials = None
        self.http = requests.Session()

    @property
    def credentials(self):
        """The deploying identity's credentials (credentials()), found once."""
        if self._credentials is None:
            self._credentials = credentials(self.environ)
        return self._credentials

    def _creds(self):  # gcp/warm.py's name for `credentials` (another change's file): session_for replaces it
        return self.credentials

    def session_for(self, base: str) -> requests.Session:
        """The HTTP session for a REST API at `base` that the client libraries do not cover (Logging,
        Firestore's admin API, Cloud Scheduler): authorized with the credentials, except a local fake
        over plain http, which never gets a token."""
        if base.startswith("http://"):
            return self.http
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self.credentials)

    @property
    def functions(self) -> functions_v2.FunctionServiceClient:
        if self._functions is None:
            endpoint = self.environ.get("GCP_FUNCTIONS_ENDPOINT")
            self._functions = functions_v2.FunctionServiceClient(
                transport="rest", credentials=self.credentials,
                client_options={"api_endpoint": endpoint} if endpoint else None)
        return self._functions

    @property
    def run(self) -> run_v2.ServicesClient:
        if self._run is None:
            self._run = run_v2.ServicesClient(transport="rest", credentials=self.credentials,
                                              client_options=self._run_endpoint())
        return self._run

    @property
    def revisions(self) -> run_v2.RevisionsClient:
        """Cloud Run's revisions (history), at the same endpoint as the services."""
        if self._revisions is None:
            self._revisions = run_v2.RevisionsClient(transport="rest", credentials=self.credentials,
                                                     client_options=self._run_endpoint())
        return self._revisions

    def _run_endpoint(self) -> dict[str, str] | None:
        endpoint = self.environ.get("GCP_RUN_ENDPOINT")
        return {"api_endpoint": endpoint} if endpoint else None

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """function(*args, **kwargs), retried on 429/5xx and connection errors (Retry-After honoured)."""
        def exhausted(error: Exception, failure: http.Failure) -> RetriesExhausted:
            return RetriesExhausted(
                f"Google Cloud kept failing {what} ({failure.reason}) after {ATTEMPTS} tries: "
                f"{getattr(error, 'message', None) or error}; wait a little and run the same command again "
                "(what was done stays done)")
        return http.send(RETRY, lambda _: function(*args, **kwargs), what=what, failure=_failure,
                         unresolved_host=self._unresolved, exhausted=exhausted, sleep=self.sleep,
                         stderr=self.stderr)

    def _unresolved(self, error: Exception) -> UnresolvedHost:
        """The failed lookup, naming the variable that points that endpoint elsewhere (none for the
        signed storage URLs: Google chooses them)."""
        url = getattr(getattr(error, "request", None), "url", None) or ""
        host = urllib.parse.urlsplit(url).hostname or "the Google Cloud API"
        for variable, default in (("GCP_FUNCTIONS_ENDPOINT", "cloudfunctions.googleapis.com"),
                                  ("GCP_RUN_ENDPOINT", "run.googleapis.com"),
                                  ("GCP_FIRESTORE_ENDPOINT", "firestore.googleapis.com")):
            if host in (self.environ.get(variable) or default):
                return UnresolvedHost(url or host, variable)
        return UnresolvedHost(url or host, None)

    def firestore(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                  params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """One call of Firestore's admin API (v1), retried like the others; a GET answered 404 is None."""
        base = (self.environ.get("GCP_FIRESTORE_ENDPOINT") or FIRESTORE).rstrip("/")
        session = self.session_for(base)

        def send() -> dict[str, Any] | None:
            answer = session.request(method, f"{base}/v1/{path}", json=body, params=params, timeout=60)
            if answer.status_code == 404 and method == "GET":
                return None
            answer.raise_for_status()
            return answer.json()
        try:
            return self.call(f"Firestore {method} {path}", send)
        except requests.HTTPError as error:
            hint = " (the deploying identity needs roles/datastore.indexAdmin or owner)" \
                if error.response is not None and error.response.status_code == 403 else ""
            raise DeployError(f"Firestore refused {method} {path}: {_http_message(error)}{hint}") from None

    def put(self, url: str, data: bytes, content_type: str) -> None:
        def put() -> None:
            # a signed URL carries its own authorisation: no Authorization header
            self.http.put(url, data=data, headers={"content-type": content_type}, timeout=300).raise_for_status()
        self.call("the source upload (PUT to the signed URL)", put)

    def get_bytes(self, url: str) -> bytes:
        def get() -> bytes:
            response = self.http.get(url, timeout=60)
            response.raise_for_status()
            return response.content
        return self.call("the source download", get)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """google-cloud / HTTP errors -> DeployError with a clear one-line message."""
    try:
        yield
    except RetriesExhausted as error:
        raise DeployError(str(error).splitlines()[0]) from None
    except gexc.GoogleAPICallError as error:
        status = getattr(error, "code", "")
        message = " ".join(str(error.message or error).split())
        hint = ""
        if status == 403:
            hint = (" (the deploying identity needs roles/cloudfunctions.developer, roles/iam.serviceAccountUser "
                    "and roles/run.admin for public access; and the Cloud Functions, Cloud Build, Artifact Registry "
                    "and Cloud Run APIs must be enabled)")
        elif status == 401:
            hint = " (the credentials were refused: refresh them, e.g. gcloud auth application-default login)"
        raise DeployError(f"Google Cloud refused the request: {status} {message}{hint}") from None
    except auth_exceptions.DefaultCredentialsError:
        raise DeployError("no Google Cloud credentials found: run `gcloud auth application-default login`, or in CI "
                          "use google-github-actions/auth (workload identity federation), or set "
                          "GOOGLE_OAUTH_ACCESS_TOKEN") from None
    except auth_exceptions.GoogleAuthError as error:
        raise DeployError(f"Google Cloud credentials could not be used: {error}") from None
    except requests.HTTPError as error:
        # never the URL: a signed URL is a credential for as long as it is valid
        raise DeployError(f"Google Cloud Storage refused the source transfer: {_http_message(error)}") from None
    except requests.RequestException as error:
        raise DeployError(f"could not talk to Google Cloud: {type(error).__name__}") from None


def _http_message(error: requests.HTTPError) -> str:
    response = error.response
    if response is None:
        return "no answer"
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    return f"{response.status_code} {' '.join(str(message).split())}"


# ---------------------------------------------------------------- reading the deployed state


def _function_state(function: functions_v2.Function) -> gcp.FunctionState:
    build, service = function.build_config, function.service_config
    storage = build.source.storage_source
    return gcp.FunctionState(
        name=function.name, state=functions_v2.Function.State(function.state).name, labels=dict(function.labels),
        runtime=build.runtime, entry_point=build.entry_point,
        source={"bucket": storage.bucket, "object": storage.object_} if storage.bucket else {},
        timeout=service.timeout_seconds, memory=service.available_memory, cpu=service.available_cpu,
        min_instances=service.min_instance_count, max_instances=service.max_instance_count,
        request_concurrency=service.max_instance_request_concurrency, ingress=int(service.ingress_settings),
        all_traffic=service.all_traffic_on_latest_revision,
        environment={name: digest(value) for name, value in sorted(service.environment_variables.items())},
        secrets=tuple(sorted((s.key, s.project_id, s.secret, s.version or "latest")
                             for s in service.secret_environment_variables)),
        url=function.url or service.uri or None, run_uri=service.uri or None, service=service.service or None,
        revision=service.revision or None, update_time=str(function.update_time) if function.update_time else None)


def _get_function(api: Api, name: str) -> functions_v2.Function | None:
    try:
        return api.call("reading the function", api.functions.get_function, name=name)
    except gexc.NotFound:
        return None


def read_function(api: Api, name: str, *, wait: bool = True) -> functions_v2.Function | None:
    """The function, after any operation in progress on it (an interrupted deploy) has finished."""
    function = _get_function(api, name)
    for poll in range(STATE_WAIT_POLLS if wait else 0):
        if function is None or function.state not in (functions_v2.Function.State.DEPLOYING,
                                                      functions_v2.Function.State.DELETING):
            break
        api.sleep(min(5.0, 1.0 + poll))
        function = _get_function(api, name)
    return function


def _is_public(api: Api, service: str) -> bool | None:
    try:
        policy = api.call("reading the invoker policy", api.run.get_iam_policy, request={"resource": service})
    except gexc.NotFound:
        return None
    return any(b.role == gcp.INVOKER and gcp.ALL_USERS in b.members for b in policy.bindings)


def deployed_prompt(api: Api, name: str) -> str | None:
    """The system prompt inside the deployed source (agent.json), for the plan's diff; None if unreadable."""
    try:
        answer = api.call("reading the deployed source", api.functions.generate_download_url,
                          request={"name": name})
        data = api.get_bytes(answer.download_url)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return json.loads(archive.read("agent.json"))["system_prompt"]
    except (gexc.GoogleAPICallError, requests.RequestException, RetriesExhausted, zipfile.BadZipFile, KeyError,
            ValueError):
        return None


def read_ttl(api: Api, field_name: str) -> str | None:
    """The field's ttlConfig.state (CREATING, ACTIVE, NEEDS_REPAIR), None without a TTL policy."""
    found = api.firestore("GET", field_name) or {}
    return (found.get("ttlConfig") or {}).get("state") or None


def read_snapshot(api: Api, name: str, project: str, region: str, *, content: str | None = None,
                  ttl_field: str | None = None) -> gcp.Snapshot:
    """Everything the planner needs, read-only. `content`: the desired content hash (the deployed
    source is downloaded for a prompt diff only when it differs); `ttl_field`: the sessions' field,
    read only when sessions are on."""
    function_name = f"projects/{project}/locations/{region}/functions/{name}"
    found = read_function(api, function_name)
    ttl = read_ttl(api, ttl_field) if ttl_field else None
    if found is None:
        return gcp.Snapshot(project, region, ttl=ttl)
    function = _function_state(found)
    public = _is_public(api, function.service) if function.service else None
    prompt = None
    if (content is not None and function.labels.get(gcp.LABEL_AGENT) == name
            and function.labels.get(gcp.LABEL_CONTENT) != content[:gcp.LABEL_LIMIT] and function.source):
        prompt = deployed_prompt(api, function_name)
    return gcp.Snapshot(project, region, function=function, public=public, deployed_prompt=prompt, ttl=ttl)


# ---------------------------------------------------------------- handlers (the only mutations)

REGISTRY = Registry()


def wait_operation(api: Api, name: str, what: str) -> Any:
    """Poll a long-running operation until done; its error becomes a DeployError."""
    for poll in range(OPERATION_POLLS):
        operation = api.call(f"waiting for {what}", api.functions.get_operation, request={"name": name})
        if operation.done:
            if operation.HasField("error"):
                error = gexc.from_grpc_status(operation.error.code, operation.error.message)
                if isinstance(error, gexc.AlreadyExists):
                    raise DeployError(f"{what}: the function exists already (created by an earlier, interrupted "
                                      "deploy?): run the same command again")
                raise DeployError(f"{what} failed: {' '.join(operation.error.message.split())}")
            return operation.response
        api.sleep(min(5.0, 0.5 * (poll + 1)))
    raise DeployError(f"{what} did not finish in time (operation {name}); run the same command again later")


def _result(response: Any) -> dict[str, Any]:
    function = functions_v2.Function.deserialize(response.value) if response and response.value else None
    if function is None:
        return {}
    return {"url": function.url or function.service_config.uri or None, "service": function.service_config.service,
            "revision": function.service_config.revision or None, "run_uri": function.service_config.uri or None}


def _function(body: Mapping[str, Any]) -> functions_v2.Function:
    return functions_v2.Function.from_json(json.dumps(body), ignore_unknown_fields=False)


@REGISTRY.handler("gcp.upload_source")
def _upload_source(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    api: Api = ctx.api
    answer = api.call("functions:generateUploadUrl", api.functions.generate_upload_url,
                      request={"parent": args["parent"]})
    api.put(answer.upload_url, args["package"], "application/zip")
    storage = answer.storage_source
    return {"storage_source": {"bucket": storage.bucket, "object": storage.object_}}


@REGISTRY.handler("gcp.create_function")
def _create_function(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    api: Api = ctx.api
    try:
        operation = api.call("creating the function", api.functions.create_function, request={
            "parent": args["parent"], "function_id": args["function_id"], "function": _function(args["function"])})
    except gexc.Conflict:
        # an existing function answers 409 at once (e.g. google-github-actions/deploy-cloud-functions#455:
        # "failed to POST .../functions?functionId=...: (409)"); an operation ending in ALREADY_EXISTS is
        # handled in wait_operation
        raise DeployError(f"the function {args['function_id']} was created meanwhile (by another or an earlier "
                          "interrupted deploy): run the same command again") from None
    return _result(wait_operation(api, operation.operation.name, f"creating {args['function_id']}"))


@REGISTRY.handler("gcp.update_function")
def _update_function(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    api: Api = ctx.api
    function = _function(args["function"])
    mask = field_mask_pb2.FieldMask(paths=list(args["update_mask"]))
    operation = api.call("updating the function", api.functions.update_function,
                         request={"function": function, "update_mask": mask})
    return _result(wait_operation(api, operation.operation.name, f"updating {function.name.rsplit('/', 1)[-1]}"))


@REGISTRY.handler("gcp.set_invoker")
def _set_invoker(ctx: Context, args: dict[str, Any]) -> None:
    """Grant or revoke roles/run.invoker for allUsers on the service, keeping every other binding."""
    api: Api = ctx.api
    service, public = args["service"], args["public"]
    for attempt in range(5):
        policy = api.call("reading the invoker policy", api.run.get_iam_policy, request={"resource": service})
        bindings = [b for b in policy.bindings if b.role == gcp.INVOKER]
        present = any(gcp.ALL_USERS in b.members for b in bindings)
        if present == public:
            return None
        if public:
            if bindings:
                bindings[0].members.append(gcp.ALL_USERS)
            else:
                policy.bindings.add(role=gcp.INVOKER, members=[gcp.ALL_USERS])
        else:
            for binding in bindings:
                if gcp.ALL_USERS in binding.members:
                    binding.members.remove(gcp.ALL_USERS)
            kept = [b for b in policy.bindings if b.members]
            del policy.bindings[:]
            policy.bindings.extend(kept)
        try:
            # the etag read above travels with the policy: a concurrent change makes this fail (ABORTED)
            api.call("setting the invoker policy", api.run.set_iam_policy,
                     request={"resource": service, "policy": policy})
            return None
        except (gexc.Aborted, gexc.Conflict, gexc.FailedPrecondition):
            if attempt == 4:
                raise
    return None


@REGISTRY.handler("firestore.ttl")
def _set_ttl(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    body = {"ttlConfig": {}} if args["enable"] else {}
    operation = api.firestore("PATCH", args["name"], body, {"updateMask": "ttlConfig"}) or {}
    what = f"the TTL policy on {args['name'].split('/collectionGroups/')[-1]}"
    for poll in range(OPERATION_POLLS):
        if operation.get("done"):
            if operation.get("error"):
                raise DeployError(f"{what} failed: {operation['error'].get('message')}")
            return None
        api.sleep(min(5.0, 0.5 * (poll + 1)))
        operation = api.firestore("GET", operation["name"]) or {}
    raise DeployError(f"{what} did not finish in time; run the same command again later")


@REGISTRY.handler("gcp.delete_function")
def _delete_function(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    try:
        operation = api.call("deleting the function", api.functions.delete_function, name=args["name"])
    except gexc.NotFound:
        return None
    try:
        wait_operation(api, operation.operation.name, f"deleting {args['name'].rsplit('/', 1)[-1]}")
    except DeployError:
        if _get_function(api, args["name"]) is not None:
            raise
    return None


# ---------------------------------------------------------------- packaging


def source_entries(files: Sequence[File], target: str = "gcp") -> list[tuple[str, bytes, int]]:
    """Every generated file of the target but its docs, at the zip's root: Cloud Build installs requirements.txt."""
    return [(file.path.removeprefix(f"{target}/"), file.content, 0o644) for file in files
            if file.path.startswith(f"{target}/") and file.path.removeprefix(f"{target}/") not in DOCS]


def package_source(files: Sequence[File]) -> tuple[bytes, str]:
    entries = source_entries(files)
    names = {name for name, _, _ in entries}
    if not {"main.py", "requirements.txt"} <= names:
        raise PackageError("the gcp app needs main.py and requirements.txt: run `agenthost build`")
    return build_zip(entries), content_hash(entries)


# ---------------------------------------------------------------- the deployer (used by commands.py)


class Deployer(DeployerBase):
    """One agent on Google Cloud Functions 2nd gen: prepare, read, plan, apply, destroy, info."""

    title = title
    planner = gcp

    def __init__(self, agent: Agent, settings: TargetSettings, files: Sequence[File], options: DeployOptions):
        environ = os.environ if options.environ is None else options.environ
        self.project, self.region = gcp.resolve_location(settings.options, environ)
        self.home = gcp.secret_home(self.project)
        super().__init__(agent, settings, files, options)
        self.api = Api(self.environ, options.sleep, options.stderr)
        self.package: bytes | None = None
        self.sessions = session_store(self.files)
        self.ttl_field = gcp.ttl_field(self.sessions, self.project)

    @property
    def function_name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/functions/{self.agent.name}"

    translate = staticmethod(translate_errors)

    def prepare(self) -> gcp.Desired:
        self.package, content = package_source(self.files)
        self.desired = gcp.desired_state(self.agent, self.settings, project=self.project, region=self.region,
                                         content=content, secrets=self.secrets, sessions=self.sessions)
        return self.desired

    def snapshot(self, *, destroy: bool = False) -> gcp.Snapshot:
        content = None if destroy or self.desired is None else self.desired.content
        snap = read_snapshot(self.api, self.agent.name, self.project, self.region, content=content,
                             ttl_field=self.ttl_field)
        self.read_warm(snap)  # concurrency.warm_schedule (issue 14)
        return snap

    def destroy_plan(self, snap: gcp.Snapshot) -> DeployPlan:
        plan = gcp.plan_destroy(self.agent.name, self.project, self.region, snap, self.ttl_field)
        return DeployPlan(self.with_warm_destroy(plan))

    def apply(self, plan: Plan, progress: Progress | None = None) -> dict[str, Any]:
        def keep(name: str) -> str:
            function = _get_function(self.api, self.function_name)
            if function is None or name not in function.service_config.environment_variables:
                raise DeployError(f"{name} is not set in this environment and the deployed function lost it: "
                                  f"export {name}=... and deploy again")
            return function.service_config.environment_variables[name]
        context = Context(api=self.api, secrets=self.secrets.values(), package=self.package, keep=keep,
                          files=self.files)
        return Executor(REGISTRY, context, progress).run(plan)

    def outputs(self, snap: gcp.Snapshot, results: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return gcp.outputs(self.agent.name, self.project, self.region, snap, results)

    def info(self) -> dict[str, Any]:
        snap = read_snapshot(self.api, self.agent.name, self.project, self.region)
        function = snap.function
        if function is None or function.labels.get(gcp.LABEL_AGENT) != self.agent.name:
            return {"target": "gcp", "deployed": False, "project": self.project, "region": self.region,
                    "note": "not deployed" if function is None else "a function with this name exists but is not ours"}
        out = self.outputs(snap)
        details = {
            "function": function.name, "state": function.state, "revision": function.revision,
            "service": function.service, "run uri": function.run_uri,
            "content": str(function.labels.get(gcp.LABEL_CONTENT))[:12],
            "settings": f"{function.runtime}, timeout {function.timeout} s, memory {function.memory}"
                        f"{', cpu ' + function.cpu if function.cpu else ''}, instances {function.min_instances}.."
                        f"{function.max_instances}, {function.request_concurrency} request(s) per instance",
            "access": "public (allUsers may invoke)" if snap.public else "authenticated callers only",
        }
        paused = gcp.LABEL_PAUSED in function.labels  # issue 14
        if paused:
            details["paused"] = "PAUSED (ingress internal-only: requests from the internet are refused)"
        return {**out, "deployed": True, "details": details, "state": function.state, "public": bool(snap.public),
                "paused": paused}

    # ---- pause / resume (issue 14)
    def pause_plan(self, resume: bool = False) -> Plan:
        """UpdateFunction of the ingress and the pause label (planner.plan_pause)."""
        snap = read_snapshot(self.api, self.agent.name, self.project, self.region)
        return gcp.plan_pause(self.agent.name, self.project, self.region, snap, resume)

    # ---- history (issue 14)
    def history(self) -> History:
        """The Cloud Run revisions of the function's service, newest first, and the one serving 100% of
        the traffic: ListRevisions (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions/list)
        and GetService's traffic_statuses (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services)."""
        function = read_function(self.api, self.function_name)
        if function is None or function.labels.get(gcp.LABEL_AGENT) != self.agent.name:
            return History("revision", notes=("not deployed" if function is None else
                                              "a function with this name exists but is not ours",))
        service_name = function.service_config.service
        service = self.api.call("GetService", self.api.run.get_service, request={"name": service_name})
        latest = service.latest_ready_revision.rsplit("/", 1)[-1]
        serving = [t for t in service.traffic_statuses if t.percent == 100]
        live = None
        if serving:
            latest_type = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
            live = latest if serving[0].type_ == latest_type else serving[0].revision.rsplit("/", 1)[-1]
        pager = self.api.call("ListRevisions", self.api.revisions.list_revisions, request={"parent": service_name})
        found = sorted(pager, key=lambda r: r.create_time, reverse=True)
        versions = []
        for r in found:
            revision = r.name.rsplit("/", 1)[-1]
            note = next((e.value for c in r.containers for e in c.env if e.name == gcp.VERSION_ENV), None)
            content, prompt = read_note(note)
            versions.append(Version(id=revision, created=r.create_time.isoformat() if r.create_time else None,
                                    content=content, prompt=prompt, live=revision == live))
        notes: tuple[str, ...] = () if all(v.prompt for v in versions) else (
            f"a revision deployed by an earlier agenthost has no {gcp.VERSION_ENV}: its content hash and prompt "
            "digest are unknown",)
        if live is None:
            notes += ("the traffic is split between revisions: none serves 100%",)
        return History("revision", tuple(versions), notes)

    def rollback(self, history: History, version: Version) -> dict[str, Any]:
        """Route 100% of the traffic to that revision with Cloud Run's UpdateService: the Cloud Functions
        v2 API has only allTrafficOnLatestRevision, no revision to name
        (https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions#serviceconfig;
        https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration). The function then reads
        allTrafficOnLatestRevision false, which plan shows as a change; the next deploy sends it true, and
        "the revision being deployed will serve 100% of traffic"."""
        function = read_function(self.api, self.function_name)
        if function is None:
            raise DeployError(f"{self.function_name} is not deployed: nothing to roll back")
        service_name = function.service_config.service
        revision = run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
            revision=version.id, percent=100)
        service = run_v2.Service(name=service_name, traffic=[revision])
        operation = self.api.call("UpdateService", self.api.run.update_service,
                                  request={"service": service, "update_mask": {"paths": ["traffic"]}})
        name = operation.operation.name
        for poll in range(OPERATION_POLLS):
            answer = self.api.call("waiting for UpdateService", self.api.run.get_operation, request={"name": name})
            if answer.done:
                if answer.HasField("error"):
                    raise DeployError(f"Cloud Run refused the traffic change: {answer.error.message}")
                return {"changed": True}
            self.api.sleep(min(5.0, 0.5 * (poll + 1)))
        raise DeployError(f"the traffic change did not finish in time (operation {name})")

    # ---- logs (issue 14)
    def log_reader(self, request: str | None = None) -> LogReader:
        """The function's Cloud Logging lines (framework/platforms/gcp/logs.py)."""
        from framework.platforms.gcp.logs import reader

        return reader(self.api, self.project, self.agent.name, request)

    # ---- invoke --deployed (issue 14)
    def invoke_headers(self, deployed: Mapping[str, Any], url: str, body: bytes,
                       headers: Mapping[str, str]) -> dict[str, str]:
        """A function that only authenticated callers may invoke takes an ID token (not an OAuth access
        token) whose audience is the function's URL, as `Authorization: Bearer`
        (https://cloud.google.com/functions/docs/securing/authenticating): GOOGLE_ID_TOKEN when set (what
        `gcloud auth print-identity-token` prints), else one minted by google-auth from a service account
        or the metadata server (https://googleapis.dev/python/google-auth/latest/reference/google.oauth2.id_token.html)."""
        if deployed.get("public"):
            return {}
        token = self.environ.get("GOOGLE_ID_TOKEN", "").strip()
        if not token:
            import google.auth.transport.requests
            from google.oauth2 import id_token

            try:
                token = id_token.fetch_id_token(google.auth.transport.requests.Request(), str(deployed["url"]))
            except auth_exceptions.GoogleAuthError:
                raise DeployError(
                    "the function admits authenticated callers only, and no ID token could be made here (an "
                    "access token such as GOOGLE_OAUTH_ACCESS_TOKEN is not accepted: "
                    "https://cloud.google.com/functions/docs/securing/authenticating): set "
                    "GOOGLE_ID_TOKEN=$(gcloud auth print-identity-token), or use a service account "
                    "(GOOGLE_APPLICATION_CREDENTIALS)") from None
        return {"Authorization": f"Bearer {token}"}

    # ---- warm_schedule (issue 14)

    warm_job: Any = None  # the Cloud Scheduler job as snapshot() read it (gcp/warm.py JobState), None: none

    def read_warm(self, snap: gcp.Snapshot) -> None:
        """GET the warm-up job (framework/platforms/gcp/warm.py) when there may be one: warm_schedule is
        set, or the function holds the secret only a warm-up deploy sets. An agent that never had a
        schedule makes no Cloud Scheduler call (its API need not even be enabled)."""
        from framework.platforms.gcp import warm as gcp_warm
        from framework.platforms.gcp.target import WARM_SECRET

        held = snap.function is not None and WARM_SECRET in snap.function.environment
        if self.settings.concurrency.warm_schedule or held:
            self.warm_job = gcp_warm.read_job(self.api, gcp_warm.job_name(self.project, self.region,
                                                                          self.agent.name))

    def plan(self, snap: gcp.Snapshot) -> DeployPlan:
        """The function's plan with AGENT_WARMUP_SECRET (generated once, then kept), then the Cloud
        Scheduler job that sends it (after the function whose URL it calls)."""
        import dataclasses

        from framework.deploy.secrets import SecretValues
        from framework.platforms.gcp import warm as gcp_warm
        from framework.platforms.gcp.target import WARM_SECRET

        assert self.desired is not None, "prepare() comes first"
        minutes = self.settings.concurrency.warm_schedule
        generated = None
        if minutes and WARM_SECRET not in self.agent.secrets:  # a secret of agent.yaml's: the user's to set
            if gcp_warm.secret_wanted(snap.function):
                if WARM_SECRET not in self.secrets:
                    self.secrets = SecretValues({**self.secrets.values(), WARM_SECRET: gcp_warm.new_secret()})
                generated = self.secrets.digest(WARM_SECRET)
            self.desired = dataclasses.replace(
                self.desired, secret_env={**self.desired.secret_env, WARM_SECRET: generated})
        deploy_plan = gcp.plan_deploy(self.desired, snap)
        plan = deploy_plan.plan
        if minutes and WARM_SECRET not in self.agent.secrets:
            kept = self.home.kept_note(WARM_SECRET)
            notes = tuple(n for n in plan.notes if n != kept)
            plan = dataclasses.replace(plan, notes=notes)
        extra = gcp_warm.plan(self.agent.name, self.project, self.region, minutes, self.agent.public,
                              snap.function, self.warm_job, generated)
        return DeployPlan(dataclasses.replace(plan, resources=plan.resources + tuple(extra)),
                          deploy_plan.missing_secrets)

    def with_warm_destroy(self, plan: Plan) -> Plan:
        """Destroy's plan with the warm-up job first (while the function it calls still exists)."""
        import dataclasses

        from framework.platforms.gcp import warm as gcp_warm

        return dataclasses.replace(plan, resources=tuple(gcp_warm.destroy(self.agent.name, self.warm_job)) +
                                   plan.resources, notes=plan.notes + tuple(gcp_warm.notes(self.agent.name,
                                                                                             self.warm_job)))
