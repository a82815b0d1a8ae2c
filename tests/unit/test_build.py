"""build: deterministic output, the --check gate, stale files, and nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import NASTY_PROMPT, build, write_agent

AGENT = """\
    name: build-bot
    prompt: {file: prompt.txt}
    model: gpt-4o-mini
    targets:
      aws: {}
      gcp: {}
      azure: {timeout: 200, memory: 2048}
      vercel: {timeout: 25}
"""


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    write_agent(tmp_path, AGENT, prompt_file="You are helpful.\n")
    return tmp_path


def test_two_builds_are_byte_identical(project, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    assert build(project / "agent.yaml", project / "generated") == 0
    assert build(project / "agent.yaml", other / "generated") == 0
    assert tree(project / "generated") == tree(other / "generated")


def test_generated_apps_have_the_promised_files(project):
    build(project / "agent.yaml", project / "generated")
    files = set(tree(project / "generated"))
    assert {"aws/lambda_function.py", "aws/requirements.txt", "aws/Dockerfile", "aws/template.yaml",
            "gcp/main.py", "gcp/requirements.txt", "azure/function_app.py", "azure/host.json",
            "azure/requirements.txt", "vercel/api/agent.ts", "vercel/package.json", "vercel/tsconfig.json",
            "vercel/vercel.json", "manifest.json"} <= files


def test_manifest_lists_every_file_with_its_sha256_and_the_inputs(project):
    import hashlib

    build(project / "agent.yaml", project / "generated")
    out = project / "generated"
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = {path for path in tree(out) if path not in ("manifest.json", "agent.schema.json")}
    assert set(manifest["files"]) == on_disk
    for path, digest in manifest["files"].items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest
    assert manifest["agent_yaml"]["sha256"] == hashlib.sha256((project / "agent.yaml").read_bytes()).hexdigest()
    assert manifest["prompt_file"] == {
        "path": "prompt.txt", "sha256": hashlib.sha256(b"You are helpful.\n").hexdigest()}
    assert "framework_version" in manifest


def test_check_passes_right_after_a_build(project, capsys):
    build(project / "agent.yaml", project / "generated")
    assert build(project / "agent.yaml", project / "generated", "--check") == 0


def test_check_detects_a_changed_prompt_and_writes_nothing(project, capsys):
    build(project / "agent.yaml", project / "generated")
    before = tree(project / "generated")
    (project / "prompt.txt").write_text("You are terse.\n")
    capsys.readouterr()
    assert build(project / "agent.yaml", project / "generated", "--check") == 1
    err = capsys.readouterr().err
    assert "changed   aws/agent.json" in err and "changed   manifest.json" in err
    assert tree(project / "generated") == before


def test_check_reports_missing_and_stale_files(project, capsys):
    out = project / "generated"
    build(project / "agent.yaml", out)
    (out / "gcp" / "main.py").unlink()
    (project / "agent.yaml").write_text((project / "agent.yaml").read_text().replace("  vercel: {timeout: 25}\n", ""))
    capsys.readouterr()
    assert build(project / "agent.yaml", out, "--check") == 1
    err = capsys.readouterr().err
    assert "missing   gcp/main.py" in err
    assert "stale     vercel/api/agent.ts" in err  # listed by the manifest on disk, no longer generated


def test_build_removes_targets_no_longer_rendered(project):
    out = project / "generated"
    build(project / "agent.yaml", out)
    text = (project / "agent.yaml").read_text().replace("  gcp: {}\n", "")
    (project / "agent.yaml").write_text(text)
    assert build(project / "agent.yaml", out) == 0
    assert not (out / "gcp").exists()
    assert all(not p.startswith("gcp/") for p in json.loads((out / "manifest.json").read_text())["files"])


def test_build_touches_nothing_outside_the_output_folder(project):
    neighbour = project / "notes.txt"
    neighbour.write_text("mine")
    before = {p for p in project.iterdir()}
    build(project / "agent.yaml", project / "generated")
    assert {p for p in project.iterdir()} == before | {project / "generated", project / ".generated.lock"}
    assert neighbour.read_text() == "mine"


def test_a_bad_agent_yaml_leaves_the_previous_build_untouched(project, capsys):
    out = project / "generated"
    build(project / "agent.yaml", out)
    before = tree(out)
    (project / "agent.yaml").write_text((project / "agent.yaml").read_text() + "timout: 3\n")
    assert build(project / "agent.yaml", out) == 1
    assert tree(out) == before


def test_target_option_rebuilds_one_target_and_keeps_the_manifest_whole(project):
    out = project / "generated"
    build(project / "agent.yaml", out)
    full = json.loads((out / "manifest.json").read_text())
    (project / "prompt.txt").write_text("You are terse.\n")
    assert build(project / "agent.yaml", out, "--target", "aws") == 0
    partial = json.loads((out / "manifest.json").read_text())
    assert partial["files"]["gcp/main.py"] == full["files"]["gcp/main.py"]
    assert partial["files"]["aws/agent.json"] != full["files"]["aws/agent.json"]
    assert b"terse" in (out / "aws" / "agent.json").read_bytes()
    assert b"terse" not in (out / "gcp" / "agent.json").read_bytes()


def test_target_option_rejects_a_target_not_in_agent_yaml(tmp_path, capsys):
    agent = write_agent(tmp_path, "name: one\nprompt: hi\nmodel: m\ntargets: {aws: {}}\n")
    assert build(agent, tmp_path / "generated", "--target", "gcp") == 2
    assert f"target 'gcp' is not in {agent} (it lists: aws)" in capsys.readouterr().err


def test_user_text_travels_as_data_never_as_code(tmp_path):
    agent = write_agent(tmp_path, AGENT, prompt_file=NASTY_PROMPT)
    build(agent, tmp_path / "generated")
    out = tmp_path / "generated"
    for target in ("aws", "gcp", "azure", "vercel"):
        config = json.loads((out / target / "agent.json").read_text(encoding="utf-8"))
        assert config["system_prompt"] == NASTY_PROMPT
    code = [p for p in out.rglob("*") if p.suffix in (".py", ".ts", ".yaml") or p.name == "Dockerfile"]
    for path in code:
        text = path.read_text(encoding="utf-8")
        assert "naïve" not in text and "{{ jinja }}" not in text, path


def test_templates_reject_undefined_values():
    from jinja2 import UndefinedError

    from framework.platforms.aws.target import TEMPLATES
    from framework.render import template_file

    with pytest.raises(UndefinedError):
        template_file(TEMPLATES, "aws", "template.yaml", {})


def test_no_secret_value_from_the_environment_reaches_generated(project, monkeypatch):
    secret = "sk-live-" + "x" * 40
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    build(project / "agent.yaml", project / "generated")
    for content in tree(project / "generated").values():
        assert secret.encode() not in content
        assert b"127.0.0.1:9" not in content


def test_azure_host_json_carries_the_function_timeout(project):
    build(project / "agent.yaml", project / "generated")
    host = json.loads((project / "generated" / "azure" / "host.json").read_text())
    assert host["functionTimeout"] == "00:03:20"
    assert host["extensions"]["http"]["routePrefix"] == "api"


def test_sam_template_carries_timeout_memory_concurrency_and_url(tmp_path):
    import yaml

    class _CfnLoader(yaml.SafeLoader):
        pass

    _CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: loader.construct_scalar(node)})
    agent = write_agent(tmp_path, """\
        name: sam-bot
        prompt: hi
        model: m
        concurrency: {max: 7, warm: 2}
        targets:
          aws: {timeout: 600, memory: 2048, architecture: arm64}
    """)
    build(agent, tmp_path / "generated")
    doc = yaml.load((tmp_path / "generated" / "aws" / "template.yaml").read_text(), Loader=_CfnLoader)
    props = doc["Resources"]["Agent"]["Properties"]
    assert props["Timeout"] == 600 and props["MemorySize"] == 2048
    assert props["ReservedConcurrentExecutions"] == 7
    assert props["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert props["Architectures"] == ["arm64"]
    assert props["FunctionUrlConfig"]["AuthType"] == "NONE"
    assert props["Handler"] == "lambda_function.lambda_handler"
    assert doc["Parameters"]["ModelApiKey"]["NoEcho"] is True


def test_vercel_runtime_line_follows_agent_yaml(tmp_path):
    agent = write_agent(tmp_path, """\
        name: node-bot
        prompt: hi
        model: m
        targets:
          vercel: {runtime: nodejs, timeout: 600, memory: 2048}
    """)
    build(agent, tmp_path / "generated")
    out = tmp_path / "generated" / "vercel"
    assert (out / "api" / "agent.ts").read_text().splitlines()[0] == 'export const config = { runtime: "nodejs" };'
    functions = json.loads((out / "vercel.json").read_text())["functions"]
    assert functions == {"api/agent.ts": {"maxDuration": 600, "memory": 2048}}


def test_generated_files_are_readable_by_everyone(project):
    build(project / "agent.yaml", project / "generated")
    for path in (project / "generated").rglob("*"):
        assert os.stat(path).st_mode & 0o444 == 0o444 or path.is_dir()


def test_a_manifest_that_is_not_ours_is_ignored_by_a_single_target_build(project):
    out = project / "generated"
    out.mkdir()
    (out / "manifest.json").write_text('{"files": []}')
    assert build(project / "agent.yaml", out, "--target", "aws") == 0
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert all(path.startswith("aws/") for path in files)


def test_an_output_path_that_is_a_file_is_a_clear_error(project, capsys):
    target = project / "not-a-folder"
    target.write_text("x")
    assert build(project / "agent.yaml", target) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "x"
