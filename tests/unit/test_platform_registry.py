"""A platform is one object in one registry: a fifth platform, defined here and registered with
`registry.register`, is validated, built, offered by the CLI, served, planned and signed in to by CI
without a line changed under framework/."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from framework.cli import main
from framework.deploy.plan import CREATE, Operation, Plan, Resource
from framework.deploy.skeleton import DeployerBase, DeployOptions, DeployPlan, SecretHome
from framework.findings import Finding
from framework.local.base import LocalOptions
from framework.model import Agent, TargetSettings
from framework.platforms import registry
from framework.platforms.base import CiLogin, Definition
from framework.render import File, json_file, runtime_file
from tests.conftest import write_agent

NAME = "pyfn"
MAX_TIMEOUT = 600
HANDLER = b'''"""The generated app: a plain Python function of the request body."""


def handle(body):
    return {"response": "echo: " + body["message"], "tokens": 0}
'''
SCHEMA = {
    "description": "A throwaway Python platform, registered by the tests.",
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "region": {"type": "string", "pattern": "^local-[0-9]$", "default": "local-1",
                   "x-message": "must be local-N"},
        "timeout": {"$ref": "#/$defs/timeout"},
    },
}
AGENT = """\
    name: plug-bot
    prompt: Answer briefly.
    model: gpt-4o-mini
    targets:
      pyfn:
        region: local-2
"""


def check(agent: Agent, settings: TargetSettings) -> list[Finding]:
    if settings.timeout > MAX_TIMEOUT:
        return [Finding(settings.path_of("timeout"), f"pyfn runs a function for at most {MAX_TIMEOUT} s")]
    return []


def render(agent: Agent, settings: TargetSettings) -> list[File]:
    return [File(f"{NAME}/main.py", HANDLER), runtime_file(NAME),
            json_file(f"{NAME}/agent.json", agent.runtime_config(settings))]


def endpoint(agent: Agent, settings: TargetSettings) -> str:
    return "/"


class LocalApp:
    """The generated handler behind Python's own HTTP server, as the platform's runtime would run it."""

    def __init__(self, options: LocalOptions):
        namespace: dict = {}
        exec(compile((options.app_dir / "main.py").read_text(), "main.py", "exec"), namespace)
        handle = namespace["handle"]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = json.dumps(handle(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.options = options
        self._server = ThreadingHTTPServer((options.host, options.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://{options.host}:{self._server.server_address[1]}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Deployer(DeployerBase):
    """Plans a create from an empty snapshot: what `plan` needs of a deployer, nothing more."""

    title = "Py Functions"
    home = SecretHome(NAME, copied_into="the function", keeper="the function", holder="the function",
                      otherwise=lambda name: "")

    def __init__(self, agent: Agent, settings: TargetSettings, files: Sequence[File], options: DeployOptions):
        super().__init__(agent, settings, files, options, self.home.copied_names(agent.secrets))

    def translate(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def prepare(self) -> None:
        pass

    def snapshot(self, *, destroy: bool = False) -> dict:
        return {}

    def plan(self, snapshot: dict) -> DeployPlan:
        operation = Operation("create_function", {"files": [f.path for f in self.files]}, api="CreateFunction")
        resource = Resource("function", self.agent.name, CREATE, operations=(operation,))
        return DeployPlan(Plan(NAME, f"{self.agent.name} on Py Functions ({self.settings.options['region']})",
                               (resource,)))


PLATFORM = Definition(
    name=NAME, title="Py Functions", check=check, render=render, endpoint=endpoint,
    runner=LocalApp, deployer=Deployer, schema={"target": SCHEMA},
    ci_login=CiLogin(variables="#   PYFN_TOKEN: the pyfn API token", step="""\
      - uses: example/pyfn-login@v1
        with:
          role: ${{ vars.PYFN_@@_ROLE }}
          region: REGION""", requires=("region",)),
)


@pytest.fixture
def pyfn():
    registry.register(PLATFORM)
    yield PLATFORM
    registry.unregister(NAME)


@pytest.fixture
def agent_yaml(tmp_path: Path) -> Path:
    return write_agent(tmp_path, AGENT)


def test_validate_reads_its_schema_part_and_its_limits(pyfn, tmp_path, capsys):
    assert main(["validate", "-f", str(write_agent(tmp_path / "ok", AGENT))]) == 0
    assert "ok (pyfn)" in capsys.readouterr().out

    wrong = write_agent(tmp_path / "wrong", AGENT.replace("region: local-2", "region: mars\n        timeout: 900"))
    assert main(["validate", "-f", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert "targets.pyfn.region: must be local-N" in err

    too_long = write_agent(tmp_path / "long", AGENT.replace("region: local-2", "timeout: 900"))
    assert main(["validate", "-f", str(too_long)]) == 1
    assert "targets.pyfn.timeout: pyfn runs a function for at most 600 s" in capsys.readouterr().err


def test_an_unregistered_platform_is_an_unknown_setting(agent_yaml, capsys):
    assert main(["validate", "-f", str(agent_yaml)]) == 1
    assert "targets.pyfn: unknown setting 'pyfn'" in capsys.readouterr().err


def test_build_writes_its_folder_and_the_cli_offers_it(pyfn, agent_yaml, tmp_path, capsys):
    out = tmp_path / "generated"
    assert main(["build", "-f", str(agent_yaml), "-o", str(out), "--target", NAME, "--format", "json"]) == 0
    built = json.loads(capsys.readouterr().out)["targets"][NAME]
    assert built == {"title": "Py Functions", "folder": f"{out}/{NAME}", "files": 3, "endpoint": "/"}
    assert (out / NAME / "main.py").read_bytes() == HANDLER
    assert json.loads((out / "manifest.json").read_text())["targets"] == [NAME]
    assert main(["build", "-f", str(agent_yaml), "-o", str(out), "--check"]) == 0


def test_serve_finds_its_runner(pyfn, agent_yaml, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "generated"
    assert main(["invoke", "-f", str(agent_yaml), "-o", str(out), "--target", NAME, "-m", "hello"]) == 0
    assert json.loads(capsys.readouterr().out) == {"response": "echo: hello", "tokens": 0}


def test_plan_finds_its_deployer(pyfn, agent_yaml, tmp_path, capsys):
    out = tmp_path / "generated"
    assert main(["plan", "-f", str(agent_yaml), "-o", str(out), "--format", "json"]) == 2  # changes pending
    plan = json.loads(capsys.readouterr().out)["targets"][NAME]  # found among the deployable targets
    assert plan["title"] == "plug-bot on Py Functions (local-2)"
    assert [op["api"] for resource in plan["resources"] for op in resource["operations"]] == ["CreateFunction"]


def test_init_ci_signs_in_with_its_login(pyfn, agent_yaml, tmp_path):
    workflow = agent_yaml.parent / ".github" / "workflows" / "agent.yml"
    assert main(["init-ci", "-f", str(agent_yaml), "--workflow", str(workflow)]) == 0
    text = workflow.read_text()
    assert "#   PYFN_TOKEN: the pyfn API token" in text
    assert "role: ${{ vars.PYFN_PLAN_ROLE }}\n          region: local-2" in text
    assert "role: ${{ vars.PYFN_DEPLOY_ROLE }}\n          region: local-2" in text


def test_a_name_is_registered_once(pyfn):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(PLATFORM)


def test_the_built_in_platforms_in_their_order():
    assert registry.names() == ("aws", "gcp", "azure", "vercel")
    assert registry.deployable() == ("aws", "gcp", "azure", "vercel")
    with pytest.raises(ValueError, match="built in"):
        registry.unregister("aws")


def test_the_committed_schema_is_assembled_from_the_platforms_parts():
    """schema/agent.schema.json is what editors read; its platform blocks come from
    framework/platforms/<name>/schema.json and the rest from schema/agent.base.json."""
    committed = (Path(__file__).resolve().parents[2] / "schema" / "agent.schema.json").read_text(encoding="utf-8")
    assert committed == registry.assembled_schema(), (
        "schema/agent.schema.json is out of date: write registry.assembled_schema() to it "
        "(python -c 'from framework.platforms import registry; print(registry.assembled_schema(), end=\"\")' "
        "> schema/agent.schema.json)")
    assert list(json.loads(committed)["properties"]["targets"]["properties"]) == list(registry.names())


def test_a_registered_platform_leaves_the_schema_as_it_was(pyfn):
    from framework.schema import schema

    assert "pyfn" in schema()["properties"]["targets"]["properties"]
    registry.unregister(NAME)
    assert "pyfn" not in schema()["properties"]["targets"]["properties"]
    registry.register(PLATFORM)  # for the fixture to take back out


def test_validate_and_build_import_no_cloud_sdk_and_no_local_runtime(tmp_path):
    """The SDKs and local runtimes are imported by the platform's runner and deployer only."""
    script = (
        "import sys\n"
        "from framework.cli import main\n"
        "assert main(['validate', '-f', 'agent.yaml']) == 0\n"
        f"assert main(['build', '-f', 'agent.yaml', '-o', {str(tmp_path)!r}]) == 0\n"
        "heavy = ('boto3', 'botocore', 'azure', 'google.auth', 'google.api_core', 'google.cloud.functions_v2',\n"
        "         'requests', 'awslambdaric', 'functions_framework')\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + '.' for h in heavy))))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
