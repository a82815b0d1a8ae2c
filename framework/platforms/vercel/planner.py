"""Vercel deploy, the pure part: desired state, a snapshot of what is deployed, and the planner.

`plan_deploy(desired, snapshot)` and `plan_destroy(...)` are pure functions returning a Plan; reading
the snapshot and executing the plan live in vercel_api.py (the only module doing HTTP).

Ownership and idempotency, with no state file:
* A project the framework creates carries the plain environment variable AGENT_FRAMEWORK_AGENT=<agent>,
  set in the same call that creates the project (so there is no window where it exists unmarked).
  Only such a project is ever deleted.
* Every deployment we make carries `meta`: agentFramework=<agent>, the content hash of the files, a
  short file map and the display settings, and one keyed digest per secret (see `secret_digest`).
  "Nothing changed" = the latest READY production deployment is ours and its meta matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from framework.deploy.package import content_hash
from framework.deploy.plan import CREATE, DELETE, UNCHANGED, UPDATE, Change, Operation, Plan, Resource
from framework.deploy.skeleton import DeployPlan, SecretHome, left_alone, short
from framework.errors import DeployError
from framework.platforms.base import PausedAnswer

MARKER = "AGENT_FRAMEWORK_AGENT"  # plain project env var naming the agent that created the project
META_AGENT = "agentFramework"
META_CONTENT = "agentFrameworkContent"
META_FILES = "agentFrameworkFiles"
META_SETTINGS = "agentFrameworkSettings"
META_PROMPT = "agentFrameworkPrompt"  # the prompt's digest (Agent.prompt_digest): what history shows
META_SECRET = "agentFrameworkSecret_"  # + NAME -> keyed digest of the value the deployment was built with
DEFAULT_API = "https://api.vercel.com"
# No secret store the function reads from: every secret is copied into a sensitive project variable.
SECRETS = SecretHome("vercel", copied_into="a sensitive environment variable of the Vercel project",
                     keeper="the project", holder="the project",
                     otherwise=lambda name: "; it becomes a sensitive Vercel environment variable")
# What the plan says of the prompt: the meta holds only its digest; the text itself is uploaded as
# part of the deployment's source (visible to the team only) and bundled into the function, and
# vercel.json keeps it out of the static files (framework/platforms/vercel/target.py).
PROMPT_LABEL = "prompt (digest; the text is only in the function and the deployment's private source, never served)"


def team_query(team: str | None) -> dict[str, str]:
    """Vercel takes the team as `teamId` (ids start with team_) or `slug`, on every call."""
    if not team:
        return {}
    return {"teamId": team} if team.startswith("team_") else {"slug": team}


def secret_digest(value: str, project: str, name: str) -> str:
    """A digest of a secret that is stable across runs and machines (CI and laptops share nothing but
    the cloud), so it can be kept in the deployment's meta and compared on the next deploy.

    Vercel never returns a sensitive value, and no secret key is shared between the machines that
    deploy, so the key is a per-project, per-variable salt run through scrypt (memory-hard): the meta
    never holds the value, and guessing a weak value from the digest costs a scrypt per guess.
    """
    salt = f"agent-framework/vercel/{project}/{name}".encode()
    return "scrypt:" + hashlib.scrypt(value.encode("utf-8"), salt=salt, n=2 ** 14, r=8, p=1, dklen=16).hex()


# ---------------------------------------------------------------- desired state


@dataclass(frozen=True)
class FileEntry:
    file: str  # path inside the deployment, e.g. "api/agent.ts"
    sha: str  # SHA-1 hex, what Vercel identifies uploaded files by
    size: int


@dataclass(frozen=True)
class Desired:
    agent: str
    project: str
    explicit_project: bool  # `project:` written in agent.yaml: deploying into an existing project is wanted
    team: str | None
    files: tuple[FileEntry, ...]
    content: str  # hex SHA-256 over the files (framework.deploy.package.content_hash)
    settings: Mapping[str, Any]  # display-only facts kept in meta: model, timeout, runtime, prompt digest, ...
    # secret env var name -> digest of the value in the deploying environment, or None when not set here
    secret_env: Mapping[str, str | None] = field(default_factory=dict)
    # the variables the redis session store reads its URL and token from (agent.json's url_env,
    # token_env); None: sessions off
    session_env: tuple[str, str] | None = None
    keep_deployments: int | None = None  # targets.vercel.keep_deployments (issue 14): None keeps every one
    prompt: str = ""  # the prompt's digest, kept in the deployment's meta

    def meta(self) -> dict[str, str]:
        """The deployment's meta, secrets aside (their digests are added by the handler)."""
        return {META_AGENT: self.agent, META_CONTENT: self.content, META_FILES: file_map(self.files),
                META_SETTINGS: json.dumps(self.settings, sort_keys=True, separators=(",", ":")),
                META_PROMPT: self.prompt}


def file_map(files: Sequence[FileEntry]) -> str:
    return ",".join(f"{f.file}={f.sha[:10]}" for f in sorted(files, key=lambda f: f.file))


def parse_file_map(text: str | None) -> dict[str, str]:
    out = {}
    for item in (text or "").split(","):
        if "=" in item:
            name, sha = item.rsplit("=", 1)
            out[name] = sha
    return out


def display_settings(runtime_config: Mapping[str, Any], vercel_json: Mapping[str, Any], runtime: str) -> dict:
    """What the plan shows as `old -> new` (kept in meta, so readable back): never a secret."""
    prompt = str(runtime_config.get("system_prompt", ""))
    function = next(iter((vercel_json.get("functions") or {}).values()), {})
    settings = {
        "runtime": runtime,
        "model": runtime_config.get("model"),
        "max_tokens": runtime_config.get("max_tokens"),
        "temperature": runtime_config.get("temperature"),
        "timeout": runtime_config.get("timeout"),
        "stream": runtime_config.get("stream"),
        "prompt": "sha256:" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12],
    }
    if function.get("memory"):
        settings["memory"] = function["memory"]
    if vercel_json.get("regions"):
        settings["regions"] = ",".join(vercel_json["regions"])
    return settings


def desired_state(agent, settings, files: Sequence[Any], *, secret_values: Mapping[str, str]) -> Desired:
    """From the validated agent, its Vercel settings and the rendered files ("vercel/api/agent.ts", ...).

    Vercel has no secret store the function reads from: every secret of agent.yaml is copied from the
    deploying environment into a sensitive project environment variable (`secret_values` holds the
    ones set here; the values stay in memory and only their digests are kept).
    """
    options = settings.options
    project = agent.staged(options.get("project") or agent.name)
    entries, stored = [], []
    by_name: dict[str, bytes] = {}
    for f in files:
        name = f.path.removeprefix("vercel/")
        by_name[name] = f.content
        entries.append((name, f.content, 0o644))
        stored.append(FileEntry(name, hashlib.sha1(f.content).hexdigest(), len(f.content)))
    runtime_config = json.loads(by_name.get("agent.json", b"{}"))
    vercel_json = json.loads(by_name.get("vercel.json", b"{}"))
    names = sorted(agent.secrets)
    sessions = runtime_config.get("sessions") or {}
    session_env = (sessions["url_env"], sessions["token_env"]) if sessions.get("store") == "redis" else None
    return Desired(
        agent=agent.name, project=project, explicit_project=bool(options.get("project")),
        team=options.get("team"), files=tuple(sorted(stored, key=lambda f: f.file)),
        content=content_hash(entries),
        settings=display_settings(runtime_config, vercel_json, options.get("runtime", "edge")),
        secret_env={n: (secret_digest(secret_values[n], project, n) if n in secret_values else None) for n in names},
        session_env=session_env, keep_deployments=options.get("keep_deployments"), prompt=agent.prompt_digest,
    )


# ---------------------------------------------------------------- snapshot of the deployed state


@dataclass(frozen=True)
class EnvState:
    id: str
    type: str
    target: tuple[str, ...]
    value: str | None = None  # only for plain variables (the marker); Vercel never returns sensitive ones


@dataclass(frozen=True)
class ProjectState:
    id: str
    name: str
    envs: Mapping[str, EnvState]
    paused: bool = False  # the project's `paused` (issue 14: `agenthost pause`)
    production: str | None = None  # the id of the deployment production traffic goes to (project.targets.production)

    def owner(self) -> str | None:
        marker = self.envs.get(MARKER)
        return marker.value if marker is not None and marker.type == "plain" else None


@dataclass(frozen=True)
class DeploymentState:
    uid: str
    url: str | None
    ready_state: str
    meta: Mapping[str, str]
    alias: tuple[str, ...] = ()
    alias_assigned: bool = False
    created: int = 0

    def ours(self, agent: str) -> bool:
        return self.meta.get(META_AGENT) == agent


@dataclass(frozen=True)
class Snapshot:
    project: ProjectState | None = None
    latest: DeploymentState | None = None  # the live production deployment (else the latest READY one)
    ours: tuple[DeploymentState, ...] = ()  # every deployment of ours in the project (read for destroy)
    # pruning (issue 14), read only with keep_deployments: our production deployments, newest first
    production: tuple[DeploymentState, ...] = ()


# ---------------------------------------------------------------- planner


def _not_ours(desired: Desired, project: ProjectState) -> DeployError:
    owner = project.owner()
    whose = f"by the agent {owner}" if owner else "by this framework"
    return DeployError(
        f"the Vercel project {desired.project} already exists but was not created {whose} for the agent "
        f"{desired.agent}; the framework never deploys into a project it does not own unless told to: set "
        f"`project: {desired.project}` under targets.vercel in agent.yaml to deploy into it anyway (destroy then "
        "removes only the framework's deployments, never the project), or choose another project name")


def _project_ref(snap: Snapshot) -> Any:
    return snap.project.id if snap.project else {"$output": "project_id"}


def _plan_project(desired: Desired, snap: Snapshot, notes: list[str]) -> Resource:
    project = snap.project
    if project is None:
        return Resource("vercel project", desired.project, CREATE, (Change("framework", None, "none (plain project)"),
                                                                     Change(MARKER, None, desired.agent)),
                        (Operation("vercel.create_project", {
                            "name": desired.project, "framework": None,
                            "environmentVariables": [{"key": MARKER, "value": desired.agent, "type": "plain",
                                                      "target": ["production", "preview", "development"]}]},
                            "POST /v11/projects"),))
    owner = project.owner()
    if owner != desired.agent:
        if not desired.explicit_project:
            raise _not_ours(desired, project)
        notes.append(f"project {project.name} was not created by the framework for this agent: deployments go into "
                     "it as `project:` asks; destroy will remove only the framework's deployments")
    return Resource("vercel project", desired.project, UNCHANGED, detail=project.id)


def _plan_env(desired: Desired, snap: Snapshot, missing: list[str], notes: list[str]) -> tuple[list[Resource], bool]:
    """One resource per secret env var; True when the deployment must be rebuilt for them."""
    resources, rebuild = [], False
    envs = snap.project.envs if snap.project else {}
    meta = snap.latest.meta if snap.latest is not None and snap.latest.ours(desired.agent) else {}
    for name, wanted in desired.secret_env.items():
        current = envs.get(name)
        built = meta.get(META_SECRET + name)
        upsert = Operation("vercel.upsert_env", {
            "project": _project_ref(snap), "key": name, "value": {"$secret": name}, "type": "sensitive",
            "target": ["production"]}, "POST /v10/projects/{id}/env?upsert=true")
        if wanted is None:
            if current is None:
                missing.append(name)
                resources.append(Resource("environment variable", name, CREATE,
                                          (Change("value", None, "(missing: not set in this environment)"),)))
            else:
                notes.append(SECRETS.kept_note(name))
                resources.append(Resource("environment variable", name, UNCHANGED, detail=f"{current.type}, kept"))
            continue
        if current is None:
            resources.append(Resource("environment variable", name, CREATE,
                                      (Change("value", None, "(value hidden, sensitive)"),), (upsert,)))
            rebuild = True
        elif current.type != "sensitive" or "production" not in current.target or built != wanted:
            changes = []
            if current.type != "sensitive":
                changes.append(Change("type", current.type, "sensitive"))
            if "production" not in current.target:
                changes.append(Change("target", list(current.target), ["production"]))
            if built != wanted:
                changes.append(Change("value", "(value hidden)" if built else "(not known to the framework)",
                                      "(new value hidden)"))
            resources.append(Resource("environment variable", name, UPDATE, tuple(changes), (upsert,)))
            rebuild = True
        else:
            resources.append(Resource("environment variable", name, UNCHANGED, detail="sensitive, production"))
    # Secrets a deployment of ours was built with that agent.yaml no longer lists: ours to remove.
    ours = snap.project is None or snap.project.owner() == desired.agent
    for key in sorted(k.removeprefix(META_SECRET) for k in meta if k.startswith(META_SECRET)):
        if key not in desired.secret_env and key in envs and not ours:
            # a project we did not create: its variables are its owner's, even one we once upserted
            notes.append(f"environment variable {key} of project {desired.project} left alone (not ours)")
            rebuild = True
        elif key not in desired.secret_env and key in envs:
            resources.append(Resource("environment variable", key, DELETE, (Change("value", "(set)", None),), (
                Operation("vercel.delete_env", {"project": _project_ref(snap), "id": envs[key].id, "key": key},
                          "DELETE /v9/projects/{id}/env/{envId}"),)))
            rebuild = True
        elif key not in desired.secret_env:
            rebuild = True
    return resources, rebuild


def _settings(meta: Mapping[str, str]) -> dict[str, Any]:
    try:
        return json.loads(meta.get(META_SETTINGS) or "{}")
    except ValueError:
        return {}


def _deployment_changes(desired: Desired, latest: DeploymentState | None) -> list[Change]:
    if latest is None:
        return [Change("content", None, short(desired.content)),
                Change("files", None, [f.file for f in desired.files]),
                *[Change(k, None, v) for k, v in sorted(desired.settings.items())]]
    changes = []
    if latest.meta.get(META_CONTENT) != desired.content:
        changes.append(Change("content", short(latest.meta.get(META_CONTENT)), short(desired.content)))
        old_files = parse_file_map(latest.meta.get(META_FILES))
        new_files = parse_file_map(file_map(desired.files))
        differ = sorted(n for n in set(old_files) | set(new_files) if old_files.get(n) != new_files.get(n))
        if differ:
            changes.append(Change("files changed", None, differ))
    old = _settings(latest.meta)
    for key in sorted(set(old) | set(desired.settings)):
        if old.get(key) != desired.settings.get(key):
            label = key if key != "prompt" else PROMPT_LABEL
            changes.append(Change(label, old.get(key), desired.settings.get(key)))
    return changes


def _deploy_op(desired: Desired, snap: Snapshot) -> Operation:
    # Secret digests are not plan data: the handler computes them from the values it holds ("new"),
    # or keeps the digest of the deployed value ($keep) for a secret not set in this environment.
    digests = {name: ("new" if wanted is not None else {"$keep": name})
               for name, wanted in desired.secret_env.items()}
    return Operation("vercel.create_deployment", {
        "name": desired.project, "project": _project_ref(snap), "target": "production",
        "files": [{"file": f.file, "sha": f.sha, "size": f.size} for f in desired.files],
        "projectSettings": {"framework": None}, "meta": desired.meta(), "secret_digests": digests},
        "POST /v13/deployments (+ missing files)")


# The variables Vercel's Upstash integration (Marketplace, Storage) sets on a project it is connected to;
# the store falls back to them (framework/runtime/js/sessions.mjs)
KV_URL, KV_TOKEN = "KV_REST_API_URL", "KV_REST_API_TOKEN"


def session_notes(desired: Desired, snap: Snapshot) -> list[str]:
    """Which environment variables the redis session store needs and which the project lacks (for
    production); the framework creates no database: the project's owner connects one."""
    assert desired.session_env
    url, token = desired.session_env
    envs = snap.project.envs if snap.project else {}

    def present(name: str) -> bool:
        # a secret of agent.yaml set here is copied into the project by this deploy
        found = envs.get(name)
        return (found is not None and "production" in found.target) or desired.secret_env.get(name) is not None

    have, lack = [], []
    for mine, integration in ((url, KV_URL), (token, KV_TOKEN)):
        name = mine if present(mine) else integration if present(integration) else None
        (have if name else lack).append(name or f"{mine} (or {integration})")
    if not lack:
        return [f"sessions: Upstash Redis over REST, reading {' and '.join(have)} of the project (production)"]
    return [f"sessions need the project's production environment variables {url} and {token} (or {KV_URL} and "
            f"{KV_TOKEN}, which Vercel's Upstash integration sets); missing: {', '.join(lack)}. Connect an Upstash "
            f"Redis database to the project (Vercel Marketplace, Storage), or set them with `vercel env add NAME "
            f"production`, or list them under `secrets:` in agent.yaml to copy them from this environment; until "
            "then a request with sessions answers 503"]


def plan_deploy(desired: Desired, snap: Snapshot) -> DeployPlan:
    """Pure: what to do so that `snap` becomes `desired`."""
    notes: list[str] = []
    missing: list[str] = []
    resources = [_plan_project(desired, snap, notes)]
    env_resources, rebuild = _plan_env(desired, snap, missing, notes)
    resources += env_resources
    latest = snap.latest if snap.latest is not None and snap.latest.ours(desired.agent) else None
    label = f"{desired.project} (production)"
    if snap.latest is not None and latest is None:
        notes.append(f"the live production deployment {snap.latest.uid} was not made by the framework: "
                     "a new one replaces it")
    changes = _deployment_changes(desired, latest)
    if latest is None or changes or rebuild:
        if rebuild and not changes:
            changes = [Change("environment", "as deployed", "rebuilt with the new environment variables")]
        resources.append(Resource("production deployment", label, CREATE if latest is None else UPDATE,
                                  tuple(changes), (_deploy_op(desired, snap),)))
    else:
        alias = f"https://{latest.alias[0]}" if latest.alias else latest.url
        resources.append(Resource("production deployment", label, UNCHANGED, detail=f"{latest.uid} {alias or ''}"))
    # issue 14: resources[-1] is the production deployment just planned; a new one takes one of the N places
    resources += plan_prune(desired, snap, publishes=bool(resources[-1].operations))
    notes += [SECRETS.missing_note(name) for name in missing]
    if desired.session_env:
        notes += session_notes(desired, snap)
    where = f", team {desired.team}" if desired.team else ""
    if snap.project is not None and snap.project.paused:
        notes.append(PAUSED_NOTE)  # issue 14
    title = f"{desired.agent} on Vercel (project {desired.project}{where})"
    return DeployPlan(Plan("vercel", title, tuple(resources), tuple(notes)), tuple(missing))


def plan_destroy(agent: str, project_name: str, team: str | None, snap: Snapshot) -> Plan:
    """Pure: delete our project (with everything in it), or only our deployments in a project not ours."""
    resources, notes = [], []
    where = f", team {team}" if team else ""
    title = f"destroy {agent} on Vercel (project {project_name}{where})"
    project = snap.project
    if project is None:
        return Plan("vercel", title, ())
    if project.owner() == agent:
        resources.append(Resource("vercel project", project.name, DELETE, (
            Change("with", f"its {len(snap.ours)} deployment(s) and environment variables", None),), (
            Operation("vercel.delete_project", {"project": project.id}, "DELETE /v9/projects/{id}"),)))
        return Plan("vercel", title, tuple(resources))
    for deployment in snap.ours:
        resources.append(Resource("deployment", deployment.uid, DELETE, (Change("url", deployment.url, None),), (
            Operation("vercel.delete_deployment", {"id": deployment.uid}, "DELETE /v13/deployments/{id}"),)))
    notes.append(left_alone(f"Vercel project {project.name} and its environment variables"))
    return Plan("vercel", title, tuple(resources), tuple(notes))


def production_url(deployment: DeploymentState | None) -> str | None:
    if deployment is None:
        return None
    if deployment.alias:
        return f"https://{deployment.alias[0]}"
    return f"https://{deployment.url}" if deployment.url else None


# ---- pause / resume (issue 14)

# What a paused project's URL answers: 503 with the error code DEPLOYMENT_PAUSED
# (https://vercel.com/docs/errors/DEPLOYMENT_PAUSED, listed at https://vercel.com/docs/errors), in the
# x-vercel-error header and, for a client that is no browser, a plain-text body: message, code.
PAUSED_ANSWER = PausedAnswer(
    503, {"Content-Type": "text/plain; charset=utf-8", "x-vercel-error": "DEPLOYMENT_PAUSED"},
    b"This Deployment is paused by the owner.\n\nDEPLOYMENT_PAUSED\n",
    "503 DEPLOYMENT_PAUSED as Vercel answers while the project is paused")

PAUSED_NOTE = ("paused: deploy keeps it paused (a new production deployment is refused until then); "
               "`agenthost resume` lets requests in")


def plan_pause(agent: str, project_name: str, team: str | None, snap: Snapshot, resume: bool) -> Plan:
    """Pure: pause = POST /v1/projects/{id}/pause: Vercel stops serving the project's production
    deployment (every request is answered 503) and stops assigning production domains
    (https://vercel.com/docs/rest-api/projects/pause-a-project); resume = POST /v1/projects/{id}/unpause
    (https://vercel.com/docs/rest-api/projects/unpause-a-project). Nothing is deleted."""
    project = snap.project
    where = f", team {team}" if team else ""
    title = f"{agent} on Vercel (project {project_name}{where})"
    if project is None or snap.latest is None or not snap.latest.ours(agent):
        raise DeployError(f"{agent} is not deployed on Vercel (project {project_name} has no production deployment "
                          f"made by the framework): nothing to {'resume' if resume else 'pause'}")
    if project.paused != resume:
        return Plan("vercel", title, (Resource("project", project_name, UNCHANGED,
                                               detail="running" if resume else "paused"),))
    verb = "unpause" if resume else "pause"
    op = Operation(f"vercel.{verb}_project", {"project": project.id}, f"POST /v1/projects/{{id}}/{verb}")
    change = Change("paused", project.paused, not resume)
    return Plan("vercel", title, (Resource("project", project_name, UPDATE, (change,), (op,)),))


# ---- pruning old deployments (issue 14)

# still being built: never deleted (readyState,
# https://vercel.com/docs/rest-api/deployments/get-a-deployment-by-id-or-url)
_IN_PROGRESS = frozenset({"QUEUED", "INITIALIZING", "BUILDING"})


def plan_prune(desired: Desired, snap: Snapshot, publishes: bool) -> list[Resource]:
    """Pure: delete the framework's own production deployments beyond the newest `keep_deployments`
    (DELETE /v13/deployments/{id}, https://vercel.com/docs/rest-api/deployments/delete-a-deployment).
    Never the project's current production deployment (targets.production: after a rollback not the
    newest, https://vercel.com/docs/rest-api/projects/find-a-project-by-id-or-name), never one still
    building, never one another hand made (only `snap.production`, ours by meta, is considered). A
    deploy that creates a deployment gives it one of the N places. Nothing when keep_deployments is
    unset (every deployment is kept, as before) or nothing is beyond N."""
    keep = desired.keep_deployments
    if keep is None or snap.project is None:
        return []
    live = snap.project.production or (snap.latest.uid if snap.latest is not None else None)
    newest = sorted(snap.production, key=lambda d: d.created, reverse=True)
    kept = {d.uid for d in newest[:max(keep - (1 if publishes else 0), 0)]}
    doomed = [d for d in newest if d.uid not in kept and d.uid != live and d.ready_state not in _IN_PROGRESS]
    resources = [Resource("production deployments", desired.project, UNCHANGED,
                          detail=f"{len(newest)} made by the framework, keep the newest {keep}")]
    for deployment in reversed(doomed):  # oldest first
        resources.append(Resource("deployment", deployment.uid, DELETE, (Change("url", deployment.url, None),), (
            Operation("vercel.delete_deployment", {"id": deployment.uid}, "DELETE /v13/deployments/{id}"),)))
    return resources
