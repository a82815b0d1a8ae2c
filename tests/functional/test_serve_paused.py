"""`serve --paused` and `invoke --paused` (issue 14: "serve of a paused agent says so"), on every platform's
real local runtime (awslambdaric workers, functions-framework, the Azure FunctionApp, Vercel's edge-runtime):
the app runs as usual, but every request gets the answer the platform gives while `agenthost pause` holds
(see each planner's PAUSED_ANSWER) before the app sees it, so the fake model server records no call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import pytest

from framework.platforms import registry
from tests.conftest import API_KEY, build, write_agent
from tests.functional.apps import http_call, serve_cli

SECRET = "warm-secret-for-the-paused-tests-0123"
AGENT = """\
name: paused-bot
prompt: You answer unless paused.
model: fake-model-1
timeout: 4
concurrency:
  warm_schedule: 1440
targets:
  aws: {}
  gcp: {}
  azure: {}
  vercel: {runtime: edge}
"""
STARTED = re.compile(r"Serving paused-bot \((\w+)\) PAUSED at (http://127\.0\.0\.1:\d+/\S*): every request gets "
                     r"(\d{3}) .+; run without --paused to answer$")

# platform -> status, the content type's start, the header that names the refusal, a piece of the body
ANSWERS = {
    "aws": (429, "application/json", ("x-amzn-errortype", "TooManyRequestsException"), b'"message":"Rate Exceeded."'),
    "gcp": (404, "text/html", None, b"<h1>Error: Page not found</h1>"),
    "azure": (403, "text/html", None, b"Error 403 - This web app is stopped."),
    "vercel": (503, "text/plain", ("x-vercel-error", "DEPLOYMENT_PAUSED"), b"\nDEPLOYMENT_PAUSED\n"),
}
# every kind of request a client or the platform sends: all are refused while paused
REQUESTS = [
    ("POST", "", b'{"message": "Hello"}', {"Content-Type": "application/json"}),
    ("GET", "", b"", {}),
    ("OPTIONS", "", b"", {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}),
    ("GET", "healthz", b"", {}),
    ("POST", "elsewhere/deeper", b"{}", {"Content-Type": "application/json"}),
]
TOLD = {"aws": "Rate Exceeded.", "gcp": "Error: Page not found", "azure": "This web app is stopped.",
        "vercel": "DEPLOYMENT_PAUSED"}  # what invoke prints of each answer
WARM_UPS = {"gcp": {"x-agent-warmup": SECRET}, "vercel": {"Authorization": f"Bearer {SECRET}"}}  # as in test_warmup


@pytest.fixture(scope="module")
def paused_build(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paused")
    assert build(write_agent(root, AGENT), root / "generated") == 0
    return root / "generated"


def _env(fake_model) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY,
            "AGENT_WARMUP_SECRET": SECRET, "CRON_SECRET": SECRET}


def _cli(output: Path, command: str, target: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "framework", command, "--target", target, "-f", str(output.parent / "agent.yaml"),
            "-o", str(output), *extra]


@contextmanager
def serve_paused(target: str, output: Path, env: dict[str, str]):
    """`serve --paused --port 0` as a subprocess; yields its first line's parts (target, URL, status)."""
    proc = subprocess.Popen(_cli(output, "serve", target, "--paused", "--port", "0", "--quiet"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().rstrip("\n")
        started = STARTED.fullmatch(line)
        if started is None:
            proc.kill()
            raise AssertionError(f"serve --paused --target {target} said {line!r}: {proc.stderr.read()}")
        yield started.group(1), started.group(2), int(started.group(3))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module", params=sorted(ANSWERS))
def paused(request, paused_build, fake_model):
    with serve_paused(request.param, paused_build, _env(fake_model)) as (said_target, url, said_status):
        yield request.param, said_target, url, said_status


def _at(url: str, path: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{path}" if path else url


def test_the_start_message_says_paused_and_what_every_request_gets(paused):
    target, said_target, _, said_status = paused
    assert (said_target, said_status) == (target, ANSWERS[target][0])


@pytest.mark.parametrize(("method", "path", "body", "headers"), REQUESTS,
                         ids=[f"{m} /{p}" for m, p, _, _ in REQUESTS])
def test_every_request_gets_the_platforms_paused_answer_and_no_model_call(paused, fake_model, method, path, body,
                                                                        headers):
    target, _, url, _ = paused
    status, content_type, header, piece = ANSWERS[target]
    fake_model.clear()
    got_status, got_headers, got_body = http_call(_at(url, path))(method, body, headers)
    assert (got_status, got_headers["content-type"].startswith(content_type), piece in got_body) == (
        status, True, True)
    if header is not None:
        assert got_headers[header[0]] == header[1]
    assert fake_model.requests == []


def test_a_warm_up_is_refused_too(paused, fake_model):
    target, _, url, _ = paused
    fake_model.clear()
    status, _, _ = http_call(url)("GET", b"", WARM_UPS.get(target, {}))
    assert (status, fake_model.requests) == (ANSWERS[target][0], [])


def test_a_head_request_gets_the_status_and_no_body(paused):
    target, _, url, _ = paused
    status, headers, body = http_call(url)("HEAD", b"", {})
    assert (status, body, int(headers["content-length"]) > 0) == (ANSWERS[target][0], b"", True)


@pytest.mark.parametrize("target", sorted(ANSWERS))
def test_without_paused_the_same_app_answers(target, paused_build, fake_model):
    """The control: the refusal is --paused's doing, not a broken build."""
    fake_model.clear()
    with serve_cli(target, paused_build.parent / "agent.yaml", paused_build, _env(fake_model)) as url:
        status, _, body = http_call(url)("POST", b'{"message": "Hello"}', {"Content-Type": "application/json"})
    assert (status, "response" in json.loads(body), len(fake_model.requests)) == (200, True, 1)


@pytest.mark.parametrize("target", sorted(ANSWERS))
def test_invoke_paused_prints_the_refusal_and_exits_1(target, paused_build, fake_model):
    fake_model.clear()
    done = subprocess.run(_cli(paused_build, "invoke", target, "--paused", "-m", "Hello"), env=_env(fake_model),
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, TOLD[target] in done.stdout, fake_model.requests) == (1, True, [])
    assert f"paused-bot ({target}) is PAUSED here: the request gets {ANSWERS[target][0]} " in done.stderr


def test_invoke_paused_and_deployed_together_is_a_usage_error(paused_build):
    done = subprocess.run(_cli(paused_build, "invoke", "aws", "--paused", "--deployed", "-m", "Hello"),
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, "--paused shows locally" in done.stderr) == (2, True)


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_each_platform_keeps_an_error_answer_and_says_its_status_first(name):
    answer = registry.get(name).paused()
    assert (answer.status >= 400, answer.said.startswith(f"{answer.status} "), "Content-Type" in answer.headers) == (
        True, True, True)
