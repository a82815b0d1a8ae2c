"""Google Cloud Functions (2nd gen) deploy, the pure part: desired state, a snapshot of what is
deployed, and the planner. No SDK import here (gcp_api.py is the only module importing google-cloud).

One function per agent (`projects/P/locations/R/functions/<agent name>`), owned when it carries the
label `agent-framework = <agent name>`; the hash of the source zip's content rides in the label
`agent-framework-content` (63 hex characters: a label value is at most 63 characters). An update is
one PATCH whose update mask names only the fields that differ; the source is uploaded only when the
content label differs. Public access is `roles/run.invoker` for `allUsers` on the function's
underlying Cloud Run service, present only while agent.yaml says `public: true`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from framework.deploy.plan import CREATE, DELETE, UNCHANGED, UPDATE, Change, Operation, Plan, Resource
from framework.deploy.secrets import digest
from framework.deploy.skeleton import DeployPlan, Mark, SecretHome, desired_env, environment_changes, left_alone, short
from framework.deploy.versions import version_note
from framework.errors import DeployError
from framework.platforms.base import PausedAnswer

LABEL_AGENT = "agent-framework"
LABEL_CONTENT = "agent-framework-content"
LABEL_STAGE = "agent-framework-stage"
OWNER = Mark("label", LABEL_AGENT)
# on the function: this framework set the TTL policy on the sessions collection's `expires` (a Firestore
# field carries no labels), so destroy removes that policy and no other
LABEL_TTL = "agent-framework-ttl"
TTL_FIELD = "expires"  # the timestampValue the session store sets on every save
# label keys and values: at most 63 characters, lowercase letters, digits, _ and - (the Label
# requirements repeated in Google's API references, e.g. googleapis spanner_v1 Instance.labels)
LABEL_LIMIT = 63
ENTRY_POINT = "agent_handler"
INVOKER = "roles/run.invoker"
ALL_USERS = "allUsers"
ALLOW_ALL = 1  # ServiceConfig.IngressSettings.ALLOW_ALL
ALLOW_INTERNAL_ONLY = 2  # ... ALLOW_INTERNAL_ONLY: what `agenthost pause` sets (issue 14)
LABEL_PAUSED = "agent-framework-paused"  # set by `agenthost pause` (issue 14): deploy keeps the ingress closed
GEN_2 = 2  # Environment.GEN_2
TITLE = "Google Cloud Functions"

# https://cloud.google.com/functions/docs/configuring/memory: memory -> the vCPU given by default
# (128 MiB .083, 256 MiB .167, 512 MiB .333, 1 GiB .583, 2 GiB 1, 4 GiB 2, 8 GiB 2, 16 GiB 4, 32 GiB 8).
# More than 4 GiB needs 2 vCPU or more (Cloud Run's memory minimums), so availableCpu is set then;
# "If you change the amount of memory ... vCPU is recalculated": otherwise it is left to the default.
CPU_FOR_MEMORY = ((4096, None), (8192, "2"), (16384, "4"), (32768, "8"))
UNITS = {"k": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "Mi": 1024 ** 2, "Gi": 1024 ** 3}


def resolve_location(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    environ = os.environ if environ is None else environ
    project = options.get("project") or environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("CLOUDSDK_CORE_PROJECT")
    if not project:
        raise DeployError("no Google Cloud project: set `project:` under targets.gcp in agent.yaml "
                          "(or GOOGLE_CLOUD_PROJECT in the environment)")
    region = options.get("region")
    if not region:
        raise DeployError("no Google Cloud region: set `region:` under targets.gcp in agent.yaml (for example "
                          "region: us-central1)")
    return project, region


def memory_units(mb: int) -> str:
    """agent.yaml's MB (binary, like every platform's 'MB') in the API's units: '1Gi', '1536Mi'."""
    return f"{mb // 1024}Gi" if mb % 1024 == 0 else f"{mb}Mi"


def memory_mib(text: str | None) -> float | None:
    """'256M', '1Gi', '512Mi', '2G' -> MiB (None when empty: the platform's default)."""
    if not text:
        return None
    for unit in ("Mi", "Gi", "k", "M", "G"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * UNITS[unit] / 1024 ** 2
    return float(text) / 1024 ** 2


def required_cpu(memory_mb: int, request_concurrency: int) -> str | None:
    """The availableCpu to send, or None to leave the platform's default for the memory size."""
    for limit, cpu in CPU_FOR_MEMORY:
        if memory_mb <= limit:
            if cpu is None and request_concurrency > 1:
                # "Setting a concurrency value greater than 1 requires a function to have 1 or more vCPUs"
                # (https://cloud.google.com/functions/docs/configuring/concurrency)
                return "1" if memory_mb < 4096 else None
            return cpu
    return "8"


def secret_home(project: str) -> SecretHome:
    """Where the function keeps the secrets copied from the deploying environment, and its store."""
    return SecretHome(
        "gcp", copied_into="the function's environment variables", keeper="the deployed function",
        holder="the function", reference=f"gcp: projects/{project}/secrets/NAME",
        otherwise=lambda name: (f", or reference a Secret Manager secret: secrets: {{{name}: "
                                f"{{gcp: projects/{project}/secrets/...}}}}"))


def parse_secret(ref: str) -> tuple[str, str, str]:
    """projects/P/secrets/N[/versions/V] -> (P, N, V or 'latest')."""
    parts = ref.split("/")
    return parts[1], parts[3], parts[5] if len(parts) > 5 else "latest"


# ---------------------------------------------------------------- desired state


@dataclass(frozen=True)
class Desired:
    name: str
    project: str
    region: str
    runtime: str
    timeout: int
    memory: str  # in the API's units
    cpu: str | None
    min_instances: int
    max_instances: int
    request_concurrency: int
    public: bool
    content: str  # hex SHA-256 of the source zip's entries
    prompt: str = ""
    prompt_digest: str = ""  # Agent.prompt_digest: kept with each revision (VERSION_ENV)
    # environment variables from the deploying environment: name -> digest, or None when not set here
    secret_env: Mapping[str, str | None] = field(default_factory=dict)
    # name -> (project, secret, version) in Secret Manager
    secret_refs: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    # projects/P/databases/D/collectionGroups/C/fields/expires of agent.json's sessions (None: sessions off)
    ttl_field: str | None = None
    claim_ttl: bool = False  # the function carries LABEL_TTL (set by plan_deploy from the snapshot)
    stage: str | None = None  # agent.yaml's stage, a label on the function

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def function_name(self) -> str:
        return f"{self.parent}/functions/{self.name}"

    @property
    def version_note(self) -> str:
        return version_note(self.content, self.prompt_digest)

    @property
    def content_label(self) -> str:
        return self.content[:LABEL_LIMIT]


def ttl_field(sessions: Mapping[str, Any] | None, project: str) -> str | None:
    """The Firestore field the TTL policy is on, from agent.json's "sessions" (None: no Firestore store)."""
    if not sessions or sessions.get("store") != "firestore":
        return None
    return (f"projects/{sessions.get('project') or project}/databases/{sessions.get('database') or '(default)'}/"
            f"collectionGroups/{sessions['collection']}/fields/{TTL_FIELD}")


def desired_state(agent, settings, *, project: str, region: str, content: str, secrets,
                  sessions: Mapping[str, Any] | None = None) -> Desired:
    """From the validated agent, its gcp settings and the package; `secrets` is a SecretValues."""
    options = settings.options
    refs, from_env = secret_home(project).split(agent.secrets, secrets)
    request_concurrency = int(options.get("request_concurrency", 1))
    return Desired(
        name=agent.name, project=project, region=region, runtime=options["runtime"], timeout=settings.timeout,
        memory=memory_units(settings.memory), cpu=required_cpu(settings.memory, request_concurrency),
        min_instances=settings.concurrency.warm, max_instances=settings.concurrency.max,
        request_concurrency=request_concurrency, public=agent.public, content=content, prompt=agent.system_prompt,
        prompt_digest=agent.prompt_digest,
        secret_env=from_env, secret_refs={name: parse_secret(ref) for name, ref in refs.items()},
        ttl_field=ttl_field(sessions, project), stage=agent.stage)


# ---------------------------------------------------------------- snapshot of the deployed state


@dataclass(frozen=True)
class FunctionState:
    """What is deployed (environment values as digests, never values)."""

    name: str
    state: str  # ACTIVE | FAILED | DEPLOYING | DELETING | UNKNOWN
    labels: Mapping[str, str]
    runtime: str = ""
    entry_point: str = ""
    source: Mapping[str, str] = field(default_factory=dict)
    timeout: int = 0
    memory: str = ""
    cpu: str = ""
    min_instances: int = 0
    max_instances: int = 0
    request_concurrency: int = 0
    ingress: int = 0
    all_traffic: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[tuple[str, str, str, str], ...] = ()  # (key, project, secret, version), sorted
    url: str | None = None
    run_uri: str | None = None
    service: str | None = None
    revision: str | None = None
    update_time: str | None = None


@dataclass(frozen=True)
class Snapshot:
    project: str
    region: str
    function: FunctionState | None = None
    public: bool | None = None  # allUsers holds roles/run.invoker on the service (None: no service yet)
    deployed_prompt: str | None = None  # the system prompt in the deployed source, when it could be read
    ttl: str | None = None  # the sessions field's ttlConfig.state: CREATING, ACTIVE, NEEDS_REPAIR (None: no policy)


# ---------------------------------------------------------------- planner


def _owned(function: FunctionState, name: str) -> bool:
    return OWNER.on(function.labels, name)


def _not_ours(desired: Desired) -> DeployError:
    return OWNER.refusal(f"the Cloud Function {desired.name}", f"{desired.project}/{desired.region}", desired.name,
                         "rename the agent, or remove or rename that function")


# Set by the platform itself on every 2nd gen function since mid-2024 (a known permanent diff in
# Terraform, GoogleCloudPlatform/magic-modules#11092): never ours to remove.
PLATFORM_ENV = frozenset({"LOG_EXECUTION_ID"})
# Each Cloud Run revision keeps the environment it was deployed with (Revision.containers[].env,
# https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions), and the function's
# labels only the latest: this variable carries the revision's content hash and prompt digest to history.
VERSION_ENV = "AGENT_FRAMEWORK_VERSION"


def _with_version(env: Mapping[str, str | None], desired: Desired) -> dict[str, str | None]:
    """The environment to compare, the version note among it (as a digest, as the snapshot reads values)."""
    return {**env, VERSION_ENV: digest(desired.version_note)}


def _env_body(env: Mapping[str, str | None], desired: Desired) -> dict[str, Any]:
    """Placeholders the executor fills in for the copied secrets; the version note, not secret, as written."""
    return {name: (desired.version_note if name == VERSION_ENV else {"$secret": name} if value is not None
                   else {"$keep": name}) for name, value in sorted(env.items())}


def _secrets_body(desired: Desired) -> list[dict[str, str]]:
    return [{"key": key, "projectId": project, "secret": secret, "version": version}
            for key, (project, secret, version) in sorted(desired.secret_refs.items())]


def _secret_tuples(desired: Desired) -> tuple[tuple[str, str, str, str], ...]:
    return tuple(sorted((key, *ref) for key, ref in desired.secret_refs.items()))


def _service_body(desired: Desired, env: Mapping[str, str | None]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "timeoutSeconds": desired.timeout, "availableMemory": desired.memory,
        "minInstanceCount": desired.min_instances, "maxInstanceCount": desired.max_instances,
        "maxInstanceRequestConcurrency": desired.request_concurrency, "ingressSettings": ALLOW_ALL,
        "allTrafficOnLatestRevision": True, "environmentVariables": _env_body(env, desired),
        "secretEnvironmentVariables": _secrets_body(desired)}
    if desired.cpu:
        body["availableCpu"] = desired.cpu
    return body


def _labels(desired: Desired, deployed: Mapping[str, str] | None = None) -> dict[str, str]:
    # labels someone added by hand stay: ours are merged in, never the whole map replaced blindly
    ours = {LABEL_AGENT: desired.name, LABEL_CONTENT: desired.content_label}
    if desired.stage:
        ours[LABEL_STAGE] = desired.stage
    if desired.claim_ttl:
        ours[LABEL_TTL] = TTL_FIELD
    return dict(sorted({**(deployed or {}), **ours}.items()))


def _upload(desired: Desired) -> Operation:
    return Operation("gcp.upload_source", {"parent": desired.parent, "package": {"$package": desired.content}},
                     "generateUploadUrl + PUT")


def _build_body(desired: Desired, source: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"runtime": desired.runtime, "entryPoint": ENTRY_POINT}
    if source:
        body["source"] = {"storageSource": {"$output": "storage_source"}}
    return body


def _code_changes(desired: Desired, snap: Snapshot, old_label: str | None) -> list[Change]:
    changes = [Change("code (content sha256)", short(old_label), short(desired.content))]
    if snap.deployed_prompt is not None and snap.deployed_prompt != desired.prompt:
        changes.append(Change("prompt", snap.deployed_prompt, desired.prompt, text=True))
    return changes


def _plan_new_function(desired: Desired) -> tuple[list[Resource], list[str]]:
    env, missing = desired_env(desired.secret_env, None)
    env = _with_version(env, desired)
    function = {"name": desired.function_name, "environment": GEN_2,
                "buildConfig": _build_body(desired, True), "serviceConfig": _service_body(desired, env),
                "labels": _labels(desired)}
    changes = [Change("code (content sha256)", None, short(desired.content)), Change("runtime", None, desired.runtime),
               Change("timeout", None, desired.timeout), Change("memory", None, desired.memory)]
    if desired.cpu:
        changes.append(Change("cpu", None, desired.cpu))
    changes += [Change("instances (warm..max)", None, f"{desired.min_instances}..{desired.max_instances}"),
                Change("requests per instance", None, desired.request_concurrency)]
    changes += [Change(f"environment {n}", None, "(value hidden)") for n in sorted(env) if n != VERSION_ENV]
    changes += [Change(f"secret {key}", None, f"projects/{p}/secrets/{s}/versions/{v}")
                for key, (p, s, v) in sorted(desired.secret_refs.items())]
    source = Resource("source package", f"{desired.name}.zip", CREATE,
                      (Change("content", None, short(desired.content)),), (_upload(desired),))
    create = Resource("cloud function", desired.function_name, CREATE, tuple(changes), (Operation(
        "gcp.create_function", {"parent": desired.parent, "function_id": desired.name, "function": function},
        "CreateFunction"),))
    return [source, create], missing


def _field_changes(desired: Desired, function: FunctionState, env: Mapping[str, str | None]
                   ) -> tuple[list[Change], dict[str, Any], list[str]]:
    """(display changes, the service/build fields to send, update-mask paths) for what differs."""
    changes: list[Change] = []
    build: dict[str, Any] = {}
    service: dict[str, Any] = {}
    mask: list[str] = []

    def differ(label: str, path: str, body: dict, key: str, old: Any, new: Any) -> None:
        changes.append(Change(label, old, new))
        body[key] = new
        mask.append(path)

    if function.runtime != desired.runtime:
        differ("runtime", "build_config.runtime", build, "runtime", function.runtime, desired.runtime)
    if function.entry_point != ENTRY_POINT:
        differ("entry point", "build_config.entry_point", build, "entryPoint", function.entry_point, ENTRY_POINT)
    if function.timeout != desired.timeout:
        differ("timeout", "service_config.timeout_seconds", service, "timeoutSeconds", function.timeout,
               desired.timeout)
    memory_changed = memory_mib(function.memory or "256M") != memory_mib(desired.memory)
    if memory_changed:
        differ("memory", "service_config.available_memory", service, "availableMemory", function.memory or None,
               desired.memory)
    if desired.cpu is not None:
        if not function.cpu or float(function.cpu) != float(desired.cpu):
            differ("cpu", "service_config.available_cpu", service, "availableCpu", function.cpu or None, desired.cpu)
    elif memory_changed and function.cpu:
        # in the mask, absent from the body: the platform recomputes the vCPU for the new memory
        changes.append(Change("cpu", function.cpu, "(default for the memory)"))
        mask.append("service_config.available_cpu")
    if function.min_instances != desired.min_instances:
        differ("warm instances (min)", "service_config.min_instance_count", service, "minInstanceCount",
               function.min_instances, desired.min_instances)
    if function.max_instances != desired.max_instances:
        differ("max instances", "service_config.max_instance_count", service, "maxInstanceCount",
               function.max_instances, desired.max_instances)
    if function.request_concurrency != desired.request_concurrency:
        differ("requests per instance", "service_config.max_instance_request_concurrency", service,
               "maxInstanceRequestConcurrency", function.request_concurrency, desired.request_concurrency)
    ingress = ALLOW_INTERNAL_ONLY if LABEL_PAUSED in function.labels else ALLOW_ALL  # issue 14: paused stays so
    if function.ingress != ingress:
        differ("ingress", "service_config.ingress_settings", service, "ingressSettings", function.ingress, ingress)
    if not function.all_traffic:
        differ("all traffic on latest revision", "service_config.all_traffic_on_latest_revision", service,
               "allTrafficOnLatestRevision", False, True)
    deployed_env = {name: value for name, value in function.environment.items() if name not in PLATFORM_ENV}
    env_changes = environment_changes(env, deployed_env)
    note = [c for c in env_changes if c.field == f"environment {VERSION_ENV}"]
    changes.extend(c for c in env_changes if c not in note)
    if note and function.labels.get(LABEL_CONTENT) == desired.content_label:
        # with the code it changes with the code, which says so; alone, the revision is from before the note
        changes.append(Change("version note (for history)", None, short(desired.content)))
    if env_changes:
        service["environmentVariables"] = _env_body(env, desired)
        mask.append("service_config.environment_variables")
    wanted = _secret_tuples(desired)
    if function.secrets != wanted:
        old = {s[0]: f"projects/{s[1]}/secrets/{s[2]}/versions/{s[3]}" for s in function.secrets}
        new = {s[0]: f"projects/{s[1]}/secrets/{s[2]}/versions/{s[3]}" for s in wanted}
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changes.append(Change(f"secret {key}", old.get(key), new.get(key)))
        service["secretEnvironmentVariables"] = _secrets_body(desired)
        mask.append("service_config.secret_environment_variables")
    return changes, {"buildConfig": build, "serviceConfig": service}, mask


def _plan_existing_function(desired: Desired, snap: Snapshot) -> tuple[list[Resource], list[str]]:
    function = snap.function
    assert function is not None
    if not _owned(function, desired.name):
        raise _not_ours(desired)
    env, missing = desired_env(desired.secret_env, function.environment)
    env = _with_version(env, desired)
    old_label = function.labels.get(LABEL_CONTENT)
    # A FAILED function (say, a build that failed) gets its source again even if the label matches.
    code_current = old_label == desired.content_label and function.state != "FAILED"
    changes, bodies, mask = _field_changes(desired, function, env)
    resources: list[Resource] = []
    body: dict[str, Any] = {"name": desired.function_name}
    if not code_current:
        resources.append(Resource("source package", f"{desired.name}.zip", CREATE, (
            Change("content", short(old_label), short(desired.content)),), (_upload(desired),)))
        changes = _code_changes(desired, snap, old_label) + changes
        bodies["buildConfig"]["source"] = {"storageSource": {"$output": "storage_source"}}
        mask.insert(0, "build_config.source")
        if function.state == "FAILED":
            changes.insert(0, Change("state", "FAILED", "redeployed"))
    labels = _labels(desired, function.labels)
    if labels != dict(function.labels):
        body["labels"] = labels
        mask.append("labels")
    for key, value in bodies.items():
        if value:
            body[key] = value
    if not mask:
        detail = f"revision {function.revision}" if function.revision else f"code {short(old_label)}"
        return [Resource("cloud function", desired.function_name, UNCHANGED, detail=detail)], missing
    if len(mask) == 1 and mask[0] == "labels" and not changes:
        changes = [Change("labels", None, f"{LABEL_AGENT}, {LABEL_CONTENT}")]
    update = Operation("gcp.update_function", {"function": body, "update_mask": mask}, "UpdateFunction (PATCH)")
    resources.append(Resource("cloud function", desired.function_name, UPDATE, tuple(changes), (update,)))
    return resources, missing


def _plan_invoker(desired: Desired, snap: Snapshot, function_ops: bool) -> Resource:
    service = snap.function.service if snap.function and snap.function.service else None
    name = service or f"{desired.parent}/services/{desired.name}"
    if service is None and not function_ops:
        service = name  # no create/update to report it: the service is named after the function
    label = "public invoker (allUsers run.invoker)"
    current = bool(snap.public)
    if current == desired.public:
        return Resource(label, name, UNCHANGED, detail="public" if current else "callers need an identity token")
    args = {"service": service or {"$output": "service"}, "public": desired.public}
    op = Operation("gcp.set_invoker", args, "getIamPolicy + setIamPolicy")
    if desired.public:
        return Resource(label, name, CREATE, (Change(f"{INVOKER} for {ALL_USERS}", None, "granted"),), (op,))
    return Resource(label, name, DELETE, (Change(f"{INVOKER} for {ALL_USERS}", "granted", None),), (op,))


def title(desired_or_name: Desired | str, project: str, region: str, verb: str = "") -> str:
    name = desired_or_name.name if isinstance(desired_or_name, Desired) else desired_or_name
    return f"{verb}{name} on {TITLE} (project {project}, region {region})"


def _ttl_operation(name: str, enable: bool) -> Operation:
    # https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.collectionGroups.fields/patch:
    # {"ttlConfig": {}} turns TTL on for the field, {} (same mask) off; a long-running operation
    return Operation("firestore.ttl", {"name": name, "enable": enable},
                     "PATCH collectionGroups/fields?updateMask=ttlConfig")


def _plan_ttl(desired: Desired, snap: Snapshot, ours: bool) -> tuple[Resource, list[str]]:
    name = desired.ttl_field
    assert name
    collection = name.split("/collectionGroups/")[1].split("/")[0]
    label = "firestore ttl policy"
    notes = [f"Firestore deletes a session document once its `{TTL_FIELD}` has passed (typically within 24 hours); "
             f"destroy removes the TTL policy and leaves the documents of {collection} (delete them with "
             f"`gcloud firestore bulk-delete --collection-ids={collection}`)",
             "the function's runtime service account needs roles/datastore.user to read and write the sessions"]
    if snap.ttl in ("ACTIVE", "CREATING"):
        if not ours:
            notes.insert(0, f"the TTL policy on {collection}.{TTL_FIELD} was not set by this framework for this "
                            "agent: destroy leaves it")
        return Resource(label, f"{collection}.{TTL_FIELD}", UNCHANGED, detail=snap.ttl.lower()), notes
    changes = (Change("field", None, name), Change("from", None, "the collection group's documents"))
    action = CREATE if snap.ttl is None else UPDATE  # NEEDS_REPAIR: set again
    return Resource(label, f"{collection}.{TTL_FIELD}", action, changes, (_ttl_operation(name, True),)), notes


def plan_deploy(desired: Desired, snap: Snapshot) -> DeployPlan:
    """Pure: what to do so that `snap` becomes `desired`."""
    ttl_ours = bool(snap.function and snap.function.labels.get(LABEL_TTL) == TTL_FIELD)
    if desired.ttl_field:
        # the function records the policy as ours when this deploy sets it (or an earlier one did)
        claim = ttl_ours or snap.ttl not in ("ACTIVE", "CREATING")
        desired = dataclasses.replace(desired, claim_ttl=claim)
    if snap.function is None:
        resources, missing = _plan_new_function(desired)
    else:
        resources, missing = _plan_existing_function(desired, snap)
    resources.append(_plan_invoker(desired, snap, any(r.operations for r in resources)))
    notes = secret_home(desired.project).notes(desired.secret_env, missing)
    if snap.function is not None and LABEL_PAUSED in snap.function.labels:
        notes.append(PAUSED_NOTE)
    if desired.ttl_field:
        ttl, ttl_notes = _plan_ttl(desired, snap, ttl_ours)
        resources.append(ttl)
        notes += ttl_notes
    if desired.secret_refs:
        notes.append("Secret Manager secrets are read by the function's runtime service account: it needs "
                     "roles/secretmanager.secretAccessor on " + ", ".join(
                         sorted({f"projects/{p}/secrets/{s}" for p, s, _ in desired.secret_refs.values()})))
    return DeployPlan(Plan("gcp", title(desired, desired.project, desired.region), tuple(resources), tuple(notes)),
                      tuple(missing))


def plan_destroy(name: str, project: str, region: str, snap: Snapshot, ttl_field: str | None = None) -> Plan:
    """Pure: delete the function when it carries our label (its Cloud Run service and IAM go with it),
    and first the TTL policy it records as set by this framework (the documents stay)."""
    resources, notes = [], []
    function = snap.function
    if ttl_field and snap.ttl is not None:
        collection = ttl_field.split("/collectionGroups/")[1].split("/")[0]
        if function is not None and _owned(function, name) and function.labels.get(LABEL_TTL) == TTL_FIELD:
            resources.append(Resource("firestore ttl policy", f"{collection}.{TTL_FIELD}", DELETE, (
                Change("field", ttl_field, None),), (_ttl_operation(ttl_field, False),)))
            notes.append(f"the documents of {collection} stay: Firestore no longer deletes them by `{TTL_FIELD}` "
                         f"(delete them with `gcloud firestore bulk-delete --collection-ids={collection}`)")
        else:
            notes.append(left_alone(f"the TTL policy on {collection}.{TTL_FIELD}"))
    if function is not None:
        if _owned(function, name):
            resources.append(Resource("cloud function", function.name, DELETE, (
                Change("with", "its Cloud Run service, revisions and invoker policy", None),),
                (Operation("gcp.delete_function", {"name": function.name}, "DeleteFunction"),)))
        else:
            notes.append(left_alone(f"Cloud Function {function.name}"))
    return Plan("gcp", title(name, project, region, "destroy "), tuple(resources), tuple(notes))


def outputs(name: str, project: str, region: str, snap: Snapshot,
            results: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a deploy reports (from the snapshot and what was done)."""
    results = results or {}
    function = snap.function
    url = results.get("url") or (function.url if function else None)
    revision = results.get("revision") or (function.revision if function else None)
    service = results.get("service") or (function.service if function else None)
    summary = f"{name} {('revision ' + revision) if revision else '(not deployed)'} in {region} (project {project})"
    return {"target": "gcp", "url": url, "summary": summary, "function": name, "version": revision,
            "alias": None, "project": project, "region": region, "function_name": f"projects/{project}/locations/"
            f"{region}/functions/{name}", "service": service, "revision": revision,
            "run_uri": results.get("run_uri") or (function.run_uri if function else None)}


# ---- pause / resume (issue 14)

PAUSED_NOTE = "paused: deploy keeps it paused (ingress internal-only); `agenthost resume` lets requests in"

# What a request from the internet gets once ingress is internal-only: Google's front end refuses it
# with 404 before any instance runs ("All other requests are rejected with a 404 error",
# https://cloud.google.com/functions/1stgendocs/networking/network-settings#ingress_settings; Cloud Run,
# which serves 2nd gen functions: https://cloud.google.com/run/docs/securing/ingress), its HTML page
# "Error: Page not found".
PAUSED_ANSWER = PausedAnswer(
    404, {"Content-Type": "text/html; charset=UTF-8"},
    b"<html><head>\n<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n"
    b"<title>404 Page not found</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n"
    b"<h1>Error: Page not found</h1>\n<h2>The requested URL was not found on this server.</h2>\n"
    b"<h2></h2>\n</body></html>\n",
    "404 as Google answers a request from the internet with ingress internal-only")


def plan_pause(name: str, project: str, region: str, snap: Snapshot, resume: bool) -> Plan:
    """Pure: pause = ingress ALLOW_INTERNAL_ONLY ("Allow HTTP traffic from only private VPC sources",
    https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions#ingresssettings),
    so every request from the internet is refused by Google's front end before the function runs, and
    the pause label; resume = ALLOW_ALL and the label removed. One UpdateFunction, nothing deleted.
    (Cloud Functions cannot scale to no instance: maxInstanceCount 0 means "no limit".)"""
    function = snap.function
    where = title(name, project, region)
    if function is None or not _owned(function, name):
        raise DeployError(f"{name} is not deployed on Google Cloud Functions in {project}/{region} (or the function "
                          f"is not ours): nothing to {'resume' if resume else 'pause'}")
    marked = LABEL_PAUSED in function.labels
    ingress = ALLOW_ALL if resume else ALLOW_INTERNAL_ONLY
    labels = {k: v for k, v in function.labels.items() if k != LABEL_PAUSED}
    if not resume:
        labels[LABEL_PAUSED] = "true"
    if function.ingress == ingress and marked != resume:
        return Plan("gcp", where, (Resource("cloud function", function.name, UNCHANGED,
                                            detail="running" if resume else "paused"),))
    body = {"name": function.name, "serviceConfig": {"ingressSettings": ingress},
            "labels": dict(sorted(labels.items()))}
    changes = (Change("ingress", "internal only" if function.ingress == ALLOW_INTERNAL_ONLY else function.ingress,
                      "all" if resume else "internal only"),
               Change(f"label {LABEL_PAUSED}", "true" if marked else None, None if resume else "true"))
    update = Operation("gcp.update_function", {"function": body,
                                               "update_mask": ["service_config.ingress_settings", "labels"]},
                       "UpdateFunction (PATCH)")
    return Plan("gcp", where, (Resource("cloud function", function.name, UPDATE, changes, (update,)),))
