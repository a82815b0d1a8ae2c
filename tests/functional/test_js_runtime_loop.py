"""The agent loop of the JavaScript runtime (framework/runtime/js/agent.mjs, docs/agent-loop.md), on
each way it runs: the Vercel route on the Edge runtime and on Node.js (`serve --target vercel`), and
the streaming AWS Lambda (`aws: {stream: true}`, `serve --target aws`, AWS's Node.js runtime client).

Real counterparts only: the fake model's scripted tool calls, the recording HTTP tool server, the MCP
SDK's own server, and the `ai` package's reader for the UI message stream. The usage records are read
from the function's log as serve prints it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import build, write_agent
from tests.fakes.mcp_server import McpServer
from tests.fakes.openai_server import call
from tests.fakes.tool_server import ToolServer
from tests.functional.apps import http_call, serve_process, wait_for
from tests.functional.ui_stream import fetch_ui_stream, text_of, tool_parts

pytestmark = pytest.mark.slow

API_KEY = "sk-loop-test-key-0123456789abcdef"
TOOL_SECRET = "tool-secret-value-7f3a9c2e5b"
MCP_SECRET = "mcp-secret-value-1d8e4b6a0c"
SECRETS = (API_KEY, TOOL_SECRET, MCP_SECRET)
JSON = {"Content-Type": "application/json"}

APPS = ("vercel-edge", "vercel-nodejs", "aws-stream")


def agent_yaml(tools_url: str, mcp_url: str, target: str) -> str:
    targets = {
        "vercel-edge": "  vercel: {stream: true}\n",
        "vercel-nodejs": "  vercel: {runtime: nodejs, stream: true}\n",
        "aws-stream": "  aws: {stream: true}\n",
    }[target]
    return f"""\
name: loop-bot
prompt: You look things up.
model: fake-loop-1
max_tokens: 99
timeout: 20
secrets:
  TOOL_TOKEN: {{}}
  MCP_TOKEN: {{}}
limits:
  max_steps: 4
  max_request_tokens: 50
tools:
  - name: lookup_order
    description: Look up an order by its number.
    parameters:
      type: object
      properties:
        order_id: {{type: string, pattern: "^[0-9]+$"}}
      required: [order_id]
    http:
      url: {tools_url}/orders/{{order_id}}
      headers: {{Authorization: "Bearer ${{TOOL_TOKEN}}"}}
      timeout: 2
  - name: nap
    description: Sleep.
    parameters: {{type: object, properties: {{seconds: {{type: number}}}}, required: [seconds]}}
    http: {{url: "{tools_url}/sleep/{{seconds}}", timeout: 7}}
  - name: short_nap
    description: Sleep, with a short timeout.
    parameters: {{type: object, properties: {{seconds: {{type: number}}}}, required: [seconds]}}
    http: {{url: "{tools_url}/sleep/{{seconds}}", timeout: 0.5}}
  - name: fail
    description: Answer with a status.
    parameters: {{type: object, properties: {{code: {{type: integer}}}}, required: [code]}}
    http: {{url: "{tools_url}/status/{{code}}", headers: {{X-Token: "${{TOOL_TOKEN}}"}}, timeout: 2}}
  - name: moved
    description: A redirect.
    parameters: {{type: object, properties: {{}}}}
    http: {{url: "{tools_url}/redirect", timeout: 2}}
  - name: big
    description: A long answer.
    parameters: {{type: object, properties: {{n: {{type: integer}}, char: {{type: string}}}}, required: [n]}}
    http: {{url: "{tools_url}/big/{{n}}", timeout: 2}}
  - name: nowhere
    description: Nothing listens there.
    parameters: {{type: object, properties: {{}}}}
    http: {{url: "http://127.0.0.1:9/x", timeout: 2}}
  - name: echo
    description: Echo a segment and a query value.
    parameters:
      type: object
      properties: {{v: {{type: string}}, q: {{type: string}}}}
      required: [v]
    http: {{url: "{tools_url}/echo/{{v}}?fixed=1", timeout: 2}}
  - name: post_echo
    description: Echo a JSON body.
    parameters: {{type: object, properties: {{v: {{type: string}}, n: {{type: integer}}}}, required: [v]}}
    http: {{method: POST, url: "{tools_url}/echo/{{v}}", headers: {{Authorization: "Bearer ${{TOOL_TOKEN}}"}},
            timeout: 2}}
  - mcp:
      url: {mcp_url}
      headers: {{Authorization: "Bearer ${{MCP_TOKEN}}"}}
      tools: [search_docs, get_page, fail_tool]
      timeout: 3
  - mcp:
      url: http://127.0.0.1:9/mcp
      timeout: 2
targets:
{targets}"""


PLAIN_AGENT = """\
name: plain-bot
prompt: You answer.
model: fake-plain-1
timeout: 10
targets:
  vercel: {stream: true}
  aws: {stream: true}
"""


@pytest.fixture(scope="module")
def tools() -> Iterator[ToolServer]:
    with ToolServer() as server:
        yield server


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServer]:
    with McpServer(require_token=MCP_SECRET) as server:
        yield server


class App:
    def __init__(self, kind: str, url: str, log: Path):
        self.kind = kind
        self.url = url
        self.log = log
        self.call = http_call(url)

    def post(self, payload: dict, headers: dict | None = None) -> tuple[int, dict, bytes]:
        return self.call("POST", json.dumps(payload).encode(), {**JSON, **(headers or {})})

    def ask(self, message: str, **extra) -> dict:
        status, headers, raw = self.post({"message": message, "stream": False, **extra})
        assert status == 200, raw
        assert headers["content-type"].startswith("application/json")
        return json.loads(raw)

    def records(self) -> list[dict]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            start = line.find('{"type": "agent.usage"')
            if start < 0:
                start = line.find('{"type":"agent.usage"')
            if start >= 0:
                out.append(json.loads(line[start:]))
        return out


def serve(kind: str, folder: Path, env: dict) -> Iterator[App]:
    target = "aws" if kind.startswith("aws") else "vercel"
    log = folder / f"serve-{kind}.log"
    with serve_process(target, folder / "agent.yaml", folder / "generated", env, log=log) as (_, url):
        yield App(kind, url, log)


@pytest.fixture(scope="module", params=APPS)
def app(request, tmp_path_factory, fake_model, tools, mcp) -> Iterator[App]:
    kind = request.param
    request.getfixturevalue("lambda_node_ric" if kind.startswith("aws") else "edge_runtime")
    folder = tmp_path_factory.mktemp(f"loop-{kind}")
    write_agent(folder, agent_yaml(tools.url, mcp.url, kind))
    assert build(folder / "agent.yaml", folder / "generated") == 0
    env = {"OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY, "TOOL_TOKEN": TOOL_SECRET,
           "MCP_TOKEN": MCP_SECRET}
    yield from serve(kind, folder, env)


@pytest.fixture(scope="session")
def lambda_node_ric(tmp_path_factory) -> Path:
    from framework.platforms.aws import runner as aws_runner
    from tests.conftest import require_node, shared_lock

    require_node()
    with shared_lock(tmp_path_factory, "lambda-node-ric-install"):
        return aws_runner.ensure_ric()


def tag(request) -> str:
    return f"tok-{uuid.uuid4().hex[:12]}-{request.node.name[:30]}"


def tool_messages(sent_request) -> list[dict]:
    """The role:tool messages after the last assistant message of a recorded model request."""
    messages = sent_request.json["messages"]
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return [m for m in messages[last + 1:] if m["role"] == "tool"]


def no_secret(*texts: str | bytes) -> None:
    for text in texts:
        text = text.decode(errors="replace") if isinstance(text, bytes) else text
        for secret in SECRETS[1:]:
            assert secret not in text
        assert API_KEY not in text


# ------------------------------------------------------------------------------------------- the loop


def test_a_tool_result_reaches_the_model_and_the_answer(app, fake_model, tools, request):
    token = tag(request)
    fake_model.script(token, [call("lookup_order", {"order_id": "42"})])
    answer = app.ask(token)
    assert answer["response"] == 'tools said: {"order_id": "42", "status": "shipped"}'
    assert answer["steps"] == 2 and "stopped" not in answer
    assert answer["tokens"] == 20
    first, second = fake_model.find(token)
    assert first.json["max_tokens"] == 99 and "stream" not in first.json
    names = [t["function"]["name"] for t in first.json["tools"]]
    assert names[:3] == ["lookup_order", "nap", "short_nap"]
    assert {"search_docs", "get_page", "fail_tool"} <= set(names) and "big_tool" not in names  # allow-list
    assert first.json["tools"][0] == {"type": "function", "function": {
        "name": "lookup_order", "description": "Look up an order by its number.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string", "pattern": "^[0-9]+$"}},
                       "required": ["order_id"]}}}
    # the assistant message goes back as received, then the tool's result under its call id
    (assistant,) = fake_model.sent(token)[:1]
    messages = second.json["messages"]
    assert messages[2] == assistant
    assert messages[3] == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"],
                           "content": '{"order_id": "42", "status": "shipped"}'}
    (hit,) = [r for r in tools.requests if r.target == "/orders/42"][-1:]
    assert hit.method == "GET" and hit.headers["authorization"] == f"Bearer {TOOL_SECRET}"
    assert hit.headers["accept"].startswith("application/json")


def test_parallel_calls_run_together_and_answer_in_order(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [[call("nap", {"seconds": 1.2}), call("nap", {"seconds": 0.2}),
                               call("lookup_order", {"order_id": "7"})]])
    began = time.monotonic()
    answer = app.ask(token)
    elapsed = time.monotonic() - began
    assert answer["response"] == ('tools said: {"slept": 1.2} | {"slept": 0.2} | '
                                  '{"order_id": "7", "status": "shipped"}')
    assert elapsed < 2.3  # about the slowest one (1.2 s), not the sum


def test_every_error_is_a_result_and_the_request_does_not_fail(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [[
        call("no_such_tool", {}),
        call("lookup_order", "not json{"),
        call("lookup_order", "[1, 2]"),
        call("lookup_order", {"order_id": "abc"}),
        call("lookup_order", {}),
        call("fail", {"code": 503}),
        call("short_nap", {"seconds": 3}),
        call("nowhere", {}),
        call("moved", {}),
        call("big", {"n": 20000, "char": "é"}),
        call("fail_tool", {}),
    ]])
    before = len(app.records())
    answer = app.ask(token)
    assert answer["steps"] == 2
    results = [m["content"] for m in tool_messages(fake_model.find(token)[-1])]
    assert results[0] == 'error: there is no tool named "no_such_tool"'
    assert results[1] == results[2] == "error: the arguments are not a valid JSON object"
    assert results[3] == "error: the arguments do not match the tool's parameters: order_id must match ^[0-9]+$"
    assert results[4] == "error: the arguments do not match the tool's parameters: order_id is required"
    assert results[5] == "error: the tool answered HTTP 503: tool server: status 503"
    assert results[6] == "error: the tool did not answer within 0.5 s"
    assert results[7] == "error: could not reach the tool"
    assert results[8].startswith("error: the tool answered HTTP 302")
    marker = "\n[cut: the tool's answer was longer than 16384 bytes]"
    assert results[9].endswith(marker)
    cut = results[9][: -len(marker)]
    assert set(cut) == {"é"} and len(cut.encode()) == 16384
    assert results[10] == "error: Error executing tool fail_tool: fail_tool failed on purpose"
    # the usage record: one entry per call, in order, with its outcome
    wait_for(lambda: len(app.records()) > before, "a usage record")
    record = app.records()[-1]
    assert [t["outcome"] for t in record["tools"]] == [
        "unknown_tool", "invalid_arguments", "invalid_arguments", "invalid_arguments", "invalid_arguments",
        "error", "timeout", "unreachable", "error", "ok", "error"]


def test_max_steps_makes_the_last_call_without_tools(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [], forever=call("lookup_order", {"order_id": "1"}), tokens=1)
    answer = app.ask(token)
    assert answer["steps"] == 4 and answer["stopped"] == "max_steps"
    sent = fake_model.find(token)
    assert len(sent) == 4
    assert all("tools" in s.json for s in sent[:3]) and "tools" not in sent[3].json
    assert answer["response"].startswith("no tools offered; tools said: ")


def test_the_token_budget_makes_the_next_call_without_tools(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [], forever=call("lookup_order", {"order_id": "1"}), tokens=30)
    answer = app.ask(token)
    assert answer["stopped"] == "token_budget"
    assert answer["steps"] == 3 and answer["tokens"] == 90  # 30 < 50: tools; 60 >= 50: none
    assert "tools" not in fake_model.find(token)[-1].json


def test_a_slow_loop_answers_with_stopped_deadline_before_the_timeout(app, fake_model, request):
    """Step 1 takes 6 s: 19 s - 6 s left is less than the reserve (2 s) + 6 s + the longest tool
    timeout (7 s), so step 2 is made without tools, long before the platform's 20 s."""
    token = tag(request)
    fake_model.script(token, [call("lookup_order", {"order_id": "5"})], delays=[6.0])
    began = time.monotonic()
    answer = app.ask(token)
    assert time.monotonic() - began < 15
    assert answer["stopped"] == "deadline" and answer["steps"] == 2
    assert "tools" not in fake_model.find(token)[-1].json


# ------------------------------------------------------------------------------------------- MCP


def test_mcp_tools_are_called_and_the_session_is_kept(app, fake_model, mcp, request):
    token = tag(request)
    fake_model.script(token, [[call("search_docs", {"query": "refunds"}), call("get_page", {"page_id": 3})]])
    answer = app.ask(token)
    assert answer["response"] == 'tools said: results for "refunds": page 1, page 2 | page 3: the text of page 3'
    calls = [c for c in mcp.calls if c.arguments in ({"query": "refunds"}, {"page_id": 3})]
    assert len(calls) == 2
    # the next request reuses the session: no initialize, only the call
    mcp.clear()
    again = tag(request)
    fake_model.script(again, [call("search_docs", {"query": "again"})])
    assert app.ask(again)["steps"] == 2
    assert mcp.methods() == ["tools/call"]
    call_request = [r for r in mcp.requests if r.rpc_method == "tools/call"][0]
    assert call_request.headers["mcp-protocol-version"] == "2025-06-18"
    assert call_request.headers.get("mcp-session-id")
    assert call_request.headers["authorization"] == f"Bearer {MCP_SECRET}"


def test_a_gone_mcp_session_is_set_up_again_once(app, fake_model, mcp, request):
    token = tag(request)
    fake_model.script(token, [call("search_docs", {"query": "warm"})])
    app.ask(token)  # a session exists
    mcp.forget_sessions()
    mcp.clear()
    again = tag(request)
    fake_model.script(again, [call("search_docs", {"query": "after"})])
    answer = app.ask(again)
    assert answer["response"] == 'tools said: results for "after": page 1, page 2'
    assert mcp.methods() == ["tools/call", "initialize", "notifications/initialized", "tools/list", "tools/call"]


# ------------------------------------------------------------------------------------------- security


SSRF_VALUES = ["../admin", "@evil.com", "%2F..", "http://x", "?a=b", "#x", "a/b", "é ~*'()!"]


def test_a_parameter_never_leaves_its_path_segment_or_query_value(app, fake_model, tools, request):
    token = tag(request)
    fake_model.script(token, [[call("echo", {"v": value, "q": value}) for value in SSRF_VALUES]])
    tools.clear()
    app.ask(token)
    seen = sorted((r for r in tools.requests if r.path.startswith("/echo/")), key=lambda r: r.target)
    assert len(seen) == len(SSRF_VALUES)
    for record in seen:
        segment = record.path.removeprefix("/echo/")
        assert "/" not in segment and "?" not in segment and "#" not in segment
        assert record.query["fixed"] == ["1"]
    values = sorted(urllib.parse.unquote(r.path.removeprefix("/echo/")) for r in seen)
    assert values == sorted(SSRF_VALUES)
    assert sorted(r.query["q"][0] for r in seen) == sorted(SSRF_VALUES)
    # the strict encoding: nothing but letters, digits and -_.~ is left as is
    (odd,) = [r for r in seen if urllib.parse.unquote(r.path.removeprefix("/echo/")) == "é ~*'()!"]
    assert odd.path == "/echo/%C3%A9%20~%2A%27%28%29%21"
    assert odd.target.endswith("&q=%C3%A9+~%2A%27%28%29%21")


def test_post_sends_the_arguments_as_a_json_body(app, fake_model, tools, request):
    token = tag(request)
    fake_model.script(token, [call("post_echo", {"v": "seg", "n": 3})])
    tools.clear()
    app.ask(token)
    (hit,) = tools.requests
    assert hit.method == "POST" and hit.target == "/echo/seg"
    assert hit.json == {"v": "seg", "n": 3} and hit.headers["content-type"] == "application/json"


def test_no_secret_in_answers_logs_or_what_the_model_reads(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [[call("fail", {"code": 401}), call("post_echo", {"v": "x"}),
                               call("search_docs", {"query": "q"})]])
    status, _, raw = app.post({"message": token, "stream": False})
    assert status == 200
    results = [m["content"] for m in tool_messages(fake_model.find(token)[-1])]
    assert results[0] == "error: the tool answered HTTP 401: tool server: status 401"
    streamed = fetch_ui_stream(app.url, {"message": token})
    no_secret(raw, json.dumps(streamed), app.log.read_text(errors="replace"))
    for sent in fake_model.find(token):
        assert sent.headers["authorization"] == f"Bearer {API_KEY}"  # the key only in its header
        no_secret(sent.body)


def test_a_secret_in_a_tool_error_body_is_replaced(app, fake_model, tools, request):
    token = tag(request)
    # /status/500?echo=headers answers the header values: the GET's other arguments go in the query
    fake_model.script(token, [call("fail", {"code": 500, "echo": "headers"})])
    answer = app.ask(token)
    (result,) = [m["content"] for m in tool_messages(fake_model.find(token)[-1])]
    assert result.startswith("error: the tool answered HTTP 500: {")
    assert "[secret]" in result and TOOL_SECRET not in result
    no_secret(json.dumps(answer))


# ------------------------------------------------------------------------------------------- streams


def test_the_ui_message_stream_parses_with_the_ai_package(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [[call("lookup_order", {"order_id": "8"}), call("lookup_order", "oops{")],
                              "all done"])
    parsed = fetch_ui_stream(app.url, {"message": token})
    assert parsed["status"] == 200 and parsed["error"] is None and parsed["done"] is True
    assert parsed["headers"]["content-type"] == "text/event-stream"
    assert parsed["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    assert parsed["headers"]["cache-control"] == "no-cache"
    assert text_of(parsed) == "all done"
    first, second = tool_parts(parsed)
    assert first["input"] == {"order_id": "8"}
    assert first["output"] == '{"order_id": "8", "status": "shipped"}'
    assert second["input"] == "oops{" and second["output"] == "error: the arguments are not a valid JSON object"
    assert parsed["metadata"] == {"tokens": 20, "steps": 2}
    types = [c["type"] for c in parsed["chunks"]]
    assert types[0] == "start" and types.count("start-step") == 2 and types.count("finish-step") == 2
    assert types[-1] == "finish"
    sent = fake_model.find(token)
    assert all(s.json["stream"] is True and s.json["stream_options"] == {"include_usage": True} for s in sent)


def test_a_quiet_tool_gets_keep_alive_comments(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [call("nap", {"seconds": 6.5})])
    parsed = fetch_ui_stream(app.url, {"message": token})
    assert parsed["error"] is None and parsed["done"]
    assert parsed["comments"] >= 1
    assert text_of(parsed) == 'tools said: {"slept": 6.5}'


def test_a_stream_that_breaks_before_any_output_is_a_json_error(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [call("lookup_order", {"order_id": "3"})])
    status, headers, raw = app.call("POST", json.dumps({"message": f"[[bad-chunk]] {token}"}).encode(),
                                    {**JSON, "Accept": "text/event-stream"})
    assert status == 502 and headers["content-type"].startswith("application/json")
    assert json.loads(raw) == {"error": "the model endpoint's answer was cut off or invalid"}


def test_without_the_accept_header_a_stream_is_text_of_every_step(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [call("lookup_order", {"order_id": "4"})])
    status, headers, raw = app.post({"message": token, "stream": True})
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.decode() == 'tools said: {"order_id": "4", "status": "shipped"}'


# ------------------------------------------------------------------------------------------- usage


def test_one_usage_record_per_post_without_content(app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [call("lookup_order", {"order_id": "11"})], tokens=[12, 8])
    request_id = f"fra1::iad1::{uuid.uuid4().hex}" if app.kind.startswith("vercel") else None
    before = len(app.records())
    app.post({"message": token, "stream": False}, {"x-vercel-id": request_id} if request_id else None)
    wait_for(lambda: len(app.records()) > before, "a usage record")
    record = app.records()[-1]
    if request_id:
        assert record["request_id"] == request_id
    else:
        uuid.UUID(record["request_id"])  # Lambda's awsRequestId
    assert record["type"] == "agent.usage" and record["severity"] == "INFO"
    assert record["agent"] == "loop-bot" and record["status"] == 200
    assert record["steps"] == 2 and record["stopped"] is None and record["tokens"] == 20
    assert record["gen_ai.request.model"] == "fake-loop-1"
    assert record["gen_ai.operation.name"] == "chat" and record["gen_ai.provider.name"] == "openai"
    assert record["gen_ai.usage.input_tokens"] == 9 + 5 and record["gen_ai.usage.output_tokens"] == 3 + 3
    assert record["latency_ms"] >= 0 and "ttft_ms" not in record
    assert [(t["name"], t["outcome"]) for t in record["tools"]] == [("lookup_order", "ok")]
    assert "content" not in record
    assert token not in json.dumps(record)
    # a bad request has its record too (WARNING), and a stream its time to first token
    app.post({"nope": 1})
    wait_for(lambda: app.records()[-1]["status"] == 400, "the 400's record")
    assert app.records()[-1]["severity"] == "WARNING"
    streamed = tag(request)
    app.post({"message": streamed, "stream": True})
    wait_for(lambda: app.records()[-1]["status"] == 200 and "ttft_ms" in app.records()[-1], "the stream's record")
    assert app.records()[-1]["ttft_ms"] >= 0


# ------------------------------------------------------------------------------------------- no tools


@pytest.fixture(scope="module", params=["vercel-edge", "aws-stream"])
def plain_app(request, tmp_path_factory, fake_model) -> Iterator[App]:
    kind = request.param
    request.getfixturevalue("lambda_node_ric" if kind.startswith("aws") else "edge_runtime")
    folder = tmp_path_factory.mktemp(f"plain-{kind}")
    write_agent(folder, PLAIN_AGENT)
    assert build(folder / "agent.yaml", folder / "generated") == 0
    yield from serve(kind, folder, {"OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY})


def test_an_agent_without_tools_makes_one_call_with_todays_payload(plain_app, fake_model, request):
    token = tag(request)
    fake_model.script(token, [call("lookup_order", {"order_id": "1"})])  # never offered: answers text
    status, _, raw = plain_app.post({"message": token, "stream": False})
    assert status == 200
    answer = json.loads(raw)
    assert set(answer) == {"response", "tokens", "steps"} and answer["steps"] == 1
    (sent,) = fake_model.find(token)
    assert set(sent.json) == {"model", "messages", "max_tokens"}
    assert sent.json["messages"] == [{"role": "system", "content": "You answer."}, {"role": "user", "content": token}]
    plain = f"plain-{uuid.uuid4().hex}"
    parsed = fetch_ui_stream(plain_app.url, {"message": plain})
    assert parsed["error"] is None and text_of(parsed) == f"echo: {plain}"
    assert parsed["metadata"]["steps"] == 1 and "stopped" not in parsed["metadata"]


# ------------------------------------------------------------------------------------------- Lambda's context

# index.mjs under stand-ins for Lambda's `awslambda` globals: the handler is called with a context
# whose remaining time is given, as Lambda's is; the answer's bytes and the log lines are printed.
LAMBDA_CONTEXT_CHECK = """
const chunks = [];
let prelude = null;
globalThis.awslambda = {
  streamifyResponse: (handler) => handler,
  HttpResponseStream: { from: (stream, p) => { prelude = p; return stream; } },
};
const stream = { destroyed: false, write: (c) => { chunks.push(Buffer.from(c)); return true; }, end: () => {} };
const { handler } = await import(process.argv[1] + "/index.mjs");
const remaining = Number(process.argv[2]);
const began = Date.now();
await handler({ message: process.argv[3], stream: false }, stream,
              { getRemainingTimeInMillis: () => remaining - (Date.now() - began), awsRequestId: "req-1234" });
console.log(JSON.stringify({ status: prelude.statusCode, body: Buffer.concat(chunks).toString() }));
"""


def test_the_lambda_deadline_is_the_contexts_remaining_time(tmp_path, fake_model):
    """1.2 s left of a 10 s timeout: the model call gets what is left minus the second kept for the
    answer (at least 0.5 s), so a model needing 8 s is a 504 at once, not after 10 s; the usage
    record carries Lambda's request id. With time enough, the same call answers."""
    import os
    import subprocess
    import time

    write_agent(tmp_path, PLAIN_AGENT)
    assert build(tmp_path / "agent.yaml", tmp_path / "generated", "--target", "aws") == 0
    env = {**os.environ, "OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY}

    def invoke(remaining_ms: str, message: str) -> tuple[dict, list[str]]:
        result = subprocess.run(["node", "--input-type=module", "-e", LAMBDA_CONTEXT_CHECK,
                                 str(tmp_path / "generated" / "aws"), remaining_ms, message],
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        return json.loads(lines[-1]), lines

    started = time.monotonic()
    outcome, lines = invoke("1200", "tok-lambda-context [[hang:8]]")
    assert outcome["status"] == 504 and time.monotonic() - started < 6
    (record,) = [json.loads(line) for line in lines if '"agent.usage"' in line]
    assert record["request_id"] == "req-1234" and record["status"] == 504
    outcome, _ = invoke("9000", "tok-lambda-context")
    assert json.loads(outcome["body"]) == {"response": "echo: tok-lambda-context", "tokens": 5, "steps": 1}
