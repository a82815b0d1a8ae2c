"""Agent runtime shared by every generated Python app: config, model client, HTTP contract.

Standard library only: importing `openai` costs most of a cold start, and this runtime
needs one POST. Platform adapters (lambda_function.py, main.py, function_app.py) only
translate their platform's request and response shapes to `Agent.handle`.
"""

from __future__ import annotations

import hmac
import http.client
import itertools
import json
import os
import random
import sys
import threading
import time
import urllib.parse

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ALLOWED = "POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type, Authorization, x-api-key"
# The OpenAI-compatible endpoint under the agent's path (issue 12; shapes: docs/research/session-stores.md 5)
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
_NO_RETRY = {"x-should-retry": "false"}  # obeyed by both official clients: our errors are final
_RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
_JSON = {"Content-Type": "application/json"}
CUT_OFF = "the model endpoint's answer was cut off or invalid"
NO_STREAM = "this platform does not stream responses; send the request without \"stream\": true"
_SESSION_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
BAD_SESSION = "the field 'session_id' must be 1 to 128 letters, digits, '_' or '-'"
NO_SESSIONS = "this agent keeps no sessions: send the request without 'session_id'"
SAVE_TRIES = 3  # saves of one turn (each after a fresh load) before a 409
# the shortest warm-up secret honoured (Vercel's advice for CRON_SECRET: at least 16 characters)
WARM_SECRET_MIN = 16


class Reply:
    """A platform-neutral HTTP answer; `body` is bytes, or an iterator of bytes when streamed."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body


class ModelError(Exception):
    """The model endpoint could not give an answer; carries the HTTP status we answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _json_reply(status: int, payload: dict, headers: dict | None = None) -> Reply:
    # "replace": a lone surrogate from the model must not turn an answer into a crash
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")
    return Reply(status, {**_JSON, **(headers or {})}, body)


def error(status: int, message: str, headers: dict | None = None) -> Reply:
    return _json_reply(status, {"error": message}, headers)


class _Client:
    """Retries and deadline, shared by both clients; `_post_once` is the transport."""

    _retries = 2

    def complete(self, payload: dict, deadline: float) -> dict:
        """One answer within the deadline."""
        data = self._attempts(lambda timeout: self._post_once(payload, timeout), deadline)
        try:
            return json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise ModelError(502, "the model endpoint sent a malformed answer") from None

    def stream(self, payload: dict, deadline: float):
        """The answer's text pieces (str) as the model writes them, then ("done", tool_calls, usage).
        A failure raises ModelError, before the first piece or later: the caller knows whether it
        has sent its status already."""
        payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        return self._attempts(lambda timeout: self._open_stream(payload, timeout, deadline), deadline)

    def _attempts(self, send, deadline: float):
        """Call send(timeout) until a 2xx: 429/5xx and network errors are retried with backoff
        (Retry-After honoured) while time remains; anything else fails at once."""
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModelError(504, "timeout")
            try:
                status, headers, result = send(remaining)
            except TimeoutError:
                raise ModelError(504, "timeout") from None
            if 200 <= status < 300:
                return result
            if status and status not in _RETRY_STATUSES and status < 500:
                raise ModelError(502, f"the model endpoint answered HTTP {status}")
            failure = f"the model endpoint answered HTTP {status}" if status else "could not reach the model endpoint"
            retry_after = _retry_after(headers.get("retry-after"))
            pause = retry_after if retry_after is not None else 0.5 * (2 ** attempt) * (0.5 + random.random() / 2)
            # no retry left, or none that could finish in time: report the last failure now
            if attempt >= self._retries or time.monotonic() + pause >= deadline:
                raise ModelError(502, failure)
            time.sleep(pause)
            attempt += 1


class ChatClient(_Client):
    """Minimal Chat Completions client: keep-alive per thread, deadline, bounded retries."""

    def __init__(self, base_url: str, api_key: str, retries: int):
        url = urllib.parse.urlsplit(base_url.rstrip("/"))
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._path = (url.path or "") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "serverless-agent-runtime/1",
        }
        self._retries = retries
        self._local = threading.local()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _post_once(self, payload: dict, timeout: float) -> tuple[int, dict, bytes]:
        """(status, lower-case headers, body); status 0 when the endpoint cannot be reached."""
        body = json.dumps(payload).encode("ascii")  # \u escapes: valid JSON for any text
        try:
            return self._send(body, timeout)
        except TimeoutError:
            raise
        except (OSError, http.client.HTTPException):
            return 0, {}, b""

    def _send(self, body: bytes, timeout: float) -> tuple[int, dict, bytes]:
        deadline = time.monotonic() + timeout
        # A kept-alive connection may have been closed by the server while we were idle:
        # that first failure is not the model's fault, so reconnect once without counting a retry.
        for fresh in (False, True):
            reused = getattr(self._local, "conn", None) is not None and not fresh
            conn = self._connection(timeout)
            try:
                conn.request("POST", self._path, body=body, headers=self._headers)
                # getresponse() lets go of the socket (conn.sock = None) when the answer will close
                # the connection (Connection: close, HTTP/1.0); its reads still need the deadline
                sock = conn.sock
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop()
                if not reused:
                    raise
                continue
            except BaseException:
                self._drop()
                raise
            try:
                data = _read_within(sock, response, deadline)
            except TimeoutError:
                self._drop()
                raise
            except (OSError, http.client.HTTPException):  # the body broke off, or its chunks are malformed
                self._drop()
                raise ModelError(502, CUT_OFF) from None
            finally:
                response.close()
            if response.will_close:
                self._drop()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise ConnectionError("unreachable")  # pragma: no cover

    def _open_stream(self, payload: dict, timeout: float, deadline: float):
        """(status, headers, text pieces) of a streamed completion, on a connection of its own."""
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=timeout)
        body = json.dumps(payload).encode("ascii")
        try:
            conn.request("POST", self._path, body=body, headers={**self._headers, "Accept": "text/event-stream"})
            sock = conn.sock  # kept: getresponse() drops it when the answer will close the connection
            response = conn.getresponse()
        except TimeoutError:
            conn.close()
            raise
        except (OSError, http.client.HTTPException):
            conn.close()
            return 0, {}, None
        headers = {k.lower(): v for k, v in response.getheaders()}
        if not 200 <= response.status < 300:
            response.close()
            conn.close()
            return response.status, headers, None
        return response.status, headers, _sse_pieces(conn, sock, response, deadline)


def _reads(sock, response: http.client.HTTPResponse, deadline: float):
    """The body as it arrives, by the deadline: a socket timeout bounds each read, not a body that
    trickles in. read1, unlike readline, raises IncompleteRead for a body that breaks off or has a
    malformed chunk, instead of ending as if the body were complete."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        data = response.read1(65536)
        if not data:
            return
        yield data
        if response.length == 0:
            return


def _read_within(sock, response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The whole body by the deadline."""
    data = b"".join(_reads(sock, response, deadline))
    response.read()  # marks the response finished, so the kept-alive connection can be reused
    return data


def _lines(sock, response: http.client.HTTPResponse, deadline: float):
    """The body's lines as they arrive."""
    pending = b""
    for data in _reads(sock, response, deadline):
        *lines, pending = (pending + data).split(b"\n")
        yield from lines
    if pending:
        yield pending


def _sse_pieces(conn: http.client.HTTPConnection, sock, response: http.client.HTTPResponse, deadline: float):
    """An OpenAI-style server-sent event stream, until [DONE] or the deadline: text deltas (str), then
    one ("done", tool_calls, usage) tuple, tool_calls put together by index. Before the first piece a
    failure raises ModelError (the caller can still answer with a JSON error)."""
    started = False
    calls = _CallParts()
    usage = None
    try:
        for line in _lines(sock, response, deadline):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            try:
                event = json.loads(data)
            except (ValueError, RecursionError):
                continue
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            try:
                delta = event["choices"][0]["delta"]
                piece = delta.get("content")
            except (KeyError, IndexError, TypeError, AttributeError):
                continue  # a malformed or usage-only event carries no text
            if calls.add(delta.get("tool_calls")):
                started = True
            if isinstance(piece, str) and piece:
                started = True
                yield piece
    except TimeoutError:  # after the first piece too: the caller knows whether its status is sent
        raise ModelError(504, "timeout") from None
    except (OSError, http.client.HTTPException):
        raise ModelError(502, CUT_OFF) from None
    finally:
        response.close()
        conn.close()
    if not started:
        raise ModelError(502, "the model endpoint ended the stream without an answer")
    yield ("done", calls.list(), usage)


class _CallParts:
    """Streamed tool_calls deltas put together by index: id and name from the first, arguments joined."""

    __slots__ = ("calls",)

    def __init__(self):
        self.calls = {}

    def add(self, deltas) -> bool:
        if not isinstance(deltas, list):
            return False
        for delta in deltas:
            if not isinstance(delta, dict):
                continue
            index = delta.get("index", len(self.calls))
            function = delta.get("function") if isinstance(delta.get("function"), dict) else {}
            call = self.calls.setdefault(index, {"id": "", "type": "function",
                                                 "function": {"name": "", "arguments": ""}})
            if delta.get("id"):
                call["id"] = delta["id"]
            if function.get("name"):
                call["function"]["name"] = function["name"]
            if isinstance(function.get("arguments"), str):
                call["function"]["arguments"] += function["arguments"]
        return bool(deltas)

    def list(self) -> list:
        return [self.calls[i] for i in sorted(self.calls)]


class SdkClient(_Client):
    """The same contract through the official `openai` package (agent.yaml `client: openai`).

    Imported at cold start only when chosen: it costs most of a cold start. Its own retries are
    off so that ours (bounded by the function's deadline) apply to both clients alike.
    """

    def __init__(self, base_url: str, api_key: str, retries: int):
        import openai

        self._errors = openai
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0)
        self._retries = retries

    def _post_once(self, payload: dict, timeout: float) -> tuple[int, dict, bytes]:
        errors = self._errors
        try:
            # streaming_response: the body is read apart, so that a body that breaks off is told
            # from an endpoint that cannot be reached (the SDK reports both as a connection error)
            with self._client.chat.completions.with_streaming_response.create(**payload, timeout=timeout) as raw:
                return raw.status_code, {}, _read_body(raw)
        except errors.APITimeoutError:
            raise TimeoutError from None
        except errors.APIStatusError as exc:
            return exc.status_code, {k.lower(): v for k, v in exc.response.headers.items()}, b""
        except errors.APIConnectionError:
            return 0, {}, b""

    def _open_stream(self, payload: dict, timeout: float, deadline: float):
        errors = self._errors
        try:
            chunks = self._client.chat.completions.create(**payload, timeout=timeout)
        except errors.APITimeoutError:
            raise TimeoutError from None
        except errors.APIStatusError as exc:
            return exc.status_code, {k.lower(): v for k, v in exc.response.headers.items()}, None
        except errors.APIConnectionError:
            return 0, {}, None

        def pieces():
            started = False
            calls = _CallParts()
            usage = None
            try:
                for chunk in chunks:
                    if time.monotonic() >= deadline:
                        raise ModelError(504, "timeout")
                    if getattr(chunk, "usage", None) is not None:
                        usage = chunk.usage.model_dump()
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta.tool_calls and calls.add([d.model_dump() for d in delta.tool_calls]):
                        started = True
                    if delta.content:
                        started = True
                        yield delta.content
            except errors.APITimeoutError:
                raise ModelError(504, "timeout") from None
            except (errors.APIError, ValueError):  # the stream broke off, or an event is malformed
                raise ModelError(502, CUT_OFF) from None
            finally:
                chunks.close()
            if not started:
                raise ModelError(502, "the model endpoint ended the stream without an answer")
            yield ("done", calls.list(), usage)

        return 200, {}, pieces()


def _read_body(raw) -> bytes:
    """The body of an SDK response; its transport's errors (httpx's, not wrapped by the SDK) mapped
    to ours: a read timeout is a timeout, a body that breaks off or is badly framed a bad answer."""
    try:
        return raw.read()
    except Exception as exc:
        transport = sys.modules[type(raw.http_response).__module__.partition(".")[0]]
        if isinstance(exc, transport.TimeoutException):
            raise TimeoutError from None
        if isinstance(exc, transport.HTTPError):
            raise ModelError(502, CUT_OFF) from None
        raise


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _allowed_origin(origins: list, origin: str | None) -> str | None:
    if not origins or not origin and "*" not in origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


# ---------------------------------------------------------------------------------------------
# Tools (docs/agent-loop.md): HTTP tools, MCP servers, argument checks, results for the model
# ---------------------------------------------------------------------------------------------

RESULT_LIMIT = 16384  # bytes (UTF-8) of a tool result the model reads
CUT_MARK = f"\n[cut: the tool's answer was longer than {RESULT_LIMIT} bytes]"
_READ_LIMIT = 1 << 20  # bytes read of a tool's body at most: the rest is cut anyway
MCP_VERSION = "2025-06-18"
_TOOL_ACCEPT = "application/json, text/plain;q=0.9, */*;q=0.5"
_AGENT = "serverless-agent-runtime/1"
_PLACEHOLDER = "{"


class ToolFailure(Exception):
    """A tool call that ends in an error result: `outcome` for the usage record, the message for the model."""

    def __init__(self, outcome: str, message: str):
        super().__init__(message)
        self.outcome = outcome


class _Secrets:
    """The secret values the function holds (the API key, every ${NAME} of a tool header), to be
    replaced by [secret] in any text that came from outside before it goes anywhere."""

    def __init__(self):
        self.values: list[str] = []

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4 and value not in self.values:  # shorter: would blank ordinary text
            self.values.append(value)
            self.values.sort(key=len, reverse=True)  # a secret holding another is replaced whole

    def scrub(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, "[secret]")
        return text


def _expand(headers: dict, env, secrets: _Secrets) -> tuple[dict, list]:
    """Headers with ${NAME} replaced from the environment; a header whose variable is unset is left
    out, its variable named in the second list."""
    out, missing = {}, []
    for name, value in (headers or {}).items():
        value, absent = str(value), []
        while "${" in value:
            start = value.index("${")
            end = value.find("}", start)
            if end < 0:
                break
            var = value[start + 2:end]
            found = (env.get(var) or "").strip()
            if not found:
                absent.append(var)
            secrets.add(found)
            value = value[:start] + found + value[end + 1:]
        if absent:
            missing.extend(absent)
        elif value.isascii() and value.isprintable():
            out[name] = value
        else:
            missing.append(name)
    return out, missing


def _cut(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= RESULT_LIMIT:
        return text
    return data[:RESULT_LIMIT].decode("utf-8", "ignore") + CUT_MARK


_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
          "object": (dict,), "array": (list,), "null": (type(None),)}


def _is(value, kind: str) -> bool:
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES.get(kind, object))


def _article(kind: str) -> str:
    return kind if kind == "null" else ("an " if kind[:1] in "aeiou" else "a ") + kind


def _mismatch(schema, value, where: str) -> str | None:
    """Why value does not match schema (the lean subset of docs/agent-loop.md), or None."""
    if not isinstance(schema, dict):
        return None
    name = where or "the arguments"
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is(value, k) for k in kinds):
            return f"{name} must be {' or '.join(_article(k) for k in kinds)}"
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        return f"{name} must be one of {', '.join(json.dumps(option) for option in schema['enum'])}"
    if "const" in schema and value != schema["const"]:
        return f"{name} must be {json.dumps(schema['const'])}"
    if isinstance(value, str):
        if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
            return f"{name} must be at least {schema['minLength']} characters long"
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            return f"{name} must be at most {schema['maxLength']} characters long"
        if isinstance(schema.get("pattern"), str):
            import re  # only for a tool with a pattern: an import is cold-start time

            try:
                if not re.search(schema["pattern"], value):
                    return f"{name} must match {schema['pattern']}"
            except re.error:
                pass  # a pattern Python cannot read is not held against the model
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, fails, words in (("minimum", value.__lt__, ">="), ("maximum", value.__gt__, "<="),
                                  ("exclusiveMinimum", value.__le__, ">"), ("exclusiveMaximum", value.__ge__, "<")):
            bound = schema.get(key)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool) and fails(bound):
                return f"{name} must be {words} {bound:g}" if isinstance(bound, float) else \
                    f"{name} must be {words} {bound}"
    if isinstance(value, dict):
        prefix = f"{where}." if where else ""
        for key in schema.get("required") or []:
            if key not in value:
                return f"{prefix}{key} is required"
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        for key, item in value.items():
            if key in properties:
                why = _mismatch(properties[key], item, prefix + key)
                if why:
                    return why
            elif schema.get("additionalProperties") is False:
                return f"{prefix}{key} is not a parameter of this tool"
            elif isinstance(schema.get("additionalProperties"), dict):
                why = _mismatch(schema["additionalProperties"], item, prefix + key)
                if why:
                    return why
    if isinstance(value, list):
        if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
            return f"{name} must have at least {schema['minItems']} items"
        if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
            return f"{name} must have at most {schema['maxItems']} items"
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                why = _mismatch(schema["items"], item, f"{name}[{index}]")
                if why:
                    return why
    return None


def _text(value) -> str:
    """An argument as text in a URL: strings as they are, everything else as JSON writes it."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class _Origin:
    """A tool's fixed scheme, host and port, and a connection to them."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.path = parts.path or "/"
        self.query = parts.query
        self.label = f"{self.scheme}://{parts.netloc.rpartition('@')[2]}{self.path}"  # for logs: no query

    def same(self, url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        return (parts.scheme.lower(), parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)) \
            == (self.scheme, self.host, self.port)

    def send(self, method: str, target: str, headers: dict, body: bytes | None, timeout: float):
        """(status, lower-case headers, body bytes up to _READ_LIMIT). Raises ToolFailure for a
        timeout or a server that cannot be reached. No redirect is followed: http.client never does."""
        deadline = time.monotonic() + timeout
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            sock = conn.sock
            response = conn.getresponse()
            data, size = [], 0
            for piece in _reads(sock, response, deadline):
                data.append(piece)
                size += len(piece)
                if size > _READ_LIMIT:
                    break
            return response.status, {k.lower(): v for k, v in response.getheaders()}, b"".join(data)
        except TimeoutError:
            raise ToolFailure("timeout", f"error: the tool did not answer within {_seconds(timeout)} s") from None
        except (OSError, http.client.HTTPException):
            raise ToolFailure("unreachable", "error: could not reach the tool") from None
        finally:
            conn.close()


DOT_SEGMENT = 'the arguments do not fit the tool\'s address: {name} may not be "." or ".."'


def _seconds(value: float) -> str:
    """Seconds as a short number: 10, 2.5 (one decimal at most), as the JS runtime writes them."""
    return f"{int(value * 10 + 0.5) / 10:g}"


def _status_failure(status: int, body: bytes, secrets: _Secrets) -> ToolFailure:
    text = secrets.scrub(body.decode("utf-8", "replace"))[:300].strip()
    return ToolFailure("error", f"error: the tool answered HTTP {status}" + (f": {text}" if text else ""))


class HttpTool:
    """One tool of agent.yaml `tools` with an `http` block."""

    def __init__(self, spec: dict, env, secrets: _Secrets):
        http_spec = spec["http"]
        self.name = spec["name"]
        self.parameters = spec.get("parameters") or {"type": "object", "properties": {}}
        self.offer = {"type": "function", "function": {"name": self.name, "description": spec.get("description", ""),
                                                       "parameters": self.parameters}}
        self.method = str(http_spec.get("method", "GET")).upper()
        self.timeout = float(http_spec.get("timeout", 10))
        self.origin = _Origin(http_spec["url"])
        self.headers, self.missing = _expand(http_spec.get("headers"), env, secrets)
        self.headers = {"Accept": _TOOL_ACCEPT, "User-Agent": _AGENT, **self.headers}
        self.secrets = secrets

    def target(self, arguments: dict) -> str:
        """Path and query, every {x} replaced by its argument percent-encoded with nothing left
        unescaped; for GET and DELETE the other arguments in the query string."""
        used = set()

        def fill(template: str) -> str:
            out, rest = [], template
            while "{" in rest:
                head, _, tail = rest.partition("{")
                key, close, after = tail.partition("}")
                if not close:
                    break
                out.append(head)
                used.add(key)
                value = _text(arguments.get(key, ""))
                if value in (".", ".."):  # a dot segment: servers and URL parsers resolve it to the parent
                    raise ToolFailure("error", f"error: {DOT_SEGMENT.format(name=key)}")
                out.append(urllib.parse.quote(value, safe=""))
                rest = after
            out.append(rest)
            return "".join(out)

        path, query = fill(self.origin.path), fill(self.origin.query)
        if self.method in ("GET", "DELETE"):
            extra = urllib.parse.urlencode([(k, _text(v)) for k, v in arguments.items() if k not in used])
            query = f"{query}&{extra}" if query and extra else query or extra
        return path + (f"?{query}" if query else "")

    def run(self, arguments: dict, timeout: float) -> str:
        target = self.target(arguments)
        origin = self.origin
        if not target.startswith("/") or not origin.same(f"{origin.scheme}://{origin.host}:{origin.port}{target}"):
            raise ToolFailure("error", "error: the tool's address could not be built from these arguments")
        body, headers = None, self.headers
        if self.method in ("POST", "PUT", "PATCH"):
            body = json.dumps(arguments).encode("ascii")
            headers = {**headers, "Content-Type": "application/json"}
        status, _, data = origin.send(self.method, target, headers, body, timeout)
        if self.missing:
            raise ToolFailure("error", f"error: {self.missing[0]} is not set in the function's environment")
        if not 200 <= status < 300:
            raise _status_failure(status, data, self.secrets)
        return self.secrets.scrub(data.decode("utf-8", "replace"))


class McpTool:
    """One tool an MCP server lists, offered under the server's name for it."""

    def __init__(self, server: McpServer, tool: dict):
        self.server, self.name = server, tool["name"]
        schema = tool.get("inputSchema") if isinstance(tool.get("inputSchema"), dict) else {}
        self.parameters = {"type": "object", "properties": {}, **schema}
        self.offer = {"type": "function", "function": {"name": self.name, "description": tool.get("description") or "",
                                                       "parameters": self.parameters}}
        self.timeout = server.timeout

    def run(self, arguments: dict, timeout: float) -> str:
        return self.server.call(self.name, arguments, timeout)


class _SessionGone(Exception):
    pass


class McpServer:
    """Client side of the MCP Streamable HTTP transport for one server: initialize and tools/list once
    per instance (cached, one thread at a time), tools/call per call."""

    def __init__(self, spec: dict, env, secrets: _Secrets):
        self.origin = _Origin(spec["url"])
        self.target = self.origin.path + (f"?{self.origin.query}" if self.origin.query else "")
        self.timeout = float(spec.get("timeout", 10))
        self.allow = spec.get("tools")
        self.headers, self.missing = _expand(spec.get("headers"), env, secrets)
        self.secrets = secrets
        self.session = None
        self.version = None
        self.tools = None  # the server's tool list (dicts), once known
        self._lock = threading.Lock()
        self._ids = itertools.count(1)  # next() on it is atomic: calls run in threads

    def _post(self, message: dict, timeout: float):
        """The JSON-RPC answer to message (None for a notification). Raises ToolFailure, _SessionGone."""
        headers = {**self.headers, "Accept": "application/json, text/event-stream",
                   "Content-Type": "application/json", "User-Agent": _AGENT}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
        if self.version:
            headers["MCP-Protocol-Version"] = self.version
        deadline = time.monotonic() + timeout
        origin = self.origin
        cls = http.client.HTTPSConnection if origin.scheme == "https" else http.client.HTTPConnection
        conn = cls(origin.host, origin.port, timeout=timeout)
        try:
            conn.request("POST", self.target, body=json.dumps(message).encode("ascii"), headers=headers)
            sock = conn.sock
            response = conn.getresponse()
            if response.status == 404 and self.session:
                raise _SessionGone
            if "id" not in message:
                response.read()
                if not 200 <= response.status < 300:
                    raise _status_failure(response.status, b"", self.secrets)
                return None
            if not 200 <= response.status < 300:
                raise _status_failure(response.status, _read_within(sock, response, deadline)[:2000], self.secrets)
            if message.get("method") == "initialize":
                self.session = response.getheader("mcp-session-id") or None
            kind = (response.getheader("content-type") or "").lower()
            if "text/event-stream" in kind:
                return self._from_events(sock, response, deadline, message["id"])
            return self._answer(json.loads(_read_within(sock, response, deadline)), message["id"])
        except TimeoutError:
            raise ToolFailure("timeout", f"error: the tool did not answer within {_seconds(timeout)} s") from None
        except (OSError, http.client.HTTPException):
            raise ToolFailure("unreachable", "error: could not reach the tool") from None
        except (ValueError, RecursionError):
            raise ToolFailure("error", "error: the MCP server sent a malformed answer") from None
        finally:
            conn.close()

    def _from_events(self, sock, response, deadline: float, wanted):
        data = []
        for line in _lines(sock, response, deadline):
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                data.append(line[5:].strip())
            elif not line and data:
                answer = self._answer(json.loads(b"\n".join(data)), wanted, quiet=True)
                data = []
                if answer is not None:
                    return answer
        if data:
            answer = self._answer(json.loads(b"\n".join(data)), wanted, quiet=True)
            if answer is not None:
                return answer
        raise ToolFailure("error", "error: the MCP server ended its answer without a result")

    def _answer(self, message, wanted, quiet: bool = False):
        """The result of the JSON-RPC response with id `wanted`; None for another message (SSE only)."""
        if isinstance(message, list):
            message = next((m for m in message if isinstance(m, dict) and m.get("id") == wanted), None)
        if not isinstance(message, dict) or message.get("id") != wanted:
            if quiet:
                return None
            raise ValueError
        if isinstance(message.get("error"), dict):
            text = self.secrets.scrub(str(message["error"].get("message", "")))[:300]
            raise ToolFailure("error", f"error: {text}")
        result = message.get("result")
        if not isinstance(result, dict):
            raise ValueError
        return result

    def _request(self, method: str, params: dict, timeout: float):
        return self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}, timeout)

    def _initialize(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.session = self.version = None
        result = self._request("initialize", {
            "protocolVersion": MCP_VERSION, "capabilities": {},
            "clientInfo": {"name": "serverless-agent-runtime", "version": "1"}}, timeout)
        self.version = str(result.get("protocolVersion") or MCP_VERSION)
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"}, max(0.1, deadline - time.monotonic()))

    def ensure(self, timeout: float) -> list:
        """The server's tools (cached); the first call initialises, within timeout. Raises ToolFailure."""
        if self.tools is not None:
            return self.tools
        with self._lock:
            if self.tools is not None:
                return self.tools
            deadline = time.monotonic() + timeout
            self._initialize(timeout)
            tools, cursor = [], None
            while True:
                result = self._request("tools/list", {"cursor": cursor} if cursor else {},
                                       max(0.1, deadline - time.monotonic()))
                tools += [t for t in result.get("tools") or []
                          if isinstance(t, dict) and isinstance(t.get("name"), str)]
                cursor = result.get("nextCursor")
                if not cursor or time.monotonic() >= deadline:
                    break
            if self.allow is not None:
                tools = [t for t in tools if t["name"] in self.allow]
            self.tools = tools
            return tools

    def call(self, name: str, arguments: dict, timeout: float) -> str:
        params = {"name": name, "arguments": arguments}
        try:
            result = self._request("tools/call", params, timeout)
        except _SessionGone:
            with self._lock:
                self._initialize(timeout)
            try:
                result = self._request("tools/call", params, timeout)
            except _SessionGone:
                raise ToolFailure("error", "error: the MCP server lost the session") from None
        if self.missing:
            raise ToolFailure("error", f"error: {self.missing[0]} is not set in the function's environment")
        parts = []
        for item in result.get("content") or []:
            if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
                parts.append(item["text"])
            else:
                parts.append(json.dumps(item, ensure_ascii=False))
        text = self.secrets.scrub("\n".join(parts))
        if result.get("isError"):
            raise ToolFailure("error", f"error: {text}")
        return text


def _parse_arguments(raw):
    """The arguments of a tool call as an object, or None."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else ({} if not raw else None)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class _Record:
    """What one POST did, for its usage line (docs/agent-loop.md, Usage records)."""

    __slots__ = ("request_id", "start", "status", "steps", "stopped", "input_tokens", "output_tokens", "tokens",
                 "tools", "ttft", "error", "response", "message", "calls", "post", "endpoint", "key_id",
                 "messages", "session", "trips", "store_ms", "day")

    def __init__(self, request_id: str | None):
        if not request_id:  # a random UUID 4 as hex; the uuid module would cost ~10 ms of imports
            raw = bytearray(os.urandom(16))
            raw[6], raw[8] = raw[6] & 0x0F | 0x40, raw[8] & 0x3F | 0x80
            request_id = raw.hex()
        self.request_id = request_id
        self.start = time.monotonic()
        self.status, self.steps, self.stopped = 200, 0, None
        self.input_tokens = self.output_tokens = self.tokens = 0
        self.tools, self.calls = [], []
        self.ttft = self.error = self.response = self.message = None
        self.post = False
        self.endpoint = self.key_id = None
        self.messages = []  # the loop's messages, system prompt first, final answer last
        self.session = None  # the _Session of this request, when the agent keeps sessions
        self.trips, self.store_ms, self.day = 0, 0.0, None


class _Session:
    """One request's conversation: the stored history as loaded, its version, and the part of it sent."""

    __slots__ = ("id", "history", "version", "window")

    def __init__(self, session_id: str, history: list, version: int, window: list):
        self.id, self.history, self.version, self.window = session_id, history, version, window


class _SaveFailed(Exception):
    """The answer is ready but the conversation could not be saved: its status and sentence."""

    def __init__(self, status: int, sentence: str):
        super().__init__(sentence)
        self.status, self.sentence = status, sentence


def _from_user(messages: list, start: int) -> list:
    """messages[start:], moved on to the first user message: no tool message loses its assistant message."""
    start = max(0, start)
    while start < len(messages) and not (isinstance(messages[start], dict) and messages[start].get("role") == "user"):
        start += 1
    return messages[start:]


def _json_size(messages: list) -> int:
    """The UTF-8 size of the JSON text a store keeps (agent_sessions.encode's)."""
    text = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def _seconds_to_midnight(now: float) -> int:
    return 86400 - int(now) % 86400


_TICK = ("tick",)
_END = ("end",)


def _pumped(events, every: float):
    """The events of `events`, produced on a thread of their own, with _TICK whenever none came for
    `every` seconds: a stream can then send a keep-alive comment while a tool or the model is quiet."""
    from _queue import Empty, SimpleQueue  # the C queue itself: the queue module imports far more

    box = SimpleQueue()

    def pump():
        try:
            for event in events:
                box.put(event)
        except BaseException as exc:  # handed to the reader, who raises it in its own thread
            box.put(("raise", exc))
        box.put(_END)

    threading.Thread(target=pump, daemon=True, name="agent-loop").start()
    while True:
        try:
            event = box.get(timeout=every)
        except Empty:
            yield _TICK
            continue
        if event is _END:
            return
        if event[0] == "raise":
            raise event[1]
        yield event


def _sse(part: dict) -> bytes:
    return b"data: " + json.dumps(part).encode("ascii") + b"\n\n"


class Agent:
    """The agent behind every platform: built once per cold start, then `handle` per request."""

    def __init__(self, config: dict, environ: dict | None = None, can_stream: bool = False,
                 no_stream: str = NO_STREAM):
        env = os.environ if environ is None else environ
        self.config = config
        self.can_stream = can_stream  # whether the platform adapter can send a streamed body
        self.no_stream = no_stream  # the 400's message when it cannot and a request asks for a stream
        self.default_stream = bool(config.get("stream")) and can_stream
        self.timeout = float(config["timeout"])
        self.api_key_env = config["api_key_env"]
        api_key = (env.get(self.api_key_env) or "").strip()  # a key saved from a file often ends in a newline
        self.key_problem = None
        if not api_key.isascii() or not api_key.isprintable():  # the same rule as lib/agent.mjs
            api_key, self.key_problem = "", (f"{self.api_key_env} holds characters not allowed in an API key "
                                             "(a line break, a control or a non-ASCII character)")
        base_url = config.get("base_url") or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        client = SdkClient if config.get("client") == "openai" else ChatClient
        self.client = client(base_url, api_key, int(config.get("retries", 2))) if api_key else None
        self._origins = list(config.get("cors", {}).get("origins", []))
        self._template = {"model": config["model"], "max_tokens": config["max_tokens"]}
        if config.get("temperature") is not None:
            self._template["temperature"] = config["temperature"]
        self._system = {"role": "system", "content": config["system_prompt"]}
        self._created = int(time.time())  # /v1/models: when this instance started
        self.name = config.get("name") or "agent"
        limits = config.get("limits") or {}
        self.max_steps = max(1, int(limits.get("max_steps") or 8))
        self.token_budget = limits.get("max_request_tokens")
        self.log_content = bool(config.get("log_content"))
        self.reserve = max(1.0, 0.1 * self.timeout)  # kept for the final answer
        self.keep_alive = 5.0  # seconds between keep-alive comments of a quiet UI message stream
        self.secrets = _Secrets()
        self.secrets.add(api_key)
        for name in config.get("secret_refs") or {}:
            self.secrets.add((env.get(name) or "").strip())
        self._http = {}
        for spec in config.get("tools") or []:
            self._http[spec["name"]] = HttpTool(spec, env, self.secrets)
        self.mcp = [McpServer(spec, env, self.secrets) for spec in config.get("mcp") or []]
        self._clashes = set()
        auth = config.get("auth") if isinstance(config.get("auth"), dict) else None
        self.keys_env = auth.get("api_keys_env") if auth else None
        self._keys = _Keys(env.get(self.keys_env), self.secrets) if self.keys_env else None
        quota = auth.get("daily_tokens") if auth else None
        self.daily_tokens = quota if isinstance(quota, int) and not isinstance(quota, bool) and quota > 0 else None
        # concurrency.warm_schedule on a platform whose scheduler sends an HTTP request: the variable
        # holding the secret it sends (docs/agent-loop.md, "The scheduled warm-up"); unset or short: none
        warmup = config.get("warmup") if isinstance(config.get("warmup"), dict) else {}
        warm_secret = (env.get(warmup.get("secret_env") or "") or "").strip()
        self._warm_secret = warm_secret.encode("utf-8") if len(warm_secret) >= WARM_SECRET_MIN else None
        self.secrets.add(warm_secret)
        sessions = config.get("sessions") if isinstance(config.get("sessions"), dict) else None
        self.sessions = sessions
        self.max_messages = max(1, int(sessions.get("max_messages") or 40)) if sessions else 0
        self.store = self._stores = None
        self.store_problem = None
        if sessions:
            self._open_store(sessions, env)

    def _open_store(self, sessions: dict, env) -> None:
        """The session store (agent_sessions.py ships beside this file only when sessions are on: an
        agent without them imports nothing more at cold start). Opening it makes no request."""
        try:
            import agent_sessions as stores
        except ImportError:  # the framework's own copy (tests, tools run from the repository)
            try:
                from framework.runtime import agent_sessions as stores
            except ImportError:
                self.store_problem = "the session store is not available: agent_sessions.py is missing from the app"
                return
        self._stores = stores
        try:
            self.store = stores.open_store(sessions, self.name, env)
        except stores.StoreError as exc:
            self.store_problem = f"the session store is not usable: {exc}"

    @classmethod
    def from_file(cls, path: str, can_stream: bool = False, no_stream: str = NO_STREAM) -> Agent:
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle), can_stream=can_stream, no_stream=no_stream)

    def cors_headers(self, origin: str | None, preflight: bool = False, methods: str = ALLOWED) -> dict:
        allowed = _allowed_origin(self._origins, origin)
        if allowed is None:
            return {}
        headers = {"Access-Control-Allow-Origin": allowed}
        if allowed != "*":
            headers["Vary"] = "Origin"
        if preflight:
            headers.update({
                "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600",
            })
        return headers

    def handle(self, method: str, headers: dict, body: bytes, remaining: float | None = None,
               request_id: str | None = None, path: str | None = None) -> Reply:
        """One HTTP request → one reply, never an exception: a platform would answer an escaped one
        with its own page (Flask's HTML 500, Lambda's 502), not the contract's JSON.
        headers: lower-case names. remaining: seconds the platform still gives us. request_id: the
        platform's, for the usage line (a random one otherwise). path: the request's path (or URL):
        one ending in /v1/chat/completions or /v1/models is the OpenAI-compatible endpoint."""
        if self._warm_secret is not None and method.upper() == "GET" and self._warm_marked(headers):
            return self.warm_up("scheduler")
        record = _Record(request_id)
        route = _route(path)
        try:
            reply = self._handle(method, headers, body, remaining, record, route)
        except Exception as exc:
            _log_unexpected(exc)
            sentence = f"the agent failed unexpectedly ({type(exc).__name__}); see the function's log"
            reply = _openai_error(500, sentence, "server_error") if route else error(500, sentence)
        if record.post and isinstance(reply.body, bytes):
            record.status = reply.status
            self._log_usage(record)
        return reply

    def _handle(self, method: str, headers: dict, body: bytes, remaining: float | None, record: _Record,
                route: str | None = None) -> Reply:
        method = method.upper()
        origin = headers.get("origin")
        if method == "OPTIONS":
            methods = "GET, OPTIONS" if route == "models" else ALLOWED
            return Reply(204, self.cors_headers(origin, preflight=True, methods=methods), b"")
        cors = self.cors_headers(origin)
        if method == "POST" and route in (None, "chat"):
            record.post = True
        if route:
            record.endpoint = "openai"
        if self._keys is not None:
            refused = self._check_key(headers, record, cors, route)
            if refused is not None:
                return refused
        if route:
            return self._openai(method, headers, body, remaining, record, route, cors)
        if method != "POST":
            return error(405, f"method {method} not allowed; use POST", {"Allow": ALLOWED, **cors})
        message, stream, session_id, problem = _parse(body)
        if problem:
            return error(400, problem, cors)
        if session_id is not None and self.sessions is None:
            return error(400, NO_SESSIONS, cors)
        if stream and not self.can_stream:
            return error(400, self.no_stream, cors)
        if self.client is None:
            return error(500, self.key_problem or f"{self.api_key_env} is not set in the function's environment", cors)
        deadline = self._deadline(remaining)
        record.message = message
        refused = self._check_quota(record, cors, None)
        if refused is not None:
            return refused
        user = {"role": "user", "content": message}
        history = [user]
        if self.sessions is not None:
            try:
                session = self._load_session(session_id, record)
            except _SaveFailed as exc:
                return error(exc.status, exc.sentence, cors)
            record.session = session
            history = [*session.window, user]
            cors = {**cors, "x-session-id": session.id}
            if "Access-Control-Allow-Origin" in cors:
                cors["Access-Control-Expose-Headers"] = "x-session-id"
        try:
            if self.default_stream if stream is None else stream:
                ui = "text/event-stream" in (headers.get("accept") or "").lower()
                return self._streamed(history, deadline, cors, ui, record)
            for _ in self._settled(self._loop(history, deadline, False, record), record):
                pass
        except ModelError as exc:
            return self._model_error(exc, cors)
        except _SaveFailed as exc:
            return error(exc.status, exc.sentence, cors)
        answer = {"response": record.response, "tokens": record.tokens, "steps": record.steps}
        if record.stopped:
            answer["stopped"] = record.stopped
        if record.session is not None:
            answer["session_id"] = record.session.id
        return _json_reply(200, answer, cors)

    # -- sessions and the daily token quota (agent.yaml sessions, auth.daily_tokens) --------------

    def _trip(self, record: _Record, operation, *args):
        """One store request, counted (and timed) for the usage record."""
        began = time.monotonic()
        try:
            return operation(*args)
        finally:
            record.trips += 1
            record.store_ms += time.monotonic() - began

    def _check_quota(self, record: _Record, cors: dict, route: str | None) -> Reply | None:
        """None when the key may still spend tokens today (UTC), else the 429 (or 503: no store)."""
        if self.daily_tokens is None or record.key_id is None:
            return None
        def refuse(status: int, sentence: str, headers: dict) -> Reply:
            if route:
                kind = "rate_limit_error" if status == 429 else "server_error"
                code = "daily_tokens_exceeded" if status == 429 else "session_store_unavailable"
                return _openai_error(status, sentence, kind, code, headers)
            return error(status, sentence, {**_NO_RETRY, **headers} if status == 429 else headers)

        if self.store is None:
            return refuse(503, self.store_problem or "the session store is not configured", cors)
        now = time.time()
        record.day = time.strftime("%Y-%m-%d", time.gmtime(now))
        try:
            used = self._trip(record, self.store.tokens_used, record.key_id, record.day)
        except self._stores.StoreError as exc:
            return refuse(503, f"the session store could not be read: {exc}", cors)
        if used < self.daily_tokens:
            return None
        record.day = None  # nothing to count
        wait = _seconds_to_midnight(now)
        sentence = (f"this API key has used its {self.daily_tokens} tokens for today; the quota renews at "
                    f"midnight UTC (in {wait} s)")
        # x-should-retry: false, or OpenAI's clients would retry the 429 at once
        return refuse(429, sentence, {"Retry-After": str(wait), **_NO_RETRY, **cors})

    def _load_session(self, session_id: str | None, record: _Record) -> _Session:
        """The conversation (one read; a new id when the request named none). _SaveFailed(503) when the
        store cannot be reached, before the model is called."""
        if self.store is None:
            raise _SaveFailed(503, self.store_problem or "the session store is not configured")
        if session_id is None:
            return _Session(os.urandom(16).hex(), [], 0, [])
        try:
            history, version = self._trip(record, self.store.load, session_id)
        except self._stores.StoreError as exc:
            raise _SaveFailed(503, f"the session store could not be read: {exc}") from None
        return _Session(session_id, history, version, _from_user(history, len(history) - self.max_messages))

    def _kept(self, messages: list) -> list:
        """What a save keeps: the last max_messages, cut at a user message, within the store's max_bytes."""
        kept = _from_user(messages, len(messages) - self.max_messages)
        limit = getattr(self.store, "max_bytes", 0) or 0
        while kept and limit and _json_size(kept) > limit:
            kept = _from_user(kept, 1)
        return kept

    def _settled(self, events, record: _Record):
        """The loop's events; then this turn saved (one write, with the version loaded; on a conflict the
        turn is appended to a fresh load, SAVE_TRIES times at most) and its tokens counted.
        Raises _SaveFailed (409, 503) when the conversation could not be saved."""
        yield from events
        session = record.session
        if session is not None:
            self._save(session, record)
        if record.day is not None and record.tokens > 0:
            try:
                self._trip(record, self.store.add_tokens, record.key_id, record.day, record.tokens)
            except self._stores.StoreError as exc:  # the answer stands; the log says what was not counted
                record.error = f"the session store could not count this request's tokens: {exc}"

    def _save(self, session: _Session, record: _Record) -> None:
        stores = self._stores
        turn = record.messages[1 + len(session.window):]  # user, assistant (+ tool calls, results), answer
        base, version = session.history, session.version
        try:
            for attempt in range(SAVE_TRIES):
                try:
                    session.version = self._trip(record, self.store.save, session.id, self._kept(base + turn),
                                                 version)
                    return
                except stores.StoreConflict:
                    if attempt + 1 == SAVE_TRIES:
                        break
                    base, version = self._trip(record, self.store.load, session.id)
        except stores.StoreError as exc:
            raise _SaveFailed(503, f"the session store could not save the conversation: {exc}") from None
        raise _SaveFailed(409, "the conversation changed while this answer was saved (other requests on the "
                               "same session_id at once); send the message again")

    def _deadline(self, remaining: float | None) -> float:
        budget = self.timeout if remaining is None else min(self.timeout, remaining)
        return time.monotonic() + max(0.5, budget - 1.0)  # answer before the platform cuts us off

    # -- API keys (agent.yaml auth.api_keys) --------------------------------------------------

    def _check_key(self, headers: dict, record: _Record, cors: dict, route: str | None) -> Reply | None:
        """None when the request carries an accepted key (its id then in the record); else the answer."""
        keys = self._keys
        if not keys.digests:
            sentence = f"{self.keys_env} is not set in the function's environment"
            return _openai_error(500, sentence, "server_error", None, cors) if route else error(500, sentence, cors)
        bearer = headers.get("authorization") or ""
        offered = [headers.get("x-api-key") or "", bearer[7:] if bearer[:7].lower() == "bearer " else ""]
        key_id = keys.match([value.strip() for value in offered if value.strip()])
        if key_id is not None:
            record.key_id = key_id
            return None
        challenge = {"WWW-Authenticate": "Bearer", **cors}
        sentence = ("the API key is not valid" if any(offered) else
                    "an API key is required: send Authorization: Bearer KEY or x-api-key: KEY")
        if route:
            return _openai_error(401, sentence, "invalid_request_error", "invalid_api_key", challenge)
        return error(401, sentence, challenge)

    # -- the OpenAI-compatible endpoint --------------------------------------------------------

    def _openai(self, method: str, headers: dict, body: bytes, remaining: float | None, record: _Record,
                route: str, cors: dict) -> Reply:
        if route == "other":
            return _openai_error(404, "there is no such path under /v1: use /v1/chat/completions or /v1/models",
                                 "invalid_request_error", "unknown_url", cors)
        if route == "models":
            if method not in ("GET", "HEAD"):
                return _openai_error(405, f"method {method} not allowed; use GET", "invalid_request_error",
                                     "method_not_allowed", {"Allow": "GET, OPTIONS", **cors})
            listed = {"object": "list", "data": [{"id": self.name, "object": "model", "created": self._created,
                                                  "owned_by": self.name}]}
            return _json_reply(200, listed, cors)
        if method != "POST":
            return _openai_error(405, f"method {method} not allowed; use POST", "invalid_request_error",
                                 "method_not_allowed", {"Allow": ALLOWED, **cors})
        asked = _parse_chat(body, self.name)
        if isinstance(asked, Reply):
            asked.headers.update(cors)
            return asked
        history, stream, include_usage, max_tokens = asked
        if self.client is None:
            return _openai_error(500, self.key_problem or f"{self.api_key_env} is not set in the function's "
                                 "environment", "server_error", None, cors)
        record.message = _last_text(history)
        refused = self._check_quota(record, cors, route)
        if refused is not None:
            return refused
        limit = min(max_tokens, self._template["max_tokens"]) if max_tokens else None
        deadline = self._deadline(remaining)
        meta = {"id": "chatcmpl-" + record.request_id.replace("-", ""), "created": int(time.time()),
                "model": self.name}
        extra = {"x-request-id": record.request_id, **cors}
        try:
            if stream and self.can_stream:
                events = _pumped(self._settled(self._loop(history, deadline, True, record, limit), record),
                                 self.keep_alive)
                body_out = self._chunks(_after_first_answer(events), record, meta, include_usage)
                return Reply(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **extra},
                             body_out)
            events = list(self._settled(self._loop(history, deadline, False, record, limit), record))
        except ModelError as exc:
            return _openai_error(exc.status, self._model_sentence(exc), "api_error",
                                 "timeout" if exc.status == 504 else "model_error", cors)
        if stream:  # a platform that sends one body: the whole stream at once, still one the clients read
            data = b"".join(self._chunks(iter(events), record, meta, include_usage))
            return Reply(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **extra}, data)
        answer = {**meta, "object": "chat.completion",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": record.response,
                                                       "refusal": None},
                               "finish_reason": "stop", "logprobs": None}],
                  "usage": self._usage(record)}
        return _json_reply(200, answer, extra)

    @staticmethod
    def _usage(record: _Record) -> dict:
        return {"prompt_tokens": record.input_tokens, "completion_tokens": record.output_tokens,
                "total_tokens": record.tokens}

    def _chunks(self, events, record: _Record, meta: dict, include_usage: bool):
        """chat.completion.chunk events: the role, the text of every step as it comes, the finish, the
        usage chunk when asked for, then [DONE]; a failure after the first byte an error event."""
        def chunk(delta: dict, finish: str | None = None) -> bytes:
            part = {**meta, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
            if include_usage:
                part["usage"] = None
            return _sse(part)

        try:
            yield chunk({"role": "assistant", "content": ""})
            for event in events:
                if event[0] == "tick":
                    yield b": keep-alive\n\n"
                elif event[0] == "text":
                    if record.ttft is None and self.can_stream:  # a body sent at once has no first byte
                        record.ttft = time.monotonic() - record.start
                    yield chunk({"content": event[1]})
            yield chunk({}, "stop")
            if include_usage:
                yield _sse({**meta, "object": "chat.completion.chunk", "choices": [], "usage": self._usage(record)})
        except ModelError as exc:
            record.error = self._model_sentence(exc)
            yield _sse({"error": {"message": record.error, "type": "api_error", "param": None,
                                  "code": "timeout" if exc.status == 504 else "model_error"}})
        except Exception as exc:
            _log_unexpected(exc)
            record.error = f"the agent failed unexpectedly ({type(exc).__name__}); see the function's log"
            yield _sse({"error": {"message": record.error, "type": "server_error", "param": None, "code": None}})
        finally:
            self._log_usage(record)
        yield b"data: [DONE]\n\n"

    def _model_error(self, exc: ModelError, cors: dict) -> Reply:
        return error(exc.status, self._model_sentence(exc), cors)

    def _model_sentence(self, exc: ModelError) -> str:
        return f"the model did not answer within {self.timeout:g} s" if exc.status == 504 else str(exc)

    # -- the loop ----------------------------------------------------------------------------

    def _offered(self, deadline: float) -> dict:
        """The tools this request may offer, by name: the HTTP tools, then each MCP server's (a server
        that cannot be initialised now offers none, and is tried again next time)."""
        tools = dict(self._http)
        for server in self.mcp:
            try:
                listed = server.ensure(max(0.1, min(server.timeout, deadline - time.monotonic())))
            except ToolFailure as exc:
                print(f"agent runtime: the MCP server {server.origin.label} offers no tools this time: "
                      f"{str(exc).removeprefix('error: ')}", file=sys.stderr, flush=True)
                continue
            for item in listed:
                if item["name"] in tools:
                    if (server.origin.label, item["name"]) not in self._clashes:
                        self._clashes.add((server.origin.label, item["name"]))
                        print(f"agent runtime: the MCP server {server.origin.label}'s tool {item['name']} is not "
                              "offered: another tool has that name", file=sys.stderr, flush=True)
                    continue
                tools[item["name"]] = McpTool(server, item)
        return tools

    def _loop(self, history: list, deadline: float, streamed: bool, record: _Record, max_tokens: int | None = None):
        """The steps of one request (docs/agent-loop.md, One request) as events: ("step",),
        ("text", piece), ("calls", [(id, name, input)]), ("results", [(id, result)]), ("step-end",).
        history: the messages after the system prompt. max_tokens: a lower limit than the agent's.
        The answer is left in `record` (response, tokens, steps, stopped). Raises ModelError."""
        tools = self._offered(deadline) if self._http or self.mcp else {}
        offers = [tool.offer for tool in tools.values()]
        longest_tool = max((tool.timeout for tool in tools.values()), default=0.0)
        messages = record.messages = [self._system, *history]
        template = self._template if max_tokens is None else {**self._template, "max_tokens": max_tokens}
        texts, longest_model = [], 0.0
        while True:
            left = deadline - time.monotonic()
            if record.steps and left < 0.5:  # not even time for one more call: the text so far
                record.response, record.stopped = "".join(texts), "deadline"
                messages.append({"role": "assistant", "content": record.response})
                return
            payload = {**template, "messages": messages}
            stop = None
            if offers:
                if record.steps + 1 >= self.max_steps:
                    stop = "max_steps"
                elif self.token_budget is not None and record.tokens >= self.token_budget:
                    stop = "token_budget"
                elif left < self.reserve + longest_model + longest_tool:
                    stop = "deadline"
                else:
                    payload["tools"] = offers
            record.steps += 1
            yield ("step",)
            began = time.monotonic()
            if streamed:
                pieces, calls, usage = [], [], None
                for item in self.client.stream(payload, deadline):
                    if isinstance(item, str):
                        pieces.append(item)
                        yield ("text", item)
                    else:
                        _, calls, usage = item
                content = "".join(pieces) or None
            else:
                content, calls, usage = _read_message(self.client.complete(payload, deadline))
                if content:
                    yield ("text", content)
            longest_model = max(longest_model, time.monotonic() - began)
            _count(record, usage)
            texts.append(content or "")
            if "tools" not in payload or not calls:
                record.response, record.stopped = content or "", stop
                messages.append({"role": "assistant", "content": record.response})
                yield ("step-end",)
                return
            messages.append({"role": "assistant", "content": content, "tool_calls": calls})
            yield ("calls", [(c.get("id"), _call_name(c), _input_of(c)) for c in calls])
            results = self._run_calls(calls, tools, deadline, record)
            answered = [(c.get("id"), r) for c, r in zip(calls, results, strict=True)]
            messages += [{"role": "tool", "tool_call_id": i, "content": r} for i, r in answered]
            yield ("results", answered)
            yield ("step-end",)

    def _run_calls(self, calls: list, tools: dict, deadline: float, record: _Record) -> list:
        """Every call's result, in order; several calls run at once, one thread each."""
        cap = max(0.1, deadline - time.monotonic() - self.reserve)
        done = [None] * len(calls)

        def run(index: int) -> None:
            began = time.monotonic()
            outcome, result = self._call(calls[index], tools, cap)
            done[index] = (outcome, result, time.monotonic() - began)

        if len(calls) == 1:
            run(0)
        else:
            threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        results = []
        for call, (outcome, result, took) in zip(calls, done, strict=True):
            record.tools.append({"name": _call_name(call)[:64], "duration_ms": round(took * 1000), "outcome": outcome})
            if self.log_content:
                record.calls.append({"name": _call_name(call), "arguments": _input_of(call), "result": result})
            results.append(result)
        return results

    def _call(self, call: dict, tools: dict, cap: float) -> tuple[str, str]:
        """(outcome, result text) of one tool call; errors are results too."""
        name = _call_name(call)
        tool = tools.get(name)
        if tool is None:
            return "unknown_tool", f'error: there is no tool named "{name[:100]}"'
        arguments = _parse_arguments((call.get("function") or {}).get("arguments"))
        if arguments is None:
            return "invalid_arguments", "error: the arguments are not a valid JSON object"
        why = _mismatch(tool.parameters, arguments, "")
        if why:
            return "invalid_arguments", f"error: the arguments do not match the tool's parameters: {why}"
        try:
            return "ok", _cut(tool.run(arguments, min(tool.timeout, cap)))
        except ToolFailure as exc:
            return exc.outcome, _cut(str(exc))
        except Exception as exc:  # a bug of ours must not fail the request
            _log_unexpected(exc)
            return "error", "error: the tool could not be called"

    # -- streams -------------------------------------------------------------------------------

    def _streamed(self, history: list, deadline: float, cors: dict, ui: bool, record: _Record) -> Reply:
        """200 with a body that yields the answer as it is written: the AI SDK's UI message stream
        when `ui`, else text/plain. The first model answer is awaited here, so that a failure before
        it is still a JSON error with its status."""
        events = self._settled(self._loop(history, deadline, True, record), record)
        if ui:
            events = _pumped(events, self.keep_alive)
        events = _after_first_answer(events)
        body = self._ui_body(events, record) if ui else self._text_body(events, record)
        if ui:
            headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                       "x-vercel-ai-ui-message-stream": "v1", **cors}
        else:
            headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache", **cors}
        return Reply(200, headers, body)

    def _text_body(self, events, record: _Record):
        try:
            for event in events:
                if event[0] == "text":
                    if record.ttft is None:
                        record.ttft = time.monotonic() - record.start
                    yield event[1].encode("utf-8", "replace")
        except ModelError as exc:  # the status is sent already: end the text where it broke
            record.error = self._model_sentence(exc)
        except _SaveFailed as exc:  # the text is sent; the usage record says it was not kept
            record.error = exc.sentence
        except Exception as exc:
            _log_unexpected(exc)
            record.error = "the agent failed unexpectedly"
        finally:
            self._log_usage(record)

    def _ui_body(self, events, record: _Record):
        text_id = None
        part = 0
        try:
            start = {"type": "start", "messageId": record.request_id}
            if record.session is not None:
                start["messageMetadata"] = {"session_id": record.session.id}
            yield _sse(start)
            for event in events:
                kind = event[0]
                if kind == "tick":
                    yield b": keep-alive\n\n"
                elif kind == "step":
                    yield _sse({"type": "start-step"})
                elif kind == "text":
                    if text_id is None:
                        part += 1
                        text_id = f"text-{part}"
                        yield _sse({"type": "text-start", "id": text_id})
                    if record.ttft is None:
                        record.ttft = time.monotonic() - record.start
                    yield _sse({"type": "text-delta", "id": text_id, "delta": event[1]})
                else:
                    if text_id is not None:
                        yield _sse({"type": "text-end", "id": text_id})
                        text_id = None
                    if kind == "calls":
                        for call_id, name, arguments in event[1]:
                            yield _sse({"type": "tool-input-available", "toolCallId": call_id, "toolName": name,
                                        "input": arguments})
                    elif kind == "results":
                        for call_id, result in event[1]:
                            yield _sse({"type": "tool-output-available", "toolCallId": call_id, "output": result})
                    elif kind == "step-end":
                        yield _sse({"type": "finish-step"})
            metadata = {"tokens": record.tokens, "steps": record.steps}
            if record.stopped:
                metadata["stopped"] = record.stopped
            yield _sse({"type": "finish", "messageMetadata": metadata})
        except ModelError as exc:
            record.error = self._model_sentence(exc)
            yield _sse({"type": "error", "errorText": record.error})
        except _SaveFailed as exc:
            record.error = exc.sentence
            yield _sse({"type": "error", "errorText": record.error})
        except Exception as exc:
            _log_unexpected(exc)
            record.error = f"the agent failed unexpectedly ({type(exc).__name__}); see the function's log"
            yield _sse({"type": "error", "errorText": record.error})
        finally:
            self._log_usage(record)
        yield b"data: [DONE]\n\n"

    # -- the scheduled warm-up (concurrency.warm_schedule, issue 14) -----------------------------

    def _warm_marked(self, headers: dict) -> bool:
        """Whether a GET carries the warm-up secret: `x-agent-warmup: <secret>` (the Cloud Scheduler
        job's header) or `Authorization: Bearer <secret>` (what Vercel Cron sends from CRON_SECRET).
        Compared in constant time; any other GET is an ordinary request."""
        for given in (headers.get("x-agent-warmup") or "", _bearer(headers.get("authorization"))):
            if given and hmac.compare_digest(given.strip().encode("utf-8"), self._warm_secret):
                return True
        return False

    def warm_up(self, source: str) -> Reply:
        """The scheduler's warm-up: reaching this code is the point (the instance is loaded and stays
        warm), so it calls no model, spends no tokens and writes no usage record, one `agent.warmup`
        line instead. source: what sent it (aws-scheduler, azure-timer, scheduler)."""
        try:
            print(json.dumps({"type": "agent.warmup", "severity": "DEBUG", "agent": self.name,
                              "source": source}), flush=True)
        except (OSError, ValueError):
            pass
        return _json_reply(200, {"warm": True})

    # -- usage ---------------------------------------------------------------------------------

    def _log_usage(self, record: _Record) -> None:
        """One JSON line on stdout: what the request did, never its content unless log_content."""
        if not record.post:
            return
        record.post = False  # once
        status = record.status
        severity = "ERROR" if status >= 500 or record.error else "WARNING" if status >= 400 else "INFO"
        line = {"type": "agent.usage", "severity": severity,
                "request_id": record.request_id, "agent": self.name, "status": status,
                "latency_ms": round((time.monotonic() - record.start) * 1000)}
        if record.endpoint:
            line["endpoint"] = record.endpoint
        if record.key_id:
            line["key_id"] = record.key_id
        if record.ttft is not None:
            line["ttft_ms"] = round(record.ttft * 1000)
        line.update({"steps": record.steps, "stopped": record.stopped, "gen_ai.operation.name": "chat",
                     "gen_ai.provider.name": "openai", "gen_ai.request.model": self._template["model"],
                     "gen_ai.usage.input_tokens": record.input_tokens,
                     "gen_ai.usage.output_tokens": record.output_tokens, "tokens": record.tokens,
                     "tools": record.tools})
        line["session"] = record.session is not None
        if record.trips:
            line["store_round_trips"], line["store_ms"] = record.trips, round(record.store_ms * 1000, 1)
        if record.error:
            line["error"] = record.error
        if self.log_content:
            line["content"] = {"message": record.message, "response": record.response, "tool_calls": record.calls}
        try:
            print(self.secrets.scrub(json.dumps(line)), flush=True)
        except (OSError, ValueError):  # stdout closed: the answer matters more than its log line
            pass


def _after_first_answer(events):
    """The loop's events, once the first model call has answered: read here, before the reply starts,
    so that a failure before it (ModelError) is still a JSON error with its status."""
    early = []
    for event in events:
        if event is _TICK:
            continue
        early.append(event)
        if event[0] != "step":
            break

    def chained():
        yield from early
        yield from events

    return chained()


def _log_unexpected(exc: Exception) -> None:
    """Where a failure of this code happened, in the platform's log. Not its message: one from a
    library may quote a header, and so the API key."""
    import traceback  # only on this path: every import at module level is cold-start time

    where = "".join(traceback.format_tb(exc.__traceback__))
    print(f"agent runtime: unexpected {type(exc).__name__} (message withheld)\n{where}", file=sys.stderr, end="")


def _parse(body: bytes) -> tuple[str, bool | None, str | None, str | None]:
    """(message, stream asked or None, session_id or None, problem): a plain sentence saying what is
    wrong, if anything."""
    try:
        data = json.loads(body or b"")
    except (ValueError, RecursionError):
        return "", None, None, "the request body is not valid JSON"
    if not isinstance(data, dict):
        return "", None, None, "the request body must be a JSON object"
    if "message" not in data:
        return "", None, None, "the field 'message' is required"
    message = data["message"]
    if not isinstance(message, str):
        return "", None, None, "the field 'message' must be a string"
    if not message.strip():
        return "", None, None, "the field 'message' must not be empty"
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return "", None, None, "the field 'stream' must be true or false"
    session_id = data.get("session_id")
    if session_id is not None and not (isinstance(session_id, str) and 0 < len(session_id) <= 128
                                       and _SESSION_CHARS.issuperset(session_id)):
        return "", None, None, BAD_SESSION
    return message, stream, session_id, None


def _bearer(value: str | None) -> str:
    """The token of an `Authorization: Bearer TOKEN` header, else ''."""
    value = value or ""
    return value[7:] if value[:7].lower() == "bearer " else ""


def _route(path: str | None) -> str | None:
    """Which endpoint a path is: None (the agent's own contract), "chat", "models", or "other" (a path
    under /v1/ that is neither)."""
    if not path:
        return None
    if "://" in path:  # a whole URL (Azure's req.url)
        path = urllib.parse.urlsplit(path).path
    path = path.partition("?")[0].rstrip("/")
    if path.endswith(CHAT_PATH):
        return "chat"
    if path.endswith(MODELS_PATH):
        return "models"
    return "other" if "/v1/" in path + "/" else None


def _openai_error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                  headers: dict | None = None, param: str | None = None) -> Reply:
    """OpenAI's error shape; x-should-retry: false, as every error here is final (the model call was
    retried already), so the official clients do not repeat it."""
    payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return _json_reply(status, payload, {**_NO_RETRY, **(headers or {})})


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def _parse_chat(body: bytes, name: str):
    """(client messages, stream, include_usage, max_tokens or None) of a chat completion request, or
    the 400/404 answer."""
    def bad(message: str, param: str | None) -> Reply:
        return _openai_error(400, message, "invalid_request_error", None, None, param)

    try:
        data = json.loads(body or b"")
    except (ValueError, RecursionError):
        return bad("the request body is not valid JSON", None)
    if not isinstance(data, dict):
        return bad("the request body must be a JSON object", None)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return bad("the field 'model' is required: this agent's name, as /v1/models lists it", "model")
    if model != name:
        return _openai_error(404, f"The model `{model[:100]}` does not exist: this endpoint serves `{name}`",
                             "invalid_request_error", "model_not_found", None, "model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return bad("the field 'messages' must be a non-empty array", "messages")
    for index, item in enumerate(messages):
        if not isinstance(item, dict) or item.get("role") not in _ROLES:
            return bad(f"messages[{index}] must be an object with a role of system, developer, user, "
                       "assistant or tool", f"messages[{index}]")
        content = item.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return bad(f"messages[{index}].content must be a string or an array", f"messages[{index}].content")
    if data.get("tools"):
        return bad("this agent runs its own tools: send no 'tools'", "tools")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return bad("the field 'stream' must be true or false", "stream")
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return bad("the field 'stream_options' must be an object", "stream_options")
    include_usage = bool(stream and options and options.get("include_usage") is True)
    limit = None
    for field in ("max_completion_tokens", "max_tokens"):
        value = data.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return bad(f"the field '{field}' must be a positive integer", field)
        limit = value if limit is None else min(limit, value)
    return messages, bool(stream), include_usage, limit


def _last_text(messages: list) -> str:
    """The last user message's text, for the usage line's content (log_content only)."""
    for item in reversed(messages):
        if item.get("role") == "user":
            content = item.get("content")
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ""


class _Keys:
    """The accepted API keys (one per line of the secret), kept as SHA-256 digests and compared in
    constant time; a key's id is the first 12 hex digits of its digest."""

    def __init__(self, text: str | None, secrets: _Secrets):
        import hashlib  # only when auth is on: every import is cold-start time
        import hmac

        self._sha, self._same = hashlib.sha256, hmac.compare_digest
        keys = [line.strip() for line in (text or "").splitlines() if line.strip()]
        for key in keys:
            secrets.add(key)
        self.digests = [self._sha(key.encode("utf-8")).digest() for key in keys]

    def match(self, offered: list) -> str | None:
        found = None
        for value in offered:
            digest = self._sha(value.encode("utf-8", "replace")).digest()
            for known in self.digests:  # every key compared: the time does not tell which one matched
                if self._same(digest, known) and found is None:
                    found = known.hex()[:12]
        return found


def _read_message(answer: dict) -> tuple[str | None, list, dict | None]:
    """(content, tool_calls, usage) of a non-streamed completion."""
    try:
        message = answer["choices"][0]["message"]
        text = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ModelError(502, "the model endpoint sent a malformed answer") from None
    if text is not None and not isinstance(text, str):
        raise ModelError(502, "the model endpoint sent a malformed answer")
    calls = message.get("tool_calls")
    calls = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    usage = answer.get("usage")
    return text, calls, usage if isinstance(usage, dict) else None


def _number(usage: dict, key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _count(record: _Record, usage: dict | None) -> None:
    if usage:
        record.tokens += _number(usage, "total_tokens")
        record.input_tokens += _number(usage, "prompt_tokens")
        record.output_tokens += _number(usage, "completion_tokens")


def _call_name(call: dict) -> str:
    function = call.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else ""


def _input_of(call: dict):
    """A call's arguments for the stream and the log: parsed, or the raw text when not JSON."""
    raw = (call.get("function") or {}).get("arguments")
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        return raw
