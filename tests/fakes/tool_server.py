"""A local HTTP tool server for the tool-loop tests (stdlib only, 127.0.0.1, free port).

Usage::

    from tests.fakes.tool_server import ToolServer

    with ToolServer() as tools:
        tools.url           # "http://127.0.0.1:PORT" (no trailing slash)
        tools.requests      # snapshot list[ToolRequest], arrival order
        tools.find(tok)     # requests whose target, headers or body contain `tok`
        tools.clear()

Every method is answered (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS); the
route is chosen by the raw path (still percent-encoded, as received):

* ``/echo`` and anything under it (``/echo/a/b``, ``/echo-x``): 200 JSON
  ``{"method", "target", "path", "query", "body", "json", "headers"}`` --
  ``target`` the raw request target, ``path`` its raw path part, ``query`` the
  parsed query (name -> value, a list for a repeated name), ``body`` the body
  as text, ``json`` the body parsed (or null), ``headers`` the sorted lower-case
  header NAMES only (never their values)
* ``/status/<code>``: that status, body ``tool server: status <code>`` (text/plain);
  with ``?echo=headers`` the body is the JSON of the header values instead (to
  test that secrets in a tool's error body are redacted)
* ``/sleep/<seconds>``: waits (ends early when the server stops), then 200
  ``{"slept": seconds}``
* ``/big/<n>``: 200 text/plain of exactly n bytes (``x`` repeated; ``?char=é``
  repeats that character instead, the last one possibly cut mid-character)
* ``/redirect``: 302 to ``http://127.0.0.1:1/elsewhere`` (nothing listens there)
* ``/headers``: 200 JSON of the header values (lower-case name -> value)
* ``/orders/<id>``: 200 ``{"order_id": id, "status": "shipped"}``, id
  percent-decoded; only a single raw segment matches (``/orders/a/b`` is a 404)
* anything else: 404 JSON ``{"error": "not found", "target": ...}``

Each ``ToolRequest`` has ``method``, ``target`` (raw path + query exactly as
received: the thing SSRF tests assert on), ``path`` (raw path part),
``query`` (``parse_qs`` of the query, keep_blank_values), ``headers``
(lower-case keys), ``body`` (bytes); properties ``text``, ``json`` and
``segments`` (the raw path split on ``/``, each segment percent-decoded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote

from tests.fakes.background import HOST, BackgroundServer, TrackedHandler

__all__ = ["ToolRequest", "ToolServer"]

REDIRECT_TO = "http://127.0.0.1:1/elsewhere"


@dataclass(frozen=True)
class ToolRequest:
    """One request as the tool server received it."""

    method: str
    target: str  # raw request target, exactly as received
    path: str  # raw path part of the target (percent-encoding kept)
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def segments(self) -> list[str]:
        """Raw path segments, each percent-decoded: ``/orders/..%2Fadmin`` -> ``["orders", "../admin"]``."""
        return [unquote(part) for part in self.path.split("/")[1:]]


def _flat_query(raw_query: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if name in out:
            out[name] = (out[name] if isinstance(out[name], list) else [out[name]]) + [value]
        else:
            out[name] = value
    return out


class _Handler(TrackedHandler):
    server_version = "ToolServer/1.0"

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
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode())

    def _route(self) -> None:
        owner = self.server.owner
        body = self._read_body()
        target = self.path
        path, _, raw_query = target.partition("?")
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        rec = ToolRequest(
            self.command, target, path, parse_qs(raw_query, keep_blank_values=True), headers, body
        )
        owner._append(rec)
        query = _flat_query(raw_query)
        parts = path.split("/")[1:]
        head = parts[0] if parts else ""
        rest = parts[1:]

        if head.startswith("echo"):
            self._json(
                200,
                {
                    "method": self.command,
                    "target": target,
                    "path": path,
                    "query": query,
                    "body": rec.text,
                    "json": rec.json,
                    "headers": sorted(headers),
                },
            )
        elif head == "status" and len(rest) == 1 and rest[0].isdigit() and 200 <= int(rest[0]) <= 599:
            code = int(rest[0])
            if query.get("echo") == "headers":
                self._json(code, headers)
            else:
                self._send(code, f"tool server: status {code}".encode(), "text/plain; charset=utf-8")
        elif head == "sleep" and len(rest) == 1:
            try:
                seconds = max(0.0, float(unquote(rest[0])))
            except ValueError:
                self._json(400, {"error": "not a number of seconds"})
                return
            owner._stopping.wait(seconds)
            if owner._stopping.is_set():
                self.close_connection = True
                return
            self._json(200, {"slept": seconds})
        elif head == "big" and len(rest) == 1 and rest[0].isdigit():
            n = int(rest[0])
            char = query.get("char") or "x"
            char = char if isinstance(char, str) else char[0]
            unit = char.encode("utf-8")
            data = (unit * (n // len(unit) + 1))[:n]
            self._send(200, data, "text/plain; charset=utf-8")
        elif path == "/redirect":
            self._send(
                302, b'{"redirect": "' + REDIRECT_TO.encode() + b'"}', headers={"Location": REDIRECT_TO}
            )
        elif path == "/headers":
            self._json(200, headers)
        elif head == "orders" and len(rest) == 1 and rest[0]:
            self._json(200, {"order_id": unquote(rest[0]), "status": "shipped"})
        else:
            self._json(404, {"error": "not found", "target": target})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route


class ToolServer(BackgroundServer):
    """HTTP tool server on 127.0.0.1 (free port by default); see the module docstring."""

    handler = _Handler

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._requests: list[ToolRequest] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def requests(self) -> list[ToolRequest]:
        with self._lock:
            return list(self._requests)

    def find(self, text: str) -> list[ToolRequest]:
        """Requests whose raw target, header values or body contain ``text``."""
        needle = text.encode("utf-8")
        with self._lock:
            return [
                r
                for r in self._requests
                if text in r.target or any(text in v for v in r.headers.values()) or needle in r.body
            ]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def _append(self, rec: ToolRequest) -> None:
        with self._lock:
            self._requests.append(rec)
