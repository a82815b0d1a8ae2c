"""A local front of Upstash Redis's REST API over a real redis-server (Debian package redis-server).

Usage::

    with RedisServer() as redis_server, UpstashFront(redis_server.socket, token="t") as front:
        front.url                 # "http://127.0.0.1:PORT" -> KV_REST_API_URL
        front.requests            # every request: method, path, headers, body
        front.client()            # a redis-py client on the same server (to plant or read records)

What it implements, from https://upstash.com/docs/redis/features/restapi:
* Auth: `Authorization: Bearer <token>` or `?_token=<token>`; missing or wrong: 401 {"error": "Unauthorized"}.
* POST / with the command as a JSON array (["SET", "k", "v", "EX", 100]): 200 {"result": ...};
  a Redis error is 400 {"error": "ERR ..."} (the error text as Redis sends it).
* The path form: GET|POST /set/foo/bar (segments URL-decoded; a POST body is appended as the last argument).
* POST /pipeline with a list of commands: run in order on one connection, not atomically; 200 and a
  list of {"result"} / {"error"}, one per command.
* POST /multi-exec: the same, as one MULTI/EXEC transaction; a command Redis refuses while queueing
  aborts the whole transaction (400 {"error": "EXECABORT ..."}).
* `Upstash-Encoding: base64`: every string in a result is base64 (of its UTF-8 bytes) except "OK",
  as @upstash/redis (its default) expects.
* Methods other than HEAD, GET, POST and PUT: 405 ("Only HEAD, GET, POST and PUT methods are allowed.").
Results are RESP2's: bulk and simple strings as strings, nil as null, integers as numbers, arrays as lists.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis import exceptions as redis_errors

from framework.errors import LocalRunError

HOST = "127.0.0.1"
ALLOWED = "Only HEAD, GET, POST and PUT methods are allowed."
# redis-py strips the error code from some errors (parse_error); put it back, as Redis sent it.
ERROR_CODES = [(redis_errors.ExecAbortError, "EXECABORT"), (redis_errors.NoScriptError, "NOSCRIPT"),
               (redis_errors.ReadOnlyError, "READONLY"), (redis_errors.AuthenticationError, "NOAUTH")]


class RedisServer:
    """A throwaway redis-server on a unix socket in a temp folder (no persistence)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="redis-"))
        self.socket = str(self.folder / "redis.sock")
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalRunError("redis-server not found on PATH (Debian/Ubuntu: apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(unix_socket_path=self.socket).ping():
                    return self
            except redis_errors.ConnectionError:
                time.sleep(0.02)
        self.__exit__()
        raise LocalRunError("redis-server did not start within 10 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _error_text(error: redis_errors.RedisError) -> str:
    text = str(error)
    for kind, code in ERROR_CODES:
        if isinstance(error, kind):
            return text if text.startswith(code) else f"{code} {text}"
    first = text.split(" ", 1)[0]
    return text if first.isupper() and first.isalpha() else f"ERR {text}"


def _convert(value: Any, b64: bool) -> Any:
    if isinstance(value, bytes):
        if b64 and value != b"OK":
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        return [_convert(v, b64) for v in value]
    if isinstance(value, redis_errors.RedisError):
        raise value
    return value  # int, None


def _argument(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError("ERR command arguments must be strings or numbers")


def _command(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError("ERR the command must be a non-empty JSON array")
    return [_argument(v) for v in value]


class UpstashFront:
    def __init__(self, redis_socket: str, token: str = "upstash-test-token") -> None:
        self.token = token
        # No response callbacks: the raw RESP2 values, "OK" included (redis-py would make it True).
        self.pool = redis.ConnectionPool(connection_class=redis.UnixDomainSocketConnection, path=redis_socket,
                                         protocol=2)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave in two writes: no 40 ms delayed-ACK wait

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                front._handle(self)

            do_POST = do_PUT = do_HEAD = do_GET

            def _refuse(self) -> None:
                front._answer(self, 405, {"error": ALLOWED})

            do_DELETE = do_PATCH = do_OPTIONS = _refuse

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def client(self) -> redis.Redis:
        return redis.Redis(connection_pool=self.pool, decode_responses=False)

    def _raw(self) -> redis.Redis:
        client = redis.Redis(connection_pool=self.pool)
        client.response_callbacks.clear()
        return client

    def __enter__(self) -> UpstashFront:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.pool.disconnect()

    # ------------------------------------------------------------------------------------- requests

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        with self._lock:
            self.requests.append(Recorded(handler.command, parts.path, dict(handler.headers.items()), body))
        auth = handler.headers.get("Authorization", "")
        query_token = parse_qs(parts.query).get("_token", [""])[0]
        if auth != f"Bearer {self.token}" and query_token != self.token:
            return self._answer(handler, 401, {"error": "Unauthorized"})
        b64 = handler.headers.get("Upstash-Encoding", "").lower() == "base64"
        path = parts.path.rstrip("/")
        try:
            if path in ("/pipeline", "/multi-exec"):
                if not isinstance(body, list) or not body:
                    raise ValueError("ERR the body must be a JSON array of commands")
                commands = [_command(c) for c in body]
                return self._answer(handler, 200, self._batch(commands, path == "/multi-exec", b64))
            if path == "":
                command = _command(body)
            else:
                command = [unquote(p) for p in path.lstrip("/").split("/")]
                if raw:
                    command.append(raw.decode("utf-8", errors="replace"))
            result = self._raw().execute_command(*command)
            return self._answer(handler, 200, {"result": _convert(result, b64)})
        except ValueError as error:
            return self._answer(handler, 400, {"error": str(error)})
        except redis_errors.ConnectionError:
            return self._answer(handler, 500, {"error": "ERR the database is unreachable"})
        except redis_errors.RedisError as error:
            return self._answer(handler, 400, {"error": _error_text(error)})
        except Exception as error:  # noqa: BLE001 - a bug here answers 500, like a server would
            return self._answer(handler, 500, {"error": f"ERR internal error: {type(error).__name__}"})

    def _batch(self, commands: list[list[str]], atomic: bool, b64: bool) -> list[dict]:
        pipe = self._raw().pipeline(transaction=atomic)
        for command in commands:
            pipe.execute_command(*command)
        try:
            results = pipe.execute(raise_on_error=False)
        except redis_errors.ResponseError as error:  # refused while queueing: EXEC discarded it all
            if atomic and str(error).startswith("Command #"):
                raise redis_errors.ExecAbortError("Transaction discarded because of previous errors.") from None
            raise
        out = []
        for result in results:
            if isinstance(result, redis_errors.RedisError):
                out.append({"error": _error_text(result)})
            else:
                out.append({"result": _convert(result, b64)})
        return out
