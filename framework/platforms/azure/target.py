"""Azure Functions: a Python v2-model function app answering on /api/agent."""

from __future__ import annotations

from pathlib import Path

from framework.findings import Finding
from framework.model import Agent, TargetSettings
from framework.platforms import sessions
from framework.platforms import warm as warm_schedule
from framework.platforms.azure.limits import (
    CONSUMPTION_MAX_INSTANCES,
    CONSUMPTION_MEMORY,
    FLEX_DEFAULT_MEMORY,
    FLEX_MAX_INSTANCES,
    FLEX_MEMORY,
    HTTP_RESPONSE_LIMIT,
    PREMIUM_MAX_INSTANCES,
    PREMIUM_SKUS,
    instance_memory,
    premium_sku,
)
from framework.platforms.azure.planner import STORAGE, key_vault_reference
from framework.platforms.azure.region import REGION
from framework.platforms.deploy_doc import FromEnv, command, deploy_file
from framework.render import RUNTIME, File, json_file, runtime_file, template_file

# agent.yaml `sessions: {store: auto}` here (framework/platforms/sessions.py)
SESSION_STORE = "table"
name = "azure"
title = "Azure Functions"
TEMPLATES = Path(__file__).parent / "templates"

def check(agent: Agent, settings: TargetSettings) -> list[Finding]:
    out = []
    region = settings.options.get("region")
    if region is not None and (wrong := REGION.problem(region)):
        out.append(Finding(("targets", name, "region"), wrong))
    plan = settings.options["plan"]
    plan_path = ("targets", name, "plan") if "plan" in settings.options else ("targets", name)
    if settings.timeout > HTTP_RESPONSE_LIMIT:
        out.append(Finding(settings.path_of("timeout"), (
            f"an Azure Functions HTTP trigger must answer within {HTTP_RESPONSE_LIMIT} s on every plan "
            f"(Azure's load balancer closes the request), but timeout is {settings.timeout}; "
            f"add `timeout: {HTTP_RESPONSE_LIMIT}` under targets.azure, or use targets.aws (900 s) "
            "or targets.gcp (3600 s) for longer agents")))
    max_instances, warm = settings.concurrency.max, settings.concurrency.warm
    if warm > max_instances:
        out.append(Finding(settings.path_of("concurrency"), (
            f"concurrency.warm ({warm}) cannot be more than concurrency.max ({max_instances})")))
    if plan == "flex":
        if settings.explicit("memory") and settings.memory not in FLEX_MEMORY:
            sizes = ", ".join(map(str, FLEX_MEMORY))
            out.append(Finding(settings.path_of("memory"), (
                f"Flex Consumption instances come in {sizes} MB, but memory is {settings.memory}; "
                f"add `memory: {FLEX_DEFAULT_MEMORY}` (or {sizes}) under targets.azure")))
        if max_instances > FLEX_MAX_INSTANCES:
            out.append(Finding(settings.path_of("concurrency"), (
                f"Flex Consumption scales to at most {FLEX_MAX_INSTANCES} instances")))
    elif plan == "premium":
        if settings.memory > PREMIUM_SKUS[-1][0]:
            out.append(Finding(settings.path_of("memory"), (
                f"the largest Elastic Premium instance (EP3) has {PREMIUM_SKUS[-1][0]} MB, "
                f"but memory is {settings.memory}")))
        if max_instances > PREMIUM_MAX_INSTANCES:
            out.append(Finding(settings.path_of("concurrency"), (
                f"an Elastic Premium plan scales to at most {PREMIUM_MAX_INSTANCES} instances "
                "(20 on Linux in most regions)")))
        if warm < 1:
            out.append(Finding(settings.path_of("concurrency"), (
                "Elastic Premium always keeps at least one instance ready and bills it; "
                "concurrency.warm 0 is raised to 1 there"), "warning"))
    elif plan == "consumption":
        out.append(Finding(plan_path, (
            "the Linux Consumption plan is being retired (30 Sep 2028) and gets no new Python "
            "versions; prefer `plan: flex`"), "warning"))
        if settings.memory > CONSUMPTION_MEMORY:
            out.append(Finding(settings.path_of("memory"), (
                f"the Consumption plan gives each instance {CONSUMPTION_MEMORY} MB at most, but memory is "
                f"{settings.memory}; lower it or use `plan: flex` / `plan: premium`")))
        if warm:
            out.append(Finding(settings.path_of("concurrency"), (
                "the Consumption plan cannot keep instances warm; set concurrency.warm to 0 "
                "under targets.azure or use `plan: premium`")))
        if max_instances > CONSUMPTION_MAX_INSTANCES:
            out.append(Finding(settings.path_of("concurrency"), (
                f"the Linux Consumption plan scales to at most {CONSUMPTION_MAX_INSTANCES} instances")))
    out += warm_schedule.check_cron(settings, "An Azure Functions timer trigger")
    if settings.stream:
        out.append(Finding(settings.path_of("stream"), (
            "this framework's Azure Functions app does not stream responses (Azure's Python HTTP "
            "streams need the FastAPI extension); set `stream: false` under targets.azure "
            "(targets.vercel streams)")))
    return out


def endpoint(agent: Agent, settings: TargetSettings) -> str:
    return "/api/agent"


def _duration(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render(agent: Agent, settings: TargetSettings) -> list[File]:
    host = {
        "version": "2.0",
        "functionTimeout": _duration(settings.timeout),
        "extensions": {"http": {"routePrefix": "api"}},
        "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
        "logging": {"logLevel": {"default": "Information"}},
    }
    context = {"auth_level": "ANONYMOUS" if agent.public else "FUNCTION", "client": agent.client,
               # concurrency.warm_schedule: the app's own timer trigger (no HTTP, nothing else to deploy)
               "warm_cron": warm_schedule.ncrontab(settings.concurrency.warm_schedule)
               if settings.concurrency.warm_schedule else None}
    steps, notes = deploy_steps(agent, settings)
    from_env = sorted(env for env, refs in agent.secrets.items() if "azure" not in refs)
    return [
        template_file(TEMPLATES, name, "function_app.py", context),
        runtime_file(name),
        *_store_files(settings),
        json_file(f"{name}/agent.json", {**agent.runtime_config(settings), "sessions": sessions.runtime_block(
            settings, SESSION_STORE, {"table": session_table(agent), "account": _storage_account(settings)})}),
        json_file(f"{name}/host.json", host),
        template_file(TEMPLATES, name, "requirements.txt", context),
        deploy_file(TEMPLATES, name, steps, {"name": agent.name, "from_env": from_env, "notes": notes}),
    ]


def session_table(agent: Agent) -> str:
    """Azure table names are letters and digits only: the agent's name without its hyphens."""
    return agent.name.replace("-", "") + "sessions"


def _storage_account(settings: TargetSettings) -> str | None:
    """The account of targets.azure.storage; None: the runtime uses AzureWebJobsStorage's."""
    match = STORAGE.match(settings.options.get("storage", ""))
    return match.group(1) if match else None


def deploy_steps(agent: Agent, settings: TargetSettings) -> tuple[list[tuple[str, str]], list[str]]:
    """`az` and `func` commands with the settings the framework's deploy uses (framework/deploy/azure.py),
    and notes for what agent.yaml does not say yet."""
    options = settings.options
    plan, app = options["plan"], agent.staged(options.get("app") or agent.name)
    if plan == "consumption":
        return [], ["The legacy Consumption plan is retiring and gets no new Python versions: "
                    "set `plan: flex` (or `premium`) under targets.azure and build again."]
    where: list = [f"--subscription={options['subscription']}"] if options.get("subscription") else []
    where += [f"--resource-group={options.get('resource_group', '')}", f"--name={app}"]
    match = STORAGE.match(options.get("storage", ""))
    notes, steps = [], []
    runtime = ["--runtime=python", f"--runtime-version={options['python']}"]
    if not match:
        notes.append("The `az functionapp create` command needs the storage account: set "
                     "`storage: https://ACCOUNT.blob.core.windows.net/CONTAINER` under targets.azure and build again.")
    elif plan == "flex":
        account, container = match.groups()
        steps.append(("Create the function app on a Flex Consumption plan (once):", command(
            "az", "functionapp", "create", *where, f"--storage-account={account}",
            f"--flexconsumption-location={options.get('region', '')}", *runtime,
            f"--instance-memory={instance_memory(settings)}", f"--maximum-instance-count={settings.concurrency.max}",
            f"--deployment-storage-name={account}", f"--deployment-storage-container-name={container}",
            "--deployment-storage-auth-type=SystemAssignedIdentity")))
    else:
        plan_where = [w for w in where if not w.startswith("--name=")] + [f"--name={app}-plan"]
        steps.append(("Create the Elastic Premium plan (once):", command(
            "az", "functionapp", "plan", "create", *plan_where, f"--location={options.get('region', '')}",
            f"--sku={premium_sku(settings)}", "--is-linux", f"--min-instances={max(1, settings.concurrency.warm)}",
            f"--max-burst={max(settings.concurrency.max, settings.concurrency.warm, 1)}")))
        steps.append(("Create the function app on it (once):", command(
            "az", "functionapp", "create", *where, f"--storage-account={match.group(1)}", f"--plan={app}-plan",
            *runtime, "--functions-version=4", "--os-type=Linux")))
    if plan == "flex" and settings.concurrency.warm:
        steps.append(("Keep instances always ready:", command(
            "az", "functionapp", "scale", "config", "always-ready", "set", *where,
            f"--settings=http={settings.concurrency.warm}")))
    values: list = []
    for env, refs in sorted(agent.secrets.items()):
        values.append(f"{env}={key_vault_reference(refs['azure'])}" if "azure" in refs else FromEnv(f"{env}=", env))
    steps.append(("Set the secrets as app settings:", command(
        "az", "functionapp", "config", "appsettings", "set", *where, "--settings", *values)))
    steps.append(("Publish the code (a remote build installs requirements.txt):", command(
        "func", "azure", "functionapp", "publish", app)))
    return steps, notes


def _store_files(settings: TargetSettings) -> list[File]:
    """The session store module, shipped only when sessions are on (an agent without them imports
    nothing more at cold start)."""
    if settings.sessions is None:
        return []
    return [File(f"{name}/agent_sessions.py", RUNTIME.with_name("agent_sessions.py").read_bytes())]
