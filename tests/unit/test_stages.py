"""Stages: a stage's block merged into the agent (values replaced, mappings merged, lists replaced),
checked in full, with every message at the line that set the value; resources named <name>-<stage>."""

from __future__ import annotations

import json

import pytest

from framework.cli import main
from framework.config.load import load
from framework.config.validate import validate_file, validate_stages
from framework.errors import ConfigError, UsageError
from tests.conftest import write_agent

AGENT = """\
    name: bot
    prompt: You are helpful.
    model: gpt-4o
    timeout: 200
    concurrency: {max: 5, warm: 0}
    cors: {origins: ["https://a.example.com"]}
    targets:
      aws: {region: us-east-1}
      azure: {app: bot-app}
    stages:
      dev:
        model: gpt-4o-mini
        concurrency: {max: 2}
      prod:
        timeout: 100
        concurrency: {max: 50, warm: 2}
        cors: {origins: ["https://b.example.com"]}
        targets: {aws: {region: eu-west-1}}
"""


PLAIN = "name: bot\nprompt: You are helpful.\nmodel: gpt-4o\ntimeout: 200\ntargets:\n  aws: {}\n"  # lines 1-6


@pytest.fixture
def agent_file(tmp_path):
    return write_agent(tmp_path, AGENT)


@pytest.mark.parametrize(("stage", "field", "expected"), [
    (None, "name", "bot"),
    ("dev", "name", "bot-dev"),
    ("prod", "name", "bot-prod"),
    (None, "model", "gpt-4o"),
    ("dev", "model", "gpt-4o-mini"),         # a value replaced
    ("prod", "model", "gpt-4o"),             # a value the stage leaves alone
    ("dev", "max", 2),                       # a mapping merged: max from the stage ...
    ("dev", "warm", 0),                      # ... warm kept from the agent
    ("prod", "warm", 2),
    ("prod", "region", "eu-west-1"),         # targets.aws merged
    ("dev", "region", "us-east-1"),
    ("prod", "timeout", 100),
    ("dev", "timeout", 200),
    ("prod", "origins", ("https://b.example.com",)),  # a list replaced whole
    ("prod", "stage", "prod"),
    (None, "stage", None),
])
def test_a_stage_overrides_the_agent(agent_file, stage, field, expected):
    agent = validate_file(agent_file, stage).agent
    aws = agent.target("aws")
    values = {"name": agent.name, "model": agent.model, "max": aws.concurrency.max, "warm": aws.concurrency.warm,
              "region": aws.options["region"], "timeout": aws.timeout, "origins": agent.cors_origins,
              "stage": agent.stage}
    assert values[field] == expected


@pytest.mark.parametrize(("block", "path", "line", "words"), [
    ("  prod:\n    timeout: 900\n", "stages.prod.timeout", 11, "230 s"),  # Azure's limit, at the stage's line
    ("  prod:\n    modle: x\n", "stages.prod.modle", 11, "did you mean 'model'"),
    ("  prod:\n    concurrency: {max: many}\n", "stages.prod.concurrency.max", 11, "whole number"),
    ("  Prod: {}\n", "stages.Prod", 10, "lowercase letters and digits"),
    ("  aws: {}\n", "stages.aws", 10, "may not be named like a platform"),
    ("  prod:\n    name: other\n", "stages.prod.name", 11, "unknown setting 'name'"),
])
def test_a_problem_in_a_stage_is_named_and_located_in_its_block(tmp_path, block, path, line, words):
    body = PLAIN + "  azure: {}\nstages:\n  dev: {}\n" + block
    (tmp_path / "agent.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        validate_stages(load(tmp_path / "agent.yaml"))
    found = [p for p in raised.value.problems if p.path == path]
    assert found, raised.value.problems
    assert found[0].line == line and words in found[0].message


def test_a_value_the_stage_does_not_set_is_named_where_the_agent_sets_it(tmp_path):
    (tmp_path / "agent.yaml").write_text(PLAIN + "stages:\n  prod:\n    targets: {azure: {}}\n", encoding="utf-8")
    validate_stages(load(tmp_path / "agent.yaml"))  # 200 s fits Azure's 230 s
    text = (tmp_path / "agent.yaml").read_text().replace("timeout: 200", "timeout: 300")
    (tmp_path / "agent.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:  # the stage adds Azure, where the agent's 300 s cannot fit
        validate_stages(load(tmp_path / "agent.yaml"))
    (problem,) = raised.value.problems
    assert (problem.path, problem.line) == ("timeout", 4) and "230 s" in problem.message


@pytest.mark.parametrize(("stages", "words"), [
    ("stages:\n  dev: {}\n", "it lists: dev"),
    ("", "it has no `stages:`"),
])
def test_a_stage_not_listed_is_a_usage_error_listing_the_stages(tmp_path, stages, words):
    path = tmp_path / "agent.yaml"
    path.write_text(f"name: bot\nprompt: hi\nmodel: gpt-4o\ntargets:\n  aws: {{}}\n{stages}", encoding="utf-8")
    with pytest.raises(UsageError, match=words):
        validate_file(path, "prod")


def test_validate_checks_every_stage(tmp_path, capsys):
    path = write_agent(tmp_path, AGENT.replace("        timeout: 100", "        timeout: 400"))
    assert main(["validate", "-f", str(path)]) == 1
    assert "stages.prod.timeout" in capsys.readouterr().err


def test_validate_names_the_stages_it_checked(agent_file, capsys):
    assert main(["validate", "-f", str(agent_file)]) == 0
    assert capsys.readouterr().out.strip() == f"{agent_file}: ok (aws, azure); stages: dev, prod"


def test_build_writes_the_agent_and_each_stage_and_check_covers_them_all(agent_file, capsys):
    out = agent_file.parent / "generated"
    assert main(["build", "-f", str(agent_file), "-o", str(out)]) == 0
    for folder, name in (("", "bot"), ("dev", "bot-dev"), ("prod", "bot-prod")):
        config = json.loads((out / folder / "aws" / "agent.json").read_text())
        assert config["name"] == name
        assert f"FunctionName={name}" in (out / folder / "aws" / "DEPLOY.md").read_text()
    assert main(["build", "-f", str(agent_file), "-o", str(out), "--check"]) == 0
    (out / "prod" / "aws" / "agent.json").write_text("{}")
    capsys.readouterr()
    assert main(["build", "-f", str(agent_file), "-o", str(out), "--check"]) == 1
    assert "changed   prod/aws/agent.json" in capsys.readouterr().err


def test_build_with_a_stage_writes_only_that_stage(agent_file):
    out = agent_file.parent / "generated"
    assert main(["build", "-f", str(agent_file), "-o", str(out), "--stage", "dev"]) == 0
    assert (out / "dev" / "aws").is_dir() and not (out / "aws").exists() and not (out / "prod").exists()


@pytest.mark.parametrize(("stage", "app"), [(None, "bot-app"), ("dev", "bot-app-dev"), ("prod", "bot-app-prod")])
def test_a_name_written_in_agent_yaml_gets_the_stage_suffix(agent_file, stage, app):
    agent = validate_file(agent_file, stage).agent
    assert agent.staged(agent.target("azure").options["app"]) == app


def test_serve_and_invoke_run_the_stage_from_its_own_folder(agent_file):
    from framework.local.session import prepare

    prepared = prepare(str(agent_file), str(agent_file.parent / "generated"), "aws", "dev")
    assert prepared.app_dir == agent_file.parent / "generated" / "aws"  # the unit's folder is the CLI's to give
    assert prepared.agent.name == "bot-dev" and prepared.agent.model == "gpt-4o-mini"
    config = json.loads((prepared.app_dir / "agent.json").read_text())
    assert (config["name"], config["model"]) == ("bot-dev", "gpt-4o-mini")


def test_invoke_stage_builds_into_the_stage_folder(agent_file, capsys, monkeypatch):
    monkeypatch.chdir(agent_file.parent)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["invoke", "--stage", "dev", "--target", "aws", "-m", "hi"]) == 2  # no model key: a usage error
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err
    assert json.loads((agent_file.parent / "generated" / "dev" / "aws" / "agent.json").read_text())["name"] == "bot-dev"
