"""What build owns in generated/: the files a manifest lists. The platforms' tool state and the
user's own files beside them survive every build and never fail --check, while an edited, deleted
or left-over generated file is still caught by --check and fixed by build."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from framework import writer
from tests.conftest import build, write_agent

AGENT = """\
    name: owner-bot
    prompt: {file: prompt.txt}
    model: gpt-4o-mini
    targets:
      aws: {}
      gcp: {}
      azure: {timeout: 200}
      vercel: {timeout: 25}
"""

# What each platform's tool leaves in generated/<platform>/, as that tool writes it.
TOOL_STATE = [
    ("aws", ".aws-sam/build/Agent/lambda_function.py", "# copied by sam build\n"),
    ("aws", ".aws-sam/build.toml", "[function_build_definitions]\n"),
    ("aws", "samconfig.toml", 'version = 0.1\n[default.deploy.parameters]\nstack_name = "owner-bot"\n'),
    ("aws", "samconfig.yaml", "version: 0.1\n"),
    ("gcp", ".gcloudignore", ".gcloudignore\n.git\n"),
    ("gcp", "__pycache__/main.cpython-312.pyc", "\x00pyc"),
    ("gcp", ".venv/pyvenv.cfg", "home = /usr/bin\n"),
    ("azure", "local.settings.json", '{"IsEncrypted": false, "Values": {}}\n'),
    ("azure", ".python_packages/lib/site-packages/certifi/__init__.py", "x = 1\n"),
    ("azure", ".funcignore", ".venv\n"),
    ("vercel", ".vercel/project.json", '{"projectId": "prj_1", "orgId": "team_1"}\n'),
    ("vercel", ".vercel/output/config.json", '{"version": 3}\n'),
    ("vercel", ".gitignore", ".vercel\n"),
    ("vercel", ".env.local", "VERCEL_OIDC_TOKEN=not-a-real-token\n"),
    ("vercel", "node_modules/typescript/index.js", "module.exports = {};\n"),
    ("vercel", "package-lock.json", '{"lockfileVersion": 3}\n'),
]
TOOL_IDS = [f"{target}/{path}" for target, path, _ in TOOL_STATE]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    write_agent(tmp_path, AGENT, prompt_file="You are helpful.\n")
    assert build(tmp_path / "agent.yaml", tmp_path / "generated") == 0
    return tmp_path


def edit_agent(project: Path, old: str, new: str) -> None:
    text = (project / "agent.yaml").read_text()
    assert old in text
    (project / "agent.yaml").write_text(text.replace(old, new))


def check(project: Path, *extra: str) -> int:
    return build(project / "agent.yaml", project / "generated", "--check", *extra)


@pytest.mark.parametrize(("target", "path", "content"), TOOL_STATE, ids=TOOL_IDS)
def test_tool_state_survives_a_build_that_rewrites_its_folder(project, target, path, content):
    state = project / "generated" / target / path
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(content)
    (project / "prompt.txt").write_text("You are terse.\n")  # every agent.json is rewritten
    assert build(project / "agent.yaml", project / "generated") == 0
    assert state.read_text() == content
    assert b"terse" in (project / "generated" / target / "agent.json").read_bytes()


@pytest.mark.parametrize(("target", "path", "content"), TOOL_STATE, ids=TOOL_IDS)
def test_tool_state_does_not_fail_check(project, capsys, target, path, content):
    state = project / "generated" / target / path
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(content)
    assert check(project) == 0, capsys.readouterr().err


def test_tool_state_of_a_target_dropped_from_agent_yaml_stays_without_our_files(project, capsys):
    gcp = project / "generated" / "gcp"
    (gcp / ".gcloudignore").write_text(".git\n")
    edit_agent(project, "  gcp: {}\n", "")
    assert build(project / "agent.yaml", project / "generated") == 0
    assert tree(gcp) == {".gcloudignore": b".git\n"}
    assert check(project) == 0


def test_a_file_the_user_added_is_left_alone_and_not_reported(project, capsys):
    notes = project / "generated" / "aws" / "notes" / "runbook.md"
    notes.parent.mkdir()
    notes.write_text("call Sam\n")
    edit_agent(project, "  aws: {}\n", "  aws: {stream: true}\n")  # aws/ is rebuilt as a Node.js app
    assert build(project / "agent.yaml", project / "generated") == 0
    assert notes.read_text() == "call Sam\n"
    assert check(project) == 0


def edit_a_generated_file(project: Path) -> None:
    path = project / "generated" / "gcp" / "main.py"
    path.write_text(path.read_text() + "# hand edit\n")


def delete_a_generated_file(project: Path) -> None:
    (project / "generated" / "vercel" / "public" / "robots.txt").unlink()


def drop_a_target(project: Path) -> None:
    edit_agent(project, "  gcp: {}\n", "")


def stop_generating_a_file(project: Path) -> None:
    edit_agent(project, "  aws: {}\n", "  aws: {stream: true}\n")  # lambda_function.py gives way to index.mjs


GENERATED_FILE_CASES = [  # (how generated/ goes out of date, a line --check must print)
    (edit_a_generated_file, "changed   gcp/main.py"),
    (delete_a_generated_file, "missing   vercel/public/robots.txt"),
    (drop_a_target, "stale     gcp/main.py"),
    (stop_generating_a_file, "stale     aws/lambda_function.py"),
]
CASE_IDS = [case.__name__ for case, _ in GENERATED_FILE_CASES]


def with_tool_state(project: Path) -> None:
    for target, path, content in TOOL_STATE:
        state = project / "generated" / target / path
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(content)


@pytest.mark.parametrize(("change", "line"), GENERATED_FILE_CASES, ids=CASE_IDS)
def test_check_catches_a_generated_file_out_of_date_among_tool_state(project, capsys, change, line):
    with_tool_state(project)
    change(project)
    capsys.readouterr()
    assert check(project) == 1
    assert line in capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(("change", "line"), GENERATED_FILE_CASES, ids=CASE_IDS)
def test_build_fixes_a_generated_file_out_of_date_and_keeps_tool_state(project, tmp_path_factory, capsys,
                                                                       change, line):
    with_tool_state(project)
    change(project)
    assert build(project / "agent.yaml", project / "generated") == 0
    assert check(project) == 0
    fresh = tmp_path_factory.mktemp("fresh") / "generated"
    assert build(project / "agent.yaml", fresh) == 0
    ours = {path: content for path, content in tree(project / "generated").items()
            if not writer.TOOL_STATE.intersection(path.split("/"))}
    assert ours == tree(fresh)  # exactly a fresh build's files: the stale one and its emptied folders gone


def test_a_dropped_target_with_nothing_else_in_it_leaves_no_folder(project):
    drop_a_target(project)
    assert build(project / "agent.yaml", project / "generated") == 0
    assert not (project / "generated" / "gcp").exists()


@pytest.mark.parametrize("listed", ["aws/samconfig.toml", "vercel/node_modules/typescript/index.js",
                                    "../agent.yaml", "aws/../../agent.yaml", "{project}/agent.yaml"])
def test_a_path_a_manifest_lists_outside_the_folder_or_in_tool_state_is_never_removed(project, capsys, listed):
    with_tool_state(project)
    listed = listed.format(project=project)
    manifest = project / "generated" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["files"][listed] = "0" * 64  # as a pull request editing generated/manifest.json could
    manifest.write_text(json.dumps(data))
    before = (project / "generated" / listed).read_bytes()
    assert check(project) == 1
    assert capsys.readouterr().err.count("stale") == 0
    assert build(project / "agent.yaml", project / "generated") == 0
    assert (project / "generated" / listed).read_bytes() == before


def test_a_target_build_keeps_tool_state_in_every_folder(project, capsys):
    with_tool_state(project)
    (project / "prompt.txt").write_text("You are terse.\n")
    assert build(project / "agent.yaml", project / "generated", "--target", "aws") == 0
    for target, path, content in TOOL_STATE:
        assert (project / "generated" / target / path).read_text() == content
    assert check(project, "--target", "aws") == 0
    assert check(project) == 1  # the other targets still hold the old prompt


def test_a_target_build_removes_what_it_no_longer_generates_in_its_folder(project, capsys):
    stop_generating_a_file(project)
    assert build(project / "agent.yaml", project / "generated", "--target", "aws") == 0
    assert not (project / "generated" / "aws" / "lambda_function.py").exists()
    assert (project / "generated" / "aws" / "index.mjs").is_file()
    assert check(project) == 0


def test_an_unchanged_file_is_not_rewritten(project):
    # sam build --cached and other tools' caches compare modification times
    path = project / "generated" / "aws" / "lambda_function.py"
    before = os.stat(path)
    (project / "prompt.txt").write_text("You are terse.\n")
    assert build(project / "agent.yaml", project / "generated") == 0
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_build_of_the_parent_folder_leaves_a_nested_output_folder_alone(project, capsys):
    # a stage's or agent's output folder may sit inside generated/ (generated/dev/)
    nested = project / "generated" / "dev"
    assert build(project / "agent.yaml", nested) == 0
    before = tree(nested)
    drop_a_target(project)
    assert build(project / "agent.yaml", project / "generated") == 0
    assert tree(nested) == before


def test_a_crash_mid_build_leaves_each_file_old_or_new_and_the_next_build_completes(
        project, tmp_path_factory, monkeypatch, capsys):
    old = tree(project / "generated")
    (project / "prompt.txt").write_text("You are terse.\n")
    stop_generating_a_file(project)
    new_folder = tmp_path_factory.mktemp("new") / "generated"
    assert build(project / "agent.yaml", new_folder) == 0
    new = tree(new_folder)
    real_replace, calls = os.replace, []

    def crash_on_the_fifth(source, destination):
        calls.append(destination)
        if len(calls) == 5:
            raise OSError(28, "No space left on device", str(destination))
        real_replace(source, destination)

    monkeypatch.setattr(writer.os, "replace", crash_on_the_fifth)
    assert build(project / "agent.yaml", project / "generated") == 1
    assert "No space left on device" in capsys.readouterr().err
    monkeypatch.undo()
    for path, content in tree(project / "generated").items():
        if not path.rsplit("/", 1)[-1].endswith(".tmp"):
            assert content in (old.get(path), new.get(path)), path
    assert (project / "generated" / "manifest.json").read_bytes() == old["manifest.json"]
    assert build(project / "agent.yaml", project / "generated") == 0
    assert tree(project / "generated") == new


def file_where_a_folder_goes(out: Path) -> None:
    shutil.rmtree(out / "vercel" / "lib")
    (out / "vercel" / "lib").write_text("mine")


def folder_where_a_file_goes(out: Path) -> None:
    (out / "gcp" / "main.py").unlink()
    (out / "gcp" / "main.py").mkdir()


@pytest.mark.parametrize("block", [file_where_a_folder_goes, folder_where_a_file_goes], ids=lambda f: f.__name__)
def test_something_in_the_way_of_a_generated_file_is_one_line_of_error(project, capsys, block):
    out = project / "generated"
    block(out)
    capsys.readouterr()
    assert build(project / "agent.yaml", out) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"error: cannot write the output folder {out}: ")
