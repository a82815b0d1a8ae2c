"""agent.yaml's `tools` and `limits`: what validation refuses or warns about, and what reaches agent.json."""

from __future__ import annotations

import json
import textwrap

import pytest

from framework.cli import main
from framework.config.validate import validate_file
from framework.errors import ConfigError

HEAD = """\
name: order-bot
prompt: You help.
model: gpt-4o-mini
secrets:
  ORDERS_TOKEN: {}
"""
HTTP_TOOL = """\
  - name: lookup
    description: One.
    parameters:
      type: object
      properties: {order_id: {type: string}}
      required: [order_id]
    http:
      url: {url}
      headers: {headers}
"""


def agent_file(tmp_path, tools: str, rest: str = "targets:\n  aws: {}\n"):
    path = tmp_path / "agent.yaml"
    path.write_text(HEAD + "tools:\n" + textwrap.dedent(tools) + rest, encoding="utf-8")
    return path


def http_tool(url: str = '"https://api.example.com/orders/{order_id}"', headers: str = "{}") -> str:
    return HTTP_TOOL.replace("{url}", url).replace("{headers}", headers)


def messages(path) -> list[str]:
    try:
        result = validate_file(path)
    except ConfigError as exc:
        return [f"{p.severity}: {p.path}: {p.message}" for p in exc.problems]
    return [f"{p.severity}: {p.path}: {p.message}" for p in result.warnings]


@pytest.mark.parametrize(("url", "expected"), [
    ('"https://{order_id}.example.com/x"', "may have {parameters} only after the host"),
    ('"https://user:pw@api.example.com/{order_id}"', "must not hold a user name or password"),
    ('"ftp://api.example.com/{order_id}"', "must be a full address starting with https://"),
    ('"https://api.example.com/{order_id}#top"', "must not end in a #fragment"),
    ('"http://10.0.0.5/{order_id}"', "must use https://"),
])
def test_a_tool_address_that_could_move_or_leak_is_refused(tmp_path, url, expected):
    found = messages(agent_file(tmp_path, http_tool(url=url)))
    assert any(expected in line and line.startswith("error: tools[0].http.url") for line in found), found


@pytest.mark.parametrize("url", ['"http://127.0.0.1:8080/orders/{order_id}"', '"http://localhost/{order_id}"',
                                 '"https://api.example.com/orders/{order_id}?expand=true"'])
def test_loopback_http_and_fixed_query_values_are_accepted(tmp_path, url):
    assert messages(agent_file(tmp_path, http_tool(url=url))) == []


@pytest.mark.parametrize(("headers", "expected"), [
    ('{Authorization: "Bearer ${orders_token}"}', "${orders_token} is not a secret name"),
    ('{Authorization: "Bearer abc123"}', "the Authorization header must not hold the credential itself"),
    ('{Cookie: "session=abc"}', "the Cookie header must not hold the credential itself"),
    ('{Authorization: "Bearer ${MISSING}"}', "${MISSING} is not a declared secret"),
])
def test_header_credentials_must_come_from_declared_secrets(tmp_path, headers, expected):
    found = messages(agent_file(tmp_path, http_tool(headers=headers)))
    assert any(expected in line for line in found), found


@pytest.mark.parametrize("headers", ['{Authorization: "Bearer ${ORDERS_TOKEN}"}', '{X-Trace: "on"}',
                                     '{Authorization: "Bearer ${OPENAI_API_KEY}"}'])
def test_headers_naming_a_declared_secret_or_holding_no_credential_pass(tmp_path, headers):
    assert messages(agent_file(tmp_path, http_tool(headers=headers))) == []


def test_an_mcp_allow_list_may_not_reuse_an_http_tool_name(tmp_path):
    tools = http_tool() + "  - mcp:\n      url: https://mcp.example.com/mcp\n      tools: [search, lookup]\n"
    found = messages(agent_file(tmp_path, tools))
    assert found == ["error: tools[1].mcp.tools[1]: the tool name 'lookup' is used twice (first at tools[0]); "
                     "give each tool its own name"]


def test_parameters_must_describe_an_object(tmp_path):
    tools = http_tool().replace("      type: object\n", "      type: array\n", 1)
    found = messages(agent_file(tmp_path, tools))
    assert "error: tools[0].parameters: must describe an object: start it with `type: object`, then `properties:`" \
        in found


def test_a_placeholder_parameter_must_be_required(tmp_path):
    tools = http_tool().replace("      required: [order_id]\n", "")
    found = messages(agent_file(tmp_path, tools))
    assert any("the parameter order_id must be listed under parameters.required" in line for line in found), found


def test_a_loop_that_cannot_fit_in_the_timeout_is_a_warning_on_the_limits_it_comes_from(tmp_path):
    path = agent_file(tmp_path, http_tool(), "timeout: 30\nlimits: {max_steps: 4}\ntargets:\n  aws: {}\n")
    assert messages(path) == [
        "warning: limits: on aws, 4 steps may need about 50 s (4 model calls of about 5 s and 3 tool rounds of up "
        "to 10 s), more than the timeout of 30 s; a long request will then answer with stopped: deadline. Lower "
        "max_steps or the tools' timeouts, or raise timeout"]


def test_agent_json_carries_tools_mcp_and_each_targets_limits(tmp_path):
    tools = http_tool(headers='{Authorization: "Bearer ${ORDERS_TOKEN}"}') + \
        "  - mcp:\n      url: https://mcp.example.com/mcp\n"
    path = agent_file(tmp_path, tools, "limits: {max_request_tokens: 900}\ntargets:\n  aws: {limits: {max_steps: 3}}\n"
                                       "  gcp: {project: p-123456, region: us-central1}\n")
    assert main(["build", "-f", str(path), "-o", str(tmp_path / "out")]) == 0
    aws = json.loads((tmp_path / "out" / "aws" / "agent.json").read_text())
    gcp = json.loads((tmp_path / "out" / "gcp" / "agent.json").read_text())
    assert aws["limits"] == {"max_steps": 3, "max_request_tokens": 900}
    assert gcp["limits"] == {"max_steps": 8, "max_request_tokens": 900}
    assert aws["tools"] == [{
        "name": "lookup", "description": "One.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        "http": {"method": "GET", "timeout": 10, "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}"},
                 "url": "https://api.example.com/orders/{order_id}"}}]
    assert aws["mcp"] == [{"url": "https://mcp.example.com/mcp", "headers": {}, "tools": None, "timeout": 10}]
    assert aws["log_content"] is False


def test_an_agent_without_tools_gets_empty_lists_and_the_default_limits(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(HEAD + "targets:\n  aws: {}\n", encoding="utf-8")
    assert main(["build", "-f", str(path), "-o", str(tmp_path / "out")]) == 0
    config = json.loads((tmp_path / "out" / "aws" / "agent.json").read_text())
    assert (config["tools"], config["mcp"], config["limits"]) == ([], [], {"max_steps": 8, "max_request_tokens": None})


def test_platforms_sharing_the_loop_and_timeout_get_one_warning(tmp_path):
    path = agent_file(tmp_path, http_tool(), "timeout: 30\nlimits: {max_steps: 4}\ntargets:\n  aws: {}\n"
                                             "  gcp: {project: p-123456, region: us-central1}\n"
                                             "  azure: {resource_group: rg, region: westeurope, timeout: 200}\n")
    (warning,) = messages(path)
    assert warning.startswith("warning: limits: on aws and gcp, 4 steps may need about 50 s")
