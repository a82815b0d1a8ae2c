"""Several agents per repository: which files a command finds, where each agent's build goes, and
the names two agents may not share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework import project
from framework.cli import main
from framework.errors import ConfigError, UsageError


def agent(folder: Path, name: str, extra: str = "", file: str = "agent.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file
    path.write_text(f"name: {name}\nprompt: You are {name}.\nmodel: gpt-4o-mini\ntargets:\n  aws: {{}}\n{extra}",
                    encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_f_the_root_agent_yaml_is_the_agent(repo):
    agent(repo, "root-bot")
    agent(repo / "agents" / "a", "a-bot")
    assert project.agent_files() == ["agent.yaml"]


def test_without_a_root_agent_yaml_every_agents_folder_is_an_agent(repo):
    agent(repo / "agents" / "b", "b-bot")
    agent(repo / "agents" / "a", "a-bot")
    assert project.agent_files() == ["agents/a/agent.yaml", "agents/b/agent.yaml"]


def test_with_no_agent_at_all_the_error_says_how_to_start(repo):
    with pytest.raises(UsageError, match="agenthost init"):
        project.agent_files()


@pytest.mark.parametrize(("patterns", "expected"), [
    (["agents/*/agent.yaml"], ["agents/a/agent.yaml", "agents/b/agent.yaml"]),
    (["agents/b/agent.yaml", "agents/a/agent.yaml"], ["agents/b/agent.yaml", "agents/a/agent.yaml"]),
    (["agents/*/agent.yaml", "agents/a/agent.yaml"], ["agents/a/agent.yaml", "agents/b/agent.yaml"]),  # once each
    (["agents/**/*.yaml"], ["agents/a/agent.yaml", "agents/b/agent.yaml"]),
])
def test_f_takes_files_and_globs_each_file_once(repo, patterns, expected):
    agent(repo / "agents" / "a", "a-bot")
    agent(repo / "agents" / "b", "b-bot")
    assert project.agent_files(patterns) == expected


def test_a_glob_matching_nothing_is_a_usage_error(repo):
    with pytest.raises(UsageError, match="no file matches"):
        project.agent_files(["agents/*/agent.yml"])


STAGES = "stages:\n  dev: {}\n  prod: {}\n"


@pytest.mark.parametrize(("agents", "every_stage", "stage", "folders"), [
    (["solo"], False, None, [""]),
    (["solo"], True, None, ["", "dev", "prod"]),
    (["solo"], False, "prod", ["prod"]),
    (["a-bot", "b-bot"], False, None, ["a-bot", "b-bot"]),
    (["a-bot", "b-bot"], True, None, ["a-bot", "a-bot/dev", "a-bot/prod", "b-bot", "b-bot/dev", "b-bot/prod"]),
    (["a-bot", "b-bot"], False, "dev", ["a-bot/dev", "b-bot/dev"]),
])
def test_one_agent_builds_into_generated_several_into_a_folder_each(repo, agents, every_stage, stage, folders):
    files = [str(agent(repo / "agents" / name, name, STAGES)) for name in agents]
    units = project.units(files, "generated", stage=stage, every_stage=every_stage)
    assert [unit.folder for unit in units] == folders
    assert all(unit.output == Path("generated", unit.folder) for unit in units)


def test_agent_selects_agents_by_name(repo):
    files = [str(agent(repo / "agents" / name, name)) for name in ("a-bot", "b-bot", "c-bot")]
    units = project.units(files, "generated", agents=["c-bot", "a-bot"])
    assert [unit.agent for unit in units] == ["a-bot", "c-bot"]
    assert [unit.folder for unit in units] == ["a-bot", "c-bot"]  # the layout does not depend on the selection


def test_an_unknown_agent_is_a_usage_error_listing_the_agents(repo):
    files = [str(agent(repo / "agents" / name, name)) for name in ("a-bot", "b-bot")]
    with pytest.raises(UsageError, match=r"--agent nobody: no such agent \(found: a-bot, b-bot\)"):
        project.units(files, "generated", agents=["nobody"])


def test_a_stage_one_agent_lacks_is_a_usage_error(repo):
    files = [str(agent(repo / "agents" / "a-bot", "a-bot", STAGES)), str(agent(repo / "agents" / "b-bot", "b-bot"))]
    with pytest.raises(UsageError, match=r"stage 'prod' is not in \S*agents/b-bot/agent.yaml \(it has no `stages:`\)"):
        project.units(files, "generated", stage="prod")


def test_two_agents_with_one_name_are_an_error_naming_both_files(repo):
    first = agent(repo / "agents" / "a", "same-bot")
    second = agent(repo / "agents" / "b", "same-bot")
    with pytest.raises(ConfigError) as raised:
        project.units([str(first), str(second)], "generated")
    (problem,) = raised.value.problems
    assert problem.file == str(second) and str(first) in problem.message


def test_an_agent_and_another_agents_stage_deploying_one_function_are_an_error(repo):
    staged = agent(repo / "agents" / "a", "bot", STAGES)
    plain = agent(repo / "agents" / "b", "bot-dev")
    with pytest.raises(ConfigError) as raised:
        project.units([str(staged), str(plain)], "generated")
    (problem,) = raised.value.problems
    assert "would both deploy 'bot-dev' on aws" in problem.message
    assert str(staged) in problem.message and "stage dev" in problem.message


def test_problems_of_every_file_are_reported_at_once(repo):
    broken = [agent(repo / "agents" / name, name, "timeout: lots\n") for name in ("a-bot", "b-bot")]
    with pytest.raises(ConfigError) as raised:
        project.units([str(path) for path in broken], "generated")
    assert sorted(p.file for p in raised.value.problems) == sorted(str(path) for path in broken)


def test_build_and_check_work_on_every_agent_of_the_repository(repo, capsys):
    for name in ("a-bot", "b-bot"):
        agent(repo / "agents" / name, name, STAGES)
    assert main(["build"]) == 0
    for name in ("a-bot", "b-bot"):
        for stage in ("", "dev", "prod"):
            config = json.loads((repo / "generated" / name / stage / "aws" / "agent.json").read_text())
            assert config["name"] == "-".join(part for part in (name, stage) if part)
    assert (repo / "generated" / "agent.schema.json").is_file()
    assert main(["build", "--check"]) == 0
    (repo / "generated" / "b-bot" / "dev" / "aws" / "agent.json").unlink()
    capsys.readouterr()
    assert main(["build", "--check"]) == 1
    assert "missing   b-bot/dev/aws/agent.json" in capsys.readouterr().err


def test_validate_without_f_reports_every_agent(repo, capsys):
    agent(repo / "agents" / "a", "a-bot")
    agent(repo / "agents" / "b", "b-bot", STAGES)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "agents/a/agent.yaml: ok (aws)", "agents/b/agent.yaml: ok (aws); stages: dev, prod"]


def test_serve_with_several_agents_asks_for_one(repo, capsys):
    agent(repo / "agents" / "a", "a-bot")
    agent(repo / "agents" / "b", "b-bot")
    assert main(["invoke", "-m", "hi"]) == 2
    assert "choose one with --agent (a-bot, b-bot)" in capsys.readouterr().err


def test_remove_is_destroy(repo, capsys):
    with pytest.raises(SystemExit):
        main(["remove", "--help"])
    assert "Delete every resource the framework created" in capsys.readouterr().out
    agent(repo, "solo")
    assert main(["remove", "--target", "aws"]) == 1  # destroy's own first step: which AWS region
    assert "no AWS region" in capsys.readouterr().err
