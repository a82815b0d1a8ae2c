"""The generated AWS apps through AWS's and Docker's own tools: `sam build`, cfn-lint and hadolint.

All offline: sam builds a zip or Node.js function locally (no Docker, no AWS account); the image
variant needs a Docker engine to `sam build`, so its Dockerfile is linted and its template checked
by cfn-lint only.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build, write_agent

# sam comes from its own venv (Makefile: $(VENV)/sam-cli): its exact pins (boto3, click) would
# otherwise downgrade the project's own dependencies.
SAM = Path(sys.prefix) / "sam-cli" / "bin" / "sam"
BIN = Path(sys.executable).parent

# (variant, targets.aws block): every Dockerfile and template the aws target can generate
VARIANTS = {
    "python-x86_64": "{}",
    "python-arm64": "{architecture: arm64, runtime: python3.13}",
    "python-image": "{package: image}",
    "python-ssm-key": "{}",  # with secrets: the key read from SSM (a policy in the template)
    "node-x86_64": "{stream: true}",
    "node-arm64": "{stream: true, architecture: arm64}",
}
SSM_SECRETS = "secrets:\n  OPENAI_API_KEY: {aws: ssm:/agents/openai-key}\n"


def tool(name: str) -> str:
    """A linter installed by `make install-test`; missing, the test fails (never skips)."""
    path = SAM if name == "sam" else BIN / name
    if not path.is_file():
        pytest.fail(f"{path} not found: run `make install-test`", pytrace=False)
    return str(path)


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> dict[str, Path]:
    """Each variant built into its own folder: variant -> generated/aws."""
    out = {}
    for variant, block in VARIANTS.items():
        folder = tmp_path_factory.mktemp(variant)
        secrets = SSM_SECRETS if variant == "python-ssm-key" else ""
        agent = write_agent(folder, f"name: tools-bot\nprompt: hi\nmodel: m\n{secrets}targets:\n  aws: {block}\n")
        assert build(agent, folder / "generated") == 0
        out[variant] = folder / "generated" / "aws"
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_dockerfile_passes_hadolint_without_a_single_finding(apps, variant):
    dockerfile = apps[variant] / "Dockerfile"
    result = subprocess.run([tool("hadolint"), "--failure-threshold", "style", "--disable-ignore-pragma",
                             "--format", "json", str(dockerfile)], capture_output=True, text=True,
                            cwd=dockerfile.parent)
    assert (result.returncode, json.loads(result.stdout or "[]")) == (0, []), result.stdout + result.stderr


@pytest.mark.parametrize(("variant", "platform"), [("python-x86_64", "linux/amd64"), ("python-arm64", "linux/arm64"),
                                                   ("node-x86_64", "linux/amd64"), ("node-arm64", "linux/arm64")])
def test_the_platform_is_given_to_docker_build_as_the_deploy_does(apps, variant, platform):
    lines = (apps[variant] / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if line.startswith("FROM --platform")]
    assert f"#   docker build --platform {platform} --provenance=false -t IMAGE ." in lines
    api = Path(__file__).resolve().parents[2] / "framework" / "platforms" / "aws" / "api.py"
    deploy = api.read_text(encoding="utf-8")
    assert '_docker("build", "--platform", platform, "--provenance=false"' in deploy


def test_every_sam_template_passes_cfn_lint(apps):
    templates = [str(app / "template.yaml") for app in apps.values()]
    result = subprocess.run([tool("cfn-lint"), "--format", "parseable", *templates], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def lambda_python(version: str) -> Path | None:
    """A python<version> for sam's Python builder: on PATH, else one of pyenv's installed versions
    (under PYENV_ROOT, $HOME, or the account's own home, which an emptied HOME does not move)."""
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-c", "1"], capture_output=True).returncode == 0:
        return Path(found).parent
    roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"),
             os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".pyenv")]
    for root in filter(None, roots):
        for folder in sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin")), reverse=True):
            if os.access(os.path.join(folder, f"python{version}"), os.X_OK):
                return Path(folder)
    return None


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "code"), [("python-x86_64", "lambda_function.py"), ("node-arm64", "index.mjs")])
def test_sam_builds_the_app_offline(apps, tmp_path, variant, code):
    app = shutil.copytree(apps[variant], tmp_path / "app")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "HOME": str(tmp_path)}
    if variant.startswith("python"):
        python = lambda_python("3.12")
        if python is None:  # sam's Python builder insists on the function's own Python version
            pytest.skip("sam builds a python3.12 function only with a local python3.12: none on PATH or in pyenv")
        env["PATH"] = f"{python}{os.pathsep}{env['PATH']}"
    result = subprocess.run([tool("sam"), "build"], cwd=app, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    built = app / ".aws-sam" / "build"
    assert (built / "Agent" / code).is_file() and (built / "Agent" / "agent.json").is_file()
    assert (built / "template.yaml").is_file()
