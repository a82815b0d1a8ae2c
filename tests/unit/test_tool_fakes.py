"""Tests for the tool-loop fakes: the HTTP tool server, the MCP server (the official SDK's,
driven by the SDK's own client) and the UI message stream reader (the ai package's)."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import JS_DIR, require_node, shared_lock
from tests.fakes.mcp_server import McpServer
from tests.fakes.tool_server import REDIRECT_TO, ToolServer
from tests.functional import ui_stream
from tests.functional.ui_stream import fetch_ui_stream, read_ui_stream, text_of, tool_parts

TIMEOUT = 10


def token() -> str:
    return f"tok-{uuid.uuid4().hex}"


# --------------------------------------------------------------------------
# ToolServer
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools():
    with ToolServer() as server:
        yield server


def exchange(server, method, target, body=None, headers=None):
    """One request with the target sent byte for byte; (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or b"")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if data or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data or None)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("target", "status", "content_type"),
    [
        ("/echo", 200, "application/json"),
        ("/echo/a/b?x=1", 200, "application/json"),
        ("/status/503", 503, "text/plain"),
        ("/status/404", 404, "text/plain"),
        ("/sleep/0", 200, "application/json"),
        ("/big/10", 200, "text/plain"),
        ("/redirect", 302, "application/json"),
        ("/headers", 200, "application/json"),
        ("/orders/42", 200, "application/json"),
        ("/orders/4/2", 404, "application/json"),
        ("/nothing/here", 404, "application/json"),
        ("/", 404, "application/json"),
    ],
)
def test_tool_server_routes(tools, target, status, content_type):
    got, headers, _ = exchange(tools, "GET", target)
    assert got == status
    assert headers["content-type"].startswith(content_type)


def test_echo_answers_what_it_received_with_header_names_only(tools):
    secret = token()
    status, _, raw = exchange(
        tools, "POST", "/echo/x?a=1&b=2&b=3&c=", body={"k": "v"},
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    assert status == 200
    data = json.loads(raw)
    assert data == {
        "method": "POST",
        "target": "/echo/x?a=1&b=2&b=3&c=",
        "path": "/echo/x",
        "query": {"a": "1", "b": ["2", "3"], "c": ""},
        "body": '{"k": "v"}',
        "json": {"k": "v"},
        "headers": ["authorization", "content-length", "content-type", "host"],
    }
    assert secret.encode() not in raw


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_echo_answers_every_method(tools, method):
    status, _, raw = exchange(tools, method, "/echo")
    assert status == 200 and json.loads(raw)["method"] == method


def test_records_raw_target_parsed_path_query_headers_and_body(tools):
    tok = token()
    target = f"/orders/..%2Fadmin%40evil.com?q=%2F..&t={tok}"
    exchange(tools, "PUT", target, body=b"raw body", headers={"X-Test": "yes"})
    (rec,) = tools.find(tok)
    assert rec.method == "PUT"
    assert rec.target == target
    assert rec.path == "/orders/..%2Fadmin%40evil.com"
    assert rec.segments == ["orders", "../admin@evil.com"]
    assert rec.query == {"q": ["/.."], "t": [tok]}
    assert rec.headers["x-test"] == "yes"
    assert rec.body == b"raw body" and rec.text == "raw body" and rec.json is None


def test_orders_answers_the_decoded_id(tools):
    status, _, raw = exchange(tools, "GET", "/orders/%40evil.com")
    assert status == 200
    assert json.loads(raw) == {"order_id": "@evil.com", "status": "shipped"}


def test_status_body_is_short_text_or_the_header_values(tools):
    _, _, plain = exchange(tools, "GET", "/status/503")
    assert plain == b"tool server: status 503"
    secret = token()
    status, _, echoed = exchange(tools, "GET", "/status/401?echo=headers", headers={"Authorization": secret})
    assert status == 401 and json.loads(echoed)["authorization"] == secret


def test_headers_echoes_values(tools):
    secret = token()
    _, _, raw = exchange(tools, "GET", "/headers", headers={"Authorization": f"Bearer {secret}"})
    assert json.loads(raw)["authorization"] == f"Bearer {secret}"


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/big/0", b""), ("/big/100", b"x" * 100), ("/big/5?char=%C3%A9", "éé".encode() + b"\xc3")],
    ids=["empty", "ascii", "multibyte-cut"],
)
def test_big_answers_exactly_n_bytes(tools, target, expected):
    _, headers, raw = exchange(tools, "GET", target)
    assert raw == expected and int(headers["content-length"]) == len(expected)


def test_redirect_points_at_another_port(tools):
    status, headers, _ = exchange(tools, "GET", "/redirect")
    assert status == 302 and headers["location"] == REDIRECT_TO == "http://127.0.0.1:1/elsewhere"


def test_sleep_waits_then_answers(tools):
    started = time.monotonic()
    status, _, raw = exchange(tools, "GET", "/sleep/0.3")
    assert status == 200 and json.loads(raw) == {"slept": 0.3}
    assert time.monotonic() - started >= 0.3


def test_stop_interrupts_sleep():
    own = ToolServer().start()
    done = threading.Event()

    def sleeper():
        try:
            exchange(own, "GET", "/sleep/60")
        except OSError:
            pass
        done.set()

    threading.Thread(target=sleeper, daemon=True).start()
    while not own.requests:
        time.sleep(0.01)
    started = time.monotonic()
    own.stop()
    assert done.wait(TIMEOUT)
    assert time.monotonic() - started < 5


def test_find_and_clear():
    with ToolServer() as own:
        tok = token()
        exchange(own, "GET", "/echo", headers={"X-Token": tok})
        exchange(own, "POST", "/echo", body={"t": tok})
        exchange(own, "GET", f"/echo?{tok}")
        exchange(own, "GET", "/echo")
        assert len(own.find(tok)) == 3 and len(own.requests) == 4
        own.clear()
        assert own.requests == []


def test_url_is_loopback(tools):
    assert tools.url == f"http://127.0.0.1:{tools.port}"


# --------------------------------------------------------------------------
# McpServer, driven by the SDK's own client
# --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sse", "json"])
def mcp_server(request):
    with McpServer(json_response=request.param == "json") as server:
        yield server


async def _session(url, headers, work):
    async with httpx2.AsyncClient(headers=headers or {}, timeout=TIMEOUT) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)


def with_session(url, work, headers=None):
    """Run ``await work(session)`` on an initialised SDK client session."""
    return anyio.run(_session, url, headers, work)


def test_mcp_lists_the_tools_with_schemas(mcp_server):
    async def work(session):
        return (await session.list_tools()).tools

    listed = {t.name: t.input_schema for t in with_session(mcp_server.url, work)}
    assert set(listed) == {"search_docs", "get_page", "fail_tool", "slow_tool", "big_tool"}
    assert listed["search_docs"]["properties"]["query"]["type"] == "string"
    assert listed["search_docs"]["required"] == ["query"]
    assert listed["get_page"]["properties"]["page_id"]["type"] == "integer"
    assert listed["slow_tool"]["properties"]["seconds"]["type"] == "number"
    assert listed["fail_tool"]["type"] == "object"


@pytest.mark.parametrize(
    ("name", "arguments", "text"),
    [
        ("search_docs", {"query": "refunds"}, 'results for "refunds": page 1, page 2'),
        ("get_page", {"page_id": 7}, "page 7: the text of page 7"),
        ("slow_tool", {"seconds": 0.1}, "slept 0.1"),
        ("big_tool", {"n": 20000}, "x" * 20000),
    ],
)
def test_mcp_call_tool(mcp_server, name, arguments, text):
    async def work(session):
        return await session.call_tool(name, arguments)

    result = with_session(mcp_server.url, work)
    assert result.is_error is False
    assert [c.text for c in result.content] == [text]
    assert (name, arguments) in [(c.name, c.arguments) for c in mcp_server.calls]


def test_mcp_failing_tool_is_an_error_result(mcp_server):
    async def work(session):
        return await session.call_tool("fail_tool", {})

    result = with_session(mcp_server.url, work)
    assert result.is_error is True
    assert result.content[0].text == "Error executing tool fail_tool: fail_tool failed on purpose"


def test_mcp_records_session_and_protocol_headers(mcp_server):
    mcp_server.clear()

    async def work(session):
        return await session.list_tools()

    with_session(mcp_server.url, work)
    posts = [r for r in mcp_server.requests if r.method == "POST"]
    assert [r.rpc_method for r in posts] == ["initialize", "notifications/initialized", "tools/list"]
    assert [r.status for r in posts] == [200, 202, 200]
    session_id = posts[0].headers.get("mcp-session-id")
    assert session_id is None  # the client learns it from the initialize answer
    later = posts[1:]
    assert len({r.headers["mcp-session-id"] for r in later}) == 1
    assert {r.headers["mcp-protocol-version"] for r in later} == {"2025-11-25"}
    assert mcp_server.methods()[:3] == ["initialize", "notifications/initialized", "tools/list"]


def test_mcp_stateless_has_no_session_id():
    with McpServer(stateless=True) as server:
        async def work(session):
            return await session.call_tool("get_page", {"page_id": 1})

        assert with_session(server.url, work).content[0].text.startswith("page 1")
        assert all("mcp-session-id" not in r.headers for r in server.requests)


# -- raw HTTP: what the runtimes' stdlib clients meet -------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_ACCEPT = "application/json, text/event-stream"


def rpc(url, message, headers=None, accept=MCP_ACCEPT):
    """POST one JSON-RPC message; (status, lower-case headers, body text)."""
    request = urllib.request.Request(
        url, data=json.dumps(message).encode(), method="POST",
        headers={"Content-Type": "application/json", "Accept": accept, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def sse_json(body):
    """The JSON-RPC message of an SSE answer's data line."""
    (data,) = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    return json.loads(data)


def open_session(url, headers=None):
    status, resp_headers, body = rpc(url, INITIALIZE, headers)
    assert status == 200, body
    session = {"Mcp-Session-Id": resp_headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18",
               **(headers or {})}
    assert rpc(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)[0] == 202
    return session


@pytest.mark.parametrize(
    ("json_response", "content_type"),
    [(False, "text/event-stream"), (True, "application/json")],
    ids=["default-sse", "json_response"],
)
def test_mcp_raw_answer_format(json_response, content_type):
    with McpServer(json_response=json_response) as server:
        status, headers, body = rpc(server.url, INITIALIZE)
        assert status == 200 and headers["content-type"].startswith(content_type)
        answer = sse_json(body) if content_type == "text/event-stream" else json.loads(body)
        assert answer["result"]["protocolVersion"] == "2025-06-18"
        assert headers["mcp-session-id"]


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("2024-11-05", "2024-11-05"), ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"),
     ("2099-01-01", "2025-11-25")],
)
def test_mcp_raw_protocol_version_negotiation(offered, answered):
    with McpServer(json_response=True) as server:
        message = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": offered}}
        _, _, body = rpc(server.url, message)
        assert json.loads(body)["result"]["protocolVersion"] == answered


@pytest.mark.parametrize(
    ("json_response", "accept", "status"),
    [(False, "application/json", 406), (False, "text/event-stream", 406), (False, MCP_ACCEPT, 200),
     (True, "application/json", 200), (True, "text/event-stream", 406)],
)
def test_mcp_raw_accept_header_rule(json_response, accept, status):
    with McpServer(json_response=json_response) as server:
        assert rpc(server.url, INITIALIZE, accept=accept)[0] == status


def test_mcp_raw_notification_is_202_with_empty_body():
    with McpServer() as server:
        status, headers, body = rpc(server.url, INITIALIZE)
        session = {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
        status, _, body = rpc(server.url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
        assert (status, body) == (202, "")


@pytest.mark.parametrize(
    ("session_id", "status"),
    [("unknown-session", 404), (None, 400)],
    ids=["unknown-id", "no-id"],
)
def test_mcp_raw_request_outside_a_session(session_id, status):
    with McpServer() as server:
        headers = {"MCP-Protocol-Version": "2025-06-18"}
        if session_id:
            headers["Mcp-Session-Id"] = session_id
        got, _, body = rpc(server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers)
        assert got == status and "error" in json.loads(body)


def test_mcp_forget_sessions_makes_the_old_id_404():
    with McpServer(json_response=True) as server:
        session = open_session(server.url)
        tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        assert rpc(server.url, tools_list, session)[0] == 200
        assert server.session_ids() == [session["Mcp-Session-Id"]]
        assert server.forget_sessions() == 1
        assert server.session_ids() == []
        status, _, body = rpc(server.url, tools_list, session)
        assert status == 404 and json.loads(body)["error"]["message"] == "Session not found"
        fresh = open_session(server.url)  # a client re-initialising gets a new session
        assert fresh["Mcp-Session-Id"] != session["Mcp-Session-Id"]
        assert rpc(server.url, tools_list, fresh)[0] == 200


def test_mcp_require_token_refuses_without_it():
    secret = token()
    with McpServer(require_token=secret) as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": secret}):
            status, resp_headers, _ = rpc(server.url, INITIALIZE, headers)
            assert status == 401 and resp_headers["www-authenticate"] == "Bearer"
        assert all(r.status == 401 for r in server.requests)


def test_mcp_require_token_lets_the_sdk_client_in_and_records_authorization():
    secret = token()
    with McpServer(require_token=secret) as server:
        async def work(session):
            return await session.call_tool("search_docs", {"query": "q"})

        result = with_session(server.url, work, headers={"Authorization": f"Bearer {secret}"})
        assert result.is_error is False
        assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {secret}"}


# --------------------------------------------------------------------------
# read-ui-stream.mjs: the ai package's own reader
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ui_reader(tmp_path_factory):
    """tests/js/node_modules with the pinned ai package (one `npm ci` if it is missing)."""
    require_node()
    with shared_lock(tmp_path_factory, "tests-js-npm-ci"):
        if not ui_stream.AI_PACKAGE.is_file():
            result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                    cwd=JS_DIR, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"npm ci in tests/js failed:\n{result.stderr}"
    return ui_stream.READER


def sse(*events):
    """SSE bytes: each event a dict (JSON), a str (sent as the data as is) or a comment (':...')."""
    out = []
    for event in events:
        if isinstance(event, str) and event.startswith(":"):
            out.append(event + "\n\n")
        else:
            out.append("data: " + (event if isinstance(event, str) else json.dumps(event)) + "\n\n")
    return "".join(out).encode()


VALID = sse(
    {"type": "start", "messageId": "msg-1"},
    {"type": "start-step"},
    {"type": "tool-input-available", "toolCallId": "call_1", "toolName": "lookup_order", "input": {"order_id": "42"}},
    ": keep-alive",
    {"type": "tool-output-available", "toolCallId": "call_1", "output": '{"status": "shipped"}'},
    {"type": "finish-step"},
    {"type": "start-step"},
    {"type": "text-start", "id": "t1"},
    {"type": "text-delta", "id": "t1", "delta": "It has "},
    {"type": "text-delta", "id": "t1", "delta": "shipped."},
    {"type": "text-end", "id": "t1"},
    {"type": "finish-step"},
    {"type": "finish", "messageMetadata": {"tokens": 20, "steps": 2}},
    "[DONE]",
)


def test_reader_parses_a_valid_stream(ui_reader):
    parsed = read_ui_stream(VALID)
    assert parsed["error"] is None and parsed["errorParts"] == []
    assert [c["type"] for c in parsed["chunks"]] == [
        "start", "start-step", "tool-input-available", "tool-output-available", "finish-step",
        "start-step", "text-start", "text-delta", "text-delta", "text-end", "finish-step", "finish",
    ]
    assert parsed["chunks"][2]["input"] == {"order_id": "42"}
    assert parsed["metadata"] == {"tokens": 20, "steps": 2}
    assert parsed["message"]["id"] == "msg-1" and parsed["message"]["role"] == "assistant"
    assert text_of(parsed) == "It has shipped."
    assert tool_parts(parsed) == [{
        "type": "tool-lookup_order", "toolCallId": "call_1", "state": "output-available",
        "input": {"order_id": "42"}, "output": '{"status": "shipped"}',
    }]
    assert [p["type"] for p in parsed["message"]["parts"]] == ["step-start", "tool-lookup_order", "step-start", "text"]
    assert (parsed["done"], parsed["events"], parsed["comments"]) == (True, 13, 1)


def test_reader_reports_an_error_part_without_failing(ui_reader):
    parsed = read_ui_stream(sse({"type": "start"}, {"type": "error", "errorText": "the model failed"}, "[DONE]"))
    assert parsed["error"] is None
    assert parsed["errorParts"] == ["the model failed"]
    assert parsed["done"] is True


@pytest.mark.parametrize(
    ("raw", "error_name"),
    [
        (sse({"type": "start"}, {"type": "text-delta", "id": "t1", "delta": "x"}, "[DONE]"), "AI_UIMessageStreamError"),
        (sse({"type": "start"}, {"type": "tool-output-available", "toolCallId": "nope", "output": "x"}, "[DONE]"),
         "AI_UIMessageStreamError"),
        (sse({"type": "start"}, {"type": "bogus-part"}, "[DONE]"), "AI_TypeValidationError"),
        (sse({"type": "text-delta", "delta": "no id"}), "AI_TypeValidationError"),
        (sse("{not json"), "AI_JSONParseError"),
        (b"data: hello\n\n", "AI_JSONParseError"),
    ],
    ids=["delta-without-start", "output-for-unknown-call", "unknown-type", "missing-field", "bad-json", "plain-text"],
)
def test_reader_reports_a_stream_that_breaks_the_protocol(ui_reader, raw, error_name):
    parsed = read_ui_stream(raw)
    assert parsed["error"] is not None
    assert parsed["error"]["name"] == error_name
    assert len(parsed["error"]["message"]) <= 2100


def test_reader_notices_a_missing_done(ui_reader):
    parsed = read_ui_stream(VALID.replace(b"data: [DONE]\n\n", b""))
    assert parsed["error"] is None and parsed["done"] is False


def test_reader_accepts_crlf_and_multiline_framing(ui_reader):
    raw = VALID.replace(b"\n", b"\r\n")
    parsed = read_ui_stream(raw)
    assert parsed["error"] is None and text_of(parsed) == "It has shipped."


class _StreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.headers.get("Accept"), self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("x-vercel-ai-ui-message-stream", "v1")
        self.send_header("Content-Length", str(len(VALID)))
        self.end_headers()
        self.wfile.write(VALID)


def test_reader_fetches_from_a_url(ui_reader):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StreamHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        parsed = fetch_ui_stream(f"http://127.0.0.1:{server.server_address[1]}/api", {"message": "hi"})
    finally:
        server.shutdown()
        server.server_close()
    assert parsed["status"] == 200
    assert parsed["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    assert parsed["error"] is None and text_of(parsed) == "It has shipped."
    assert _StreamHandler.seen[-1] == ("text/event-stream", "application/json", b'{"message": "hi"}')


def test_reader_missing_package_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(ui_stream, "AI_PACKAGE", tmp_path / "node_modules" / "ai" / "package.json")
    with pytest.raises(ui_stream.UiStreamReaderMissing, match="npm ci"):
        read_ui_stream(VALID)


@pytest.mark.parametrize(
    ("version_header", "status"),
    [(None, 200), ("2025-06-18", 200), ("2024-11-05", 200), ("2026-07-28", 400), ("1999-01-01", 400)],
    ids=["absent", "negotiated", "older-handshake", "modern-era", "unknown"],
)
def test_mcp_raw_protocol_version_header_after_initialize(version_header, status):
    with McpServer(json_response=True) as server:
        session = open_session(server.url)
        del session["MCP-Protocol-Version"]
        if version_header:
            session["MCP-Protocol-Version"] = version_header
        assert rpc(server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)[0] == status


def test_mcp_raw_delete_ends_the_session():
    with McpServer(json_response=True) as server:
        session = open_session(server.url)
        request = urllib.request.Request(server.url, method="DELETE", headers=session)
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            assert resp.status == 200
        assert rpc(server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)[0] == 404
