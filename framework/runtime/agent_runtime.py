"""Agent runtime shared by every generated Python app: config, model client, HTTP contract.

Standard library only: importing `openai` costs most of a cold start, and this runtime
needs one POST. Platform adapters (lambda_function.py, main.py, function_app.py) only
translate their platform's request and response shapes to `Agent.handle`.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ALLOWED = "POST, OPTIONS"
_RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
_JSON = {"Content-Type": "application/json"}
CUT_OFF = "the model endpoint's answer was cut off or invalid"
NO_STREAM = "this platform does not stream responses; send the request without \"stream\": true"


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
        """The answer's text pieces as the model writes them; a failure before the first piece
        raises ModelError, a failure later ends the stream (the client has its status already)."""
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
    """Text deltas from an OpenAI-style server-sent event stream, until [DONE] or the deadline. Before
    the first piece a failure raises ModelError (the caller can still answer with a JSON error)."""
    started = False
    try:
        for line in _lines(sock, response, deadline):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            try:
                piece = json.loads(data)["choices"][0]["delta"].get("content")
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue  # a malformed or usage-only event carries no text
            if isinstance(piece, str) and piece:
                started = True
                yield piece
    except TimeoutError:
        if not started:
            raise ModelError(504, "timeout") from None
    except (OSError, http.client.HTTPException):
        if not started:
            raise ModelError(502, CUT_OFF) from None
    finally:
        response.close()
        conn.close()
    if not started:
        raise ModelError(502, "the model endpoint ended the stream without an answer")


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
            try:
                for chunk in chunks:
                    if time.monotonic() >= deadline:
                        break
                    if chunk.choices and chunk.choices[0].delta.content:
                        started = True
                        yield chunk.choices[0].delta.content
            except errors.APITimeoutError:
                if not started:
                    raise ModelError(504, "timeout") from None
                return
            except (errors.APIError, ValueError):  # the stream broke off, or an event is malformed
                if not started:
                    raise ModelError(502, CUT_OFF) from None
                return
            finally:
                chunks.close()
            if not started and time.monotonic() >= deadline:
                raise ModelError(504, "timeout")
            if not started:
                raise ModelError(502, "the model endpoint ended the stream without an answer")

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

    @classmethod
    def from_file(cls, path: str, can_stream: bool = False, no_stream: str = NO_STREAM) -> Agent:
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle), can_stream=can_stream, no_stream=no_stream)

    def cors_headers(self, origin: str | None, preflight: bool = False) -> dict:
        allowed = _allowed_origin(self._origins, origin)
        if allowed is None:
            return {}
        headers = {"Access-Control-Allow-Origin": allowed}
        if allowed != "*":
            headers["Vary"] = "Origin"
        if preflight:
            headers.update({
                "Access-Control-Allow-Methods": ALLOWED,
                "Access-Control-Allow-Headers": "Content-Type, Authorization",
                "Access-Control-Max-Age": "600",
            })
        return headers

    def handle(self, method: str, headers: dict, body: bytes, remaining: float | None = None) -> Reply:
        """One HTTP request → one reply, never an exception: a platform would answer an escaped one
        with its own page (Flask's HTML 500, Lambda's 502), not the contract's JSON.
        headers: lower-case names. remaining: seconds the platform still gives us."""
        try:
            return self._handle(method, headers, body, remaining)
        except Exception as exc:
            _log_unexpected(exc)
            return error(500, f"the agent failed unexpectedly ({type(exc).__name__}); see the function's log")

    def _handle(self, method: str, headers: dict, body: bytes, remaining: float | None) -> Reply:
        method = method.upper()
        origin = headers.get("origin")
        if method == "OPTIONS":
            return Reply(204, self.cors_headers(origin, preflight=True), b"")
        cors = self.cors_headers(origin)
        if method != "POST":
            return error(405, f"method {method} not allowed; use POST", {"Allow": ALLOWED, **cors})
        message, stream, problem = _parse(body)
        if problem:
            return error(400, problem, cors)
        if stream and not self.can_stream:
            return error(400, self.no_stream, cors)
        if self.client is None:
            return error(500, self.key_problem or f"{self.api_key_env} is not set in the function's environment", cors)
        budget = self.timeout if remaining is None else min(self.timeout, remaining)
        deadline = time.monotonic() + max(0.5, budget - 1.0)  # answer before the platform cuts us off
        payload = {**self._template, "messages": [self._system, {"role": "user", "content": message}]}
        try:
            if self.default_stream if stream is None else stream:
                return self._streamed(payload, deadline, cors)
            answer = self.client.complete(payload, deadline)
            text, tokens = _read_answer(answer)
        except ModelError as exc:
            if exc.status == 504:
                return error(504, f"the model did not answer within {self.timeout:g} s", cors)
            return error(exc.status, str(exc), cors)
        return _json_reply(200, {"response": text, "tokens": tokens}, cors)

    def _streamed(self, payload: dict, deadline: float, cors: dict) -> Reply:
        """200 text/plain whose body yields the answer as it is written. The first piece is awaited
        here, so that a failure before it is still a JSON error with its status."""
        pieces = self.client.stream(payload, deadline)
        first = next(pieces, "")

        def body():
            yield first.encode("utf-8", "replace")
            try:
                for piece in pieces:
                    yield piece.encode("utf-8", "replace")
            except Exception as exc:  # the status is sent already: end the text where it broke
                _log_unexpected(exc)

        headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache", **cors}
        return Reply(200, headers, body())


def _log_unexpected(exc: Exception) -> None:
    """Where a failure of this code happened, in the platform's log. Not its message: one from a
    library may quote a header, and so the API key."""
    import traceback  # only on this path: every import at module level is cold-start time

    where = "".join(traceback.format_tb(exc.__traceback__))
    print(f"agent runtime: unexpected {type(exc).__name__} (message withheld)\n{where}", file=sys.stderr, end="")


def _parse(body: bytes) -> tuple[str, bool | None, str | None]:
    """(message, stream asked or None, problem): a plain sentence saying what is wrong, if anything."""
    try:
        data = json.loads(body or b"")
    except (ValueError, RecursionError):
        return "", None, "the request body is not valid JSON"
    if not isinstance(data, dict):
        return "", None, "the request body must be a JSON object"
    if "message" not in data:
        return "", None, "the field 'message' is required"
    message = data["message"]
    if not isinstance(message, str):
        return "", None, "the field 'message' must be a string"
    if not message.strip():
        return "", None, "the field 'message' must not be empty"
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return "", None, "the field 'stream' must be true or false"
    return message, stream, None


def _read_answer(answer: dict) -> tuple[str, int]:
    try:
        text = answer["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ModelError(502, "the model endpoint sent a malformed answer") from None
    if not isinstance(text, str):
        raise ModelError(502, "the model endpoint sent a malformed answer")
    usage = answer.get("usage")
    tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
    return text, tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0
