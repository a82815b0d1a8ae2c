"""Google Cloud Functions 2nd gen (Cloud Run functions): a Python HTTP function for functions-framework."""

from __future__ import annotations

from pathlib import Path

from framework.findings import Finding
from framework.model import Agent, TargetSettings
from framework.platforms import sessions, warm
from framework.platforms.deploy_doc import FromEnv, command, deploy_file
from framework.platforms.gcp.planner import ENTRY_POINT, memory_units, parse_secret, required_cpu
from framework.platforms.gcp.region import REGION
from framework.render import RUNTIME, File, json_file, runtime_file, template_file

# agent.yaml `sessions: {store: auto}` here (framework/platforms/sessions.py)
SESSION_STORE = "firestore"
name = "gcp"
title = "Google Cloud Functions (2nd gen)"
TEMPLATES = Path(__file__).parent / "templates"

# https://cloud.google.com/functions/docs/configuring/timeout: "60 minutes (3600 seconds) for
# HTTP functions"; https://cloud.google.com/functions/docs/configuring/memory: 128 MiB to 32 GiB.
MAX_TIMEOUT = 3600
MAX_MEMORY = 32768
# https://cloud.google.com/functions/docs/configuring/concurrency: "Setting a concurrency value
# greater than 1 requires a function to have 1 or more vCPUs"; 2 GiB is the smallest size that
# gets a whole vCPU by default (same memory page).
MIN_MEMORY_FOR_CONCURRENCY = 2048
# Streaming: Cloud Run functions run on Cloud Run, which streams HTTP responses (chunked, SSE) for
# up to the request timeout ("Introducing HTTP/gRPC server streaming for Cloud Run", Google Cloud
# blog), and Google's functions-framework-python ships examples/cloud_run_streaming_http; the
# generated main.py returns the body as a generator, which Flask streams.


# concurrency.warm_schedule: the function's variable holding the secret the Cloud Scheduler job sends
# in its x-agent-warmup header (deploy generates it, keeps it, never prints it)
WARM_SECRET = "AGENT_WARMUP_SECRET"


def check(agent: Agent, settings: TargetSettings) -> list[Finding]:
    out = []
    region = settings.options.get("region")
    if region is not None and (wrong := REGION.problem(region)):
        out.append(Finding(("targets", name, "region"), wrong))
    if settings.timeout > MAX_TIMEOUT:
        out.append(Finding(settings.path_of("timeout"), (
            f"Cloud Functions HTTP functions stop after at most {MAX_TIMEOUT} s (60 min), but timeout is "
            f"{settings.timeout}; set `timeout: {MAX_TIMEOUT}` or less under targets.gcp")))
    if settings.memory > MAX_MEMORY:
        out.append(Finding(settings.path_of("memory"), (
            f"Cloud Functions offers at most {MAX_MEMORY} MB (32 GiB), but memory is {settings.memory}")))
    if settings.concurrency.warm > settings.concurrency.max:
        out.append(Finding(settings.path_of("concurrency"), (
            f"concurrency.warm ({settings.concurrency.warm}) cannot be more than concurrency.max "
            f"({settings.concurrency.max}): min instances must not exceed max instances")))
    request_concurrency = settings.options["request_concurrency"]
    if request_concurrency > 1 and settings.memory < MIN_MEMORY_FOR_CONCURRENCY:
        out.append(Finding(("targets", name, "request_concurrency"), (
            f"more than one request per instance needs at least one vCPU, which Cloud Functions gives "
            f"from {MIN_MEMORY_FOR_CONCURRENCY} MB; set `memory: {MIN_MEMORY_FOR_CONCURRENCY}` under targets.gcp "
            "or `request_concurrency: 1`")))
    out += warm.check_cron(settings, "Cloud Scheduler")
    return out


def endpoint(agent: Agent, settings: TargetSettings) -> str:
    return "/"


def deploy_command(agent: Agent, settings: TargetSettings) -> str:
    """`gcloud functions deploy` with the same settings as the framework's deploy (framework/deploy/gcp.py)."""
    options = settings.options
    concurrency = int(options.get("request_concurrency", 1))
    argv: list = ["gcloud", "functions", "deploy", agent.name, "--gen2"]
    argv += [f"--{key}={options[key]}" for key in ("project", "region") if options.get(key)]
    argv += [f"--runtime={options['runtime']}", "--source=.", f"--entry-point={ENTRY_POINT}", "--trigger-http",
             f"--timeout={settings.timeout}s", f"--memory={memory_units(settings.memory)}"]
    cpu = required_cpu(settings.memory, concurrency)
    if cpu:
        argv.append(f"--cpu={cpu}")
    argv += [f"--min-instances={settings.concurrency.warm}", f"--max-instances={settings.concurrency.max}",
             f"--concurrency={concurrency}",
             "--allow-unauthenticated" if agent.public else "--no-allow-unauthenticated"]
    refs = {env: parse_secret(r["gcp"]) for env, r in sorted(agent.secrets.items()) if "gcp" in r}
    if refs:
        argv.append("--set-secrets=" + ",".join(
            f"{env}=projects/{project}/secrets/{secret}:{version}" for env, (project, secret, version) in refs.items()))
    # the framework copies the other secrets from the deploying environment into the function's
    for env in sorted(set(agent.secrets) - set(refs)):
        argv.append(FromEnv(f"--update-env-vars={env}=", env))
    return command(*argv)


def render(agent: Agent, settings: TargetSettings) -> list[File]:
    from_env = sorted(env for env, refs in agent.secrets.items() if "gcp" not in refs)
    steps = [("Create or update the function (its URL is printed at the end):", deploy_command(agent, settings))]
    return [
        template_file(TEMPLATES, name, "main.py", {}),
        runtime_file(name),
        *_store_files(settings),
        json_file(f"{name}/agent.json", {**agent.runtime_config(settings), **warm.runtime_block(settings, WARM_SECRET),
                                         "sessions": sessions.runtime_block(
            settings, SESSION_STORE, {"project": settings.options.get("project"), "database": "(default)",
                                      "collection": f"{agent.name}-sessions"})}),
        template_file(TEMPLATES, name, "requirements.txt", {"client": agent.client}),
        deploy_file(TEMPLATES, name, steps, {"name": agent.name, "from_env": from_env,
                                  "secret_refs": len(from_env) < len(agent.secrets)}),
    ]


def _store_files(settings: TargetSettings) -> list[File]:
    """The session store module, shipped only when sessions are on (an agent without them imports
    nothing more at cold start)."""
    if settings.sessions is None:
        return []
    return [File(f"{name}/agent_sessions.py", RUNTIME.with_name("agent_sessions.py").read_bytes())]
