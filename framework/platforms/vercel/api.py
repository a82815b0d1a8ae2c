"""Vercel deploy, the I/O part: the REST API over HTTPS with the standard library (no SDK), reading
the deployed state into a Snapshot, and the handlers that apply a Plan's operations.

Calls, and where each fact was checked:
  GET /v9/projects/{name} -> 404 -> POST /v11/projects {name, framework: null, environmentVariables}
  GET /v10/projects/{id}/env; POST /v10/projects/{id}/env?upsert=true {key, value, type: sensitive, target}
      (https://vercel.com/docs/rest-api/projects/create-one-or-more-environment-variables: "upsert=true ...
      the existing variable's value will be updated"; type enum system|encrypted|plain|sensitive in the
      vercel/sdk models; answer {created, failed} in vercel/terraform-provider-vercel client/environment_variable.go)
  POST /v13/deployments -> 400 {"error": {"code": "missing_files", "missing": [sha1...]}} -> POST /v2/files
      (raw bytes, header x-vercel-digest: sha1) -> POST /v13/deployments again -> poll GET /v13/deployments/{id}
      until aliasAssigned with no aliasError; stop on ERROR / CANCELED (terraform-provider-vercel
      client/deployment_create.go MissingFilesError and IsComplete(), client/file_create.go)
  GET /v6/deployments?projectId&target=production&state=READY&limit=1, items carry `uid`, not `id`
      (https://vercel.com/docs/rest-api/deployments/list-deployments is GET /v6/deployments; the notes' /v7 also
      exists in the wild)
  DELETE /v13/deployments/{id}; DELETE /v9/projects/{id} (204)
Every call carries `Authorization: Bearer $VERCEL_TOKEN` and the team (`teamId` or `slug`) when set.
Retries: 429 and 5xx answers and network errors, under framework/deploy/http.py's policy: 6 tries, backoff
from 1 s capped at 60 s, Retry-After honoured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any, TextIO

from framework.deploy import http
from framework.deploy.executor import Context, Executor, Progress, Registry
from framework.deploy.loglines import LogReader
from framework.deploy.network import UnresolvedHost
from framework.deploy.plan import Plan
from framework.deploy.skeleton import DeployerBase, DeployOptions, DeployPlan
from framework.deploy.versions import History, Version
from framework.errors import DeployError
from framework.model import Agent, TargetSettings
from framework.platforms.vercel import planner as vercel
from framework.render import File

title = "Vercel"
RETRY = http.Policy("vercel", attempts=6, first=1.0, cap=60.0, statuses=frozenset({429, *range(500, 600)}))
POLL_INTERVAL = 3.0
POLL_LIMIT = 400  # polls of one deployment (about 20 minutes at 3 s)
USER_AGENT = "agent-framework"


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, code: str, message: str, retried: int = 0,
                 retry_after: str | None = None):
        self.method, self.path, self.status, self.code, self.message, self.retried = (
            method, path, status, code, message, retried)
        self.retry_after = retry_after
        super().__init__(f"{method} {path}: {status} {code}: {message}")


@dataclass
class Response:
    status: int
    data: Any
    headers: Mapping[str, str]


def _failure(error: Exception) -> http.Failure | None:
    """A failed try as the retry policy reads it (status 0 is a network error: no answer at all)."""
    if not isinstance(error, ApiError):
        return None
    return http.Failure(error.status or None, error.retry_after)


class Api:
    """Vercel's REST API: bearer token, team query on every call, retries with backoff."""

    def __init__(self, base: str, token: str | None, team: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, timeout: float = 60.0, stderr: TextIO | None = None):
        self.base = base.rstrip("/")
        self.token = token
        self.team = team
        self.sleep = sleep
        self.timeout = timeout
        self.stderr = stderr

    def call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None,
             data: bytes | None = None, headers: Mapping[str, str] | None = None,
             allow: Sequence[int] = ()) -> Response:
        """One call; answers 2xx (and the `allow`ed statuses) are returned, others raise ApiError."""
        if not self.token:
            raise DeployError("VERCEL_TOKEN is not set: create a token at https://vercel.com/account/tokens and "
                              "export VERCEL_TOKEN=... (in CI, from a repository secret)")
        params = {**{k: v for k, v in (query or {}).items() if v is not None}, **vercel.team_query(self.team)}
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        sent = {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body, sort_keys=True).encode("utf-8")
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})

        def attempt(number: int) -> Response:
            request = urllib.request.Request(url, data=data, method=method, headers=sent)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    return Response(answer.status, _json(answer.read()), dict(answer.headers))
            except urllib.error.HTTPError as error:
                status, payload = error.code, _json(error.read())
                if status in allow:
                    return Response(status, payload, dict(error.headers))
                info = (payload or {}).get("error") if isinstance(payload, dict) else None
                info = info if isinstance(info, dict) else {}
                failure = ApiError(method, path, status, str(info.get("code") or ""),
                                   str(info.get("message") or error.reason or ""), number - 1,
                                   error.headers.get("Retry-After"))
                failure.payload = payload  # type: ignore[attr-defined]
                raise failure from None
            except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as error:
                raise ApiError(method, path, 0, "network", str(getattr(error, "reason", error)), number - 1) from error

        return http.send(RETRY, attempt, what=f"{method} {path}", failure=_failure,
                         unresolved_host=lambda _: UnresolvedHost(self.base, "VERCEL_API_URL"),
                         sleep=self.sleep, stderr=self.stderr)


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"code": "not_json", "message": raw[:200].decode("utf-8", "replace")}}


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """HTTP errors -> DeployError with one clear line."""
    try:
        yield
    except ApiError as error:
        where = f"{error.method} {error.path}"
        if error.status == 0:
            raise DeployError(f"could not reach Vercel ({where}) after {error.retried + 1} tries: {error.message}")
        if error.status in (401, 403):
            raise DeployError(f"Vercel refused {where} ({error.status} {error.code}: {error.message}): check "
                              "VERCEL_TOKEN, and that it may act for targets.vercel.team")
        if error.status == 429 or error.status >= 500:
            raise DeployError(f"Vercel answered {error.status} to {where} {error.retried + 1} times "
                              f"({error.code or 'no code'}: {error.message}); try again later")
        raise DeployError(f"Vercel refused {where}: {error.status} {error.code}: {error.message}")


# ---------------------------------------------------------------- reading the deployed state


def _deployment(item: Mapping[str, Any]) -> vercel.DeploymentState:
    return vercel.DeploymentState(
        uid=item.get("uid") or item.get("id") or "", url=item.get("url"),
        ready_state=item.get("readyState") or item.get("state") or "",
        meta={str(k): str(v) for k, v in (item.get("meta") or {}).items()},
        alias=tuple(item.get("alias") or ()), alias_assigned=bool(item.get("aliasAssigned")),
        created=int(item.get("createdAt") or item.get("created") or 0))


def list_deployments(api: Api, project_id: str, **filters: Any) -> Iterator[dict[str, Any]]:
    """Every deployment of the project matching the filters, newest first (follows pagination)."""
    until = None
    while True:
        page = api.call("GET", "/v6/deployments", query={"projectId": project_id, "limit": 100, "until": until,
                                                         **filters}).data or {}
        yield from page.get("deployments") or []
        until = (page.get("pagination") or {}).get("next")
        if not until:
            return


def read_project(api: Api, name: str) -> vercel.ProjectState | None:
    found = api.call("GET", f"/v9/projects/{urllib.parse.quote(name, safe='')}", allow=(404,))
    if found.status == 404:
        return None
    project = found.data
    envs = api.call("GET", f"/v10/projects/{project['id']}/env").data or {}
    states: dict[str, vercel.EnvState] = {}
    for e in envs.get("envs") or []:
        target = tuple(e.get("target") if isinstance(e.get("target"), list)
                       else [e.get("target")] if e.get("target") else [])
        state = vercel.EnvState(id=e.get("id", ""), type=e.get("type", ""), target=target,
                                value=e.get("value") if e.get("type") == "plain" else None)
        # one key may have several entries (say a preview-only one): the production one is what we manage
        if e["key"] not in states or "production" in target:
            states[e["key"]] = state
    # the project's current production deployment: after a promote (rollback) not the newest one
    # (https://vercel.com/docs/rest-api/projects/find-a-project-by-id-or-name, field targets.production)
    production = ((project.get("targets") or {}).get("production") or {}).get("id")
    return vercel.ProjectState(id=project["id"], name=project.get("name") or name, envs=states,
                               paused=bool(project.get("paused")),  # set by pause, cleared by unpause
                               production=production)


def read_snapshot(api: Api, project_name: str, agent: str, *, destroy: bool = False,
                  prune: bool = False) -> vercel.Snapshot:
    """Everything the planner needs, read-only (GET calls only); with `prune` (keep_deployments, issue
    14) also our production deployments, every state (GET /v6/deployments?projectId&target=production,
    https://vercel.com/docs/rest-api/deployments/list-deployments)."""
    project = read_project(api, project_name)
    if project is None:
        return vercel.Snapshot()
    latest = None
    items = api.call("GET", "/v6/deployments", query={"projectId": project.id, "target": "production",
                                                      "state": "READY", "limit": 1}).data or {}
    if project.production or items.get("deployments"):
        uid = project.production or items["deployments"][0]["uid"]
        # the list item may lack meta and alias details: read the deployment itself
        detail = api.call("GET", f"/v13/deployments/{uid}", allow=(404,))
        if detail.status != 404:
            latest = _deployment(detail.data)
    ours: tuple[vercel.DeploymentState, ...] = ()
    if destroy:
        ours = tuple(d for d in map(_deployment, list_deployments(api, project.id)) if d.ours(agent))
    production: tuple[vercel.DeploymentState, ...] = ()
    if prune:
        production = tuple(d for d in map(_deployment, list_deployments(api, project.id, target="production"))
                           if d.ours(agent))
    return vercel.Snapshot(project=project, latest=latest, ours=ours, production=production)


# ---------------------------------------------------------------- handlers (the only mutations)

REGISTRY = Registry()


@dataclass
class Session:
    """What handlers use: the API, the rendered files by SHA-1, the project the digests are salted with."""

    api: Api
    project: str
    files: Mapping[str, bytes]
    poll_interval: float = POLL_INTERVAL


@REGISTRY.handler("vercel.create_project")
def _create_project(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    api: Api = ctx.api.api
    answer = api.call("POST", "/v11/projects", body=args, allow=(409,))
    if answer.status == 409:  # created by a call whose answer was lost: read it back
        found = read_project(api, args["name"])
        if found is None or found.owner() != args["environmentVariables"][0]["value"]:
            raise DeployError(f"the Vercel project {args['name']} appeared meanwhile and is not ours")
        return {"project_id": found.id}
    return {"project_id": answer.data["id"]}


@REGISTRY.handler("vercel.upsert_env")
def _upsert_env(ctx: Context, args: dict[str, Any]) -> None:
    body = {k: args[k] for k in ("key", "value", "type", "target")}
    answer = ctx.api.api.call("POST", f"/v10/projects/{args['project']}/env", query={"upsert": "true"}, body=body)
    failed = (answer.data or {}).get("failed") or []
    if failed:
        error = failed[0].get("error") or {}
        raise DeployError(f"Vercel did not store {args['key']}: {error.get('code')}: {error.get('message')}")


@REGISTRY.handler("vercel.delete_env")
def _delete_env(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.api.call("DELETE", f"/v9/projects/{args['project']}/env/{args['id']}", allow=(404,))


def _create(session: Session, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST the deployment; upload exactly the files Vercel reports missing, then POST again."""
    api = session.api
    for _ in range(3):
        answer = api.call("POST", "/v13/deployments", body=body, allow=(400,))
        if answer.status != 400:
            return answer.data
        error = (answer.data or {}).get("error") or {}
        if error.get("code") != "missing_files":
            raise ApiError("POST", "/v13/deployments", 400, str(error.get("code")), str(error.get("message")))
        for sha in error.get("missing") or []:
            content = session.files.get(sha)
            if content is None:
                raise DeployError(f"Vercel asks for a file this deploy does not have (sha {sha})")
            api.call("POST", "/v2/files", data=content, headers={
                "Content-Type": "application/octet-stream", "x-vercel-digest": sha,
                "Content-Length": str(len(content))})
    raise DeployError("Vercel kept reporting missing files after they were uploaded")


def _wait(session: Session, deployment: dict[str, Any]) -> dict[str, Any]:
    """Poll until READY with its alias assigned (READY comes first), or a failure state."""
    for _ in range(POLL_LIMIT):
        state = deployment.get("readyState")
        if state in ("ERROR", "CANCELED"):
            reason = deployment.get("errorMessage") or deployment.get("errorCode") or state.lower()
            raise DeployError(f"the Vercel deployment {deployment.get('id')} ended {state}: {reason} "
                              f"(build logs: https://vercel.com/ → project → Deployments)")
        if deployment.get("aliasError"):
            error = deployment["aliasError"]
            raise DeployError(f"the Vercel deployment {deployment.get('id')} is {state} but its production alias "
                              f"failed: {error.get('code')}: {error.get('message')}")
        if state == "READY" and deployment.get("aliasAssigned"):
            return deployment
        session.api.sleep(session.poll_interval)
        deployment = session.api.call("GET", f"/v13/deployments/{deployment['id']}").data
    raise DeployError(f"the Vercel deployment {deployment.get('id')} is still {deployment.get('readyState')}: run "
                      "deploy again later (it resumes from what Vercel reports)")


@REGISTRY.handler("vercel.create_deployment")
def _create_deployment(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    session: Session = ctx.api
    meta = dict(args["meta"])
    for name, how in sorted(args["secret_digests"].items()):
        meta[vercel.META_SECRET + name] = (vercel.secret_digest(ctx.secrets[name], session.project, name)
                                           if how == "new" else how)
    body = {k: args[k] for k in ("name", "project", "target", "files", "projectSettings")}
    body["meta"] = {k: v for k, v in meta.items() if v}
    deployment = _wait(session, _create(session, body))
    done = _deployment(deployment)
    return {"deployment_id": done.uid, "url": vercel.production_url(done), "deployment_url": done.url}


@REGISTRY.handler("vercel.delete_deployment")
def _delete_deployment(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.api.call("DELETE", f"/v13/deployments/{args['id']}", allow=(404,))


@REGISTRY.handler("vercel.delete_project")
def _delete_project(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.api.call("DELETE", f"/v9/projects/{args['project']}", allow=(404,))


# pause / resume (issue 14): https://vercel.com/docs/rest-api/projects/pause-a-project, .../unpause-a-project
@REGISTRY.handler("vercel.pause_project")
def _pause_project(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.api.call("POST", f"/v1/projects/{args['project']}/pause")


@REGISTRY.handler("vercel.unpause_project")
def _unpause_project(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.api.call("POST", f"/v1/projects/{args['project']}/unpause")


# ---------------------------------------------------------------- the deployer (used by commands.py)


# invoke --deployed (issue 14): the Protection Bypass for Automation secret, under Vercel's own name for it
BYPASS_ENV = "VERCEL_AUTOMATION_BYPASS_SECRET"


class Deployer(DeployerBase):
    """One agent on Vercel: prepare (files + desired state), read, plan, apply, destroy, info."""

    title = title
    planner = vercel
    home = vercel.SECRETS

    def __init__(self, agent: Agent, settings: TargetSettings, files: Sequence[File], options: DeployOptions):
        super().__init__(agent, settings, [f for f in files if f.path.startswith("vercel/")], options,
                         sorted(agent.secrets))
        self.project = agent.staged(settings.options.get("project") or agent.name)
        self.team = settings.options.get("team")
        self.api = Api(self.environ.get("VERCEL_API_URL") or vercel.DEFAULT_API, self.environ.get("VERCEL_TOKEN"),
                       self.team, options.sleep, stderr=options.stderr)
        self.poll_interval = POLL_INTERVAL if options.poll_interval is None else options.poll_interval
        self._snap: vercel.Snapshot | None = None

    translate = staticmethod(translate_errors)

    def prepare(self) -> vercel.Desired:
        self.desired = vercel.desired_state(self.agent, self.settings, self.files, secret_values=self.secrets.values())
        return self.desired

    def snapshot(self, *, destroy: bool = False) -> vercel.Snapshot:
        prune = not destroy and self.desired is not None and bool(self.desired.keep_deployments)  # issue 14
        self._snap = read_snapshot(self.api, self.project, self.agent.name, destroy=destroy, prune=prune)
        return self._snap

    def destroy_plan(self, snap: vercel.Snapshot) -> DeployPlan:
        return DeployPlan(vercel.plan_destroy(self.agent.name, self.project, self.team, snap))

    def apply(self, plan: Plan, progress: Progress | None = None) -> dict[str, Any]:
        snap = self._snap or vercel.Snapshot()
        meta = snap.latest.meta if snap.latest is not None else {}

        def keep(name: str) -> str:
            return meta.get(vercel.META_SECRET + name, "")

        session = Session(self.api, self.project, {hashlib.sha1(f.content).hexdigest(): f.content
                                                   for f in self.files}, self.poll_interval)
        context = Context(api=session, secrets=self.secrets.values(), keep=keep, files=self.files)
        if snap.project is not None:
            context.outputs["project_id"] = snap.project.id
        return Executor(REGISTRY, context, progress).run(plan)

    def outputs(self, snap: vercel.Snapshot, results: Mapping[str, Any] | None = None) -> dict[str, Any]:
        results = results or {}
        latest = snap.latest
        url = results.get("url") or vercel.production_url(latest)
        deployment = results.get("deployment_id") or (latest.uid if latest else None)
        project_id = results.get("project_id") or (snap.project.id if snap.project else None)
        return {
            "target": "vercel", "url": url,
            "summary": f"{self.agent.name}: Vercel project {self.project}, production deployment {deployment}",
            "project": self.project, "project_id": project_id, "team": self.team, "deployment": deployment,
            "deployment_url": results.get("deployment_url") or (f"https://{latest.url}" if latest and latest.url
                                                                 else None),
            # the names the current text output of commands.deploy prints
            "function": self.project, "version": deployment, "alias": "production",
        }

    def info(self) -> dict[str, Any]:
        snap = read_snapshot(self.api, self.project, self.agent.name)
        project = snap.project
        if project is None:
            return {"target": "vercel", "deployed": False, "note": f"not deployed (no Vercel project {self.project})"}
        latest = snap.latest
        if latest is None or not latest.ours(self.agent.name):
            return {"target": "vercel", "deployed": False,
                    "note": f"project {self.project} has no production deployment made by the framework"}
        settings = vercel._settings(latest.meta)
        out = self.outputs(snap)
        if project.paused:  # issue 14
            out["summary"] = f"PAUSED (the project is paused: every request is answered 503) {out['summary']}"
        return {**out, "deployed": True, "paused": project.paused, "details": {
            "project": f"{project.name} ({project.id})" + (f", team {self.team}" if self.team else ""),
            "deployment": f"{latest.uid} {latest.ready_state}",
            "content": str(latest.meta.get(vercel.META_CONTENT, ""))[:12],
            "runtime": settings.get("runtime"), "timeout": settings.get("timeout"), "model": settings.get("model"),
            "owner": "created by the framework" if project.owner() == self.agent.name
            else "existing project (only the framework's deployments are managed)"}}

    # ---- pause / resume (issue 14)
    def pause_plan(self, resume: bool = False) -> Plan:
        """Pause or unpause the project (planner.plan_pause)."""
        return vercel.plan_pause(self.agent.name, self.project, self.team, self.snapshot(), resume)

    def preflight(self, deploy_plan: DeployPlan) -> None:
        """Also: a paused project gets no production deployment (Vercel stops assigning its domains while
        paused: https://vercel.com/docs/rest-api/projects/pause-a-project), so deploy refuses rather than
        wait for an alias that never comes, and does not unpause it."""
        super().preflight(deploy_plan)
        snap = self._snap
        if snap is not None and snap.project is not None and snap.project.paused and any(
                op.kind == "vercel.create_deployment" for op in deploy_plan.plan.operations):
            raise DeployError(f"the Vercel project {self.project} is paused (`agenthost pause`): a new production "
                              "deployment would not get its domains while paused; run `agenthost resume` first, "
                              "then deploy")

    # ---- history (issue 14)
    def history(self) -> History:
        """The project's production deployments, newest first (GET /v6/deployments?projectId&target=production,
        https://vercel.com/docs/rest-api/deployments/list-deployments); the live one is the project's
        targets.production (https://vercel.com/docs/rest-api/projects/find-a-project-by-id-or-name)."""
        snap = read_snapshot(self.api, self.project, self.agent.name)
        if snap.project is None:
            return History("deployment", notes=(f"not deployed (no Vercel project {self.project})",))
        live = snap.project.production or (snap.latest.uid if snap.latest else None)
        versions = []
        for item in list_deployments(self.api, snap.project.id, target="production", state="READY"):
            found = _deployment(item)
            if not found.ours(self.agent.name):
                continue  # a deployment by another hand (git, the dashboard) is not the agent's
            created = datetime.fromtimestamp(found.created / 1000, UTC).isoformat() if found.created else None
            versions.append(Version(found.uid, created, content=found.meta.get(vercel.META_CONTENT),
                                    prompt=found.meta.get(vercel.META_PROMPT), live=found.uid == live))
        notes = () if all(v.prompt for v in versions) else (
            "a deployment made by an earlier agenthost has no prompt digest in its meta",)
        return History("deployment", tuple(versions), notes)

    def rollback(self, history: History, version: Version) -> dict[str, Any]:
        """Point production at an earlier deployment without rebuilding it: POST
        /v10/projects/{projectId}/promote/{deploymentId}
        (https://vercel.com/docs/rest-api/projects/point-production-traffic-to-a-given-deployment)."""
        project = read_project(self.api, self.project)
        if project is None:
            raise DeployError(f"no Vercel project {self.project}: nothing to roll back")
        self.api.call("POST", f"/v10/projects/{project.id}/promote/{version.id}")
        return {"changed": True}

    # ---- logs (issue 14)
    def log_reader(self, request: str | None = None) -> LogReader:
        """The production deployment's runtime logs (framework/platforms/vercel/logs.py)."""
        from framework.platforms.vercel.logs import reader

        return reader(self.api, self.project, self.agent.name, request)

    # ---- invoke --deployed (issue 14)
    def invoke_headers(self, deployed: Mapping[str, Any], url: str, body: bytes,
                       headers: Mapping[str, str]) -> dict[str, str]:
        """Vercel functions have no per-function authentication (the agent's own API keys are the way to
        keep one private). A project with Deployment Protection on its production domain lets automation
        in with the x-vercel-protection-bypass header: sent when VERCEL_AUTOMATION_BYPASS_SECRET is set
        (https://vercel.com/docs/deployment-protection/methods-to-bypass-deployment-protection/protection-bypass-automation)."""
        secret = self.environ.get(BYPASS_ENV, "").strip()
        return {"x-vercel-protection-bypass": secret} if secret else {}

    # ---- warm_schedule (issue 14)

    def plan(self, snap: vercel.Snapshot) -> DeployPlan:
        """With concurrency.warm_schedule: the project's CRON_SECRET, which Vercel Cron sends as
        `Authorization: Bearer` (https://vercel.com/docs/cron-jobs/manage-cron-jobs#securing-cron-jobs),
        planned like agent.yaml's secrets (a sensitive production variable, a keyed digest in the
        deployment's meta, never the value): generated once when the project lacks it, then kept (Vercel
        never returns a sensitive value, and none is needed: the cron reads it from the project). Without
        warm_schedule, a CRON_SECRET our deployment was built with is removed as any dropped secret is."""
        from dataclasses import replace
        from secrets import token_urlsafe

        from framework.deploy.secrets import SecretValues
        from framework.platforms.vercel.target import CRON_SECRET

        assert self.desired is not None, "prepare() comes first"
        if not self.settings.concurrency.warm_schedule or CRON_SECRET in self.agent.secrets:
            return super().plan(snap)  # a CRON_SECRET listed in agent.yaml is the user's, as any secret
        wanted = None  # kept: the project holds one
        if snap.project is None or CRON_SECRET not in snap.project.envs:
            if CRON_SECRET not in self.secrets:
                self.secrets = SecretValues({**self.secrets.values(), CRON_SECRET: token_urlsafe(32)})
            wanted = vercel.secret_digest(self.secrets.values()[CRON_SECRET], self.project, CRON_SECRET)
        self.desired = replace(self.desired, secret_env={**self.desired.secret_env, CRON_SECRET: wanted})
        deploy_plan = super().plan(snap)
        kept = vercel.SECRETS.kept_note(CRON_SECRET)  # not the user's to set: generated by an earlier deploy
        plan = replace(deploy_plan.plan, notes=tuple(n for n in deploy_plan.plan.notes if n != kept))
        return DeployPlan(plan, deploy_plan.missing_secrets)
