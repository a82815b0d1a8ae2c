"""What only the Vercel target does, beyond the HTTP contract that test_conformance.py checks for
every app (serve-vercel included): the built route type-checks with strict tsc, declares its
runtime on line 1, streams incrementally (and back to JSON on request), and runs unchanged as
native ESM on Node.js.

The apps are built by the framework itself (`python -m framework build`, in-process) and served by
its own runner (`serve --target vercel`: Vercel's open-source `edge-runtime` behind the local
front), against the session's fake model server. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.local.base import LocalOptions
from framework.platforms.vercel import runner as vercel_runner
from tests.conftest import NASTY_PROMPT, build, write_agent
from tests.functional.apps import serve_cli

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
KEY_ENV = "VERCEL_AGENT_KEY"
API_KEY = "test-key-not-a-real-secret-vercel"

# Edge runtime, streaming by default, its key under a name of its own.
EDGE_AGENT = f"""\
    name: edge-bot
    prompt: {{file: prompt.txt}}
    model: fake-edge-1
    max_tokens: 55
    timeout: 10
    api_key_env: {KEY_ENV}
    targets:
      vercel:
        stream: true
"""

# Node.js runtime, JSON by default, with every optional setting the route reads.
NODEJS_AGENT = """\
    name: node-bot
    prompt: {file: prompt.txt}
    model: fake-node-1
    max_tokens: 66
    temperature: 0.2
    timeout: 30
    cors:
      origins: ["*"]
    targets:
      vercel:
        runtime: nodejs
        regions: [fra1]
"""

VARIANTS = {"edge": EDGE_AGENT, "nodejs": NODEJS_AGENT}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """{variant: agent folder}, each with agent.yaml and generated/ from the real build."""
    folders = {}
    for variant, body in VARIANTS.items():
        folder = tmp_path_factory.mktemp(f"vercel-{variant}")
        agent = write_agent(folder, body, prompt_file=NASTY_PROMPT)
        assert build(agent, folder / "generated") == 0
        folders[variant] = folder
    return folders


def app_dir(folder: Path) -> Path:
    return folder / "generated" / "vercel"


def base_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI") and k != KEY_ENV}
    env.update(values)
    return env


@pytest.fixture(scope="module")
def stream_app(built, fake_model, edge_runtime) -> Iterator[str]:
    """The streaming Edge agent served by `python -m framework serve --target vercel`; yields its URL."""
    env = {KEY_ENV: API_KEY, "OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": None}
    with serve_cli("vercel", built["edge"] / "agent.yaml", built["edge"] / "generated", env) as url:
        yield url


def open_post(url: str, payload: dict) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("POST", parts.path, body=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    return conn.getresponse(), conn


def post(url: str, payload: dict) -> tuple[int, str, bytes]:
    response, conn = open_post(url, payload)
    try:
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def run_runner(folder: Path, env: dict[str, str]):
    """The Edge agent served in-process by the framework's runner, with exactly this environment."""
    return vercel_runner.start(LocalOptions(app_dir=app_dir(folder), port=0, timeout=10, concurrency=1, env=env,
                                            function_name="edge-bot", memory=128, settings={"runtime": "edge"}))


# ------------------------------------------------------------------------------------ the built route


@pytest.mark.parametrize("variant", VARIANTS)
def test_built_route_type_checks_with_strict_tsc(variant, built, tsc):
    result = subprocess.run([str(tsc), "--noEmit", "-p", str(app_dir(built[variant]))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_first_line_declares_the_runtime_from_agent_yaml(variant, built):
    first = (app_dir(built[variant]) / "api" / "agent.ts").read_text(encoding="utf-8").split("\n", 1)[0]
    assert first == f'export const config = {{ runtime: "{variant}" }};'


# ------------------------------------------------------------------------------------ streaming (Edge)


def test_a_streaming_agent_streams_by_default_and_asks_for_usage(stream_app, fake_model, request):
    tag = f"tok-{request.node.name}"
    status, content_type, body = post(stream_app, {"message": tag})
    assert status == 200
    assert content_type == "text/plain; charset=utf-8"
    assert body.decode() == f"echo: {tag}"
    (sent,) = fake_model.find(tag)
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["model"] == "fake-edge-1" and sent.json["max_tokens"] == 55
    assert "temperature" not in sent.json  # not set in agent.yaml: the model's own default
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"  # from the configured api_key_env


def test_a_malformed_event_in_the_stream_is_skipped(stream_app, request):
    tag = f"tok-{request.node.name}"
    status, _, body = post(stream_app, {"message": f"[[malformed]] {tag}"})
    assert status == 200 and body.decode() == f"echo: [[malformed]] {tag}"


def test_stream_false_turns_a_streaming_agents_answer_back_into_json(stream_app, fake_model, request):
    tag = f"tok-{request.node.name}"
    status, content_type, body = post(stream_app, {"message": tag, "stream": False})
    assert status == 200
    assert content_type.startswith("application/json")
    answer = json.loads(body)
    assert answer["response"] == f"echo: {tag}" and answer["tokens"] > 0
    (sent,) = fake_model.find(tag)
    assert "stream" not in sent.json and "stream_options" not in sent.json


def test_an_error_before_the_first_byte_of_a_stream_is_a_json_error(stream_app, request):
    status, content_type, body = post(stream_app, {"message": f"[[status:401]] tok-{request.node.name}"})
    assert status == 502
    assert content_type.startswith("application/json")
    assert json.loads(body) == {"error": "the model endpoint answered HTTP 401"}


# ------------------------------------------------------------------------------------ environment


def test_a_missing_api_key_is_a_500_naming_the_variable(built, fake_model, edge_runtime):
    app = run_runner(built["edge"], base_env(OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY="not-the-one"))
    try:
        status, content_type, body = post(app.url, {"message": "keyless"})
    finally:
        app.close()
    assert status == 500 and content_type.startswith("application/json")
    assert json.loads(body) == {"error": f"{KEY_ENV} is not set in the function's environment"}
    assert not fake_model.find("keyless")


def test_an_unreachable_model_is_a_502(built, edge_runtime):
    nowhere = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    app = run_runner(built["edge"], base_env(OPENAI_BASE_URL=nowhere, **{KEY_ENV: API_KEY}))
    try:
        status, content_type, body = post(app.url, {"message": "anyone there?"})  # a stream request
    finally:
        app.close()
    assert status == 502 and content_type.startswith("application/json")
    assert json.loads(body) == {"error": "could not reach the model endpoint"}


# ------------------------------------------------------------------------------------ Node.js runtime

# Transpile api/agent.ts file by file (no bundling: the JSON import stays an import with its
# attribute) and import it as native ESM under the app's "type": "module", as Vercel's Node.js
# runtime does; then call its exports with Web-standard Requests.
NODE_ESM_CHECK = """
const ts = require(process.argv[1] + "/node_modules/typescript");
const fs = require("fs");
const dir = process.argv[2];
const source = fs.readFileSync(dir + "/api/agent.ts", "utf8");
const out = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
});
fs.writeFileSync(dir + "/api/agent.js", out.outputText);
const post = (payload) => new Request("http://localhost/api/agent", {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
});
import(dir + "/api/agent.js").then(async (m) => {
  const json = await m.POST(post({ message: "native esm" }));
  const stream = await m.POST(post({ message: "native stream", stream: true }));
  const options = await m.OPTIONS(new Request("http://localhost/api/agent", { method: "OPTIONS" }));
  console.log(JSON.stringify({
    config: m.config,
    json: { status: json.status, type: json.headers.get("content-type"), body: await json.json() },
    stream: { status: stream.status, type: stream.headers.get("content-type"), body: await stream.text() },
    options: { status: options.status, origin: options.headers.get("access-control-allow-origin") },
  }));
});
"""


def test_the_nodejs_variant_runs_as_native_esm_on_node(built, tsc, fake_model, tmp_path):
    directory = shutil.copytree(app_dir(built["nodejs"]), tmp_path / "app")
    assert json.loads((directory / "package.json").read_text())["type"] == "module"
    env = base_env(OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY)
    result = subprocess.run(["node", "-e", NODE_ESM_CHECK, str(JS_DIR), str(directory)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["config"] == {"runtime": "nodejs"}
    assert outcome["json"]["status"] == 200
    assert outcome["json"]["type"].startswith("application/json")
    assert outcome["json"]["body"]["response"] == "echo: native esm"
    assert outcome["stream"] == {"status": 200, "type": "text/plain; charset=utf-8", "body": "echo: native stream"}
    assert outcome["options"] == {"status": 204, "origin": "*"}
    (sent,) = fake_model.find("native esm")
    assert sent.json["model"] == "fake-node-1" and sent.json["temperature"] == 0.2
    assert sent.json["messages"][0] == {"role": "system", "content": NASTY_PROMPT}
