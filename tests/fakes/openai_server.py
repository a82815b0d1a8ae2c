"""A fake OpenAI-compatible HTTP server for tests (stdlib only).

Usage::

    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as fake:
        fake.url        # "http://127.0.0.1:PORT/v1" -> use as OPENAI_BASE_URL
        fake.requests   # snapshot list[Recorded] of every request received
        fake.find(tok)  # recorded requests whose body contains `tok`
        fake.clear()

Behaviour of ``POST /v1/chat/completions`` is chosen per request by
directives in the content of the LAST user message:

* (none)                        200, chat.completion, reply "echo: <content>"
* ``[[status:CODE]]``           that status with an OpenAI-style error body;
  ``[[status:429,retry-after:1]]`` also sends ``Retry-After: 1`` (any extra
  ``name:value`` item is sent as a response header)
* ``[[status-once:CODE]]``      only the first request with this exact content
  fails, later ones get the normal answer
* ``[[hang:SECONDS]]``          sleep, then answer (ends early on shutdown)
* ``[[malformed]]``             200 application/json with an invalid JSON body
* ``[[empty-usage]]``           normal answer without ``usage``
* ``[[delay:SECONDS]]``         sleep between SSE chunks when ``stream`` is true
* ``[[no-text]]``               a stream whose events carry no text (role, stop, [DONE])
* ``[[bad-chunk]]``             the body (JSON, or the stream after its first event)
  breaks off with an invalid chunk size line, then the connection closes
* ``[[close]]``                 the answer, whatever it is, says ``Connection: close``
  and the connection is closed after it
* ``[[http10]]``                the answer is an HTTP/1.0 one (no chunking: a stream
  ends when the connection closes), and the connection is closed after it

Scripted tool calls (Python API; the tests hold the fake object)::

    from tests.fakes.openai_server import FakeOpenAI, call

    fake.script("tok-abc", [call("lookup_order", {"order_id": "42"})])
    fake.script("tok-par", [[call("a", {"x": 1}), call("b", {})], "final text"])
    fake.script("tok-bad", [call("lookup_order", "not json{")])   # raw arguments text
    fake.script("tok-loop", forever=call("lookup_order", {"order_id": "1"}))
    fake.script("tok-slow", ["done"], delays=2.0)      # every step answers after 2 s
    fake.script("tok-cost", [call("a")], tokens=[40, 5])  # usage.total_tokens per step

A script applies to a request whose LAST user message contains the token (the
script registered last wins when several match). The step index is the number
of assistant messages after that user message in the request's ``messages``.

* a step that is a ``call(...)`` or a list of them: an assistant message with
  ``tool_calls`` (ids ``call_<n>``, unique over the fake's life, ``type:
  function``, ``function: {name, arguments}`` with ``arguments`` the JSON text
  of the given value, or the given str as is), ``content: null``,
  ``finish_reason: "tool_calls"`` -- but only when the request offers tools
  (a non-empty ``tools`` list, and ``tool_choice`` is not ``"none"``).
  Otherwise that step answers text: ``"no tools offered; "`` + the default
  answer (a real model cannot call a tool it is not offered).
* a str step: that text (``finish_reason: "stop"``).
* a ``None`` step, or a step past the end of the list (unless ``forever`` is
  given: then that step is the ``forever`` call(s)): the default answer,
  ``"tools said: "`` + the contents of the ``role: tool`` messages after the
  last assistant message, joined by ``" | "``.
* usage of a scripted answer: ``total_tokens`` = the step's ``tokens`` (default
  10), ``completion_tokens`` = min(3, total), ``prompt_tokens`` = the rest.
  ``[[empty-usage]]`` still drops it.
* ``delays``: seconds to wait before answering (a float for every step, or a
  list per step; missing entries are 0); ends early on shutdown.

Streamed (``stream: true``) scripted answers are SSE chunks as OpenAI sends
them: text as ``delta.content`` pieces; tool calls as ``delta.tool_calls``
items with ``index``, the first delta of each call carrying ``id``, ``type``,
``function.name`` and ``arguments: ""``, then ``arguments`` split over (up to)
three chunks; a final chunk with the ``finish_reason``; a usage chunk
(``choices: []``) when ``stream_options.include_usage``; ``data: [DONE]``.
Directives in the last user message apply to every step of a script
(``[[status:..]]``, ``[[status-once:..]]`` (the first step only), ``[[hang:..]]``,
``[[delay:..]]`` between chunks, ``[[close]]``, ``[[http10]]``, ``[[malformed]]``,
``[[bad-chunk]]``, ``[[no-text]]`` (drops text pieces, keeps tool calls),
``[[empty-usage]]``).

``fake.sent(token)`` lists the assistant messages the fake answered with (as
dicts, ``tool_calls`` included) to requests whose body contains ``token``, in
order, so a test can check they came back unchanged in the next request.
``clear()`` also removes every script.

Also runnable: ``python -m tests.fakes.openai_server --port 0`` prints the
base URL on one line and serves until killed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from tests.fakes.background import HOST, BackgroundServer, QuietServer, TrackedHandler

__all__ = ["FakeOpenAI", "Recorded", "ToolCall", "call"]


_DIRECTIVE_RE = re.compile(r"\[\[([^\[\]]+)\]\]")
_PIECE_RE = re.compile(r"\S+\s*|\s+")

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("conflict_error", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "overloaded"),
    504: ("server_error", None),
}


@dataclass(frozen=True)
class Recorded:
    """One request as received by the fake server."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case keys
    body: bytes
    json: Any  # parsed JSON object (dict) or None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class ToolCall:
    """One scripted tool call: ``arguments`` is the exact JSON text sent."""

    name: str
    arguments: str


def call(name: str, arguments: Any = None) -> ToolCall:
    """A scripted tool call. ``arguments``: a value sent as its JSON text
    (default ``{}``), or a str sent as is (e.g. malformed JSON)."""
    if isinstance(arguments, str):
        return ToolCall(name, arguments)
    return ToolCall(name, json.dumps({} if arguments is None else arguments))


Step: TypeAlias = "ToolCall | Sequence[ToolCall] | str | None"


@dataclass
class _Script:
    token: str
    steps: list[Any]
    forever: tuple[ToolCall, ...] | None
    delays: float | list[float]
    tokens: int | list[int]

    def step(self, index: int) -> tuple[ToolCall, ...] | str | None:
        if index < len(self.steps):
            return self.steps[index]
        return self.forever

    def delay(self, index: int) -> float:
        if isinstance(self.delays, list):
            return self.delays[index] if index < len(self.delays) else 0.0
        return self.delays

    def total_tokens(self, index: int) -> int:
        if isinstance(self.tokens, list):
            return self.tokens[index] if index < len(self.tokens) else 10
        return self.tokens


def _calls(step: Any) -> tuple[ToolCall, ...] | str | None:
    """Normalise one script step; raises TypeError on anything else."""
    if step is None or isinstance(step, str):
        return step
    if isinstance(step, ToolCall):
        return (step,)
    if isinstance(step, (list, tuple)) and step and all(isinstance(c, ToolCall) for c in step):
        return tuple(step)
    raise TypeError(f"a script step is call(...), a non-empty list of call(...), a str or None; got {step!r}")


@dataclass
class _Answer:
    """What one chat completion answers (before framing as JSON or SSE)."""

    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg


def _default_answer(messages: list[Any]) -> str:
    """``tools said: `` + the role:tool contents after the last assistant message."""
    last_assistant = -1
    for i, msg in enumerate(messages):
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            last_assistant = i
    results = [
        _content_text(msg.get("content"))
        for msg in messages[last_assistant + 1 :]
        if isinstance(msg, dict) and msg.get("role") == "tool"
    ]
    return "tools said: " + " | ".join(results)


def _pieces(text: str, count: int = 3) -> list[str]:
    """``text`` split into at most ``count`` non-empty pieces (none for "")."""
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    """Text of a message content (a string or a list of content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return str(content)


def _parse_directives(text: str) -> dict[str, dict[str, str]]:
    """``[[name:value,opt:val]]`` -> {name: {"value": value, opt: val}}."""
    found: dict[str, dict[str, str]] = {}
    for match in _DIRECTIVE_RE.finditer(text):
        items = [item.strip() for item in match.group(1).split(",")]
        name, _, value = items[0].partition(":")
        name = name.strip().lower()
        if not name or name in found:
            continue
        options = {"value": value.strip()}
        for item in items[1:]:
            key, _, val = item.partition(":")
            if key.strip():
                options[key.strip().lower()] = val.strip()
        found[name] = options
    return found


def _float(value: str | None, default: float = 0.0) -> float:
    try:
        return max(0.0, float(value)) if value not in (None, "") else default
    except ValueError:
        return default


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _error_body(status: int, message: str) -> dict[str, Any]:
    err_type, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {"message": message, "type": err_type, "param": None, "code": code}
    }


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


class _Server(QuietServer):
    request_queue_size = 256


class _Handler(TrackedHandler):
    server_version = "FakeOpenAI/1.0"

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.owner

    def _record(self) -> Recorded:
        body = self._read_body()
        parsed = None
        if body:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                parsed = None
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        rec = Recorded(self.command, self.path, headers, body, parsed)
        self.fake._append(rec)
        return rec

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self._connection_header()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _connection_header(self) -> None:
        # an HTTP/1.0 answer closes the connection without saying so, as HTTP/1.0 servers do
        if self.close_connection and self.protocol_version != "HTTP/1.0":
            self.send_header("Connection", "close")

    def _send_bad_chunk(self, body: bytes) -> None:
        """200 JSON, chunked, whose first chunk-size line is not hexadecimal (RFC 9112 §7.1)."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self._connection_header()
        self.end_headers()
        self.wfile.write(b"zz\r\n" + body + b"\r\n0\r\n\r\n")
        self.wfile.flush()

    def _send_json(
        self, status: int, obj: Any, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _send_error_json(self, status: int, message: str, headers=None) -> None:
        self._send_json(status, _error_body(status, message), headers)

    # -- routing -----------------------------------------------------------

    def _route(self) -> None:
        rec = self._record()
        path = self.path.split("?", 1)[0]
        if path.endswith("/") and len(path) > 1:
            path = path[:-1]
        if self.command == "POST" and path == "/v1/chat/completions":
            self._chat(rec)
        elif self.command in ("GET", "HEAD") and path == "/v1/models":
            self._send_json(
                200, {"object": "list", "data": [{"id": "fake", "object": "model"}]}
            )
        else:
            self._send_error_json(
                404, f"Unknown request URL: {self.command} {self.path}"
            )

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _route

    # -- chat completions --------------------------------------------------

    def _chat(self, rec: Recorded) -> None:
        req = rec.json
        if not isinstance(req, dict):
            self._send_error_json(
                400, "We could not parse the JSON body of your request."
            )
            return
        messages = req.get("messages")
        if not isinstance(messages, list):
            self._send_error_json(
                400, "'messages' is a required property and must be an array."
            )
            return

        last_user = ""
        last_user_index = -1
        prompt_words = 0
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                continue
            text = _content_text(msg.get("content"))
            prompt_words += len(text.split())
            if msg.get("role") == "user":
                last_user = text
                last_user_index = i
        model = req.get("model") if isinstance(req.get("model"), str) else "fake"
        directives = _parse_directives(last_user)
        if "close" in directives or "http10" in directives:
            self.close_connection = True
        if "http10" in directives:
            self.protocol_version = "HTTP/1.0"  # this handler serves one connection: it closes after this

        if "hang" in directives:
            self.fake._sleep(_float(directives["hang"]["value"]))
            if self.fake._stopping.is_set():
                self.close_connection = True
                return

        for name in ("status", "status-once"):
            if name not in directives:
                continue
            opts = directives[name]
            code = _int(opts["value"])
            if code is None or not 100 <= code <= 599:
                continue
            if name == "status-once" and not self.fake._first_time(last_user):
                continue
            extra = {k: v for k, v in opts.items() if k != "value"}
            headers = {
                "-".join(p.capitalize() for p in k.split("-")): v
                for k, v in extra.items()
            }
            self._send_error_json(
                code, f"Fake error {code} requested by directive.", headers
            )
            return

        answer = self.fake._scripted_answer(req, messages, last_user, last_user_index)
        if answer is None:
            reply = "echo: " + last_user
            completion_words = len(reply.split())
            answer = _Answer(
                reply,
                usage={
                    "prompt_tokens": max(1, prompt_words),
                    "completion_tokens": completion_words,
                    "total_tokens": max(1, prompt_words) + completion_words,
                },
            )
        elif self.fake._stopping.is_set():  # shut down during the script's delay
            self.close_connection = True
            return
        if "empty-usage" in directives:
            answer.usage = None
        usage = answer.usage
        completion_id = f"chatcmpl-fake-{next(self.fake._ids)}"

        if req.get("stream") is True:
            stream_options = req.get("stream_options")
            include_usage = isinstance(stream_options, dict) and bool(
                stream_options.get("include_usage")
            )
            self.fake._sent(rec, answer)
            self._stream(
                rec,
                completion_id,
                model,
                answer,
                usage if include_usage else None,
                include_usage,
                _float(directives.get("delay", {}).get("value")),
                "malformed" in directives,
                "no-text" in directives,
                "bad-chunk" in directives,
            )
            return

        if "malformed" in directives:
            self._send(
                200,
                b'{"id": "chatcmpl-fake", "object": "chat.completion", "choices": [{',
            )
            return

        self.fake._sent(rec, answer)
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": answer.message,
                    "finish_reason": answer.finish_reason,
                }
            ],
        }
        if usage is not None:
            body["usage"] = usage
        if "bad-chunk" in directives:
            self._send_bad_chunk(json.dumps(body).encode())
            return
        self._send_json(200, body)

    def _stream(
        self,
        rec: Recorded,
        completion_id: str,
        model: str,
        answer: _Answer,
        usage: dict[str, int] | None,
        include_usage: bool,
        delay: float,
        malformed: bool,
        no_text: bool,
        bad_chunk: bool,
    ) -> None:
        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            obj: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": choices,
            }
            if include_usage:
                obj["usage"] = None
            obj.update(extra)
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": d, "finish_reason": finish}])

        reply = answer.content or ""
        first = {"role": "assistant", "content": None if answer.tool_calls else ""}
        events = [delta(first)]
        if malformed:
            events.append(b'data: {"id": "chatcmpl-fake", "choices": [{\n\n')
        if not no_text:
            events += [delta({"content": piece}) for piece in _PIECE_RE.findall(reply)]
        for index, tool_call in enumerate(answer.tool_calls):
            function = tool_call["function"]
            head = {
                "index": index,
                "id": tool_call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": ""},
            }
            events.append(delta({"tool_calls": [head]}))
            for piece in _pieces(function["arguments"]):
                events.append(
                    delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        events.append(delta({}, answer.finish_reason))
        if usage is not None:
            events.append(chunk([], usage=usage))
        events.append(b"data: [DONE]\n\n")

        chunked = "HTTP/1.0" not in (self.request_version, self.protocol_version)
        if not chunked or bad_chunk:
            self.close_connection = True  # the end of the body is the end of the connection
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self._connection_header()
        self.end_headers()
        self.wfile.flush()

        counter = self.fake._new_stream(rec)
        for i, event in enumerate(events):
            if i and delay:
                self.fake._sleep(delay)
                if self.fake._stopping.is_set():
                    self.close_connection = True
                    return
            counter.increment()
            if bad_chunk and i == 1 and chunked:
                self.wfile.write(b"zz\r\n" + event)
                self.wfile.flush()
                return
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            else:
                self.wfile.write(event)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def increment(self) -> None:
        with self._lock:
            self.value += 1


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


class FakeOpenAI(BackgroundServer):
    """Fake OpenAI Chat Completions server on 127.0.0.1 (free port by default)."""

    server_class = _Server
    handler = _Handler

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._requests: list[Recorded] = []
        self._seen_once: set[str] = set()
        self._streams: list[tuple[Recorded, _Counter]] = []
        self._ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._scripts: list[_Script] = []
        self._answers: list[tuple[Recorded, dict[str, Any]]] = []

    # -- accessors ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def requests(self) -> list[Recorded]:
        """Snapshot (a copy) of all recorded requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    def find(self, text: str) -> list[Recorded]:
        """Recorded requests whose body contains ``text``."""
        needle = text.encode("utf-8")
        with self._lock:
            return [r for r in self._requests if needle in r.body]

    def clear(self) -> None:
        """Forget recorded requests, stream progress, status-once state and scripts."""
        with self._lock:
            self._requests.clear()
            self._streams.clear()
            self._seen_once.clear()
            self._scripts.clear()
            self._answers.clear()

    def script(
        self,
        token: str,
        steps: Sequence[Step] = (),
        *,
        forever: ToolCall | Sequence[ToolCall] | None = None,
        delays: float | Sequence[float] = 0.0,
        tokens: int | Sequence[int] = 10,
    ) -> None:
        """Script the answers to requests whose last user message contains
        ``token`` (see the module docstring)."""
        if not token:
            raise ValueError("a script needs a non-empty token")
        normalised = [_calls(step) for step in steps]
        loop = _calls(forever) if forever is not None else None
        if isinstance(loop, str):
            raise TypeError("forever is call(...) or a list of call(...)")
        delay_value = [float(d) for d in delays] if isinstance(delays, Sequence) else float(delays)
        token_value = [int(t) for t in tokens] if isinstance(tokens, Sequence) else int(tokens)
        with self._lock:
            self._scripts.append(_Script(token, normalised, loop, delay_value, token_value))

    def sent(self, text: str) -> list[dict[str, Any]]:
        """The assistant messages answered to requests whose body contains ``text``."""
        needle = text.encode("utf-8")
        with self._lock:
            return [json.loads(json.dumps(m)) for r, m in self._answers if needle in r.body]

    def chunks_sent(self, text: str) -> int:
        """Number of SSE events already written (or being written) for streamed
        requests whose body contains ``text`` (extra helper for stream tests)."""
        needle = text.encode("utf-8")
        with self._lock:
            counters = [c for r, c in self._streams if needle in r.body]
        return sum(c.value for c in counters)

    # -- internals used by the handler ---------------------------------------

    def _append(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)

    def _first_time(self, key: str) -> bool:
        with self._lock:
            if key in self._seen_once:
                return False
            self._seen_once.add(key)
            return True

    def _sent(self, rec: Recorded, answer: _Answer) -> None:
        with self._lock:
            self._answers.append((rec, answer.message))

    def _scripted_answer(
        self, req: dict[str, Any], messages: list[Any], last_user: str, last_user_index: int
    ) -> _Answer | None:
        """The scripted answer for this request, or None when no script matches."""
        with self._lock:
            script = next((s for s in reversed(self._scripts) if s.token in last_user), None)
        if script is None or last_user_index < 0:
            return None
        index = sum(
            1
            for msg in messages[last_user_index + 1 :]
            if isinstance(msg, dict) and msg.get("role") == "assistant"
        )
        self._sleep(script.delay(index))
        total = max(0, script.total_tokens(index))
        completion = min(3, total)
        usage = {
            "prompt_tokens": total - completion,
            "completion_tokens": completion,
            "total_tokens": total,
        }
        step = script.step(index)
        if isinstance(step, str):
            return _Answer(step, usage=usage)
        if step is None:
            return _Answer(_default_answer(messages), usage=usage)
        offered = isinstance(req.get("tools"), list) and bool(req["tools"])
        if not offered or req.get("tool_choice") == "none":
            return _Answer("no tools offered; " + _default_answer(messages), usage=usage)
        tool_calls = []
        for tool_call in step:
            with self._lock:
                call_id = f"call_{next(self._call_ids)}"
            tool_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": tool_call.name, "arguments": tool_call.arguments},
                }
            )
        return _Answer(None, tool_calls, usage)

    def _new_stream(self, rec: Recorded) -> _Counter:
        counter = _Counter()
        with self._lock:
            self._streams.append((rec, counter))
        return counter

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fake OpenAI-compatible server (127.0.0.1 only)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to bind (0 = free port)"
    )
    args = parser.parse_args(argv)
    fake = FakeOpenAI(port=args.port).start()
    print(fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
