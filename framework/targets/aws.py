"""AWS Lambda: a Python function behind a function URL, with a SAM template and a Dockerfile."""

from __future__ import annotations

from framework.config.validate import Finding
from framework.model import Agent, TargetSettings
from framework.render import File, json_file, runtime_file, template_file

name = "aws"
title = "AWS Lambda"

# Limits, from https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
# ("Code can run for up to 15 minutes in a single invocation") and
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html (128 MB to 10,240 MB).
MAX_TIMEOUT = 900
MAX_MEMORY = 10240
# Default regional concurrency quota is 1,000 and at least 100 must stay unreserved
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
MAX_RESERVED = 900


def check(agent: Agent, settings: TargetSettings) -> list[Finding]:
    out = []
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
        # https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html:
        # "Lambda supports response streaming on Node.js managed runtimes. For other languages,
        # you can use a custom runtime ... or use the Lambda Web Adapter."
        out.append(Finding(settings.path_of("stream"), (
            "AWS Lambda streams responses natively only on Node.js, and this framework's Python "
            "Lambda does not stream yet; set `stream: false` under targets.aws "
            "(targets.vercel streams)")))
    return out


def endpoint(agent: Agent, settings: TargetSettings) -> str:
    return "/"


def render(agent: Agent, settings: TargetSettings) -> list[File]:
    options = settings.options
    python_version = options["runtime"].removeprefix("python")
    context = {
        "description": f"Serverless agent {agent.name} (generated from agent.yaml)",
        "function_name": agent.name,
        "runtime": options["runtime"],
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
    return [
        template_file(name, "lambda_function.py", context),
        runtime_file(name),
        json_file(f"{name}/agent.json", agent.runtime_config(settings)),
        template_file(name, "requirements.txt", context),
        template_file(name, "Dockerfile", context),
        template_file(name, "template.yaml", context),
    ]
