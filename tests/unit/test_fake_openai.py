"""Tests for the fake OpenAI-compatible server in tests/fakes/openai_server.py."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI() as server:
        yield server


def token() -> str:
    return f"tok-{uuid.uuid4().hex}"


def post(url, body, headers=None, timeout=10):
    """POST JSON (or raw bytes); return (status, headers, body bytes)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url + "/chat/completions",
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def chat(content, **extra):
    return {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def test_normal_answer_shape_and_usage(fake):
    body = {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "be brief please"},
            {"role": "user", "content": "hello there"},
        ],
        "max_tokens": 50,
        "temperature": 0,
    }
    status, headers, raw = post(fake.url, body)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert int(headers["Content-Length"]) == len(raw)
    data = json.loads(raw)
    assert data["id"].startswith("chatcmpl-fake")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-test"
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "echo: hello there"},
            "finish_reason": "stop",
        }
    ]
    # 3 + 2 prompt words; "echo: hello there" is 3 words
    assert data["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 3,
        "total_tokens": 8,
    }


def test_prompt_tokens_minimum_one(fake):
    _, _, raw = post(fake.url, chat(""))
    assert json.loads(raw)["usage"]["prompt_tokens"] == 1


def test_records_requests_and_find(fake):
    tok = token()
    status, _, _ = post(
        fake.url, chat(f"find me {tok}"), headers={"Authorization": "Bearer sk-test"}
    )
    assert status == 200
    found = fake.find(tok)
    assert len(found) == 1
    rec = found[0]
    assert rec.method == "POST"
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-test"
    assert rec.json["messages"][0]["content"] == f"find me {tok}"
    assert tok.encode() in rec.body
    assert rec in fake.requests


def test_bad_json_is_recorded_and_400(fake):
    tok = token()
    status, _, raw = post(fake.url, f"not json {tok}".encode())
    assert status == 400
    assert "error" in json.loads(raw)
    (rec,) = fake.find(tok)
    assert rec.json is None


def test_clear():
    with FakeOpenAI() as own:
        post(own.url, chat("x"))
        assert len(own.requests) == 1
        own.clear()
        assert own.requests == []


def test_status_directive_with_retry_after(fake):
    status, headers, raw = post(fake.url, chat("[[status:429,retry-after:1]] hi"))
    assert status == 429
    assert headers["Retry-After"] == "1"
    err = json.loads(raw)["error"]
    assert set(err) >= {"message", "type", "code"}


def test_status_directive_plain(fake):
    status, headers, raw = post(fake.url, chat("[[status:500]]"))
    assert status == 500
    assert headers.get("Retry-After") is None
    assert json.loads(raw)["error"]["type"] == "server_error"


def test_status_once(fake):
    content = f"[[status-once:503]] {token()}"
    first = post(fake.url, chat(content))
    second = post(fake.url, chat(content))
    third = post(fake.url, chat(content))
    assert first[0] == 503
    assert second[0] == 200
    assert third[0] == 200
    assert (
        json.loads(second[2])["choices"][0]["message"]["content"] == "echo: " + content
    )


def test_directive_only_in_last_user_message(fake):
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "[[status:500]]"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "fine now"},
        ],
    }
    assert post(fake.url, body)[0] == 200


def test_malformed(fake):
    status, headers, raw = post(fake.url, chat("[[malformed]]"))
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(raw)


def test_empty_usage(fake):
    status, _, raw = post(fake.url, chat("[[empty-usage]] hi"))
    assert status == 200
    data = json.loads(raw)
    assert "usage" not in data
    assert data["choices"][0]["message"]["content"] == "echo: [[empty-usage]] hi"


def read_events(resp):
    """Yield parsed SSE data payloads ('[DONE]' kept as a string)."""
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            yield payload if payload == "[DONE]" else json.loads(payload)


def open_stream(fake, content, **extra):
    req = urllib.request.Request(
        fake.url + "/chat/completions",
        data=json.dumps(chat(content, stream=True, **extra)).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    return urllib.request.urlopen(req, timeout=30)


def test_stream_pieces_concatenate_to_reply(fake):
    content = "one two  three"
    with open_stream(fake, content) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = list(read_events(resp))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks]
    assert "".join(pieces) == "echo: " + content
    assert pieces[1:-1] == ["echo: ", "one ", "two  ", "three"]
    assert all("usage" not in c for c in chunks)


def test_stream_arrives_incrementally(fake):
    tok = token()
    with open_stream(fake, f"[[delay:0.3]] a b {tok}") as resp:
        events = read_events(resp)
        first = next(events)
        sent_when_first_read = fake.chunks_sent(tok)
        rest = list(events)
    total = 1 + len(rest)
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert rest[-1] == "[DONE]"
    # The first chunk was in our hands while the server had not yet sent the rest.
    assert 1 <= sent_when_first_read < total
    assert fake.chunks_sent(tok) == total


def test_stream_include_usage(fake):
    with open_stream(fake, "hi you", stream_options={"include_usage": True}) as resp:
        events = list(read_events(resp))
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 3,
        "total_tokens": 5,
    }
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


def test_stream_status_applies_before_streaming(fake):
    req = urllib.request.Request(
        fake.url + "/chat/completions",
        data=json.dumps(chat("[[status:401]]", stream=True)).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 401
    assert "error" in json.loads(info.value.read())


def test_hang_then_answers(fake):
    status, _, raw = post(fake.url, chat("[[hang:0.5]] slow"), timeout=30)
    assert status == 200
    assert (
        json.loads(raw)["choices"][0]["message"]["content"] == "echo: [[hang:0.5]] slow"
    )


def test_hang_triggers_client_timeout_without_blocking_others(fake):
    results = {}

    def slow():
        try:
            post(fake.url, chat("[[hang:3]] slow"), timeout=0.5)
            results["slow"] = "answered"
        except TimeoutError:
            results["slow"] = "timeout"

    thread = threading.Thread(target=slow)
    thread.start()
    assert post(fake.url, chat("quick"))[0] == 200
    assert "slow" not in results  # the quick one finished while the slow one hangs
    thread.join()
    assert results["slow"] == "timeout"


def test_stop_interrupts_hang():
    own = FakeOpenAI().start()
    thread = threading.Thread(
        target=lambda: _ignore_errors(post, own.url, chat("[[hang:60]]"), timeout=120),
        daemon=True,
    )
    thread.start()
    while not own.requests:
        time.sleep(0.01)
    own.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def _ignore_errors(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except OSError:
        pass


def test_models(fake):
    with urllib.request.urlopen(fake.url + "/models", timeout=10) as resp:
        assert json.loads(resp.read()) == {
            "object": "list",
            "data": [{"id": "fake", "object": "model"}],
        }


def test_unknown_path_404(fake):
    tok = token()
    req = urllib.request.Request(f"{fake.url}/nope?{tok}", method="GET")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 404
    assert "error" in json.loads(info.value.read())
    assert any(tok in r.path for r in fake.requests)


def test_keep_alive_reuses_connection(fake):
    conn = http.client.HTTPConnection(
        "127.0.0.1", int(fake.url.split(":")[2].split("/")[0])
    )
    try:
        for i in range(3):
            conn.request(
                "POST",
                "/v1/chat/completions",
                body=json.dumps(chat(f"msg {i}")),
                headers={"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            assert resp.status == 200
            assert (
                json.loads(resp.read())["choices"][0]["message"]["content"]
                == f"echo: msg {i}"
            )
        with_stream = json.dumps(chat("s t", stream=True))
        conn.request("POST", "/v1/chat/completions", body=with_stream)
        resp = conn.getresponse()
        assert resp.read().endswith(b"data: [DONE]\n\n")
        conn.request("GET", "/v1/models")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_large_body(fake):
    tok = token()
    big = "word " * 1_000_000  # ~5 MB
    status, _, raw = post(fake.url, chat(big + tok), timeout=60)
    assert status == 200
    assert json.loads(raw)["usage"]["prompt_tokens"] == 1_000_001
    assert len(fake.find(tok)) == 1


def test_runs_as_process():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        status, _, raw = post(url, chat("from process"))
        assert status == 200
        assert (
            json.loads(raw)["choices"][0]["message"]["content"] == "echo: from process"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.stderr.read() == ""


def raw_exchange(fake, content, stream=False) -> bytes:
    """One HTTP/1.1 request on a raw socket; everything the server sends until it closes."""
    import socket

    body = json.dumps(chat(content, stream=stream)).encode()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while chunk := sock.recv(65536):  # a server that keeps the connection open fails on the timeout
            received += chunk
    return received


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_close_answers_with_connection_close_and_closes(fake, stream):
    received = raw_exchange(fake, "[[close]] hi", stream)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close" in head
    assert b"echo: " in body


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_http10_answers_in_http_1_0_and_closes(fake, stream):
    received = raw_exchange(fake, "[[http10]] hi", stream)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert b"Transfer-Encoding" not in head and b"Connection:" not in head
    assert body.endswith(b"}" if not stream else b"data: [DONE]\n\n")


def test_http10_error_answers_are_http_1_0_too(fake):
    assert raw_exchange(fake, "[[http10]] [[status:503]]").startswith(b"HTTP/1.0 503")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_bad_chunk_breaks_the_chunked_body(fake, stream):
    body = json.dumps(chat("[[bad-chunk]] hi", stream=stream)).encode()
    request = urllib.request.Request(fake.url + "/chat/completions", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200 and resp.headers["Transfer-Encoding"] == "chunked"
        with pytest.raises(http.client.IncompleteRead):
            resp.read()


def test_no_text_streams_events_without_content(fake):
    with open_stream(fake, "[[no-text]] hi") as resp:
        events = list(read_events(resp))
    assert events[-1] == "[DONE]"
    assert all(not c["choices"][0]["delta"].get("content") for c in events[:-1])


# --------------------------------------------------------------------------
# Scripted tool calls, read with the official openai client
# --------------------------------------------------------------------------

import openai  # noqa: E402
from openai.lib.streaming.chat import ChatCompletionStreamState  # noqa: E402

from tests.fakes.openai_server import call  # noqa: E402

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the {name} tool",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    for name in ("lookup_order", "a", "b")
]


@pytest.fixture(scope="module")
def client(fake):
    with openai.OpenAI(base_url=fake.url, api_key="x", max_retries=0, timeout=30) as c:
        yield c


def conversation(tok, *turns):
    """system, user (with the token), then the given assistant/tool messages."""
    return [
        {"role": "system", "content": "you are a test"},
        {"role": "user", "content": f"please help {tok}"},
        *turns,
    ]


def assistant_turn(message):
    """The assistant message as a runtime appends it: as received."""
    return message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}) | {
        "content": message.content
    }


def test_script_one_call_then_default_answer_from_tool_results(fake, client):
    tok = token()
    fake.script(tok, [call("lookup_order", {"order_id": "42"})])
    first = client.chat.completions.create(
        model="m", messages=conversation(tok), tools=TOOLS
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (tc,) = choice.message.tool_calls
    assert tc.type == "function" and tc.id.startswith("call_")
    assert tc.function.name == "lookup_order"
    assert json.loads(tc.function.arguments) == {"order_id": "42"}
    assert first.usage.total_tokens == 10

    second = client.chat.completions.create(
        model="m",
        messages=conversation(
            tok,
            assistant_turn(choice.message),
            {"role": "tool", "tool_call_id": tc.id, "content": '{"status": "shipped"}'},
        ),
        tools=TOOLS,
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None
    assert second.choices[0].message.content == 'tools said: {"status": "shipped"}'
    assert second.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == {
        "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10
    }


def test_script_parallel_calls_then_fixed_text(fake, client):
    tok = token()
    fake.script(tok, [[call("a", {"x": 1}), call("b", {"y": [2]})], "final text"])
    first = client.chat.completions.create(model="m", messages=conversation(tok), tools=TOOLS)
    calls = first.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("a", {"x": 1}),
        ("b", {"y": [2]}),
    ]
    assert len({c.id for c in calls}) == 2
    results = [{"role": "tool", "tool_call_id": c.id, "content": f"r{i}"} for i, c in enumerate(calls)]
    second = client.chat.completions.create(
        model="m", messages=conversation(tok, assistant_turn(first.choices[0].message), *results), tools=TOOLS
    )
    assert second.choices[0].message.content == "final text"


def test_script_raw_malformed_arguments_are_sent_as_is(fake, client):
    tok = token()
    fake.script(tok, [call("lookup_order", "not json{")])
    answer = client.chat.completions.create(model="m", messages=conversation(tok), tools=TOOLS)
    assert answer.choices[0].message.tool_calls[0].function.arguments == "not json{"


def test_script_forever_keeps_calling_with_fresh_ids(fake, client):
    tok = token()
    fake.script(tok, forever=call("lookup_order", {"order_id": "1"}))
    turns, ids = [], []
    for _ in range(5):
        answer = client.chat.completions.create(model="m", messages=conversation(tok, *turns), tools=TOOLS)
        (tc,) = answer.choices[0].message.tool_calls
        ids.append(tc.id)
        turns += [assistant_turn(answer.choices[0].message),
                  {"role": "tool", "tool_call_id": tc.id, "content": "again"}]
    assert len(set(ids)) == 5


@pytest.mark.parametrize(
    "offer",
    [{}, {"tools": []}, {"tools": TOOLS, "tool_choice": "none"}],
    ids=["no-tools", "empty-tools", "tool-choice-none"],
)
def test_script_call_step_without_tools_answers_text(fake, client, offer):
    tok = token()
    fake.script(tok, forever=call("lookup_order", {"order_id": "1"}))
    turns = [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_x", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_x", "content": "r1"},
    ]
    answer = client.chat.completions.create(model="m", messages=conversation(tok, *turns), **offer)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.tool_calls is None
    assert answer.choices[0].message.content == "no tools offered; tools said: r1"


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], "tools said: "),
        ([None], "tools said: "),
        (["fixed"], "fixed"),
    ],
    ids=["no-steps", "none-step", "str-step"],
)
def test_script_text_steps(fake, client, steps, expected):
    tok = token()
    fake.script(tok, steps)
    answer = client.chat.completions.create(model="m", messages=conversation(tok), tools=TOOLS)
    assert answer.choices[0].message.content == expected


def test_default_answer_joins_only_results_after_the_last_assistant_message(fake, client):
    tok = token()
    fake.script(tok, [call("a"), call("b")])  # step index 2: past the end
    turns = [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "old"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "c3", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "first"},
        {"role": "tool", "tool_call_id": "c3", "content": "second"},
    ]
    answer = client.chat.completions.create(model="m", messages=conversation(tok, *turns), tools=TOOLS)
    assert answer.choices[0].message.content == "tools said: first | second"


def test_script_step_index_counts_assistant_messages_after_last_user_only(fake, client):
    tok = token()
    fake.script(tok, ["step one", "step two"])
    messages = [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": f"now {tok}"},
    ]
    answer = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    assert answer.choices[0].message.content == "step one"


def test_script_only_matches_the_last_user_message(fake, client):
    tok = token()
    fake.script(tok, ["scripted"])
    messages = [
        {"role": "user", "content": tok},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "something else"},
    ]
    answer = client.chat.completions.create(model="m", messages=messages)
    assert answer.choices[0].message.content == "echo: something else"


def test_script_tokens_per_step(fake, client):
    tok = token()
    fake.script(tok, [call("a"), "done"], tokens=[40, 2])
    first = client.chat.completions.create(model="m", messages=conversation(tok), tools=TOOLS)
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.total_tokens) == (37, 3, 40)
    turns = [assistant_turn(first.choices[0].message),
             {"role": "tool", "tool_call_id": first.choices[0].message.tool_calls[0].id, "content": "r"}]
    second = client.chat.completions.create(model="m", messages=conversation(tok, *turns), tools=TOOLS)
    assert (second.usage.prompt_tokens, second.usage.completion_tokens, second.usage.total_tokens) == (0, 2, 2)


def test_script_delay_slows_the_answer(fake, client):
    tok = token()
    fake.script(tok, ["slow"], delays=[0.5])
    started = time.monotonic()
    answer = client.chat.completions.create(model="m", messages=conversation(tok))
    assert answer.choices[0].message.content == "slow"
    assert time.monotonic() - started >= 0.5


def test_script_combines_with_status_directive(fake, client):
    tok = token()
    fake.script(tok, [call("a")])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"[[status:500]] {tok}"}], tools=TOOLS
        )


def test_sent_records_the_assistant_messages_answered(fake, client):
    tok = token()
    fake.script(tok, [call("a", {"k": "v"}), "bye"])
    first = client.chat.completions.create(model="m", messages=conversation(tok), tools=TOOLS)
    message = first.choices[0].message
    (sent,) = fake.sent(tok)
    assert sent == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": message.tool_calls[0].id, "type": "function",
                        "function": {"name": "a", "arguments": '{"k": "v"}'}}],
    }


def test_clear_removes_scripts():
    tok = token()
    with FakeOpenAI() as own, openai.OpenAI(base_url=own.url, api_key="x", max_retries=0) as c:
        own.script(tok, ["scripted"])
        own.clear()
        answer = c.chat.completions.create(model="m", messages=[{"role": "user", "content": tok}])
        assert answer.choices[0].message.content == "echo: " + tok


def test_script_rejects_bad_steps(fake):
    with pytest.raises(TypeError):
        fake.script(token(), [42])
    with pytest.raises(TypeError):
        fake.script(token(), forever="text")


# -- streamed ----------------------------------------------------------------


def stream_chunks(client, messages, **extra):
    return list(client.chat.completions.create(model="m", messages=messages, stream=True, **extra))


def test_stream_parallel_tool_calls_accumulate_by_index(fake, client):
    tok = token()
    fake.script(tok, [[call("a", {"order_id": "12345678"}), call("b", {"q": "x" * 30})]])
    chunks = stream_chunks(client, conversation(tok), tools=TOOLS)
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    final = state.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    calls = final.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("a", {"order_id": "12345678"}),
        ("b", {"q": "x" * 30}),
    ]
    deltas = [tc for ch in chunks if ch.choices for tc in (ch.choices[0].delta.tool_calls or [])]
    # id, type and name in the first delta of each call only; arguments over several chunks
    firsts = [d for d in deltas if d.id]
    assert [(d.index, d.type, d.function.name) for d in firsts] == [(0, "function", "a"), (1, "function", "b")]
    assert all(d.function.name is None for d in deltas if not d.id)
    assert sum(1 for d in deltas if d.index == 0 and d.function.arguments) >= 2


def test_stream_scripted_text_and_usage_chunk(fake, client):
    tok = token()
    fake.script(tok, ["the final answer"], tokens=12)
    chunks = stream_chunks(client, conversation(tok), stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "the final answer"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 12
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_stream_tool_step_without_tools_answers_text(fake, client):
    tok = token()
    fake.script(tok, [call("a")])
    chunks = stream_chunks(client, conversation(tok))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "no tools offered; tools said: "
    assert not any(c.choices[0].delta.tool_calls for c in chunks)


def test_stream_tool_calls_with_delay_directive_arrive_incrementally(fake):
    tok = token()
    fake.script(tok, [call("a", {"k": "v"})])
    body = {"model": "m", "stream": True, "tools": TOOLS,
            "messages": [{"role": "user", "content": f"[[delay:0.1]] {tok}"}]}
    req = urllib.request.Request(fake.url + "/chat/completions", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        events = read_events(resp)
        next(events)
        sent_when_first_read = fake.chunks_sent(tok)
        rest = list(events)
    assert rest[-1] == "[DONE]"
    assert sent_when_first_read < 1 + len(rest)
    assert rest[-2]["choices"][0]["finish_reason"] == "tool_calls"
