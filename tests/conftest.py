"""Shared fixtures: the fake model server (one per session) and agents built into temp folders."""

from __future__ import annotations

import fcntl
import shutil
import textwrap
from pathlib import Path

import pytest

from framework.cli import main
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"  # the JavaScript tools the tests run: tsc, vercel
API_KEY = "test-key-not-a-real-secret-0001"

# Every special character a prompt can carry: it must reach the model byte for byte.
NASTY_PROMPT = (
    "Tu es « utile » 🤖 — naïve café.\n"
    "Quotes: 'single' \"double\" \"\"\"triple\"\"\" '''also'''\n"
    "Braces: {name} {{ jinja }} {% raw %} ${template} `backtick`\n"
    "Backslashes: C:\\path\\to \\n \\u0041 \\\\\n"
    "</script><!-- --> # not a comment\n"
    "  trailing spaces and a tab\t\n"
)


@pytest.fixture(scope="session")
def fake_model():
    with FakeOpenAI() as fake:
        yield fake


def write_agent(folder: Path, body: str, prompt_file: str | None = None) -> Path:
    """Write agent.yaml (dedented) into folder, optionally with prompt.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    if prompt_file is not None:
        (folder / "prompt.txt").write_text(prompt_file, encoding="utf-8")
    path = folder / "agent.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def build(agent_yaml: Path, out: Path, *extra: str) -> int:
    return main(["build", "-f", str(agent_yaml), "-o", str(out), *extra])


CONTRACT_AGENT = """\
    name: contract-bot
    prompt: {file: prompt.txt}
    model: fake-model-1
    max_tokens: 77
    temperature: 0.5
    timeout: 4
    cors:
      origins: [https://app.example]
    targets:
      aws: {}
      gcp: {}
      azure: {}
      vercel: {}
"""


@pytest.fixture(scope="session")
def contract_build(tmp_path_factory) -> Path:
    """The contract agent (nasty prompt, 4 s timeout, one CORS origin) built for every target."""
    folder = tmp_path_factory.mktemp("contract")
    agent = write_agent(folder, CONTRACT_AGENT, prompt_file=NASTY_PROMPT)
    assert build(agent, folder / "generated") == 0
    return folder / "generated"


@pytest.fixture(scope="session")
def contract_build_openai(tmp_path_factory) -> Path:
    """The same contract agent with `client: openai`: the official SDK instead of the built-in client."""
    folder = tmp_path_factory.mktemp("contract-openai")
    agent = write_agent(folder, CONTRACT_AGENT.replace("    model: fake-model-1\n",
                                                       "    model: fake-model-1\n    client: openai\n"),
                        prompt_file=NASTY_PROMPT)
    assert build(agent, folder / "generated") == 0
    assert "openai" in (folder / "generated" / "gcp" / "requirements.txt").read_text()
    return folder / "generated"


@pytest.fixture(scope="session")
def contract_build_aws_stream(tmp_path_factory) -> Path:
    """The contract agent streaming on AWS: generated as a Node.js Lambda (awslambda.streamifyResponse)."""
    folder = tmp_path_factory.mktemp("contract-aws-stream")
    agent = write_agent(folder, CONTRACT_AGENT.replace("      aws: {}\n", "      aws: {stream: true}\n"),
                        prompt_file=NASTY_PROMPT)
    assert build(agent, folder / "generated") == 0
    assert (folder / "generated" / "aws" / "index.mjs").is_file()
    return folder / "generated"


def copy_app(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def require_node() -> None:
    """Node.js and npm run the Vercel app; without them the tests fail (CI installs them), never skip."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found on PATH: the Vercel runner's tests need Node.js 20+ "
                    "and npm (Debian/Ubuntu: apt-get install nodejs npm)", pytrace=False)


def shared_lock(tmp_path_factory: pytest.TempPathFactory, name: str):
    """An exclusive lock shared by the xdist workers of this run (they share basetemp's parent)."""
    handle = (tmp_path_factory.getbasetemp().parent / f"{name}.lock").open("w")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


@pytest.fixture(scope="session")
def edge_runtime(tmp_path_factory) -> Path:
    """The Vercel runner's npm packages (edge-runtime, esbuild), installed once per machine."""
    from framework.platforms.vercel import runner as vercel_runner

    require_node()
    with shared_lock(tmp_path_factory, "edge-runtime-install"):
        return vercel_runner.ensure_runtime()


def js_tool(tmp_path_factory, name: str) -> Path:
    """tests/js/node_modules/.bin/<name>, after one `npm ci` in tests/js when it is missing (under the
    suite's lock, so no worker installs over another's run)."""
    import subprocess

    require_node()
    tool = JS_DIR / "node_modules" / ".bin" / name
    with shared_lock(tmp_path_factory, "tests-js-npm-ci"):
        if not tool.exists():
            result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                    cwd=JS_DIR, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"npm ci in tests/js failed:\n{result.stderr}"
    return tool


@pytest.fixture(scope="session")
def tsc(tmp_path_factory) -> Path:
    return js_tool(tmp_path_factory, "tsc")
