"""The Python runtime's agent loop (docs/agent-loop.md), in-process against the fakes: the fake model,
the recording HTTP tool server and the MCP SDK's server."""

from __future__ import annotations

import json
import time

import pytest

from framework.runtime.agent_runtime import Agent, _mismatch
from tests.fakes.mcp_server import McpServer
from tests.fakes.openai_server import FakeOpenAI, call
from tests.fakes.tool_server import ToolServer

API_KEY = "loop-key-not-a-real-secret-0001"
ORDERS_TOKEN = "orders-token-secret-0002"
SSE = {"accept": "text/event-stream"}


@pytest.fixture(scope="module")
def model():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def tools():
    with ToolServer() as server:
        yield server


@pytest.fixture(scope="module")
def mcp():
    with McpServer() as server:
        yield server


def http_tool(name: str, url: str, method: str = "GET", timeout: float = 5, properties=None, required=None,
              headers=None, **schema) -> dict:
    properties = {"order_id": {"type": "string"}} if properties is None else properties
    return {"name": name, "description": f"The {name} tool.",
            "parameters": {"type": "object", "properties": properties,
                           "required": list(properties) if required is None else required, **schema},
            "http": {"method": method, "url": url, "headers": headers or {}, "timeout": timeout}}


def agent(model, tools=(), mcp=(), client="builtin", timeout=30, max_steps=8, budget=None, log_content=False,
          can_stream=False, env=None) -> Agent:
    config = {"name": "loop-bot", "model": "fake-model-1", "max_tokens": 50, "temperature": None,
              "base_url": model.url, "client": client, "system_prompt": "You help.", "timeout": timeout,
              "stream": False, "api_key_env": "LOOP_KEY", "cors": {"origins": []}, "retries": 0,
              "tools": list(tools), "mcp": list(mcp), "limits": {"max_steps": max_steps, "max_request_tokens": budget},
              "log_content": log_content, "secret_refs": {}}
    return Agent(config, environ={"LOOP_KEY": API_KEY, "ORDERS_TOKEN": ORDERS_TOKEN, **(env or {})},
                 can_stream=can_stream)


def ask(bot: Agent, text: str, headers=None, stream=None, **kw):
    body = {"message": text} if stream is None else {"message": text, "stream": stream}
    reply = bot.handle("POST", headers or {}, json.dumps(body).encode(), **kw)
    raw = reply.body if isinstance(reply.body, bytes) else b"".join(reply.body)
    return reply.status, reply.headers, raw


def answer(bot: Agent, text: str, **kw) -> dict:
    status, _, raw = ask(bot, text, **kw)
    assert status == 200, raw
    return json.loads(raw)


def payloads(model, token: str) -> list[dict]:
    return [r.json for r in model.find(token)]


def orders(tools) -> dict:
    return http_tool("lookup_order", tools.url + "/orders/{order_id}")


# -- the loop -----------------------------------------------------------------------------------

def test_an_agent_without_tools_makes_one_call_with_todays_payload(model):
    got = answer(agent(model), "tok-plain hello")
    (sent,) = payloads(model, "tok-plain")
    assert "tools" not in sent and set(sent) == {"model", "max_tokens", "messages"}
    assert got == {"response": "echo: tok-plain hello", "tokens": got["tokens"], "steps": 1} and got["tokens"] > 0


def test_a_tool_result_reaches_the_model_and_the_assistant_message_goes_back_unchanged(model, tools):
    model.script("tok-one", [call("lookup_order", {"order_id": "42"})], tokens=[7, 5])
    got = answer(agent(model, [orders(tools)]), "tok-one")
    assert got == {"response": 'tools said: {"order_id": "42", "status": "shipped"}', "tokens": 12, "steps": 2}
    first, second = payloads(model, "tok-one")
    assert first["tools"] == [{"type": "function", "function": {
        "name": "lookup_order", "description": "The lookup_order tool.", "parameters": orders(tools)["parameters"]}}]
    (assistant,) = model.sent("tok-one")[:1]
    assert second["messages"][2] == assistant
    assert second["messages"][3] == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"],
                                     "content": '{"order_id": "42", "status": "shipped"}'}


@pytest.mark.parametrize(("tool", "arguments", "result"), [
    ("nope", {"order_id": "1"}, 'error: there is no tool named "nope"'),
    ("lookup_order", "not json{", "error: the arguments are not a valid JSON object"),
    ("lookup_order", "[1, 2]", "error: the arguments are not a valid JSON object"),
    ("lookup_order", {}, "error: the arguments do not match the tool's parameters: order_id is required"),
    ("lookup_order", {"order_id": "4a"},
     "error: the arguments do not match the tool's parameters: order_id must match ^[0-9]+$"),
    ("lookup_order", {"order_id": 4}, "error: the arguments do not match the tool's parameters: "
                                      "order_id must be a string"),
    ("status", {}, "error: the tool answered HTTP 503: tool server: status 503"),
    ("slow", {}, "error: the tool did not answer within 0.5 s"),
    ("down", {}, "error: could not reach the tool"),
    ("moved", {}, 'error: the tool answered HTTP 302: {"redirect": "http://127.0.0.1:1/elsewhere"}'),
    ("unset", {}, "error: MISSING_TOKEN is not set in the function's environment"),
])
def test_every_tool_error_is_a_result_for_the_model_not_a_failed_request(model, tools, tool, arguments, result):
    declared = [http_tool("lookup_order", tools.url + "/orders/{order_id}",
                          properties={"order_id": {"type": "string", "pattern": "^[0-9]+$"}}),
                http_tool("status", tools.url + "/status/503", properties={}),
                http_tool("slow", tools.url + "/sleep/3", properties={}, timeout=0.5),
                http_tool("down", "http://127.0.0.1:9/x", properties={}),
                http_tool("moved", tools.url + "/redirect", properties={}),
                http_tool("unset", tools.url + "/echo", properties={},
                          headers={"Authorization": "Bearer ${MISSING_TOKEN}"})]
    token = f"tok-err-{tool}-{len(str(arguments))}"
    model.script(token, [call(tool, arguments)])
    got = answer(agent(model, declared), token)
    assert got["response"] == "tools said: " + result and got["steps"] == 2 and "stopped" not in got


@pytest.mark.parametrize(("limits", "script", "expected"), [
    ({"max_steps": 3}, {"forever": call("lookup_order", {"order_id": "1"})}, {"steps": 3, "stopped": "max_steps"}),
    ({"max_steps": 1}, {"forever": call("lookup_order", {"order_id": "1"})}, {"steps": 1, "stopped": "max_steps"}),
    ({"budget": 50}, {"forever": call("lookup_order", {"order_id": "1"}), "tokens": 40},
     {"steps": 3, "stopped": "token_budget", "tokens": 120}),
])
def test_a_limit_makes_the_last_call_without_tools_and_says_so(model, tools, limits, script, expected, request):
    token = f"tok-limit-{request.node.callspec.id}"
    model.script(token, **script)
    got = answer(agent(model, [orders(tools)], **limits), token)
    assert {k: got[k] for k in expected} == expected
    sent = payloads(model, token)
    assert len(sent) == expected["steps"] and "tools" not in sent[-1] and all("tools" in p for p in sent[:-1])
    assert got["response"].startswith("no tools offered; ")


def test_a_slow_tool_ends_with_stopped_deadline_before_the_platform_timeout(model, tools):
    model.script("tok-deadline", forever=call("slow", {}))
    bot = agent(model, [http_tool("slow", tools.url + "/sleep/10", properties={}, timeout=3)], timeout=6)
    began = time.monotonic()
    got = answer(bot, "tok-deadline")
    took = time.monotonic() - began
    assert got["stopped"] == "deadline" and got["steps"] == 2 and took < 5
    assert got["response"] == "no tools offered; tools said: error: the tool did not answer within 3 s"


def test_lambdas_remaining_time_is_the_deadline(model, tools):
    model.script("tok-remaining", forever=call("lookup_order", {"order_id": "1"}))
    got = answer(agent(model, [orders(tools)], timeout=300), "tok-remaining", remaining=5.5)
    # 5.5 s - 1 s left, reserve 30 s (10 % of 300): no time for a tool round at all
    assert got["stopped"] == "deadline" and got["steps"] == 1


def test_without_time_for_another_call_the_answer_is_the_text_so_far(model, tools):
    model.script("tok-sofar", [call("lookup_order", {"order_id": "1"})], delays=[1.8])
    got = answer(agent(model, [http_tool("lookup_order", tools.url + "/orders/{order_id}", timeout=0.1)],
                       timeout=3), "tok-sofar")
    assert got == {"response": "", "tokens": 10, "steps": 1, "stopped": "deadline"}


def test_parallel_calls_run_at_once_and_their_results_come_in_order(model, tools):
    model.script("tok-par", [[call("a", {}), call("b", {}), call("c", {})]])
    declared = [http_tool(name, tools.url + f"/sleep/0.{n}", properties={}) for n, name in ((4, "a"), (1, "b"),
                                                                                             (2, "c"))]
    began = time.monotonic()
    got = answer(agent(model, declared), "tok-par")
    assert time.monotonic() - began < 0.75
    assert got["response"] == 'tools said: {"slept": 0.4} | {"slept": 0.1} | {"slept": 0.2}'


# -- HTTP tools ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "raw"), [
    ("../admin", "/orders/..%2Fadmin"),
    ("@evil.com", "/orders/%40evil.com"),
    ("%2F..", "/orders/%252F.."),
    ("http://x", "/orders/http%3A%2F%2Fx"),
    ("?a=b", "/orders/%3Fa%3Db"),
    ("#x", "/orders/%23x"),
])
def test_a_parameter_value_stays_inside_its_path_segment(model, tools, value, raw):
    token = f"tok-ssrf-{raw}"
    model.script(token, [call("lookup_order", {"order_id": value})])
    answer(agent(model, [orders(tools)]), token)
    (received,) = [r for r in tools.requests if r.target == raw]
    assert received.segments == ["orders", value]


def test_get_sends_the_other_arguments_in_the_query_and_post_sends_them_all_as_json(model, tools):
    properties = {"order_id": {"type": "string"}, "n": {"type": "integer"}, "tags": {"type": "array"}}
    arguments = {"order_id": "7", "n": 3, "tags": ["a", "b"]}
    model.script("tok-methods", [[call("get", arguments), call("post", arguments)]])
    answer(agent(model, [http_tool("get", tools.url + "/echo/{order_id}?fixed=1", properties=properties),
                         http_tool("post", tools.url + "/echo/{order_id}", "POST", properties=properties)]),
           "tok-methods")
    get, post = sorted((r for r in tools.requests if r.path == "/echo/7"), key=lambda r: r.method)
    assert get.method == "GET" and get.query == {"fixed": ["1"], "n": ["3"], "tags": ['["a", "b"]']}
    assert post.method == "POST" and post.json == arguments and post.headers["content-type"] == "application/json"


def test_headers_come_from_agent_yaml_with_secrets_from_the_environment(model, tools):
    model.script("tok-headers", [call("h", {})])
    answer(agent(model, [http_tool("h", tools.url + "/echo/tok-headers", properties={},
                                   headers={"Authorization": "Bearer ${ORDERS_TOKEN}", "X-Team": "blue"})]),
           "tok-headers")
    (received,) = tools.find("tok-headers")
    assert received.headers["authorization"] == f"Bearer {ORDERS_TOKEN}" and received.headers["x-team"] == "blue"


@pytest.mark.parametrize("url", ["/status/500?echo=headers", "/headers"])
def test_a_secret_echoed_by_a_tool_never_reaches_the_model_the_answer_or_the_log(model, tools, capsys, url):
    token = f"tok-echo-{url[1:4]}"
    model.script(token, [call("h", {})])
    got = answer(agent(model, [http_tool("h", tools.url + url, properties={},
                                         headers={"Authorization": "Bearer ${ORDERS_TOKEN}"})], log_content=True),
                 token)
    assert "Bearer [secret]" in got["response"]
    everything = json.dumps(payloads(model, token)) + json.dumps(got) + capsys.readouterr().out
    assert ORDERS_TOKEN not in everything and API_KEY not in everything


@pytest.mark.parametrize(("url", "kept"), [("/big/20000", 16384), ("/big/20000?char=%C3%A9", 16384)])
def test_a_long_result_is_cut_at_a_character_boundary_with_the_marker(model, tools, url, kept):
    token = f"tok-big-{len(url)}"
    model.script(token, [call("big", {})])
    got = answer(agent(model, [http_tool("big", tools.url + url, properties={})]), token)
    result = got["response"].removeprefix("tools said: ")
    text, _, mark = result.partition("\n[cut:")
    assert mark == " the tool's answer was longer than 16384 bytes]"
    assert kept - 1 <= len(text.encode()) <= kept


# -- MCP ----------------------------------------------------------------------------------------

def mcp_server(url: str, allow=None, timeout=5) -> dict:
    return {"url": url, "headers": {}, "tools": allow, "timeout": timeout}


def test_mcp_tools_are_listed_once_per_instance_and_called_per_call(model, mcp):
    mcp.clear()
    bot = agent(model, mcp=[mcp_server(mcp.url, allow=["search_docs", "get_page"])])
    model.script("tok-mcp", [[call("search_docs", {"query": "refunds"}), call("get_page", {"page_id": 2})]])
    first = answer(bot, "tok-mcp first")
    second = answer(bot, "tok-mcp second")
    assert first["response"] == second["response"] == \
        'tools said: results for "refunds": page 1, page 2 | page 2: the text of page 2'
    methods = mcp.methods()
    assert methods[:3] == ["initialize", "notifications/initialized", "tools/list"]
    assert methods.count("initialize") == 1 and methods.count("tools/call") == 4
    offered = [t["function"]["name"] for t in payloads(model, "tok-mcp first")[0]["tools"]]
    assert offered == ["search_docs", "get_page"]
    later = [r for r in mcp.requests if r.rpc_method == "tools/call"]
    assert all(r.headers.get("mcp-protocol-version") == "2025-06-18" and r.headers.get("mcp-session-id")
               for r in later)


@pytest.mark.parametrize("json_response", [False, True])
def test_mcp_answers_as_json_or_sse_and_is_error_is_an_error_result(model, json_response):
    with McpServer(json_response=json_response) as server:
        token = f"tok-mcp-err-{json_response}"
        model.script(token, [[call("fail_tool", {}), call("big_tool", {"n": 3})]])
        got = answer(agent(model, mcp=[mcp_server(server.url)]), token)
    assert got["response"] == ("tools said: error: Error executing tool fail_tool: fail_tool failed on purpose"
                               " | xxx")


def test_an_mcp_session_gone_is_initialised_again_once(model, mcp):
    bot = agent(model, mcp=[mcp_server(mcp.url)])
    model.script("tok-gone", [call("get_page", {"page_id": 1})])
    answer(bot, "tok-gone one")
    mcp.clear()
    mcp.forget_sessions()
    got = answer(bot, "tok-gone two")
    assert got["response"] == "tools said: page 1: the text of page 1"
    assert mcp.methods() == ["tools/call", "initialize", "notifications/initialized", "tools/call"]


def test_an_unreachable_mcp_server_offers_no_tools_this_request(model, tools, capsys):
    got = answer(agent(model, [orders(tools)], mcp=[mcp_server("http://127.0.0.1:9/mcp")]), "tok-down-mcp")
    assert got["response"] == "echo: tok-down-mcp" and got["steps"] == 1
    (sent,) = payloads(model, "tok-down-mcp")
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup_order"]
    assert "the MCP server http://127.0.0.1:9/mcp offers no tools this time" in capsys.readouterr().err


# -- both clients, streamed and not -------------------------------------------------------------

@pytest.mark.parametrize("client", ["builtin", "openai"])
@pytest.mark.parametrize("stream", [False, True])
def test_both_clients_run_the_loop_streamed_or_not(model, tools, client, stream):
    token = f"tok-client-{client}-{stream}"
    model.script(token, [[call("lookup_order", {"order_id": "9"}), call("lookup_order", {"order_id": "8"})]])
    bot = agent(model, [orders(tools)], client=client, can_stream=True)
    status, headers, raw = ask(bot, token, stream=stream)
    expected = 'tools said: {"order_id": "9", "status": "shipped"} | {"order_id": "8", "status": "shipped"}'
    assert status == 200
    if stream:
        assert headers["Content-Type"].startswith("text/plain") and raw.decode() == expected
    else:
        assert json.loads(raw) == {"response": expected, "tokens": 20, "steps": 2}
    assert payloads(model, token)[1]["messages"][2] == model.sent(token)[0]


# -- the UI message stream ----------------------------------------------------------------------

def events(raw: bytes) -> list:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
        elif block:
            out.append(block)
    return out


def test_a_ui_message_stream_carries_each_step_and_its_tool_calls(model, tools):
    model.script("tok-ui", [call("lookup_order", {"order_id": "5"}), "Shipped."])
    status, headers, raw = ask(agent(model, [orders(tools)], can_stream=True), "tok-ui", SSE, stream=True)
    assert status == 200 and headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert headers["Content-Type"] == "text/event-stream" and headers["Cache-Control"] == "no-cache"
    parts = events(raw)
    call_id = model.sent("tok-ui")[0]["tool_calls"][0]["id"]
    assert [p if isinstance(p, str) else p["type"] for p in parts] == [
        "start", "start-step", "tool-input-available", "tool-output-available", "finish-step",
        "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish", "[DONE]"]
    assert parts[2] == {"type": "tool-input-available", "toolCallId": call_id, "toolName": "lookup_order",
                        "input": {"order_id": "5"}}
    assert parts[3] == {"type": "tool-output-available", "toolCallId": call_id,
                        "output": '{"order_id": "5", "status": "shipped"}'}
    assert parts[7]["delta"] == "Shipped." and parts[6]["id"] == parts[7]["id"] == parts[8]["id"]
    assert parts[10] == {"type": "finish", "messageMetadata": {"tokens": 20, "steps": 2}}


def test_a_quiet_tool_gets_keep_alive_comments(model, tools):
    model.script("tok-alive", [call("slow", {})])
    bot = agent(model, [http_tool("slow", tools.url + "/sleep/0.7", properties={})], can_stream=True)
    bot.keep_alive = 0.2
    _, _, raw = ask(bot, "tok-alive", SSE, stream=True)
    parts = events(raw)
    assert parts.count(": keep-alive") >= 2
    assert parts.index(": keep-alive") > [p if isinstance(p, str) else p["type"] for p in parts].index(
        "tool-input-available")


def test_a_failure_after_the_first_byte_is_an_error_part(model, tools):
    model.script("tok-late", [call("lookup_order", {"order_id": "1"})], delays=[0, 10])
    bot = agent(model, [http_tool("lookup_order", tools.url + "/orders/{order_id}", timeout=0.1)], timeout=3,
                can_stream=True)
    status, _, raw = ask(bot, "tok-late", SSE, stream=True)
    parts = events(raw)
    assert status == 200
    assert parts[-2:] == [{"type": "error", "errorText": "the model did not answer within 3 s"}, "[DONE]"]


def test_a_failure_before_the_first_answer_is_still_the_json_error(model, tools):
    status, headers, raw = ask(agent(model, [orders(tools)], can_stream=True), "[[status:400]] x", SSE, stream=True)
    assert (status, json.loads(raw)) == (502, {"error": "the model endpoint answered HTTP 400"})


# -- usage records ------------------------------------------------------------------------------

def usage_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"agent.usage"' in line]


def test_one_usage_line_per_post_without_content(model, tools, capsys):
    model.script("tok-usage", [call("lookup_order", {"order_id": "77"})], tokens=[30, 12])
    bot = agent(model, [orders(tools)])
    answer(bot, "tok-usage secret words", request_id="req-123")
    bot.handle("OPTIONS", {}, b"")
    bot.handle("GET", {}, b"")
    ask(bot, "")
    first, refused = usage_lines(capsys)
    assert first["request_id"] == "req-123" and first["agent"] == "loop-bot" and first["status"] == 200
    assert (first["steps"], first["stopped"], first["tokens"]) == (2, None, 42)
    assert (first["gen_ai.usage.input_tokens"], first["gen_ai.usage.output_tokens"]) == (36, 6)
    assert first["gen_ai.request.model"] == "fake-model-1" and first["severity"] == "INFO"
    assert [(t["name"], t["outcome"]) for t in first["tools"]] == [("lookup_order", "ok")]
    assert "content" not in first and "ttft_ms" not in first
    assert "secret words" not in json.dumps(first) and "77" not in json.dumps(first["tools"])
    assert refused["status"] == 400 and refused["severity"] == "WARNING" and len(refused["request_id"]) == 32


def test_log_content_adds_the_content_and_streams_add_ttft(model, tools, capsys):
    model.script("tok-content", [call("lookup_order", {"order_id": "3"})])
    ask(agent(model, [orders(tools)], log_content=True, can_stream=True), "tok-content", SSE, stream=True)
    (line,) = usage_lines(capsys)
    assert line["content"] == {"message": "tok-content", "response": line["content"]["response"],
                               "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "3"},
                                               "result": '{"order_id": "3", "status": "shipped"}'}]}
    assert line["content"]["response"].startswith("tools said: ") and line["ttft_ms"] >= 0


# -- argument checks ----------------------------------------------------------------------------

@pytest.mark.parametrize(("schema", "value", "why"), [
    ({"type": "object", "required": ["a"]}, {}, "a is required"),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"a": 1.0}, None),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"a": True}, "a must be an integer"),
    ({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}, {"a": None}, None),
    ({"type": "object", "additionalProperties": False, "properties": {}}, {"b": 1},
     "b is not a parameter of this tool"),
    ({"type": "object", "properties": {"a": {"enum": ["x", "y"]}}}, {"a": "z"}, 'a must be one of "x", "y"'),
    ({"type": "object", "properties": {"a": {"const": 3}}}, {"a": 4}, "a must be 3"),
    ({"type": "object", "properties": {"a": {"minLength": 2}}}, {"a": "x"}, "a must be at least 2 characters long"),
    ({"type": "object", "properties": {"a": {"maxLength": 1}}}, {"a": "xy"}, "a must be at most 1 characters long"),
    ({"type": "object", "properties": {"a": {"minimum": 1}}}, {"a": 0}, "a must be >= 1"),
    ({"type": "object", "properties": {"a": {"maximum": 1}}}, {"a": 2}, "a must be <= 1"),
    ({"type": "object", "properties": {"a": {"exclusiveMinimum": 1}}}, {"a": 1}, "a must be > 1"),
    ({"type": "object", "properties": {"a": {"exclusiveMaximum": 1}}}, {"a": 1}, "a must be < 1"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}}, {"a": ["x", 2]},
     "a[1] must be a string"),
    ({"type": "object", "properties": {"a": {"minItems": 1}}}, {"a": []}, "a must have at least 1 items"),
    ({"type": "object", "properties": {"a": {"maxItems": 1}}}, {"a": [1, 2]}, "a must have at most 1 items"),
    ({"type": "object", "properties": {"a": {"type": "object", "required": ["b"]}}}, {"a": {}}, "a.b is required"),
])
def test_the_lean_schema_subset(schema, value, why):
    assert _mismatch(schema, value, "") == why
