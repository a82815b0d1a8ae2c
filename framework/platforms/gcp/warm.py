"""concurrency.warm_schedule on Google Cloud Functions (issue 14): a Cloud Scheduler job per agent that
sends `GET <function URL>` with the secret in `x-agent-warmup`, and the function's AGENT_WARMUP_SECRET
that the runtime compares it with.

The REST contract (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs):
POST v1/{parent=projects/P/locations/L}/jobs (create, answers the Job), GET v1/{name} (get), PATCH
v1/{job.name}?updateMask=... (patch), DELETE v1/{name} (delete). A Job carries no labels, only a
`description` (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#Job),
so ours is recognised by its name `<agent>-warmup` and a description naming the agent, as on AWS.
The schedule is unix-cron in `timeZone` (Etc/UTC here). Endpoint GCP_SCHEDULER_ENDPOINT (default
https://cloudscheduler.googleapis.com; no token over plain http), retried like every call (Api.call).

The secret is generated once, on the deploy that first needs it, and kept as the function's environment
variable: the planner handles it like the copied secrets (a digest in the plan, never the value); the job's
header is compared by digest with the function's, so a later deploy with nothing changed makes no call.
"""

from __future__ import annotations

import secrets as random
from dataclasses import dataclass
from typing import Any

import requests

from framework.deploy.executor import Context
from framework.deploy.plan import CREATE, DELETE, UNCHANGED, UPDATE, Change, Operation, Resource
from framework.deploy.secrets import digest
from framework.deploy.skeleton import left_alone
from framework.errors import DeployError
from framework.platforms import warm
from framework.platforms.gcp.api import REGISTRY, Api, _http_message
from framework.platforms.gcp.planner import FunctionState
from framework.platforms.gcp.target import WARM_SECRET

SCHEDULER = "https://cloudscheduler.googleapis.com"
DOC = "https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs"
TIME_ZONE = "Etc/UTC"
# every field deploy sets: an update sends them all (PATCH with this mask)
MASK = "description,schedule,timeZone,httpTarget"


def job_name(project: str, region: str, agent: str) -> str:
    return f"projects/{project}/locations/{region}/jobs/{agent}-warmup"


def description(agent: str) -> str:
    return f"Warm-up of the serverless agent {agent} (agent-framework)"


def new_secret() -> str:
    """A fresh secret for AGENT_WARMUP_SECRET (43 URL-safe characters; the runtime wants 16 or more)."""
    return random.token_urlsafe(32)


@dataclass(frozen=True)
class JobState:
    """The job as GET answers it, the secret header as a digest only."""

    name: str
    description: str = ""
    schedule: str = ""
    time_zone: str = ""
    uri: str = ""
    method: str = ""
    header: str | None = None  # digest of the x-agent-warmup header's value (None: no such header)
    state: str = ""

    def ours(self, agent: str) -> bool:
        return self.description == description(agent)


def _session(api: Api) -> tuple[str, Any]:
    base = (api.environ.get("GCP_SCHEDULER_ENDPOINT") or SCHEDULER).rstrip("/")
    if base.startswith("http://"):  # a local fake: never a token over plain http
        return base, api.http
    from google.auth.transport.requests import AuthorizedSession

    return base, AuthorizedSession(api._creds())


def call(api: Api, method: str, path: str, body: dict[str, Any] | None = None,
         params: dict[str, str] | None = None) -> dict[str, Any] | None:
    """One Cloud Scheduler v1 call; a GET or DELETE answered 404 is None."""
    base, session = _session(api)

    def send() -> dict[str, Any] | None:
        answer = session.request(method, f"{base}/v1/{path}", json=body, params=params, timeout=60)
        if answer.status_code == 404 and method in ("GET", "DELETE"):
            return None
        answer.raise_for_status()
        return answer.json() if answer.content else {}
    try:
        return api.call(f"Cloud Scheduler {method} {path}", send)
    except requests.HTTPError as error:
        hint = (" (the deploying identity needs roles/cloudscheduler.admin, and the Cloud Scheduler API must be "
                "enabled)") if error.response is not None and error.response.status_code == 403 else ""
        raise DeployError(f"Cloud Scheduler refused {method} {path}: {_http_message(error)}{hint}") from None


def read_job(api: Api, name: str) -> JobState | None:
    """GET the job (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/get)."""
    found = call(api, "GET", name)
    if found is None:
        return None
    target = found.get("httpTarget") or {}
    headers = {k.lower(): v for k, v in (target.get("headers") or {}).items()}
    value = headers.get(warm.HEADER)
    return JobState(name=name, description=found.get("description") or "", schedule=found.get("schedule") or "",
                    time_zone=found.get("timeZone") or "", uri=target.get("uri") or "",
                    method=target.get("httpMethod") or "", header=digest(value) if value else None,
                    state=found.get("state") or "")


# ---------------------------------------------------------------- planning (pure)


def secret_wanted(function: FunctionState | None) -> bool:
    """Whether this deploy must generate the secret: the function does not hold one yet."""
    return function is None or WARM_SECRET not in function.environment


def plan(agent: str, project: str, region: str, minutes: int | None, public: bool, function: FunctionState | None,
         job: JobState | None, secret: str | None) -> list[Resource]:
    """The job, created, updated or deleted to match warm_schedule; no operation when it already does.
    `secret`: the digest of the secret this deploy generates (None: the function's is kept)."""
    name = job_name(project, region, agent)
    if minutes is None:
        return destroy(agent, job)
    if job is not None and not job.ours(agent):
        raise DeployError(f"a Cloud Scheduler job {name} exists and was not created by this framework for {agent}: "
                          "remove it, or remove concurrency.warm_schedule from agent.yaml")
    if not public:
        raise DeployError(
            "concurrency.warm_schedule on Google Cloud needs `public: true` for now: a function that admits "
            "authenticated callers only refuses the Cloud Scheduler job's request unless the job sends an OIDC "
            "token of a service account allowed roles/run.invoker (httpTarget.oidcToken, "
            f"{DOC}#HttpTarget), which this framework does not set up; remove warm_schedule or make the agent "
            "public (README, Limits)")
    expression = warm.cron(minutes)
    if expression is None:  # validate refuses it first (warm.check_cron)
        raise DeployError(f"Cloud Scheduler cannot fire every {minutes} minutes by a cron expression")
    wanted_header = secret or (function.environment.get(WARM_SECRET) if function else None)
    uri: Any = (function.url or function.run_uri) if function is not None else None
    body = {"name": name, "description": description(agent), "schedule": expression, "timeZone": TIME_ZONE,
            "httpTarget": {"uri": uri or {"$output": "url"}, "httpMethod": "GET",
                           "headers": {warm.HEADER: {"$secret": WARM_SECRET} if secret else {"$keep": WARM_SECRET}}}}
    if job is None:
        # https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/create
        return [Resource("cloud scheduler job", name, CREATE, (
            Change("every", None, expression), Change("sends", None, f"GET {uri or 'the function URL'}"),
            Change(f"header {warm.HEADER}", None, "(value hidden)")), (
            Operation("gcp.scheduler_create", {"parent": name.rsplit("/jobs/", 1)[0], "job": body},
                      "POST jobs"),))]
    changes = []
    if job.schedule != expression or job.time_zone != TIME_ZONE:
        changes.append(Change("every", f"{job.schedule} ({job.time_zone})", f"{expression} ({TIME_ZONE})"))
    if job.uri != uri or job.method != "GET":
        changes.append(Change("sends", f"{job.method} {job.uri}", f"GET {uri or 'the function URL'}"))
    if job.header is None or job.header != wanted_header:
        changes.append(Change(f"header {warm.HEADER}", "(value hidden)" if job.header else None,
                              "(new value hidden)"))
    if not changes:
        return [Resource("cloud scheduler job", name, UNCHANGED, detail=f"{expression}, {job.state.lower()}")]
    # https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/patch
    return [Resource("cloud scheduler job", name, UPDATE, tuple(changes), (
        Operation("gcp.scheduler_patch", {"job": body}, "PATCH job"),))]


def destroy(agent: str, job: JobState | None) -> list[Resource]:
    """Delete the job when it is ours (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/delete)."""
    if job is None or not job.ours(agent):
        return []
    return [Resource("cloud scheduler job", job.name, DELETE, (Change("every", job.schedule, None),), (
        Operation("gcp.scheduler_delete", {"name": job.name}, "DELETE job"),))]


def notes(agent: str, job: JobState | None) -> list[str]:
    """What destroy leaves: a job of our name that is not ours."""
    if job is not None and not job.ours(agent):
        return [left_alone(f"Cloud Scheduler job {job.name}")]
    return []


# ---------------------------------------------------------------- handlers (the only mutations)


@REGISTRY.handler("gcp.scheduler_create")
def _create(ctx: Context, args: dict[str, Any]) -> None:
    call(ctx.api, "POST", f"{args['parent']}/jobs", args["job"])


@REGISTRY.handler("gcp.scheduler_patch")
def _patch(ctx: Context, args: dict[str, Any]) -> None:
    call(ctx.api, "PATCH", args["job"]["name"], args["job"], {"updateMask": MASK})


@REGISTRY.handler("gcp.scheduler_delete")
def _delete(ctx: Context, args: dict[str, Any]) -> None:
    call(ctx.api, "DELETE", args["name"])
