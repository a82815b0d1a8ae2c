"""The streaming AWS Lambda app (`targets: {aws: {stream: true}}`): a Node.js function, because Lambda
streams responses natively only on its managed Node.js runtimes
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html).

Structure only: the build writes exactly the Node app (no Python), shares the Vercel route's module
byte for byte, keeps every agent.yaml string out of code, and both modules parse under Node and
type-check with strict tsc (checkJs). Running index.mjs needs Lambda's own `awslambda` globals: that
is the AWS runner's test (AWS's runtime interface client), not this file's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NASTY_PROMPT, build, require_node, write_agent

ROOT = Path(__file__).resolve().parents[2]
CORE_TEMPLATE = ROOT / "framework" / "runtime" / "js" / "agent.mjs"

STREAM_AGENT = """\
    name: stream-bot
    prompt: {file: prompt.txt}
    model: fake-stream-model-7
    max_tokens: 88
    timeout: 120
    api_key_env: STREAM_BOT_MODEL_KEY
    targets:
      aws:
        stream: true
        architecture: arm64
      vercel:
        runtime: nodejs
"""

NODE_FILES = {"index.mjs", "lib/agent.mjs", "agent.json", "package.json", "Dockerfile", "template.yaml", "DEPLOY.md"}

# Strict tsc over the Node app as generated: the core and index.mjs are plain JavaScript checked
# through their JSDoc types, with no @types/node (only Web-standard APIs are allowed).
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "bundler",
        "lib": ["ES2022", "DOM", "DOM.Iterable", "DOM.AsyncIterable"],
        "strict": True,
        "allowJs": True,
        "checkJs": True,
        "resolveJsonModule": True,
        "noEmit": True,
        "skipLibCheck": True,
        "types": [],
    },
    "include": ["index.mjs", "lib/**/*.mjs"],
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """generated/ of the streaming agent, from the real build."""
    folder = tmp_path_factory.mktemp("aws-node")
    agent = write_agent(folder, STREAM_AGENT, prompt_file=NASTY_PROMPT)
    assert build(agent, folder / "generated") == 0
    return folder / "generated"


def files_of(app: Path) -> set[str]:
    return {p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file()}


def test_a_streaming_aws_agent_is_built_as_exactly_the_node_app(generated):
    app = generated / "aws"
    assert files_of(app) == NODE_FILES
    assert not any(name.endswith((".py", ".txt")) for name in files_of(app))
    manifest = json.loads((generated / "manifest.json").read_text(encoding="utf-8"))
    assert {path for path in manifest["files"] if path.startswith("aws/")} == {f"aws/{f}" for f in NODE_FILES}


def test_the_core_is_byte_identical_to_the_vercel_routes(generated):
    core = (generated / "aws" / "lib" / "agent.mjs").read_bytes()
    assert core == (generated / "vercel" / "lib" / "agent.mjs").read_bytes()
    assert core == CORE_TEMPLATE.read_bytes()
    route = (generated / "vercel" / "api" / "agent.ts").read_text(encoding="utf-8")
    assert 'from "../lib/agent.mjs";' in route


def test_no_agent_yaml_string_reaches_the_code(generated):
    app = generated / "aws"
    config = json.loads((app / "agent.json").read_text(encoding="utf-8"))
    assert config["system_prompt"] == NASTY_PROMPT  # the prompt travels as data, exactly
    assert config["model"] == "fake-stream-model-7" and config["stream"] is True and config["timeout"] == 120
    assert config["api_key_env"] == "STREAM_BOT_MODEL_KEY"
    user_strings = ["stream-bot", "fake-stream-model-7", "STREAM_BOT_MODEL_KEY", "88",
                    *(line.strip() for line in NASTY_PROMPT.splitlines() if line.strip())]
    for code in ("index.mjs", "lib/agent.mjs"):
        text = (app / code).read_text(encoding="utf-8")
        leaked = [s for s in user_strings if s in text]
        assert not leaked, f"{code} contains agent.yaml text: {leaked}"


def test_package_dockerfile_and_template_describe_a_streaming_node_function(generated):
    app = generated / "aws"
    assert json.loads((app / "package.json").read_text(encoding="utf-8")) == {
        "name": "stream-bot", "version": "1.0.0", "private": True, "type": "module"}
    dockerfile = (app / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert "FROM public.ecr.aws/lambda/nodejs:22" in dockerfile
    assert "#   docker build --platform linux/arm64 --provenance=false -t IMAGE ." in dockerfile
    assert dockerfile[-1] == 'CMD ["index.handler"]'
    copied = " ".join(line for line in dockerfile if line.startswith("COPY"))
    for name in ("package.json", "agent.json", "index.mjs", "lib/"):
        assert name in copied
    template = (app / "template.yaml").read_text(encoding="utf-8")
    assert 'Runtime: "nodejs22.x"' in template
    assert "InvokeMode: RESPONSE_STREAM" in template
    assert "Handler: " in template and "lambda_function" not in template


def test_index_mjs_adapts_events_to_the_core(generated):
    index = (generated / "aws" / "index.mjs").read_text(encoding="utf-8")
    assert 'import { handle, warmUp } from "./lib/agent.mjs";' in index
    assert "export const handler = lambda.streamifyResponse(" in index
    assert "HttpResponseStream.from(" in index
    assert "https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html" in index


def test_a_non_streaming_aws_agent_stays_the_python_app(tmp_path):
    agent = write_agent(tmp_path, STREAM_AGENT.replace("stream: true", "stream: false"), prompt_file="Be brief.")
    assert build(agent, tmp_path / "generated", "--target", "aws") == 0
    app = tmp_path / "generated" / "aws"
    assert {"lambda_function.py", "agent_runtime.py"} <= files_of(app)
    assert not any(name.endswith(".mjs") for name in files_of(app))


@pytest.mark.parametrize("module", ["index.mjs", "lib/agent.mjs"])
def test_both_modules_parse_under_node(module, generated):
    require_node()
    result = subprocess.run(["node", "--check", str(generated / "aws" / module)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_core_exports_every_method_and_handle(generated):
    """Importing the core (not index.mjs, which needs Lambda's globals) as native ESM from the app."""
    require_node()
    core = (generated / "aws" / "lib" / "agent.mjs").as_uri()
    script = f"import({json.dumps(core)}).then((m) => console.log(JSON.stringify(Object.keys(m).sort())));"
    result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    methods = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    assert json.loads(result.stdout) == sorted([*methods, "handle", "warmUp"])


def test_the_node_app_type_checks_with_strict_tsc(generated, tsc, tmp_path):
    app = shutil.copytree(generated / "aws", tmp_path / "app")
    (app / "tsconfig.json").write_text(json.dumps(TSCONFIG), encoding="utf-8")
    result = subprocess.run([str(tsc), "--noEmit", "-p", str(app)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
