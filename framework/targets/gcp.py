"""Google Cloud Functions 2nd gen (Cloud Run functions): a Python HTTP function for functions-framework."""

from __future__ import annotations

from framework.config.validate import Finding
from framework.model import Agent, TargetSettings
from framework.render import File, json_file, runtime_file, template_file

name = "gcp"
title = "Google Cloud Functions (2nd gen)"

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


def check(agent: Agent, settings: TargetSettings) -> list[Finding]:
    out = []
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
    return out


def endpoint(agent: Agent, settings: TargetSettings) -> str:
    return "/"


def render(agent: Agent, settings: TargetSettings) -> list[File]:
    return [
        template_file(name, "main.py", {}),
        runtime_file(name),
        json_file(f"{name}/agent.json", agent.runtime_config(settings)),
        template_file(name, "requirements.txt", {"client": agent.client}),
    ]
