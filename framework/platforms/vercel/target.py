"""Vercel Functions: a TypeScript route (Web-standard Request/Response) on the Edge or Node.js runtime."""

from __future__ import annotations

from pathlib import Path

from framework.findings import Finding
from framework.model import Agent, TargetSettings
from framework.platforms import sessions, warm
from framework.render import JS_CORE, File, js_core_file, json_file

# agent.yaml `sessions: {store: auto}` here (framework/platforms/sessions.py)
SESSION_STORE = "redis"
name = "vercel"
title = "Vercel Functions"
TEMPLATES = Path(__file__).parent / "templates"

# https://vercel.com/docs/functions/limitations: Edge functions must begin sending a response
# within 25 s and may keep streaming (300 s in all); Edge memory is fixed at 128 MB
# (https://vercel.com/docs/functions/runtimes/edge/edge-functions). Node.js functions: up to
# 800 s (Pro/Enterprise; Hobby 300 s) and 4 GB (Hobby 2 GB). Bodies: 4.5 MB.
EDGE_FIRST_BYTE = 25
EDGE_STREAM_LIMIT = 300
NODE_MAX_DURATION = 800
NODE_HOBBY_DURATION = 300
NODE_MAX_MEMORY = 4096
NODE_HOBBY_MEMORY = 2048
ROUTE_FILE = "api/agent.ts"
# the project variable Vercel Cron sends as `Authorization: Bearer ...` (deploy generates and keeps it)
CRON_SECRET = "CRON_SECRET"
# The route's logic is the shared JavaScript core (framework/runtime/js/agent.mjs, see render.js_core_file),
# byte for byte the streaming AWS Lambda app's.
# The route's first line declares the runtime the way Vercel reads it statically for a plain
# project; it is replaced only by another fixed line from this table, never by user text.
RUNTIME_LINES = {
    "edge": 'export const config = { runtime: "edge" };',
    "nodejs": 'export const config = { runtime: "nodejs" };',
}
# A project without a framework serves every file outside api/ as a static file, agent.json (the
# prompt) included, unless vercel.json names an output directory
# (https://vercel.com/docs/project-configuration/vercel-json#outputdirectory). This one holds only
# robots.txt: agent.json, lib/ and tsconfig.json then reach the function's bundle and nowhere else
# (tests/functional/test_vercel_build.py checks it with `vercel build`).
STATIC_DIR = "public"
ROBOTS_TXT = b"User-agent: *\nDisallow: /\n"  # an API: nothing for crawlers to index


def _target_key(settings: TargetSettings, key: str) -> bool:
    return settings.origins.get(key) == ("targets", name, key)


def check(agent: Agent, settings: TargetSettings) -> list[Finding]:
    out = []
    runtime = settings.options["runtime"]
    if not agent.public:
        out.append(Finding(("public",), (
            "Vercel Functions answer anyone who has the URL (there is no per-function login); "
            "remove targets.vercel or set `public: true`")))
    if agent.client == "openai":
        out.append(Finding(("client",), (
            "the Vercel function always calls the model with fetch (no package to bundle); "
            "`client: openai` applies to the Python targets only"), "warning"))
    if _target_key(settings, "concurrency"):
        out.append(Finding(settings.path_of("concurrency"), (
            "Vercel scales functions by itself: instances can be neither capped nor kept warm; "
            "remove concurrency under targets.vercel")))
    out += _warm_findings(settings)
    if runtime == "edge":
        if (agent.tools or agent.mcp) and not settings.stream:
            out.append(Finding(settings.path_of("stream"), (
                f"a Vercel Edge function must start its response within {EDGE_FIRST_BYTE} s, and an agent with "
                "tools answers only after its tool calls; add `stream: true` under targets.vercel (the answer "
                "then starts at once), or use `runtime: nodejs`")))
        if _target_key(settings, "memory"):
            out.append(Finding(settings.path_of("memory"), (
                "Edge functions always have 128 MB; remove memory under targets.vercel, "
                "or use `runtime: nodejs` (up to 4096 MB)")))
        if not settings.stream and settings.timeout > EDGE_FIRST_BYTE:
            out.append(Finding(settings.path_of("timeout"), (
                f"a Vercel Edge function must start its response within {EDGE_FIRST_BYTE} s, but timeout is "
                f"{settings.timeout} and the JSON answer starts only when the model has finished; add "
                f"`timeout: {EDGE_FIRST_BYTE}` under targets.vercel, or `stream: true` (the answer then starts "
                f"at once and may stream for {EDGE_STREAM_LIMIT} s), "
                f"or `runtime: nodejs` (up to {NODE_MAX_DURATION} s)")))
        if settings.stream and settings.timeout > EDGE_STREAM_LIMIT:
            out.append(Finding(settings.path_of("timeout"), (
                f"a Vercel Edge function may stream for at most {EDGE_STREAM_LIMIT} s, but timeout is "
                f"{settings.timeout}; add `timeout: {EDGE_STREAM_LIMIT}` under targets.vercel")))
    else:
        out += _plan_limit(settings, "timeout", NODE_MAX_DURATION, NODE_HOBBY_DURATION, (
            f"Vercel Node.js functions run for at most {NODE_MAX_DURATION} s (Pro and Enterprise), "
            f"but timeout is {settings.timeout}; add `timeout: {NODE_MAX_DURATION}` under targets.vercel"), "s")
        out += _plan_limit(settings, "memory", NODE_MAX_MEMORY, NODE_HOBBY_MEMORY, (
            f"Vercel Node.js functions have at most {NODE_MAX_MEMORY} MB, but memory is {settings.memory}; "
            f"add `memory: {NODE_MAX_MEMORY}` or less under targets.vercel"), "MB")
    return out


def _warm_findings(settings: TargetSettings) -> list[Finding]:
    """concurrency.warm_schedule as a Vercel cron: a cron expression, and more often than daily only on
    Pro and Enterprise (https://vercel.com/docs/cron-jobs/usage-and-pricing)."""
    minutes = settings.concurrency.warm_schedule
    if minutes is None:
        return []
    out = warm.check_cron(settings, "Vercel Cron")
    if not out and minutes < warm.DAY:
        out.append(Finding(settings.path_of("concurrency"), (
            f"a Vercel cron every {minutes} minutes needs a Pro or Enterprise plan: on Hobby, cron jobs run "
            "at most once a day and the deployment is refused (set `warm_schedule: 1440` there)"), "warning"))
    return out


def _plan_limit(settings: TargetSettings, key: str, maximum: int, hobby: int, over: str, unit: str) -> list[Finding]:
    """An error above Vercel's largest plans' limit; a warning above the Hobby plan's."""
    value = getattr(settings, key)
    if value > maximum:
        return [Finding(settings.path_of(key), over)]
    if value > hobby:
        return [Finding(settings.path_of(key), f"more than {hobby} {unit} needs a Vercel Pro or Enterprise plan",
                        "warning")]
    return []


def endpoint(agent: Agent, settings: TargetSettings) -> str:
    return "/api/agent"


CORE_IMPORT = '"../lib/agent.mjs"'
SESSIONS_IMPORT = '"../lib/with-sessions.mjs"'  # the core with its session store (only when sessions are on)


def _route(runtime: str, with_sessions: bool = False) -> bytes:
    source = (TEMPLATES / ROUTE_FILE).read_text(encoding="utf-8")
    if with_sessions:
        if CORE_IMPORT not in source:
            raise RuntimeError(f"{ROUTE_FILE} template must import {CORE_IMPORT}")
        source = source.replace(CORE_IMPORT, SESSIONS_IMPORT)
    first, _, rest = source.partition("\n")
    if first != RUNTIME_LINES["edge"]:
        raise RuntimeError(f"{ROUTE_FILE} template must start with {RUNTIME_LINES['edge']!r}")
    return (RUNTIME_LINES[runtime] + "\n" + rest).encode("utf-8")


def render(agent: Agent, settings: TargetSettings) -> list[File]:
    runtime = settings.options["runtime"]
    project = agent.staged(settings.options.get("project") or agent.name)
    vercel: dict = {"$schema": "https://openapi.vercel.sh/vercel.json", "outputDirectory": STATIC_DIR,
                    # the OpenAI-compatible endpoint under the agent's URL: a rewrite keeps the URL the
                    # function reads its path from (https://vercel.com/docs/rewrites)
                    "rewrites": [{"source": "/api/agent/v1/:path*", "destination": "/api/agent"}]}
    if settings.concurrency.warm_schedule:
        # concurrency.warm_schedule: Vercel Cron sends GET <production URL><path> with
        # `Authorization: Bearer $CRON_SECRET`, which deploy sets on the project
        # (https://vercel.com/docs/cron-jobs, https://vercel.com/docs/cron-jobs/manage-cron-jobs)
        vercel["crons"] = [{"path": "/api/agent", "schedule": warm.cron(settings.concurrency.warm_schedule)}]
    if runtime == "nodejs":
        function = {"maxDuration": settings.timeout, "memory": settings.memory}
        vercel["functions"] = {ROUTE_FILE: function}
        if "regions" in settings.options:
            vercel["regions"] = list(settings.options["regions"])
    package = {
        "name": project,
        "private": True,
        "type": "module",
        "devDependencies": {"typescript": "5.9.3"},
    }
    tsconfig = {
        "compilerOptions": {
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "bundler",
            "lib": ["ES2022", "DOM"],
            "strict": True,
            "resolveJsonModule": True,
            "isolatedModules": True,
            "noEmit": True,
            "skipLibCheck": True,
            "allowJs": True,
            "checkJs": True,
            "types": [],
        },
        "include": ["api/**/*.ts", "lib/**/*.mjs"],
    }
    return [
        File(f"{name}/{ROUTE_FILE}", _route(runtime, settings.sessions is not None)),
        js_core_file(name),
        *store_files(name, settings),
        json_file(f"{name}/agent.json", {**agent.runtime_config(settings), **warm.runtime_block(settings, CRON_SECRET),
                                         "first_byte_timeout": EDGE_FIRST_BYTE if runtime == "edge" else None,
                                         "sessions": sessions.runtime_block(settings, SESSION_STORE, {
                                             "url_env": "UPSTASH_REDIS_REST_URL",
                                             "token_env": "UPSTASH_REDIS_REST_TOKEN"})}),
        json_file(f"{name}/package.json", package),
        json_file(f"{name}/tsconfig.json", tsconfig),
        json_file(f"{name}/vercel.json", vercel),
        File(f"{name}/{STATIC_DIR}/robots.txt", ROBOTS_TXT),
    ]


def store_files(target: str, settings: TargetSettings) -> list[File]:
    """lib/sessions.mjs (the store) and lib/with-sessions.mjs (the core's entry that registers it), only
    when sessions are on: the bundle of an agent without them holds no store code."""
    if settings.sessions is None:
        return []
    return [File(f"{target}/lib/{file}", JS_CORE.with_name(file).read_bytes())
            for file in ("sessions.mjs", "with-sessions.mjs")]
