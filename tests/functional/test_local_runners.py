"""The local runners (framework/local/) and the `serve` / `invoke` commands.

The fronts must enforce each platform's timeout even on an app that does not cooperate, so the
timeout tests serve tiny hand-written apps that block (until the test releases them) or never
answer, through the registry's runner exactly as `serve` does. The command tests run
`python -m framework` as a subprocess against the session's fake model server. 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.local.base import LocalApp, LocalOptions
from framework.platforms import registry
from tests.conftest import build, write_agent
from tests.functional.apps import free_port

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1.5
API_KEY = "test-key-not-a-real-secret-local"


def start(target: str, options: LocalOptions) -> LocalApp:
    """The target's runner, looked up as `serve` looks it up (framework.local.session.launch)."""
    runner = registry.get(target).runner
    assert runner is not None
    return runner(options)

# Blocks until the test creates `release` next to it (or 30 s pass), then leaves `finished`.
WAIT_FOR_RELEASE = """\
def wait_for_release():
    deadline = time.monotonic() + 30
    while not (HERE / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (HERE / "finished").touch()
"""

GCP_MAIN = """\
import time
from pathlib import Path

HERE = Path(__file__).parent

{wait}

def agent_handler(request):
    if request.path == "/fast":
        return "fast", 200
    wait_for_release()
    return "late", 200
"""

AZURE_FUNCTION_APP = """\
import time
from pathlib import Path

import azure.functions as func

HERE = Path(__file__).parent
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

{wait}

@app.route(route="agent", methods=["POST"])
def agent(req: func.HttpRequest) -> func.HttpResponse:
    wait_for_release()
    return func.HttpResponse("late")


@app.route(route="fast", methods=["POST"])
def fast(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("fast")


@app.route(route="boom", methods=["POST"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise KeyError("boom")
"""

AZURE_HOST = {"version": "2.0", "functionTimeout": "00:00:01.5", "extensions": {"http": {"routePrefix": "api"}}}

# Never answers; with {"trickle": true} starts a stream that it never ends.
VERCEL_ROUTE = """\
export const config = { runtime: "RUNTIME" };

export async function POST(request: Request): Promise<Response> {
  const body = await request.json();
  if (body.trickle) {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("first "));
      },
    });
    return new Response(stream, { headers: { "Content-Type": "text/plain; charset=utf-8" } });
  }
  return new Promise<Response>(() => undefined);
}
"""


def options(app_dir: Path, **settings) -> LocalOptions:
    return LocalOptions(app_dir=app_dir, port=0, timeout=TIMEOUT, concurrency=2, env=dict(os.environ),
                        function_name="t", memory=256, settings=settings)


def call(url: str, method: str = "POST", payload: dict | None = None, path: str | None = None):
    """(status, content type, body) of one request; `path` replaces the URL's path."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        body = json.dumps(payload if payload is not None else {"message": "hi"}).encode()
        conn.request(method, path or parts.path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def release(app_dir: Path) -> None:
    (app_dir / "release").touch()


# ------------------------------------------------------------------------------ timeouts, per platform


@pytest.fixture(scope="module")
def gcp_app(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    app_dir = tmp_path_factory.mktemp("gcp-sleeper")
    (app_dir / "main.py").write_text(GCP_MAIN.format(wait=WAIT_FOR_RELEASE), encoding="utf-8")
    app = start("gcp", options(app_dir))
    try:
        yield app.url, app_dir
    finally:
        release(app_dir)
        app.close()


@pytest.fixture(scope="module")
def azure_app(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    app_dir = tmp_path_factory.mktemp("azure-sleeper")
    (app_dir / "function_app.py").write_text(AZURE_FUNCTION_APP.format(wait=WAIT_FOR_RELEASE), encoding="utf-8")
    (app_dir / "host.json").write_text(json.dumps(AZURE_HOST), encoding="utf-8")
    app = start("azure", options(app_dir))
    try:
        yield app.url, app_dir
    finally:
        release(app_dir)
        app.close()


@pytest.fixture(scope="module", params=["edge", "nodejs"])
def vercel_app(request, tmp_path_factory, edge_runtime) -> Iterator[tuple[str, str]]:
    app_dir = tmp_path_factory.mktemp(f"vercel-{request.param}-never")
    (app_dir / "api").mkdir()
    (app_dir / "api" / "agent.ts").write_text(VERCEL_ROUTE.replace("RUNTIME", request.param), encoding="utf-8")
    app = start("vercel", options(app_dir, runtime=request.param))
    try:
        yield app.url, request.param
    finally:
        app.close()


def test_gcp_front_answers_504_when_the_function_outlives_its_timeout(gcp_app):
    url, app_dir = gcp_app
    try:
        status, content_type, body = call(url)
        assert not (app_dir / "finished").exists()  # the front answered; the function is still running
    finally:
        release(app_dir)
    assert status == 504 and content_type.startswith("application/json")
    assert json.loads(body) == {"error": "the function timed out after 1.5 s (upstream request timeout)"}


def test_gcp_front_passes_a_timely_answer_through(gcp_app):
    url, _ = gcp_app
    assert call(url, path="/fast")[::2] == (200, b"fast")


def test_azure_front_answers_500_functiontimeout_when_the_function_outlives_it(azure_app):
    url, app_dir = azure_app
    assert urllib.parse.urlsplit(url).path == "/api/agent"
    try:
        status, content_type, body = call(url)
        assert not (app_dir / "finished").exists()
    finally:
        release(app_dir)
    assert status == 500 and content_type.startswith("application/json")
    assert "functionTimeout" in json.loads(body)["error"]


def test_azure_front_routes_only_the_functions_paths_and_methods(azure_app):
    url, _ = azure_app
    assert call(url, path="/api/fast")[::2] == (200, b"fast")
    assert call(url, path="/api/other") == (404, "", b"")
    assert call(url, path="/agent") == (404, "", b"")  # the route prefix is part of the path
    assert call(url, method="GET")[0] == 404  # a method the function does not declare


def test_azure_front_reports_an_unhandled_exception_as_one_not_as_a_timeout(azure_app):
    url, _ = azure_app
    status, content_type, body = call(url, path="/api/boom")
    assert status == 500 and content_type.startswith("application/json")
    assert json.loads(body) == {"error": "the function raised an unhandled KeyError (see the function's log)"}


def test_vercel_front_answers_504_when_the_function_never_responds(vercel_app):
    url, runtime = vercel_app
    status, content_type, body = call(url)
    assert status == 504 and content_type.startswith("application/json")
    code = "EDGE_FUNCTION_INVOCATION_TIMEOUT" if runtime == "edge" else "FUNCTION_INVOCATION_TIMEOUT"
    assert json.loads(body) == {"error": f"the function did not respond within 1.5 s ({code})"}


def test_vercel_front_cuts_a_stream_that_outlives_the_timeout(vercel_app):
    url, _ = vercel_app
    status, content_type, body = call(url, payload={"message": "hi", "trickle": True})
    assert status == 200 and content_type.startswith("text/plain")
    assert body == b"first "  # what was sent before the cut, then a clean end of the body


# ------------------------------------------------------------------------------ serve and invoke

CLI_AGENT = """\
    name: cli-bot
    prompt: {file: prompt.txt}
    model: fake-cli-1
    timeout: 10
    targets:
      gcp: {}
      azure: {}
      vercel:
        stream: true
"""


def model_env(fake_model, **values: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env.update(OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY)
    env.update(values)
    return {k: v for k, v in env.items() if v is not None}


def framework(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framework", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cli_agent(tmp_path_factory) -> list[str]:
    """`-f agent.yaml -o generated` of an agent built up to date (invoke has nothing to rebuild)."""
    folder = tmp_path_factory.mktemp("cli")
    agent = write_agent(folder, CLI_AGENT, prompt_file="Answer briefly.")
    assert build(agent, folder / "generated") == 0
    return ["-f", str(agent), "-o", str(folder / "generated")]


def test_serve_without_the_api_key_exits_2_naming_the_variable(cli_agent, fake_model):
    result = framework("serve", "--target", "gcp", "--port", str(free_port()), *cli_agent,
                       env=model_env(fake_model, OPENAI_API_KEY=None))
    assert result.returncode == 2, result.stderr
    assert "OPENAI_API_KEY is not set" in result.stderr
    assert "Serving" not in result.stdout


def test_serve_rebuilds_a_stale_generated_folder(tmp_path, fake_model):
    agent = write_agent(tmp_path, CLI_AGENT, prompt_file="The old prompt.")
    out = tmp_path / "generated"
    assert build(agent, out) == 0
    (tmp_path / "prompt.txt").write_text("The new prompt.", encoding="utf-8")
    command = [sys.executable, "-m", "framework", "serve", "--target", "azure", "--port", "0",
               "--quiet", "-f", str(agent), "-o", str(out)]
    proc = subprocess.Popen(command, env=model_env(fake_model), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving cli-bot (azure) at "), line + proc.stderr.read()
        status, _, body = call(line.rsplit(" at ", 1)[1].strip(), payload={"message": "rebuilt-serve-check"})
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert f"rebuilt {out}/ from {agent}" in stderr
    assert status == 200 and json.loads(body)["response"] == "echo: rebuilt-serve-check"
    for target in ("gcp", "azure", "vercel"):
        assert json.loads((out / target / "agent.json").read_text())["system_prompt"] == "The new prompt."
    (sent,) = fake_model.find("rebuilt-serve-check")
    assert sent.json["messages"][0] == {"role": "system", "content": "The new prompt."}


def test_invoke_prints_the_answer_as_pretty_json(cli_agent, fake_model):
    result = framework("invoke", "--target", "gcp", "-m", "hi", *cli_agent, env=model_env(fake_model))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["response"] == "echo: hi" and answer["tokens"] > 0
    assert result.stdout == json.dumps(answer, indent=2, ensure_ascii=False) + "\n"


def test_invoke_json_prints_the_raw_body(cli_agent, fake_model):
    result = framework("invoke", "--target", "gcp", "--json", "-m", "hi", *cli_agent, env=model_env(fake_model))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # the body as the app sent it, on one line
    assert json.loads(result.stdout)["response"] == "echo: hi"


def test_invoke_exits_1_when_the_model_fails(cli_agent, fake_model):
    result = framework("invoke", "--target", "gcp", "-m", "[[status:401]] hi", *cli_agent, env=model_env(fake_model))
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"error": "the model endpoint answered HTTP 401"}


def test_invoke_stream_prints_the_streamed_text(cli_agent, fake_model, edge_runtime):
    result = framework("invoke", "--target", "vercel", "--stream", "-m", "streamed hello", *cli_agent,
                       env=model_env(fake_model, OPENAI_API_KEY="anything"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: streamed hello\n"
    (sent,) = fake_model.find("streamed hello")
    assert sent.json["stream"] is True


def test_a_busy_port_is_a_clear_error_and_leaves_no_process(tmp_path, fake_model):
    import socket

    from tests.conftest import CONTRACT_AGENT, NASTY_PROMPT
    from tests.conftest import write_agent as write_contract_agent

    agent = write_contract_agent(tmp_path, CONTRACT_AGENT, prompt_file=NASTY_PROMPT)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "framework", "serve", "--target", "gcp", "--port", str(port), "-f", str(agent),
             "-o", str(tmp_path / "generated")],
            env={**os.environ, "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_model.url},
            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
    leftovers = subprocess.run(["pgrep", "-f", f"functions_framework.*{tmp_path}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
