"""AWS Lambda: a Python function behind a function URL, with a SAM template and a Dockerfile."""

from __future__ import annotations

from pathlib import Path

from framework.findings import Finding
from framework.model import Agent, TargetSettings
from framework.platforms import sessions
from framework.platforms.aws.region import REGION
from framework.platforms.deploy_doc import FromEnv, command, deploy_file
from framework.platforms.vercel import target as vercel_target
from framework.render import RUNTIME, File, environment, js_core_file, json_file, runtime_file, template_file

# agent.yaml `sessions: {store: auto}` here (framework/platforms/sessions.py)
SESSION_STORE = "dynamodb"
name = "aws"
title = "AWS Lambda"
TEMPLATES = Path(__file__).parent / "templates"

# Limits, from https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
# ("Code can run for up to 15 minutes in a single invocation") and
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html (128 MB to 10,240 MB).
MAX_TIMEOUT = 900
MAX_MEMORY = 10240
# Default regional concurrency quota is 1,000 and at least 100 must stay unreserved
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
MAX_RESERVED = 900


# Response streaming: "Lambda supports response streaming on Node.js managed runtimes. For other
# languages, you can use a custom runtime ... or use the Lambda Web Adapter."
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html)
# so a streaming agent is generated as a Node.js function (awslambda.streamifyResponse).
NODE_RUNTIME = "nodejs22.x"
PYTHON_HANDLER = "lambda_function.lambda_handler"
NODE_HANDLER = "index.handler"


def lambda_runtime(settings: TargetSettings) -> tuple[str, str]:
    """(Lambda runtime, handler) of the generated function: Node.js when it streams, else Python."""
    if settings.stream:
        return NODE_RUNTIME, NODE_HANDLER
    return settings.options["runtime"], PYTHON_HANDLER


def check(agent: Agent, settings: TargetSettings) -> list[Finding]:
    out = []
    region = settings.options.get("region")
    if region is not None and (wrong := REGION.problem(region)):
        out.append(Finding(("targets", name, "region"), wrong))
    if settings.timeout > MAX_TIMEOUT:
        out.append(Finding(settings.path_of("timeout"), (
            f"AWS Lambda stops a function after at most {MAX_TIMEOUT} s (15 min), but timeout is "
            f"{settings.timeout}; set `timeout: {MAX_TIMEOUT}` or less under targets.aws, "
            "or use targets.gcp (up to 3600 s)")))
    if settings.memory > MAX_MEMORY:
        out.append(Finding(settings.path_of("memory"), (
            f"AWS Lambda offers at most {MAX_MEMORY} MB, but memory is {settings.memory}; "
            f"set `memory: {MAX_MEMORY}` or less under targets.aws")))
    if settings.concurrency.max > MAX_RESERVED:
        out.append(Finding(settings.path_of("concurrency"), (
            f"concurrency.max {settings.concurrency.max} would reserve more than {MAX_RESERVED} of the default "
            "1,000 concurrent executions of an AWS region (100 must stay unreserved); lower it, "
            "or ask AWS for a higher quota first")))
    if settings.concurrency.warm > settings.concurrency.max:
        out.append(Finding(settings.path_of("concurrency"), (
            f"concurrency.warm ({settings.concurrency.warm}) cannot be more than concurrency.max "
            f"({settings.concurrency.max}): provisioned concurrency comes out of the reserved concurrency")))
    if settings.stream:
        refs = sorted(name for name, refs in agent.secrets.items() if "aws" in refs)
        if refs:
            out.append(Finding(("secrets", refs[0], "aws"), (
                "a streaming agent runs as a Node.js function, which reads its secrets from its environment: "
                "remove the aws reference (deploy then copies the value from your environment) or set "
                "`stream: false` under targets.aws")))
    return out


def endpoint(agent: Agent, settings: TargetSettings) -> str:
    return "/"


def render(agent: Agent, settings: TargetSettings) -> list[File]:
    options = settings.options
    python_version = options["runtime"].removeprefix("python")
    runtime, handler = lambda_runtime(settings)
    context = {
        "description": f"Serverless agent {agent.name} (generated from agent.yaml)",
        "function_name": agent.name,
        "runtime": runtime,
        "handler": handler,
        "python_version": python_version,
        "architecture": options["architecture"],
        "docker_platform": "linux/arm64" if options["architecture"] == "arm64" else "linux/amd64",
        "timeout": settings.timeout,
        "memory": settings.memory,
        "reserved": settings.concurrency.max,
        "provisioned": settings.concurrency.warm,
        "api_key_env": agent.api_key_env,
        "auth_type": "NONE" if agent.public else "AWS_IAM",
        "invoke_mode": "RESPONSE_STREAM" if settings.stream else "BUFFERED",
        "client": agent.client,
        "api_key_ref": agent.secrets[agent.api_key_env].get("aws"),
        # SAM's policy template takes the parameter name without its leading slash
        "ssm_parameters": sorted(r["aws"][len("ssm:/"):] for r in agent.secrets.values()
                                 if r.get("aws", "").startswith("ssm:")),
        "secret_arns": sorted(r["aws"] for r in agent.secrets.values() if r.get("aws", "").startswith("arn:")),
    }
    if settings.stream:
        return [*_render_node(agent, settings, context), _deploy_file(agent, settings, context)]
    return [
        template_file(TEMPLATES, name, "lambda_function.py", context),
        runtime_file(name),
        *_store_files(settings),
        json_file(f"{name}/agent.json", _runtime_config(agent, settings)),
        template_file(TEMPLATES, name, "requirements.txt", context),
        template_file(TEMPLATES, name, "Dockerfile", context),
        template_file(TEMPLATES, name, "template.yaml", context),
        _deploy_file(agent, settings, context),
    ]


def _runtime_config(agent: Agent, settings: TargetSettings) -> dict:
    """agent.json, with the secret references the function reads itself at cold start (the other
    platforms inject referenced secrets into the environment)."""
    refs = {env: r[name] for env, r in sorted(agent.secrets.items()) if name in r}
    return {**agent.runtime_config(settings), "secret_refs": refs,
            "sessions": sessions.runtime_block(settings, SESSION_STORE, {"table": f"{agent.name}-sessions"})}


def _deploy_file(agent: Agent, settings: TargetSettings, context: dict) -> File:
    """DEPLOY.md: `sam build` and `sam deploy` with template.yaml's parameters (the API key from the shell)."""
    region = [f"--region={settings.options['region']}"] if settings.options.get("region") else []
    overrides: list = [f"FunctionName={agent.name}"]
    if not context["api_key_ref"]:
        overrides.append(FromEnv("ModelApiKey=", agent.api_key_env))
    needs = "Node.js and npm" if settings.stream else (
        f"python{context['python_version']} on PATH, or add `--use-container` to build in Lambda's image with Docker")
    steps = [
        (f"Build (needs {needs}):", command("sam", "build")),
        ("Deploy the stack (it creates the execution role, hence CAPABILITY_IAM):", command(
            "sam", "deploy", f"--stack-name={agent.name}", *region, "--capabilities=CAPABILITY_IAM", "--resolve-s3",
            "--no-confirm-changeset", "--parameter-overrides", *overrides)),
    ]
    from_env = [] if context["api_key_ref"] else [agent.api_key_env]
    return deploy_file(TEMPLATES, name, steps, {"name": agent.name, "from_env": from_env})


def _index(settings: TargetSettings) -> bytes:
    """index.mjs, importing the core with its session store when sessions are on."""
    source = (TEMPLATES / "index.mjs").read_bytes()
    if settings.sessions is None:
        return source
    if source.count(b'"./lib/agent.mjs"') != 1:
        raise RuntimeError('index.mjs must import "./lib/agent.mjs" once')
    return source.replace(b'"./lib/agent.mjs"', b'"./lib/with-sessions.mjs"')


def _render_node(agent: Agent, settings: TargetSettings, context: dict) -> list[File]:
    """The streaming app: index.mjs adapts function URL events to lib/agent.mjs, the Vercel route's
    own Web-standard module (byte-identical), configured by agent.json."""
    node = {**context, "node_version": context["runtime"].removeprefix("nodejs").removesuffix(".x")}
    # npm (and so `sam build`) refuses a package without a version: "must have name and version"
    package = {"name": agent.name, "version": "1.0.0", "private": True, "type": "module"}
    dockerfile = environment(TEMPLATES).get_template("node/Dockerfile.j2").render(**node)
    return [
        File(f"{name}/index.mjs", _index(settings)),
        js_core_file(name),
        *vercel_target.store_files(name, settings),
        json_file(f"{name}/agent.json", _runtime_config(agent, settings)),
        json_file(f"{name}/package.json", package),
        File(f"{name}/Dockerfile", dockerfile.encode("utf-8")),
        template_file(TEMPLATES, name, "template.yaml", node),
    ]


def _store_files(settings: TargetSettings) -> list[File]:
    """The session store module, shipped only when sessions are on (an agent without them imports
    nothing more at cold start)."""
    if settings.sessions is None:
        return []
    return [File(f"{name}/agent_sessions.py", RUNTIME.with_name("agent_sessions.py").read_bytes())]
