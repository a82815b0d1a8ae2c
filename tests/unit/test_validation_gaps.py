"""What the schema alone let through: regions in another cloud's spelling, base_url paths, YAML 1.1
numbers, bare hex keys, huge prompts, and text YAML changes on the way to the model."""

from __future__ import annotations

import json
import textwrap

import pytest

from framework.cli import main
from framework.config.secrets import redact, value_secret_kind
from framework.config.validate import validate_file
from framework.errors import ConfigError
from framework.platforms.aws.region import REGION as AWS
from framework.platforms.azure.region import REGION as AZURE
from framework.platforms.gcp.region import REGION as GCP

# (cloud, region as written, the spelling suggested; None: well formed, "": refused without a guess)
REGIONS = [
    ("aws", "us-east-1", None), ("aws", "us-gov-west-1", None), ("aws", "eusc-de-east-1", None),
    ("aws", "us-east1", "us-east-1"), ("aws", "westeurope", ""),
    ("gcp", "us-central1", None), ("gcp", "northamerica-northeast2", None),
    ("gcp", "us-central-1", "us-central1"), ("gcp", "us-east-1", "us-east1"), ("gcp", "westeurope", ""),
    ("azure", "westeurope", None), ("azure", "eastus2", None), ("azure", "eastus2euap", None),
    ("azure", "west-europe", "westeurope"), ("azure", "us-east-1", ""),
]


@pytest.mark.parametrize(("cloud", "region", "guess"), REGIONS)
def test_a_region_must_be_spelled_the_way_its_cloud_spells_regions(cloud, region, guess):
    problem = {"aws": AWS, "gcp": GCP, "azure": AZURE}[cloud].problem(region)
    if guess is None:
        assert problem is None
    else:
        assert problem.startswith(f"{region!r} is not written like a region of ")
        assert ("did you mean" in problem) == bool(guess)
        assert not guess or problem.endswith(f"did you mean {guess!r}?")


def agent_file(tmp_path, body: str):
    path = tmp_path / "agent.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def problems(tmp_path, extra: str, **prompt_file: str) -> list:
    """Every problem of a minimal agent.yaml with `extra` lines added (errors and warnings)."""
    for name, text in prompt_file.items():
        with open(tmp_path / name, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    path = agent_file(tmp_path, "name: support-bot\nmodel: gpt-4o-mini\ntargets:\n  aws: {}\n" + extra)
    try:
        return list(validate_file(path).warnings)
    except ConfigError as error:
        return error.problems


# (base_url, severity, part of the message; None: accepted without a word)
BASE_URLS = [
    ("https://api.openai.com/v1", None, None),
    ("http://127.0.0.1:11434/v1/", None, None),
    ("https://generativelanguage.googleapis.com/v1beta/openai", None, None),
    ("https://api.openai.com/v1/chat/completions", "error", "write `base_url: https://api.openai.com/v1`"),
    ("https://x.example/v1/chat/completions/", "error", "would call /v1/chat/completions/chat/completions"),
    ("http://host.example/v1/Chat/Completions", "error", "write `base_url: http://host.example/v1`"),
    ("http://host.example/v1/completions", "error", "without /completions"),
    ("http://localhost:11434", "warning", "e.g. `base_url: http://localhost:11434/v1`"),
]


@pytest.mark.parametrize(("url", "severity", "message"), BASE_URLS)
def test_base_url_is_the_service_address_ending_in_its_version(tmp_path, url, severity, message):
    found = [p for p in problems(tmp_path, f"prompt: hi\nbase_url: {url}\n") if p.path == "base_url"]
    if severity is None:
        assert found == []
    else:
        assert [(p.severity, p.line) for p in found] == [(severity, 6)]
        assert message in found[0].message


# (as written, what YAML 1.1 made of it, part of the warning; None: no warning)
NUMBERS = [
    ("300", 300, None), ("+5", 5, None),
    ("010", 8, "YAML reads 010 as 8 (a number starting with 0 is octal)"),
    ("0x400", 1024, "YAML reads 0x400 as 1024 (a number starting with 0x is hexadecimal)"),
    ("1_0", 10, "YAML reads 1_0 as 10 (underscores in numbers are skipped"),
    ("1:30", 90, "YAML reads 1:30 as 90 (numbers with ':' are read in base 60"),
    ("0b11", 3, "YAML reads 0b11 as 3 (a number starting with 0b is binary)"),
]


@pytest.mark.parametrize(("written", "value", "message"), NUMBERS)
def test_numbers_yaml_11_reads_as_other_numbers_are_warned(tmp_path, written, value, message):
    found = problems(tmp_path, f"prompt: hi\nmax_tokens: {written}\n")
    assert validate_file(tmp_path / "agent.yaml").agent.max_tokens == value
    if message is None:
        assert found == []
    else:
        assert [(p.severity, p.path, p.line) for p in found] == [("warning", "max_tokens", 6)]
        assert message in found[0].message and f"plain digits ({value}" in found[0].message


# (value, kind found; None: not a secret)
SECRET_VALUES = [
    ("0123456789abcdef0123456789abcdef", "32 or more hexadecimal digits"),
    ("ABCDEF0123456789ABCDEF0123456789", "32 or more hexadecimal digits"),
    ("OPENAI_API_KEY", None),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", None),  # a long name, not a key
    ("https://kv.vault.azure.net/secrets/openai-key/0123456789abcdef0123456789abcdef", None),
    ("You are helpful. Commit 0123456789abcdef0123456789abcdef0123 fixed it.", None),
]


@pytest.mark.parametrize(("value", "kind"), SECRET_VALUES)
def test_a_bare_hex_key_is_a_secret_only_as_a_whole_value(value, kind):
    found = value_secret_kind(value)
    assert (found is None) if kind is None else (kind in found)


def test_a_hex_key_is_never_echoed():
    assert redact("key 0123456789abcdef0123456789abcdef here") == "key <secret> here"


def test_a_hex_key_in_api_key_env_is_refused_without_echoing_it(tmp_path, capsys):
    path = agent_file(tmp_path, "name: b1\nprompt: hi\nmodel: m\napi_key_env: ABCDEF0123456789ABCDEF0123456789\n"
                                "targets:\n  aws: {}\n")
    assert main(["validate", "-f", str(path), "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert "ABCDEF0123456789" not in out
    assert json.loads(out)["problems"][0]["path"] == "api_key_env"


# (prompt size in bytes, severity; None: no word)
PROMPT_SIZES = [(1_000, None), (500_000, "warning"), (10_000_000, "error")]


@pytest.mark.parametrize(("size", "severity"), PROMPT_SIZES)
def test_a_prompt_too_large_to_send_with_every_request_is_refused(tmp_path, size, severity):
    found = [p for p in problems(tmp_path, "prompt: {file: prompt.txt}\n", **{"prompt.txt": "x" * size})
             if p.path == "prompt.file"]
    assert [p.severity for p in found] == ([severity] if severity else [])
    if severity == "error":
        assert "10.0 MB" in found[0].message and "tokens" in found[0].message


def test_a_prompt_file_reaches_the_model_byte_for_byte_crlf_included(tmp_path):
    text = "Line one.\r\nLine two.\r\n\u2028 kept \u2029 too\n"
    problems(tmp_path, "prompt: {file: prompt.txt}\n", **{"prompt.txt": text})
    path = tmp_path / "agent.yaml"
    assert validate_file(path).agent.system_prompt == text
    assert main(["build", "-f", str(path), "-o", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "aws" / "agent.json").read_text())["system_prompt"] == text


# (prompt as written in agent.yaml, the separator's name in the warning)
SEPARATORS = [('"a \u2028 b"', "U+2028"), ("'a \u2029 b'", "U+2029"), ("a \u2028 b", "U+2028"),
              ('"a \x85 b"', "NEL, U+0085"), ("'a \x85 b'", "NEL, U+0085")]


@pytest.mark.parametrize(("style", "name"), SEPARATORS)
def test_a_line_separator_in_a_yaml_prompt_is_warned_as_yaml_drops_its_spaces(tmp_path, style, name):
    found = problems(tmp_path, f"prompt: {style}\n")
    assert [(p.severity, p.path, p.line) for p in found] == [("warning", "prompt", 5)]
    assert f"({name})" in found[0].message and "{file: prompt.txt}" in found[0].message


def test_an_empty_model_is_told_to_write_a_name_not_empty_quotes(tmp_path):
    path = agent_file(tmp_path, "name: b1\nprompt: hi\nmodel:\ntargets:\n  aws: {}\n")
    with pytest.raises(ConfigError) as caught:
        validate_file(path)
    message = caught.value.problems[0].message
    assert 'model: ""' not in message and "for example model: gpt-4o-mini" in message


@pytest.mark.parametrize("model", ['"gpt-4o-mini "', '" gpt-4o-mini"', '"gpt-4o-mini\\n"', '"gpt-4o\\nmini"',
                                   '"gpt-4o\\tmini"'])
def test_a_model_name_with_spaces_around_it_or_breaks_inside_is_refused(tmp_path, model):
    path = agent_file(tmp_path, f"name: b1\nprompt: hi\nmodel: {model}\ntargets:\n  aws: {{}}\n")
    with pytest.raises(ConfigError) as caught:
        validate_file(path)
    assert "no space at the start or end and no tab or line break anywhere" in caught.value.problems[0].message
