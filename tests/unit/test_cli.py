"""The command line itself: --version, every command's --help with a description and an example,
and build --format json printing JSON on success too."""

from __future__ import annotations

import json

import pytest

from framework import __version__
from framework.cli import _HELP, main
from tests.conftest import write_agent


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"agenthost {__version__}"


@pytest.mark.parametrize("command", sorted(_HELP))
def test_every_command_help_has_its_description_and_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    description = _HELP[command][0]
    assert description[0].upper() + description[1:] + "." in " ".join(text.split())
    assert f"examples:\n  agenthost {command}" in text  # kept as written, not re-wrapped


AGENT = """\
    name: json-bot
    prompt: You are helpful.
    model: gpt-4o-mini
    client: openai
    targets:
      aws: {}
      vercel: {timeout: 25}
"""


def test_build_json_prints_json_on_success_with_the_warnings_inside(tmp_path, capsys):
    agent = write_agent(tmp_path, AGENT)
    out = tmp_path / "generated"
    assert main(["build", "-f", str(agent), "-o", str(out), "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["ok"] is True
    assert [(p["severity"], p["path"]) for p in data["problems"]] == [("warning", "client")]
    files = len([p for p in (out / "aws").rglob("*") if p.is_file()])
    assert data["targets"]["aws"] == {"title": "AWS Lambda", "folder": f"{out}/aws", "files": files, "endpoint": "/"}
    assert data["manifest"] == f"{out}/manifest.json"
    assert captured.err == ""


def test_build_check_json_prints_json(tmp_path, capsys):
    agent = write_agent(tmp_path, AGENT)
    out = tmp_path / "generated"
    main(["build", "-f", str(agent), "-o", str(out)])
    capsys.readouterr()
    assert main(["build", "-f", str(agent), "-o", str(out), "--check", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["up_to_date"] is True
