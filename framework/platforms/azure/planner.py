"""Azure Functions deploy, the pure part: desired state, a snapshot of what is deployed, and the planner.

Resources: a hosting plan (serverfarm: Flex Consumption FC1, or Elastic Premium EP1-3), the function
app (site) on it, its app settings (merged with what the user set there, never replaced blindly) and
the code package published through Kudu. The plan and the site carry the tag
`agent-framework:agent = <agent name>`; anything without it is never changed or deleted. The code's
sha256 is kept in the app setting AGENT_FRAMEWORK_PACKAGE (written after a publish completes, so an
interrupted publish is redone), with per-file digests in AGENT_FRAMEWORK_FILES to show what changed.
No SDK here: reading and applying live in azure_api.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from framework.deploy.plan import CREATE, DELETE, UNCHANGED, UPDATE, Change, Operation, Plan, Resource
from framework.deploy.skeleton import DeployPlan, Mark, SecretHome, left_alone
from framework.errors import DeployError
from framework.platforms.azure.limits import instance_memory, premium_sku
from framework.platforms.base import PausedAnswer

TAG_AGENT = "agent-framework:agent"
TAG_STAGE = "agent-framework:stage"
OWNER = Mark("tag", TAG_AGENT)
SETTING_PACKAGE = "AGENT_FRAMEWORK_PACKAGE"  # sha256 (hex) of the published zip
SETTING_FILES = "AGENT_FRAMEWORK_FILES"  # "name=digest12,..." of the zip's entries (what changed, for people)
SETTING_OWNED = "AGENT_FRAMEWORK_SETTINGS"  # names of the other settings the framework manages (to remove later)
# "<account>/<table>": the sessions table this framework created (a table carries no tags, so the
# app records it); only that table is ever deleted, by destroy
SETTING_TABLE = "AGENT_FRAMEWORK_SESSIONS_TABLE"
TABLE_API = "2023-05-01"  # https://learn.microsoft.com/en-us/rest/api/storagerp/table/create
# https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles/storage
TABLE_ROLE = "Storage Table Data Contributor"
TABLE_ROLE_ID = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
FUNCTION = "agent"  # the function's name: the Python function decorated with @app.route in function_app.py
ROUTE = "api/agent"
ARM_ENDPOINT = "https://management.azure.com"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
STORAGE = re.compile(r"^https://([a-z0-9]{3,24})\.blob\.core\.windows\.net/([a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?)/?$")
# With this secret listed in agent.yaml, Flex reads the deployment container with that connection
# string (from the deploying environment, or a Key Vault reference) instead of the app's identity.
# The name and the functionAppConfig shape {deployment.storage{type: blobContainer, value, authentication
# {type: StorageAccountConnectionString, storageAccountConnectionStringName}}, runtime, scaleAndConcurrency
# {maximumInstanceCount, instanceMemoryMB}} are those of Microsoft's own tools (VS Code Azure Functions
# extension, Az.Functions New-AzFunctionApp) and public Bicep templates, which also set maximumInstanceCount 10.
STORAGE_CONNECTION = "DEPLOYMENT_STORAGE_CONNECTION_STRING"
HOST_STORAGE = "AzureWebJobsStorage__accountName"
SECRETS = SecretHome(
    "azure", copied_into="the function app's settings", keeper="the function app", holder="the function app",
    reference="azure: https://VAULT.vault.azure.net/secrets/NAME/",
    otherwise=lambda name: (f", or reference a Key Vault secret: secrets: {{{name}: {{azure: "
                            "https://VAULT.vault.azure.net/secrets/NAME/}}}"))
PREMIUM_SETTINGS = {"FUNCTIONS_EXTENSION_VERSION": "~4", "FUNCTIONS_WORKER_RUNTIME": "python",
                    "SCM_DO_BUILD_DURING_DEPLOYMENT": "true", "ENABLE_ORYX_BUILD": "true"}


def key_vault_reference(uri: str) -> str:
    return f"@Microsoft.KeyVault(SecretUri={uri})"


def resolve_location(settings, environ: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """(subscription, resource group, region) from agent.yaml and the environment, or a clear error."""
    environ = os.environ if environ is None else environ
    options = settings.options
    subscription = options.get("subscription") or environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        raise DeployError("no Azure subscription: set `subscription:` under targets.azure in agent.yaml "
                          "(or AZURE_SUBSCRIPTION_ID in the environment)")
    if not GUID.match(subscription):
        raise DeployError(f"the Azure subscription must be a GUID such as 00000000-0000-0000-0000-000000000000, "
                          f"not {subscription!r}")
    group = options.get("resource_group")
    if not group:
        raise DeployError("no Azure resource group: set `resource_group:` under targets.azure in agent.yaml "
                          "(the framework deploys into an existing resource group; create one with "
                          "`az group create -n NAME -l REGION`)")
    region = options.get("region") or environ.get("AZURE_REGION")
    if not region:
        raise DeployError("no Azure region: set `region:` under targets.azure in agent.yaml (e.g. westeurope)")
    return subscription, group, region


# ---------------------------------------------------------------- desired state


@dataclass(frozen=True)
class Desired:
    name: str  # the agent
    app: str  # the function app (site) name
    subscription: str
    resource_group: str
    region: str
    plan_kind: str  # "flex" | "premium"
    python: str
    memory: int  # Flex instance memory (MB)
    sku: str  # "FC1" | "EP1" | "EP2" | "EP3"
    max_instances: int
    warm: int
    public: bool
    package_sha256: str
    files: str  # SETTING_FILES value
    storage: str | None = None  # Flex deployment container URL
    # app settings: plain values (Key Vault references, platform settings), and secrets from the
    # deploying environment as name -> digest (None: not set here, keep the deployed value)
    settings: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, str | None] = field(default_factory=dict)
    # agent.json's "sessions" table and its storage account (None: sessions off)
    session_table: str | None = None
    session_account: str | None = None
    stage: str | None = None  # agent.yaml's stage, tagged on the plan and the app

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_AGENT: self.name, **({TAG_STAGE: self.stage} if self.stage else {})}

    @property
    def table_marker(self) -> str | None:
        return f"{self.session_account}/{self.session_table}" if self.session_table else None

    @property
    def table_scope(self) -> str:
        return table_scope(self.subscription, self.resource_group, self.session_account or "", self.session_table or "")

    @property
    def plan_name(self) -> str:
        return f"{self.app}-plan"

    @property
    def scope(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/Microsoft.Web"

    @property
    def plan_id(self) -> str:
        return f"{self.scope}/serverfarms/{self.plan_name}"

    @property
    def always_ready(self) -> int:
        # Elastic Premium always keeps at least one instance (targets/azure.py warns about warm: 0)
        return self.warm if self.plan_kind == "flex" else max(1, self.warm)

    @property
    def storage_auth(self) -> dict[str, Any]:
        if STORAGE_CONNECTION in self.settings or STORAGE_CONNECTION in self.secret_env:
            return {"type": "StorageAccountConnectionString", "storageAccountConnectionStringName": STORAGE_CONNECTION}
        return {"type": "SystemAssignedIdentity"}


def table_scope(subscription: str, group: str, account: str, table: str) -> str:
    return (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/"
            f"{account}/tableServices/default/tables/{table}")


def plan_sku(kind: str, sku: str) -> dict[str, Any]:
    if kind == "flex":
        return {"name": "FC1", "tier": "FlexConsumption"}
    return {"name": sku, "tier": "ElasticPremium", "family": "EP"}


def desired_state(agent, settings, *, subscription: str, resource_group: str, region: str, package_sha256: str,
                  files: str, secrets, sessions: Mapping[str, Any] | None = None) -> Desired:
    """From the validated agent, its Azure settings and the package; `secrets` is a SecretValues."""
    options = settings.options
    kind = options.get("plan", "flex")
    if kind == "consumption":
        # https://learn.microsoft.com/azure/azure-functions/functions-versions: "The Linux Consumption plan
        # isn't getting any new features or language versions ... Migrate your apps to the Flex Consumption plan"
        raise DeployError("the legacy Linux Consumption plan is retiring (30 Sep 2028) and gets no new Python "
                          "versions, so the framework does not create apps on it: use `plan: flex` (Flex "
                          "Consumption, the default) or `plan: premium` under targets.azure")
    storage = options.get("storage")
    if kind == "flex" and not storage:
        raise DeployError(
            "Flex Consumption keeps the deployed package in a blob container, which the framework cannot create: "
            "set `storage: https://ACCOUNT.blob.core.windows.net/CONTAINER` under targets.azure "
            "(create it with `az storage account create` and `az storage container create`)")
    match = STORAGE.match(storage) if storage else None
    if storage and not match:
        raise DeployError(f"targets.azure.storage must be https://ACCOUNT.blob.core.windows.net/CONTAINER, "
                          f"not {storage!r}")
    refs, from_env = SECRETS.split(agent.secrets, secrets)
    plain = {name: key_vault_reference(uri) for name, uri in refs.items()}
    if kind == "premium":
        plain.update(PREMIUM_SETTINGS)
    elif match:
        # the Functions host's own storage, identity-based, on the same account as the deployment container
        plain[HOST_STORAGE] = match.group(1)
    table = account = None
    if sessions is not None:
        table, account = sessions["table"], sessions.get("account")
        if not account:
            raise DeployError(
                f"the sessions table {table} needs a storage account: set `account:` under targets.azure.sessions "
                "in agent.yaml (a storage account in the resource group " + resource_group + "), or `storage:` "
                "under targets.azure (its account is used)")
    return Desired(
        name=agent.name, app=agent.staged(options.get("app") or agent.name), subscription=subscription,
        resource_group=resource_group, region=region, plan_kind=kind, python=str(options.get("python", "3.11")),
        memory=instance_memory(settings), sku="FC1" if kind == "flex" else premium_sku(settings),
        max_instances=settings.concurrency.max, warm=settings.concurrency.warm, public=agent.public,
        package_sha256=package_sha256, files=files, storage=storage.rstrip("/") if storage else None,
        settings=dict(sorted(plain.items())), secret_env=from_env, session_table=table, session_account=account,
        stage=agent.stage)


# ---------------------------------------------------------------- snapshot of the deployed state


@dataclass(frozen=True)
class PlanState:
    id: str
    sku: str
    tier: str
    max_elastic: int | None
    sites: int
    tags: Mapping[str, str]


@dataclass(frozen=True)
class SiteState:
    id: str
    tags: Mapping[str, str]
    server_farm_id: str
    host: str | None
    state: str | None = None
    # Flex (properties.functionAppConfig)
    python: str | None = None
    memory: int | None = None
    max_instances: int | None = None
    always_ready: int | None = None
    storage: str | None = None
    storage_auth: Mapping[str, Any] = field(default_factory=dict)
    # Premium (config/web)
    linux_fx: str | None = None
    min_elastic: int | None = None
    scale_limit: int | None = None


@dataclass(frozen=True)
class Snapshot:
    plan: PlanState | None = None
    site: SiteState | None = None
    # every app setting as name -> digest (values never kept), and our markers in clear
    settings: Mapping[str, str] = field(default_factory=dict)
    markers: Mapping[str, str] = field(default_factory=dict)
    table: bool | None = None  # whether the sessions table exists (None: not read, sessions off)


# ---------------------------------------------------------------- planner


def _owned(tags: Mapping[str, str] | None, name: str) -> bool:
    return OWNER.on(tags, name)


def _not_ours(kind: str, name: str, agent: str, group: str) -> DeployError:
    return OWNER.refusal(f"{kind} {name}", f"resource group {group}", agent,
                         "set another `app:` under targets.azure, or remove or rename that resource yourself")


def _same_id(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


def _plan_body(desired: Desired) -> dict[str, Any]:
    properties: dict[str, Any] = {"reserved": True}
    if desired.plan_kind == "premium":
        properties["maximumElasticWorkerCount"] = max(desired.max_instances, desired.always_ready)
    return {"location": desired.region, "kind": "functionapp" if desired.plan_kind == "flex" else "elastic",
            "sku": plan_sku(desired.plan_kind, desired.sku), "properties": properties,
            "tags": desired.tags}


def _plan_hosting_plan(desired: Desired, snap: Snapshot) -> Resource:
    kind, name = "hosting plan", desired.plan_name
    plan = snap.plan
    body = _plan_body(desired)
    put = Operation("serverfarm.put", {"name": name, "body": body}, "PUT serverfarms")
    sku = body["sku"]["name"]
    if plan is None:
        changes = [Change("sku", None, f"{sku} ({body['sku']['tier']})")]
        if desired.plan_kind == "premium":
            changes.append(Change("max burst", None, body["properties"]["maximumElasticWorkerCount"]))
        return Resource(kind, name, CREATE, tuple(changes), (put,))
    if not _owned(plan.tags, desired.name):
        raise _not_ours("App Service plan", name, desired.name, desired.resource_group)
    changes = []
    if plan.sku != sku:
        if (plan.tier == "FlexConsumption") != (desired.plan_kind == "flex"):
            raise DeployError(
                f"the plan {name} is {plan.tier} and agent.yaml asks for {body['sku']['tier']}: Azure cannot move a "
                "function app between Flex Consumption and Elastic Premium; run `agenthost destroy "
                "--target azure` first, then deploy (or set another `app:` under targets.azure)")
        changes.append(Change("sku", plan.sku, sku))
    if desired.plan_kind == "premium" and plan.max_elastic != body["properties"]["maximumElasticWorkerCount"]:
        changes.append(Change("max burst", plan.max_elastic, body["properties"]["maximumElasticWorkerCount"]))
    if not changes:
        return Resource(kind, name, UNCHANGED, detail=f"{plan.sku} ({plan.tier})")
    return Resource(kind, name, UPDATE, tuple(changes), (put,))


def _settings_list(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in sorted(values.items())]


def _site_body(desired: Desired, settings: Mapping[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"serverFarmId": desired.plan_id, "reserved": True, "httpsOnly": True,
                                  "siteConfig": {"appSettings": _settings_list(settings)}}
    if desired.plan_kind == "flex":
        properties["functionAppConfig"] = _flex_config(desired)
    else:
        properties["siteConfig"].update(_premium_config(desired))
    return {"location": desired.region, "kind": "functionapp,linux", "identity": {"type": "SystemAssigned"},
            "properties": properties, "tags": desired.tags}


def _flex_config(desired: Desired) -> dict[str, Any]:
    always = [{"name": "http", "instanceCount": desired.warm}] if desired.warm else []
    return {
        "deployment": {"storage": {"type": "blobContainer", "value": desired.storage,
                                   "authentication": desired.storage_auth}},
        "runtime": {"name": "python", "version": desired.python},
        "scaleAndConcurrency": {"maximumInstanceCount": desired.max_instances,
                                "instanceMemoryMB": desired.memory, "alwaysReady": always},
    }


def _premium_config(desired: Desired) -> dict[str, Any]:
    return {"linuxFxVersion": f"Python|{desired.python}", "minimumElasticInstanceCount": desired.always_ready,
            "functionAppScaleLimit": desired.max_instances}


def _initial_settings(desired: Desired) -> dict[str, Any]:
    """The app settings a new site is created with (secrets as placeholders the executor resolves)."""
    values: dict[str, Any] = dict(desired.settings)
    values.update({name: {"$secret": name} for name, digest in desired.secret_env.items() if digest is not None})
    owned = sorted(set(desired.settings) | set(desired.secret_env))
    if owned:
        values[SETTING_OWNED] = ",".join(owned)
    return values


def _plan_site(desired: Desired, snap: Snapshot) -> Resource:
    kind, name = "function app", desired.app
    site = snap.site
    if site is None:
        body = _site_body(desired, _initial_settings(desired))
        changes = [Change("plan", None, desired.plan_name), Change("python", None, desired.python)]
        if desired.plan_kind == "flex":
            changes += [Change("instance memory", None, desired.memory), Change("storage", None, desired.storage)]
        changes += [Change("max instances", None, desired.max_instances),
                    Change("always ready", None, desired.always_ready)]
        changes += [Change(f"setting {n}", None, desired.settings[n]) for n in sorted(desired.settings)]
        changes += [Change(f"setting {n}", None, "(value hidden)") for n, d in desired.secret_env.items() if d]
        return Resource(kind, name, CREATE, tuple(changes),
                        (Operation("site.put", {"name": name, "body": body}, "PUT sites"),))
    if not _owned(site.tags, desired.name):
        raise _not_ours("Function app", name, desired.name, desired.resource_group)
    if not _same_id(site.server_farm_id, desired.plan_id):
        raise DeployError(f"the function app {name} runs on another plan ({site.server_farm_id.rsplit('/', 1)[-1]}) "
                          f"than {desired.plan_name}: run `agenthost destroy --target azure`, then deploy")
    changes: list[Change] = []
    patch: dict[str, Any] = {}
    if desired.plan_kind == "flex":
        config = _flex_config(desired)
        wanted = (("python", desired.python, site.python), ("instance memory", desired.memory, site.memory),
                  ("max instances", desired.max_instances, site.max_instances),
                  ("always ready", desired.always_ready, site.always_ready or 0),
                  ("storage", desired.storage, (site.storage or "").rstrip("/") or None),
                  ("storage auth", desired.storage_auth.get("type"), site.storage_auth.get("type")))
        changes = [Change(label, old, new) for label, new, old in wanted if new != old]
        if changes:
            patch = {"properties": {"functionAppConfig": config}}
        op = Operation("site.patch", {"name": name, "body": patch}, "PATCH sites")
    else:
        config = _premium_config(desired)
        # ARM may answer linuxFxVersion in another case ("PYTHON|3.11"); the portal treats it as case-insensitive
        deployed_fx = config["linuxFxVersion"] if (site.linux_fx or "").lower() == config["linuxFxVersion"].lower() \
            else site.linux_fx
        wanted = (("python", config["linuxFxVersion"], deployed_fx),
                  ("always ready", config["minimumElasticInstanceCount"], site.min_elastic),
                  ("max instances", config["functionAppScaleLimit"], site.scale_limit))
        changes = [Change(label, old, new) for label, new, old in wanted if new != old]
        op = Operation("site.config", {"name": name, "body": {"properties": config}}, "PATCH sites/config/web")
    if not changes:
        return Resource(kind, name, UNCHANGED, detail=site.host or "")
    return Resource(kind, name, UPDATE, tuple(changes), (op,))


def _package_changes(desired: Desired, markers: Mapping[str, str]) -> list[Change]:
    old_sha = markers.get(SETTING_PACKAGE)
    changes = [Change("package sha256", old_sha[:12] if old_sha else None, desired.package_sha256[:12])]
    old = dict(item.split("=", 1) for item in (markers.get(SETTING_FILES) or "").split(",") if "=" in item)
    new = dict(item.split("=", 1) for item in desired.files.split(",") if "=" in item)
    if old:  # each changed file with its content hash (agent.json holds the prompt, model and settings)
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                label = f"file {name}" + (" (prompt, model, settings)" if name == "agent.json" else "")
                changes.append(Change(label, old.get(name), new.get(name)))
    return changes


def _plan_code(desired: Desired, snap: Snapshot, creating: bool) -> Resource:
    kind, name = "code package", desired.app
    if not creating and snap.markers.get(SETTING_PACKAGE) == desired.package_sha256:
        return Resource(kind, name, UNCHANGED, detail=f"sha256 {desired.package_sha256[:12]}")
    how = "publish" if desired.plan_kind == "flex" else "zipdeploy"
    op = Operation(f"kudu.{how}", {"app": desired.app, "zip": {"$package": desired.package_sha256}},
                   "POST /api/publish (remote build)" if how == "publish" else "POST /api/zipdeploy (remote build)")
    return Resource(kind, name, CREATE if creating else UPDATE,
                    tuple(_package_changes(desired, {} if creating else snap.markers)), (op,))


def _plan_table(desired: Desired, snap: Snapshot) -> tuple[Resource, list[str]]:
    """The sessions table in the storage account; a table there that this framework did not create
    is used as it is and left on destroy. No role assignment is made: the note says which to add."""
    name = f"{desired.session_account}/{desired.session_table}"
    role = (f"the app's managed identity needs the role {TABLE_ROLE} ({TABLE_ROLE_ID}) on the table: az role "
            f"assignment create --assignee $(az functionapp identity show -g {desired.resource_group} -n "
            f"{desired.app} --query principalId -o tsv) --role \"{TABLE_ROLE}\" --scope {desired.table_scope} "
            "(the framework creates no role assignment)")
    notes = [role, "Azure Table Storage has no TTL: expired sessions are treated as absent and overwritten, "
                   "never deleted by the store"]
    if not snap.table:
        return Resource("storage table", name, CREATE, (
            Change("account", None, desired.session_account), Change("holds", None, "the sessions and token counts")),
            (Operation("table.put", {"account": desired.session_account, "table": desired.session_table},
                       "PUT storageAccounts/tableServices/default/tables"),)), notes
    if snap.markers.get(SETTING_TABLE) != desired.table_marker:
        notes.insert(0, f"storage table {name} exists and was not created by this framework for this agent: the "
                        "sessions use it as it is; destroy leaves it")
        return Resource("storage table", name, UNCHANGED, detail="not ours: used as it is"), notes
    return Resource("storage table", name, UNCHANGED, detail=f"in {desired.session_account}"), notes


def _plan_settings(desired: Desired, snap: Snapshot, creating: bool,
                   publishing: bool, table_marker: str | None = None) -> tuple[Resource, list[str]]:
    """The merge of our app settings into the site's (after the publish, which it records)."""
    kind, name = "app settings", desired.app
    current = {} if creating else snap.settings
    changes: list[Change] = []
    values: dict[str, Any] = {}
    missing: list[str] = []
    from framework.deploy.secrets import digest

    if not creating:
        for setting, value in desired.settings.items():
            if current.get(setting) != digest(value):
                changes.append(Change(f"setting {setting}", "(set)" if setting in current else None, value))
                values[setting] = value
    for setting, wanted in desired.secret_env.items():
        if wanted is None:
            if setting not in current:
                missing.append(setting)  # not here, not deployed: the deploy needs it
            continue
        if not creating and current.get(setting) != wanted:
            changes.append(Change(f"setting {setting}", "(value hidden)" if setting in current else None,
                                  "(new value hidden)" if setting in current else "(value hidden)"))
            values[setting] = {"$secret": setting}
    owned = sorted(set(desired.settings) | set(desired.secret_env))
    previously = [n for n in (snap.markers.get(SETTING_OWNED) or "").split(",") if n]
    remove = sorted(n for n in previously if n not in owned and n in current)
    changes += [Change(f"setting {n}", "(set)", "(removed)") for n in remove]
    if not creating and (snap.markers.get(SETTING_OWNED) or "") != ",".join(owned):
        values[SETTING_OWNED] = ",".join(owned)
        if owned or SETTING_OWNED in current:
            changes.append(Change("managed settings", previously or None, owned or None))
    if table_marker and snap.markers.get(SETTING_TABLE) != table_marker:
        values[SETTING_TABLE] = table_marker
        changes.append(Change(SETTING_TABLE, snap.markers.get(SETTING_TABLE), table_marker))
    if publishing:
        values[SETTING_PACKAGE] = desired.package_sha256
        values[SETTING_FILES] = desired.files
        changes.append(Change(SETTING_PACKAGE, (snap.markers.get(SETTING_PACKAGE) or "")[:12] or None,
                              desired.package_sha256[:12]))
    if not values and not remove:
        return Resource(kind, name, UNCHANGED, detail=f"{len(current)} setting(s)"), missing
    op = Operation("appsettings.merge", {"app": desired.app, "set": values, "remove": remove},
                   "PUT appsettings (merged)")
    return Resource(kind, name, CREATE if creating else UPDATE, tuple(changes), (op,)), missing


def plan_deploy(desired: Desired, snap: Snapshot) -> DeployPlan:
    """Pure: what to do so that `snap` becomes `desired`."""
    resources = [_plan_hosting_plan(desired, snap)]
    table_notes: list[str] = []
    table_marker = None
    if desired.session_table:
        table, table_notes = _plan_table(desired, snap)
        resources.append(table)
        # recorded when created here (or recorded before): what destroy may delete
        if table.action == CREATE or snap.markers.get(SETTING_TABLE) == desired.table_marker:
            table_marker = desired.table_marker
    site = _plan_site(desired, snap)
    resources.append(site)
    creating = site.action == CREATE
    code = _plan_code(desired, snap, creating)
    resources.append(code)
    settings, missing = _plan_settings(desired, snap, creating, code.action != UNCHANGED, table_marker)
    resources.append(settings)
    notes = SECRETS.notes(desired.secret_env, missing) + table_notes
    if snap.site is not None and snap.site.state == STOPPED:
        notes.append(PAUSED_NOTE)  # issue 14: no call of deploy starts the app
    if any(v.startswith("@Microsoft.KeyVault(") for v in desired.settings.values()):
        notes.append("Key Vault references resolve only if the app's managed identity may read the secrets "
                     "(role Key Vault Secrets User on the vault)")
    label = "Flex Consumption" if desired.plan_kind == "flex" else f"Elastic Premium {desired.sku}"
    title = (f"{desired.app} on Azure Functions {label} (resource group {desired.resource_group}, "
             f"{desired.region})")
    return DeployPlan(Plan("azure", title, tuple(resources), tuple(notes)), tuple(missing))


def plan_destroy(name: str, app: str, resource_group: str, snap: Snapshot,
                 session_table: str | None = None) -> Plan:
    """Pure: delete the site, then the plan, when they carry our tag, and the sessions table the app
    records as created by this framework; list what is left alone."""
    resources, notes = [], []
    site, plan = snap.site, snap.plan
    ours_site = site is not None and _owned(site.tags, name)
    marker = snap.markers.get(SETTING_TABLE) if ours_site else None
    if marker and "/" in marker:
        account, table = marker.split("/", 1)
        resources.append(Resource("storage table", marker, DELETE, (Change("with", "its sessions and token counts",
                                                                           None),), (
            Operation("table.delete", {"account": account, "table": table},
                      "DELETE storageAccounts/tableServices/default/tables"),)))
    elif session_table and snap.table:
        notes.append(left_alone(f"storage table {session_table}"))
    if site is not None:
        if ours_site:
            resources.append(Resource("function app", app, DELETE, (Change("with", "code, app settings, keys", None),),
                                      (Operation("site.delete", {"name": app}, "DELETE sites"),)))
        else:
            notes.append(left_alone(f"function app {app}"))
    if plan is not None:
        plan_name = plan.id.rsplit("/", 1)[-1]
        others = plan.sites - (1 if ours_site and site is not None and _same_id(site.server_farm_id, plan.id) else 0)
        if not _owned(plan.tags, name):
            notes.append(left_alone(f"App Service plan {plan_name}"))
        elif others > 0:
            notes.append(f"left alone: App Service plan {plan_name} (it still hosts {others} other app(s))")
        else:
            resources.append(Resource("hosting plan", plan_name, DELETE, (Change("sku", plan.sku, None),),
                                      (Operation("serverfarm.delete", {"name": plan_name}, "DELETE serverfarms"),)))
    title = f"destroy {app} on Azure Functions (resource group {resource_group})"
    return Plan("azure", title, tuple(resources), tuple(notes))


def function_url(host: str | None) -> str | None:
    return f"https://{host}/{ROUTE}" if host else None


# ---- pause / resume (issue 14)

STOPPED = "Stopped"  # the site's properties.state once stopped ("Running" otherwise)
PAUSED_NOTE = "paused: deploy keeps it paused (the app stays stopped); `agenthost resume` lets requests in"

# What a stopped app's URL answers, every path: App Service's front end refuses it with 403 and its page
# "Error 403 - This web app is stopped."
# (https://learn.microsoft.com/en-us/archive/blogs/waws/azure-web-apps-error-403-this-web-app-is-stopped).
PAUSED_ANSWER = PausedAnswer(
    403, {"Content-Type": "text/html"},
    b"<!DOCTYPE html>\n<html>\n<head><title>Web App - Unavailable</title></head>\n<body>\n"
    b"<h1>Error 403 - This web app is stopped.</h1>\n"
    b"<p>The web app you have attempted to reach is currently stopped and does not accept any requests.</p>\n"
    b"</body>\n</html>\n",
    "403 as Azure answers while the function app is stopped")


def plan_pause(name: str, app: str, group: str, snap: Snapshot, resume: bool) -> Plan:
    """Pure: pause = stop the function app (POST .../sites/{app}/stop,
    https://learn.microsoft.com/en-us/rest/api/appservice/web-apps/stop): the app stops serving and its
    URL answers 403 "site stopped" to every request; resume = POST .../start
    (https://learn.microsoft.com/en-us/rest/api/appservice/web-apps/start). Nothing is deleted; the app's
    own state is the mark."""
    site = snap.site
    title = f"{app} on Azure Functions (resource group {group})"
    if site is None or not _owned(site.tags, name):
        raise DeployError(f"{name} is not deployed on Azure Functions as {app} in {group} (or the app is not ours): "
                          f"nothing to {'resume' if resume else 'pause'}")
    stopped = site.state == STOPPED
    if stopped != resume:
        return Plan("azure", title, (Resource("function app", app, UNCHANGED,
                                              detail="running" if resume else "paused (stopped)"),))
    op = (Operation("site.start", {"name": app}, "POST sites/start") if resume else
          Operation("site.stop", {"name": app}, "POST sites/stop"))
    change = Change("state", site.state, "Running" if resume else STOPPED)
    return Plan("azure", title, (Resource("function app", app, UPDATE, (change,), (op,)),))
