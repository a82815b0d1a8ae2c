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

A `public: false` agent admits only callers with a Google-signed ID token allowed roles/run.invoker on the
function's Cloud Run service (https://cloud.google.com/functions/docs/securing/authenticating). The job
then also sends `httpTarget.oidcToken` ({serviceAccountEmail, audience},
https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#OidcToken): Cloud
Scheduler's service agent mints an ID token of that account for the audience, the function's URL (as
`invoke --deployed` sends), in `Authorization: Bearer` (https://cloud.google.com/scheduler/docs/http-target-auth);
the secret header stays, as the runtime recognises a warm-up by it. The account is the function's runtime
service account as GetFunction answers serviceConfig.serviceAccountEmail ("If empty, defaults to
{project_number}-compute@developer.gserviceaccount.com", filled in by the API): deploying the function
already needs iam.serviceAccounts.actAs on it, which is what a job with its OIDC token needs too, so no new
identity or permission. Deploy grants it roles/run.invoker on the function's service only, and only when it
lacks it; a job carries no labels, so the job's description records that this framework made the grant
(written before the grant is made, removed after it is revoked), and turning the schedule off, making the
agent public or destroy revokes exactly that member, never a binding someone else made.
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
from framework.platforms.gcp.api import REGISTRY, Api, _http_message, set_invoker
from framework.platforms.gcp.planner import INVOKER, LABEL_PAUSED, FunctionState, Snapshot
from framework.platforms.gcp.target import WARM_SECRET

SCHEDULER = "https://cloudscheduler.googleapis.com"
DOC = "https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs"
TIME_ZONE = "Etc/UTC"
# every field deploy sets: an update sends them all (PATCH with this mask)
MASK = "description,schedule,timeZone,httpTarget"


def job_name(project: str, region: str, agent: str) -> str:
    return f"projects/{project}/locations/{region}/jobs/{agent}-warmup"


# the description's ending while the job's service account holds roles/run.invoker by this framework's grant
GRANTED = "; granted its service account roles/run.invoker on the function's service"


def description(agent: str, granted: bool = False) -> str:
    return f"Warm-up of the serverless agent {agent} (agent-framework){GRANTED if granted else ''}"


def member(account: str) -> str:
    return f"serviceAccount:{account}"


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
    account: str | None = None  # httpTarget.oidcToken.serviceAccountEmail (None: no OIDC token)
    audience: str | None = None

    def ours(self, agent: str) -> bool:
        return self.description in (description(agent), description(agent, True))

    @property
    def granted(self) -> str | None:
        """The account this framework granted roles/run.invoker to, as the description records it."""
        return self.account if self.description.endswith(GRANTED) else None


def call(api: Api, method: str, path: str, body: dict[str, Any] | None = None,
         params: dict[str, str] | None = None) -> dict[str, Any] | None:
    """One Cloud Scheduler v1 call; a GET or DELETE answered 404 is None."""
    base = (api.environ.get("GCP_SCHEDULER_ENDPOINT") or SCHEDULER).rstrip("/")
    session = api.session_for(base)  # a local fake over plain http gets no token

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
    oidc = target.get("oidcToken") or {}
    return JobState(name=name, description=found.get("description") or "", schedule=found.get("schedule") or "",
                    time_zone=found.get("timeZone") or "", uri=target.get("uri") or "",
                    method=target.get("httpMethod") or "", header=digest(value) if value else None,
                    state=found.get("state") or "", account=oidc.get("serviceAccountEmail") or None,
                    audience=oidc.get("audience") or None)


# ---------------------------------------------------------------- planning (pure)


def secret_wanted(function: FunctionState | None) -> bool:
    """Whether this deploy must generate the secret: the function does not hold one yet."""
    return function is None or WARM_SECRET not in function.environment


def plan(agent: str, project: str, region: str, minutes: int | None, public: bool, snap: Snapshot,
         job: JobState | None, secret: str | None) -> list[Resource]:
    """The job, created, updated or deleted to match warm_schedule, and for a private agent the invoker
    grant of its account; no operation when they already match. `secret`: the digest of the secret this
    deploy generates (None: the function's is kept)."""
    name = job_name(project, region, agent)
    function = snap.function
    if minutes is None:
        return destroy(agent, job, snap)
    if job is not None and not job.ours(agent):
        raise DeployError(f"a Cloud Scheduler job {name} exists and was not created by this framework for {agent}: "
                          "remove it, or remove concurrency.warm_schedule from agent.yaml")
    paused = function is not None and LABEL_PAUSED in function.labels
    expression = warm.cron(minutes)
    if expression is None:  # validate refuses it first (warm.check_cron)
        raise DeployError(f"Cloud Scheduler cannot fire every {minutes} minutes by a cron expression")
    if function is not None and not function.service_account and not public:
        raise _no_account(function.name)
    wanted_header = secret or (function.environment.get(WARM_SECRET) if function else None)
    uri: Any = (function.url or function.run_uri) if function is not None else None
    # a new function's account and service are known once CreateFunction answers
    account: Any = None if public else (function.service_account if function else {"$output": "service_account"})
    service: Any = function.service if function is not None and function.service else {"$output": "service"}
    before, after, granted = _invoker(job, account, service, snap)
    http_target: dict[str, Any] = {
        "uri": uri or {"$output": "url"}, "httpMethod": "GET",
        "headers": {warm.HEADER: {"$secret": WARM_SECRET} if secret else {"$keep": WARM_SECRET}}}
    if account is not None:
        http_target["oidcToken"] = {"serviceAccountEmail": account, "audience": uri or {"$output": "url"}}
    body = {"name": name, "description": description(agent, granted), "schedule": expression, "timeZone": TIME_ZONE,
            "httpTarget": http_target}
    token = None if account is None else f"OIDC token of {_shown(account)} for {uri or 'the function URL'}"
    if job is None:
        # https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/create
        changes = [Change("every", None, expression), Change("sends", None, f"GET {uri or 'the function URL'}"),
                   Change(f"header {warm.HEADER}", None, "(value hidden)")]
        if token:
            changes.append(Change("authorization", None, token))
        create = Operation("gcp.scheduler_create", {"parent": name.rsplit("/jobs/", 1)[0], "job": body}, "POST jobs")
        if paused:  # a job is created ENABLED (Job.state is output only): paused at once, as its agent
            changes.append(Change("state", None, PAUSED))
        return before + [Resource("cloud scheduler job", name, CREATE, tuple(changes),
                                  (create, _switch(name, False)) if paused else (create,))] + after
    changes = []
    if job.schedule != expression or job.time_zone != TIME_ZONE:
        changes.append(Change("every", f"{job.schedule} ({job.time_zone})", f"{expression} ({TIME_ZONE})"))
    if job.uri != uri or job.method != "GET":
        changes.append(Change("sends", f"{job.method} {job.uri}", f"GET {uri or 'the function URL'}"))
    if job.header is None or job.header != wanted_header:
        changes.append(Change(f"header {warm.HEADER}", "(value hidden)" if job.header else None,
                              "(new value hidden)"))
    if (job.account, job.audience) != ((account, uri) if account is not None else (None, None)):
        old = None if job.account is None else f"OIDC token of {job.account} for {job.audience or job.uri}"
        changes.append(Change("authorization", old, token))
    if job.description != body["description"]:
        changes.append(Change("records the invoker grant", "yes" if job.granted else None,
                              "yes" if granted else None))
    # https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/patch (keeps its state)
    operations = [Operation("gcp.scheduler_patch", {"job": body}, "PATCH job")] if changes else []
    if paused and job.state == ENABLED:  # paused before its job was (or resumed by hand): deploy keeps it paused
        changes.append(Change("state", ENABLED, PAUSED))
        operations.append(_switch(name, False))
    if not changes:
        resource = Resource("cloud scheduler job", name, UNCHANGED, detail=f"{expression}, {job.state.lower()}")
        return before + [resource] + after
    return before + [Resource("cloud scheduler job", name, UPDATE, tuple(changes), tuple(operations))] + after


def _shown(account: Any) -> str:
    return account if isinstance(account, str) else "the function's runtime service account"


def _no_account(function: str) -> DeployError:
    return DeployError(f"{function} reports no runtime service account (serviceConfig.serviceAccountEmail), which "
                       "the warm-up job of a `public: false` agent signs in as; run the same command again")


def _grant(service: Any, account: Any, granted: bool) -> Resource:
    """roles/run.invoker for the account on the function's service, granted or revoked (one member only)."""
    name = service if isinstance(service, str) else "the function's Cloud Run service"
    label = f"{INVOKER} for {'serviceAccount:' + account if isinstance(account, str) else _shown(account)}"
    return Resource("warm-up invoker", name, CREATE if granted else DELETE,
                    (Change(label, None if granted else "granted", "granted" if granted else None),),
                    (Operation("gcp.warm_invoker", {"service": service, "account": account, "granted": granted},
                               "getIamPolicy + setIamPolicy"),))


def _invoker(job: JobState | None, account: Any, service: Any, snap: Snapshot
             ) -> tuple[list[Resource], list[Resource], bool]:
    """(revocations before the job's change, grants after it, whether the job records a grant): a
    revocation goes before the job stops recording it and a grant after the job records it, so an
    interrupted deploy never leaves a grant of ours unrecorded (and never revokes one it did not make)."""
    earlier = job.granted if job is not None else None
    before = [_grant(service, earlier, False)] if (
        earlier and earlier != account and member(earlier) in snap.invokers) else []
    if account is None:
        return before, [], False
    if isinstance(account, str) and member(account) in snap.invokers:
        ours = earlier == account
        detail = "granted by this framework" if ours else "granted outside this framework: left alone"
        name = service if isinstance(service, str) else "the function's Cloud Run service"
        return before, [Resource("warm-up invoker", name, UNCHANGED, detail=f"{member(account)} {detail}")], ours
    return before, [_grant(service, account, True)], True


def destroy(agent: str, job: JobState | None, snap: Snapshot) -> list[Resource]:
    """Delete the job when it is ours, after revoking the invoker grant it records
    (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/delete)."""
    if job is None or not job.ours(agent):
        return []
    service = snap.function.service if snap.function is not None else None
    revoke = [_grant(service, job.granted, False)] if (
        service and job.granted and member(job.granted) in snap.invokers) else []
    return revoke + [Resource("cloud scheduler job", job.name, DELETE, (Change("every", job.schedule, None),), (
        Operation("gcp.scheduler_delete", {"name": job.name}, "DELETE job"),))]


# ---- pause / resume (issue 14): a paused agent's job is paused too. Ingress internal-only does not stop
# it: Cloud Scheduler in the function's project is internal traffic ("The following Google Cloud
# products, if they're in the same project ...: Cloud Scheduler, ...", https://cloud.google.com/run/docs/
# securing/ingress#settings), so its warm-ups would still reach, and keep warm, a paused function.

ENABLED, PAUSED = "ENABLED", "PAUSED"  # Job.state


def pause(agent: str, job: JobState | None, resume: bool) -> list[Resource]:
    """Our job paused (POST v1/{name}:pause, https://cloud.google.com/scheduler/docs/reference/rest/v1/
    projects.locations.jobs/pause) or resumed (:resume); no call when it already is."""
    if job is None or not job.ours(agent):
        return []
    wanted = ENABLED if resume else PAUSED
    if job.state == wanted:
        return [Resource("cloud scheduler job", job.name, UNCHANGED, detail=wanted.lower())]
    return [Resource("cloud scheduler job", job.name, UPDATE, (Change("state", job.state or None, wanted),),
                     (_switch(job.name, resume),))]


def _switch(name: str, resume: bool) -> Operation:
    verb = "resume" if resume else "pause"
    return Operation("gcp.scheduler_switch", {"name": name, "verb": verb}, f"POST job:{verb}")


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


@REGISTRY.handler("gcp.scheduler_switch")
def _switch_job(ctx: Context, args: dict[str, Any]) -> None:
    call(ctx.api, "POST", f"{args['name']}:{args['verb']}", {})


@REGISTRY.handler("gcp.scheduler_delete")
def _delete(ctx: Context, args: dict[str, Any]) -> None:
    call(ctx.api, "DELETE", args["name"])


@REGISTRY.handler("gcp.warm_invoker")
def _warm_invoker(ctx: Context, args: dict[str, Any]) -> None:
    if not args["account"]:  # a new function's, as CreateFunction answered it
        raise _no_account(str(args["service"]))
    set_invoker(ctx.api, args["service"], member(args["account"]), args["granted"])
