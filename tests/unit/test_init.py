"""`agenthost init`: a starter agent.yaml that validates and builds as written, its `$schema` line
pointing at a schema file init writes beside it, .gitignore lines added once, and a name that is
either valid or refused in plain words."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest
import yaml

from framework.cli import main
from framework.config.validate import validate_file
from framework.errors import ExitCode, OutputError, UsageError
from framework.init import FALLBACK_NAME, GITIGNORE, GITIGNORE_HEADER, check_name, default_name, init
from framework.schema import schema_path
from framework.schema_file import write_editor_schema
from tests.conftest import build


def test_the_starter_validates_and_builds_as_written(tmp_path):
    started = init(str(tmp_path / "agent.yaml"), "demo")
    agent = validate_file(str(started.agent))
    assert (agent.agent.name, [t.name for t in agent.agent.targets], list(agent.warnings)) == ("demo", ["aws"], [])
    assert build(started.agent, tmp_path / "generated") == 0
    assert (tmp_path / "generated" / "aws" / "agent.json").is_file()


@pytest.mark.parametrize("platform", ["gcp", "azure", "vercel"])
def test_each_commented_target_of_the_starter_validates_once_uncommented(tmp_path, platform):
    started = init(str(tmp_path / "agent.yaml"), "demo")
    text = started.agent.read_text()
    assert f"  # {platform}: {{" in text
    started.agent.write_text(text.replace(f"  # {platform}: ", f"  {platform}: "))
    assert [t.name for t in validate_file(str(started.agent)).agent.targets] == ["aws", platform]


def test_the_schema_line_names_a_file_init_wrote_that_is_the_packaged_schema(tmp_path):
    started = init(str(tmp_path / "agent.yaml"), "demo")
    first = started.agent.read_text().splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    target = (started.agent.parent / first.removeprefix(prefix)).resolve()
    assert target == started.schema.resolve()
    assert target.read_bytes() == schema_path().read_bytes()
    schema = json.loads(target.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(started.agent.read_text()))


def test_gitignore_is_created_with_every_tool_state_entry(tmp_path):
    started = init(str(tmp_path / "agent.yaml"), "demo")
    assert started.gitignore.read_text().splitlines() == [GITIGNORE_HEADER, *GITIGNORE]
    assert started.ignored == GITIGNORE


@pytest.mark.parametrize("existing", [
    "dist/\n",
    "dist/",                               # no newline at its end
    "dist/\r\n.venv/\r\n",                 # Windows line endings, one entry already there
    f"{GITIGNORE_HEADER}\n__pycache__/\n",  # an earlier init's header, one entry since removed by hand
])
def test_an_existing_gitignore_keeps_its_lines_and_gains_only_what_it_lacks(tmp_path, existing):
    (tmp_path / ".gitignore").write_bytes(existing.encode())
    init(str(tmp_path / "agent.yaml"), "demo")
    text = (tmp_path / ".gitignore").read_bytes().decode()
    assert text.startswith(existing)
    assert ("\r\n" in existing) == (text.count("\r\n") == text.count("\n"))  # the file's own line endings
    lines = [line.strip() for line in text.splitlines()]
    assert [entry for entry in GITIGNORE if lines.count(entry) != 1] == []
    assert lines.count(GITIGNORE_HEADER) == 1
    assert lines.count("dist/") == existing.count("dist/")


def test_init_again_with_force_adds_no_gitignore_line(tmp_path):
    file = str(tmp_path / "agent.yaml")
    init(file, "demo")
    before = (tmp_path / ".gitignore").read_text()
    again = init(file, "demo", force=True)
    assert again.ignored == ()
    assert (tmp_path / ".gitignore").read_text() == before


@pytest.mark.parametrize(("folder", "name"), [
    ("support-bot", "support-bot"),
    ("My_Project", "my-project"),
    ("team agents (v2)", "team-agents-v2"),
    ("café-agent", "cafe-agent"),       # accents dropped, not the letters
    ("2024-bot", "bot"),                # a name starts with a letter
    ("bot-", "bot"),                    # and does not end with a hyphen
    ("a" * 39 + "-bc", "a" * 39),       # cut to 40 characters, then the hyphen dropped
    ("x", FALLBACK_NAME),               # too short
    ("123", FALLBACK_NAME),             # no letter at all
    ("日本", FALLBACK_NAME),             # nothing ASCII
])
def test_the_default_name_is_the_folder_name_made_valid(tmp_path, folder, name):
    assert default_name(tmp_path / folder) == name


def test_without_a_name_the_agent_is_named_after_its_folder(tmp_path):
    started = init(str(tmp_path / "Support_Bot" / "agent.yaml"))
    assert validate_file(str(started.agent)).agent.name == "support-bot"


@pytest.mark.parametrize(("name", "hint"), [
    ("Bad_Name", "; try bad-name"),
    ("9lives", "; try lives"),
    ("ends-", "; try ends"),
    ("a", ""),                          # too short: nothing valid to suggest
    ("x" * 41, "; try " + "x" * 40),
])
def test_a_bad_name_is_a_usage_error_in_plain_words(name, hint):
    with pytest.raises(UsageError) as refused:
        check_name(name)
    message = str(refused.value)
    assert message.startswith(f"{name!r} cannot be the agent's name: a name must use only lowercase letters")
    assert message.endswith(f"2 to 40 characters long{hint}")


def test_a_bad_name_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "Bad_Name"]) == ExitCode.USAGE
    assert capsys.readouterr().err.startswith("error: 'Bad_Name' cannot be the agent's name")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_agent_file_is_refused_by_name_and_kept_without_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agent.yaml").write_text("name: mine\n")
    assert main(["init", "demo"]) == ExitCode.USAGE
    assert capsys.readouterr().err == ("error: agent.yaml already exists: pass --force to overwrite it "
                                       "(or -f for another file)\n")
    assert (tmp_path / "agent.yaml").read_text() == "name: mine\n"
    assert not (tmp_path / ".gitignore").exists()
    assert main(["init", "demo", "--force"]) == ExitCode.OK
    assert validate_file("agent.yaml").agent.name == "demo"


def test_init_prints_what_it_wrote_and_the_next_two_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "demo"]) == ExitCode.OK
    assert capsys.readouterr().out.splitlines() == [
        "wrote agent.yaml (the agent demo, built for AWS Lambda: edit it freely)",
        "wrote generated/agent.schema.json (the schema your editor reads, named on agent.yaml's first line)",
        f"added {len(GITIGNORE)} lines to .gitignore (tool state, never committed)",
        "next:",
        "  agenthost validate    check it and explain any mistake",
        "  agenthost build       write the function app into generated/"]


def test_another_agent_file_is_named_in_the_next_commands_shell_quoted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "other", "-f", "agents/other bot/agent.yaml"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "wrote agents/other bot/generated/agent.schema.json" in out
    assert "  agenthost validate -f 'agents/other bot/agent.yaml'    check it" in out
    assert (tmp_path / "agents" / "other bot" / ".gitignore").is_file()


def test_write_editor_schema_leaves_an_equal_file_untouched_and_replaces_another(tmp_path):
    path = write_editor_schema(tmp_path / "generated")
    assert path == tmp_path / "generated" / "agent.schema.json"
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    assert write_editor_schema(tmp_path / "generated").stat().st_mtime_ns == stamp - 10**9
    path.write_text("{}\n")
    assert write_editor_schema(tmp_path / "generated").read_bytes() == schema_path().read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["agent.schema.json"]


def test_write_editor_schema_below_a_file_is_an_output_error(tmp_path):
    (tmp_path / "generated").write_text("not a folder")
    with pytest.raises(OutputError, match="generated is a file, not a folder"):
        write_editor_schema(tmp_path / "generated")
