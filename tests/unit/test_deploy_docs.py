"""generated/<platform>/DEPLOY.md: the platform CLI's own commands with agent.yaml's values, quoted."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from framework.platforms.aws.package import app_entries
from framework.platforms.azure.api import package_files
from framework.platforms.deploy_doc import FromEnv, command, fence
from framework.platforms.gcp.api import source_entries
from tests.conftest import build, write_agent

AGENT = """\
    name: docs-bot
    prompt: "PROMPT-MUST-NOT-APPEAR $(touch pwned) `id`"
    model: m
    public: false
    timeout: 200
    memory: 2048
    concurrency: {max: 7, warm: 2}
    secrets:
      OPENAI_API_KEY: {gcp: projects/p-123456/secrets/openai/versions/3, azure: "https://kv1.vault.azure.net/secrets/openai/"}
      EXTRA_TOKEN: {}
    targets:
      aws: {region: eu-west-1, architecture: arm64}
      gcp: {project: p-123456, region: europe-west1, request_concurrency: 8}
      azure:
        resource_group: "rg(prod).é"
        region: westeurope
        storage: https://acct123.blob.core.windows.net/deploys
        subscription: 00000000-0000-0000-0000-000000000001
"""


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("docs")
    assert build(write_agent(folder, AGENT), folder / "generated") == 0
    return {t: (folder / "generated" / t / "DEPLOY.md").read_text(encoding="utf-8") for t in ("aws", "gcp", "azure")}


def commands(text: str) -> list[list[str]]:
    """Each fenced command of a DEPLOY.md, split as the shell splits it (variables left as written)."""
    return [shlex.split(block) for block in re.findall(r"```sh\n(.*?)\n```", text, re.S)]


def test_gcloud_gets_every_setting_of_agent_yaml(docs):
    (deploy,) = commands(docs["gcp"])
    assert deploy == [
        "gcloud", "functions", "deploy", "docs-bot", "--gen2", "--project=p-123456", "--region=europe-west1",
        "--runtime=python312", "--source=.", "--entry-point=agent_handler", "--trigger-http", "--timeout=200s",
        "--memory=2Gi", "--cpu=1", "--min-instances=2", "--max-instances=7", "--concurrency=8",
        "--no-allow-unauthenticated", "--set-secrets=OPENAI_API_KEY=projects/p-123456/secrets/openai:3",
        "--update-env-vars=EXTRA_TOKEN=${EXTRA_TOKEN}"]


def test_az_and_func_get_every_setting_of_agent_yaml(docs):
    where = ["--subscription=00000000-0000-0000-0000-000000000001", "--resource-group=rg(prod).é", "--name=docs-bot"]
    assert commands(docs["azure"]) == [
        ["az", "functionapp", "create", *where, "--storage-account=acct123", "--flexconsumption-location=westeurope",
         "--runtime=python", "--runtime-version=3.11", "--instance-memory=2048", "--maximum-instance-count=7",
         "--deployment-storage-name=acct123", "--deployment-storage-container-name=deploys",
         "--deployment-storage-auth-type=SystemAssignedIdentity"],
        ["az", "functionapp", "scale", "config", "always-ready", "set", *where, "--settings=http=2"],
        ["az", "functionapp", "config", "appsettings", "set", *where, "--settings", "EXTRA_TOKEN=${EXTRA_TOKEN}",
         "OPENAI_API_KEY=@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/openai/)"],
        ["func", "azure", "functionapp", "publish", "docs-bot"],
    ]


def test_sam_deploy_gets_the_stack_name_region_and_parameters(docs):
    assert commands(docs["aws"]) == [
        ["sam", "build"],
        ["sam", "deploy", "--stack-name=docs-bot", "--region=eu-west-1", "--capabilities=CAPABILITY_IAM",
         "--resolve-s3", "--no-confirm-changeset", "--parameter-overrides", "FunctionName=docs-bot",
         "ModelApiKey=${OPENAI_API_KEY}"],
    ]


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_no_prompt_and_no_secret_value_in_deploy_md(docs, target):
    assert "PROMPT-MUST-NOT-APPEAR" not in docs[target]
    assert "${OPENAI_API_KEY}" in docs[target] or "${EXTRA_TOKEN}" in docs[target]


HOSTILE = ["it's", 'say "hi"', "$(touch pwned)", "`id`", "a;b|c&d", "two\nlines", "--flag", "", "~root", "*"]


def test_a_command_line_keeps_every_value_one_word_in_a_real_shell(tmp_path):
    line = command("printf", "%s\\0", *HOSTILE, FromEnv("--key=", "SOME_KEY"))
    result = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True,
                            env={"SOME_KEY": "v a l $(x) `y`", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\0")[:-1] == [*HOSTILE, "--key=v a l $(x) `y`"]
    assert list(tmp_path.iterdir()) == []  # nothing was run


@pytest.mark.parametrize("name", ["lower", "A-B", "X;Y", "$(id)", ""])
def test_only_environment_variable_names_are_expanded(name):
    with pytest.raises(ValueError):
        FromEnv("--key=", name)


@pytest.mark.parametrize(("lines", "expected"), [(["plain"], "```"), (["a ``` b"], "````"), (["`", "`````"], "``````")])
def test_the_code_fence_is_longer_than_any_backtick_run(lines, expected):
    assert fence(lines) == expected


def test_no_deploy_ships_deploy_md(tmp_path):
    from framework.render import File

    files = {t: [File(f"{t}/DEPLOY.md", b"doc"), File(f"{t}/main.py", b"code")] for t in ("aws", "gcp", "azure")}
    assert [name for name, _, _ in app_entries(files["aws"], "aws")] == ["main.py"]
    assert [name for name, _, _ in source_entries(files["gcp"])] == ["main.py"]
    assert package_files(files["azure"])[2].split("=")[0] == "main.py"
