"""What Vercel itself makes of the generated project: `vercel build` (Vercel's own CLI, the same
build a deployment runs) publishes the function and nothing of the agent's configuration.

Each variant is built by the framework (`python -m framework build`, in-process) and then by
`vercel build --yes` from tests/js, offline: `.vercel/project.json` stands in for `vercel link`,
VERCEL_INSTALL_COMPLETED=1 skips the dependency install (the project's only dependency is
TypeScript, for type-checking), HOME is a temporary folder and telemetry is off. The framework's
deploy uploads exactly these files (tests/deploy/test_vercel_deploy.py), so what is asserted of
`.vercel/output/static/` here is what a deployment serves besides its function.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NASTY_PROMPT, js_tool, write_agent
from tests.conftest import build as framework_build

pytestmark = pytest.mark.slow

# A line JSON keeps as it is (no quote, backslash or control character), so it can be looked for
# byte for byte in every output file; the rest of the prompt is the usual hostile text.
MARKER = "Confidential instructions 7f3a9c: never reveal the discount code."
PROMPT = f"{MARKER}\n{NASTY_PROMPT}"
MODEL = "fake-build-model-1"

AGENTS = {
    "edge": f"""\
        name: built-edge
        prompt: {{file: prompt.txt}}
        model: {MODEL}
        timeout: 20
        cors:
          origins: [https://app.example]
        targets:
          vercel: {{}}
    """,
    "nodejs": f"""\
        name: built-node
        prompt: {{file: prompt.txt}}
        model: {MODEL}
        timeout: 60
        memory: 1024
        targets:
          vercel:
            runtime: nodejs
    """,
}


@pytest.fixture(scope="session")
def vercel_cli(tmp_path_factory) -> Path:
    return js_tool(tmp_path_factory, "vercel")


def vercel_build(cli: Path, app: Path, home: Path) -> None:
    """`vercel build --yes` in app, offline."""
    (app / ".vercel").mkdir()
    (app / ".vercel" / "project.json").write_text(json.dumps(
        {"projectId": "prj_x", "orgId": "team_x", "settings": {"framework": None}}), encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "VERCEL_TELEMETRY_DISABLED": "1",
           "NO_UPDATE_NOTIFIER": "1", "VERCEL_INSTALL_COMPLETED": "1", "CI": "1"}
    result = subprocess.run([str(cli), "build", "--yes"], cwd=app, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, vercel_cli) -> dict[str, Path]:
    """{variant: .vercel/output of `vercel build`} for the project the framework generated."""
    built = {}
    for variant, body in AGENTS.items():
        folder = tmp_path_factory.mktemp(f"vercel-build-{variant}")
        agent = write_agent(folder, body, prompt_file=PROMPT)
        assert framework_build(agent, folder / "generated") == 0
        vercel_build(vercel_cli, folder / "generated" / "vercel", folder / "home")
        built[variant] = folder / "generated" / "vercel" / ".vercel" / "output"
    return built


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("variant", AGENTS)
def test_the_only_static_file_is_robots_txt(variant, outputs):
    assert files_under(outputs[variant] / "static") == {"robots.txt": b"User-agent: *\nDisallow: /\n"}


@pytest.mark.parametrize("variant", AGENTS)
def test_no_static_file_carries_the_prompt_or_any_setting(variant, outputs):
    for name, content in files_under(outputs[variant] / "static").items():
        for secret in (MARKER, "system_prompt", MODEL, "https://app.example", "api_key_env"):
            assert secret.encode() not in content, f"static/{name} publishes {secret!r}"


@pytest.mark.parametrize("variant", AGENTS)
def test_the_function_carries_the_configuration_and_its_code(variant, outputs):
    function = outputs[variant] / "functions" / "api" / "agent.func"
    bundled = files_under(function)
    assert json.loads(bundled["agent.json"])["system_prompt"] == PROMPT  # the exact text, as data
    assert json.loads(bundled["agent.json"])["model"] == MODEL
    assert "lib/agent.mjs" in bundled


def test_the_edge_function_is_an_edge_function(outputs):
    config = json.loads((outputs["edge"] / "functions" / "api" / "agent.func" / ".vc-config.json").read_text())
    assert config["runtime"] == "edge"


def test_the_nodejs_function_has_the_duration_and_memory_of_agent_yaml(outputs):
    config = json.loads((outputs["nodejs"] / "functions" / "api" / "agent.func" / ".vc-config.json").read_text())
    assert config["runtime"].startswith("nodejs")
    assert (config["maxDuration"], config["memory"]) == (60, 1024)


@pytest.mark.parametrize("variant", AGENTS)
def test_the_openai_endpoint_paths_reach_the_function(variant, outputs):
    """vercel build turns vercel.json's rewrite into a route of the output: /api/agent/v1/... → the function."""
    routes = json.loads((outputs[variant] / "config.json").read_text())["routes"]
    rewrite = [r for r in routes if r.get("dest", "").partition("?")[0] == "/api/agent" and "v1" in r.get("src", "")]
    assert rewrite, routes
    assert re.fullmatch(rewrite[0]["src"], "/api/agent/v1/chat/completions")
    assert re.fullmatch(rewrite[0]["src"], "/api/agent/v1/models")
