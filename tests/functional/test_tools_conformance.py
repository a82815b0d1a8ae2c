"""The tool loop (docs/agent-loop.md), one suite for every way a generated app runs: the Python
runtime (Lambda handler and Azure function in-process, `serve` for aws, gcp and azure, the openai
SDK client) and the JavaScript one (`serve --target vercel`, Edge). The model is the scripted fake,
the HTTP tools a recording tool server, the MCP tools a server built with the official MCP SDK.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.fakes.openai_server import call
from tests.functional.conftest import MAX_STEPS, MCP_TOKEN, TIMEOUT, TOOL_TIMEOUT, TOOL_TOKEN, running, tools_env

APPS = ("aws-handler", "azure-function", "serve-aws", "serve-gcp", "serve-azure", "serve-vercel",
        "aws-handler+openai", "serve-gcp+openai")
@pytest.fixture(scope="module", params=APPS)
def app(request, fake_model, builds):
    kind, _, client = request.param.partition("+")
    with running(kind, builds[client], tools_env(fake_model)) as caller:
        yield caller


def ask(app, message: str) -> tuple[int, dict]:
    body = json.dumps({"message": message, "stream": False}).encode()
    status, _, raw = app("POST", body, {"Content-Type": "application/json"})
    return status, json.loads(raw)


def tool_messages(fake_model, tag: str) -> list[dict]:
    """The role: tool messages of the last model request of this test."""
    last = fake_model.find(tag)[-1].json["messages"]
    return [m for m in last if m["role"] == "tool"]


def test_a_tool_result_reaches_the_model_and_the_answer(app, fake_model, tool_server, tag):
    fake_model.script(tag, [call("lookup_order", {"order_id": "42"})])
    status, body = ask(app, tag)
    assert status == 200, body
    assert body["steps"] == 2 and body["tokens"] == 20 and "stopped" not in body
    assert json.loads(body["response"].removeprefix("tools said: ")) == {"order_id": "42", "status": "shipped"}
    (got,) = [r for r in tool_server.requests if r.target == "/orders/42" and
              r.headers.get("authorization") == f"Bearer {TOOL_TOKEN}"][-1:]
    assert got.method == "GET"


def test_the_assistant_message_goes_back_as_received_then_one_tool_message_per_call(app, fake_model, tag):
    fake_model.script(tag, [[call("lookup_order", {"order_id": "1"}), call("echo", {"path": "x"})]])
    assert ask(app, tag)[0] == 200
    first, second = fake_model.find(tag)
    (answered,) = fake_model.sent(tag)[:1]
    messages = second.json["messages"]
    assert messages[:2] == first.json["messages"][:2]
    assistant = messages[2]
    assert (assistant["role"], assistant["tool_calls"]) == ("assistant", answered["tool_calls"])
    assert [(m["role"], m["tool_call_id"]) for m in messages[3:]] == [
        ("tool", c["id"]) for c in answered["tool_calls"]]


def test_the_tools_are_offered_with_their_schemas_and_the_mcp_allow_list(app, fake_model, tag):
    fake_model.script(tag, ["no tools needed"])
    assert ask(app, tag)[1]["response"] == "no tools needed"
    offered = {t["function"]["name"]: t["function"] for t in fake_model.find(tag)[0].json["tools"]}
    assert set(offered) == {"lookup_order", "echo", "create_note", "status", "sleep", "big", "pick", "moved",
                            "search_docs", "fail_tool"}
    assert offered["lookup_order"]["parameters"]["required"] == ["order_id"]
    assert offered["search_docs"]["parameters"]["properties"]["query"]["type"] == "string"


def test_an_mcp_tool_is_called_on_the_server_with_its_token(app, fake_model, mcp_server, tag):
    fake_model.script(tag, [call("search_docs", {"query": tag})])
    status, body = ask(app, tag)
    assert status == 200
    assert body["response"] == f'tools said: results for "{tag}": page 1, page 2'
    (record,) = [c for c in mcp_server.calls if c.arguments == {"query": tag}]
    assert record.name == "search_docs"
    assert all(r.headers.get("authorization") == f"Bearer {MCP_TOKEN}" for r in mcp_server.requests)


def test_post_tools_send_the_arguments_as_a_json_body(app, fake_model, tool_server, tag):
    fake_model.script(tag, [call("create_note", {"text": tag, "pinned": True})])
    assert ask(app, tag)[0] == 200
    (got,) = [r for r in tool_server.requests if tag in r.text]
    assert (got.method, got.target, got.json) == ("POST", "/echo/notes", {"text": tag, "pinned": True})
    assert got.headers["content-type"].startswith("application/json")


def test_parallel_tool_calls_take_about_as_long_as_the_slowest(app, fake_model, tag):
    fake_model.script(tag, [[call("sleep", {"seconds": "1"}) for _ in range(3)]])
    started = time.monotonic()
    status, body = ask(app, tag)
    elapsed = time.monotonic() - started
    assert status == 200 and body["response"] == "tools said: " + " | ".join(['{"slept": 1.0}'] * 3)
    assert elapsed < 2.5, f"three 1 s tools took {elapsed:.1f} s: not run concurrently"


MISMATCH = "error: the arguments do not match the tool's parameters: "
# (case, the model's call, the exact result the model reads; "..." at the end: the result starts so)
TOOL_ERRORS = [
    ("malformed-arguments", call("lookup_order", "not json{"), "error: the arguments are not a valid JSON object"),
    ("arguments-not-an-object", call("lookup_order", "[1]"), "error: the arguments are not a valid JSON object"),
    ("unknown-tool", call("drop_tables", {}), 'error: there is no tool named "drop_tables"'),
    ("missing-argument", call("lookup_order", {}), MISMATCH + "order_id is required"),
    ("pattern-mismatch", call("lookup_order", {"order_id": "abc"}), MISMATCH + "order_id must match ^[0-9]+$"),
    ("not-in-enum", call("pick", {"color": "green"}), MISMATCH + 'color must be one of "red", "blue"'),
    ("above-maximum", call("pick", {"color": "red", "count": 9}), MISMATCH + "count must be <= 5"),
    ("wrong-type", call("pick", {"color": "red", "count": "2"}), MISMATCH + "count must be an integer"),
    ("not-a-parameter", call("pick", {"color": "red", "size": 1}), MISMATCH + "size is not a parameter of this tool"),
    ("http-503", call("status", {"code": "503"}), "error: the tool answered HTTP 503: ..."),
    ("http-404", call("status", {"code": "404"}), "error: the tool answered HTTP 404: ..."),
    ("timeout", call("sleep", {"seconds": "5"}), f"error: the tool did not answer within {TOOL_TIMEOUT} s"),
    ("redirect", call("moved", {}), "error: the tool answered HTTP 302..."),
    ("mcp-is-error", call("fail_tool", {}), "error: Error executing tool fail_tool: fail_tool failed on purpose"),
]


@pytest.mark.parametrize(("case", "tool_call", "expected"), TOOL_ERRORS, ids=[c[0] for c in TOOL_ERRORS])
def test_a_failing_tool_call_is_told_to_the_model_and_the_request_succeeds(app, fake_model, tag, case,
                                                                             tool_call, expected):
    fake_model.script(tag, [tool_call])
    status, body = ask(app, tag)
    assert status == 200 and body["steps"] == 2, body
    (result,) = tool_messages(fake_model, tag)
    if expected.endswith("..."):
        assert result["content"].startswith(expected.removesuffix("...")), result["content"]
        assert "Traceback" not in result["content"] and len(result["content"]) < 1000
    else:
        assert result["content"] == expected


def test_a_tool_error_body_never_carries_a_secret(app, fake_model, tag):
    fake_model.script(tag, [call("status", {"code": "500"})])
    status, body = ask(app, tag)
    (result,) = tool_messages(fake_model, tag)
    assert result["content"].startswith("error: the tool answered HTTP 500")
    assert "[secret]" in result["content"]
    assert TOOL_TOKEN not in result["content"] and TOOL_TOKEN not in json.dumps(body)


def test_a_long_tool_answer_is_cut_with_a_marker(app, fake_model, tag):
    fake_model.script(tag, [call("big", {"n": "40000"})])
    assert ask(app, tag)[0] == 200
    (result,) = tool_messages(fake_model, tag)
    assert result["content"].endswith("\n[cut: the tool's answer was longer than 16384 bytes]")
    assert len(result["content"].encode()) <= 16384 + 100


def test_max_steps_makes_the_last_call_without_tools(app, fake_model, tag):
    fake_model.script(tag, [], forever=call("lookup_order", {"order_id": "7"}), tokens=[1] * MAX_STEPS)
    status, body = ask(app, tag)
    assert (status, body["steps"], body["stopped"], body["tokens"]) == (200, MAX_STEPS, "max_steps", MAX_STEPS)
    sent = fake_model.find(tag)
    assert len(sent) == MAX_STEPS
    assert all(r.json.get("tools") for r in sent[:-1]) and not sent[-1].json.get("tools")
    assert body["response"].startswith("no tools offered; tools said: ")


def test_the_token_budget_makes_the_next_call_without_tools(app, fake_model, tag):
    fake_model.script(tag, [], forever=call("lookup_order", {"order_id": "7"}), tokens=[20, 20, 1])
    status, body = ask(app, tag)
    assert (status, body["steps"], body["stopped"], body["tokens"]) == (200, 3, "token_budget", 41)
    assert not fake_model.find(tag)[-1].json.get("tools")


def test_a_slow_tool_loop_answers_with_stopped_deadline_before_the_platform_timeout(app, fake_model, tag):
    fake_model.script(tag, [], forever=call("sleep", {"seconds": "5"}), tokens=[1] * MAX_STEPS)
    started = time.monotonic()
    status, body = ask(app, tag)
    elapsed = time.monotonic() - started
    assert (status, body["stopped"]) == (200, "deadline"), body
    assert body["steps"] < MAX_STEPS
    assert elapsed < TIMEOUT, f"answered after {elapsed:.1f} s, past the {TIMEOUT} s timeout"
    assert not fake_model.find(tag)[-1].json.get("tools")


SSRF_VALUES = ["../admin", "@evil.com", "%2F..", "http://evil.example/x", "?a=b", "#x", "a/b", "\\evil", "%2E%2E",
               "..."]


@pytest.mark.parametrize("value", SSRF_VALUES)
def test_a_parameter_value_stays_inside_its_path_segment(app, fake_model, tool_server, tag, value):
    fake_model.script(tag, [call("echo", {"path": value, "note": tag})])
    assert ask(app, tag)[0] == 200
    (got,) = tool_server.find(tag)
    assert got.path.startswith("/echo/") and got.segments[1:] == [value], got.target
    assert got.query == {"note": [tag]}


@pytest.mark.parametrize("value", [".", ".."])
def test_a_dot_segment_is_refused_before_any_request(app, fake_model, tool_server, tag, value):
    fake_model.script(tag, [call("echo", {"path": value, "note": tag})])
    assert ask(app, tag)[0] == 200
    assert tool_server.find(tag) == []
    (result,) = tool_messages(fake_model, tag)
    assert result["content"] == 'error: the arguments do not fit the tool\'s address: path may not be "." or ".."'
