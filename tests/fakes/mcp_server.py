"""An MCP server from the official MCP Python SDK (``mcp`` 2.x), over the
Streamable HTTP transport, for the tests of the runtimes' MCP client.

Usage::

    from tests.fakes.mcp_server import McpServer

    with McpServer() as mcp:                 # json_response=False, require_token=None, stateless=False
        mcp.url              # "http://127.0.0.1:PORT/mcp"
        mcp.requests         # snapshot list[McpRequest]: every HTTP request, its headers, body and status
        mcp.calls            # snapshot list[ToolCallRecord]: every tool call (name, arguments)
        mcp.methods()        # JSON-RPC methods received, in order ("initialize", "notifications/initialized", ...)
        mcp.forget_sessions()  # end every session: the next request with an old Mcp-Session-Id gets 404
        mcp.clear()

The server is ``mcp.server.mcpserver.MCPServer`` (FastMCP's successor in SDK 2.x)
served by uvicorn in a background thread with its own event loop. Tools:

* ``search_docs(query: str) -> str``: ``results for "<query>": page 1, page 2``
* ``get_page(page_id: int) -> str``: ``page <page_id>: the text of page <page_id>``
* ``fail_tool()``: raises; the SDK answers a result with ``isError: true`` and
  the text ``Error executing tool fail_tool: fail_tool failed on purpose``
* ``slow_tool(seconds: float) -> str``: sleeps (cancelled when the server stops), ``slept <seconds>``
* ``big_tool(n: int) -> str``: ``n`` characters of ``x``

``json_response=True`` answers POSTs with ``application/json``; the SDK's
default is SSE (``text/event-stream``). ``stateless=True``: no ``Mcp-Session-Id``.
``require_token="abc"``: any request without ``Authorization: Bearer abc`` gets
401 (JSON body, ``WWW-Authenticate: Bearer``) before it reaches the SDK.

Facts about the SDK's server (mcp 2.3.0), found in its source:

* protocol versions reachable with ``initialize``: ``HANDSHAKE_PROTOCOL_VERSIONS``
  = 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25 (``LATEST_HANDSHAKE_VERSION``
  = 2025-11-25; ``LATEST_PROTOCOL_VERSION`` = 2026-07-28, the stateless
  "modern" era with a per-request envelope and no ``initialize``; a request whose
  ``MCP-Protocol-Version`` header is not a handshake version goes to that modern
  handler). ``initialize`` with an unknown version is answered with the server's
  latest handshake version.
* a POST must send ``Accept`` with both ``application/json`` and
  ``text/event-stream`` (only ``application/json`` when json_response): else 406;
  ``Content-Type: application/json``: else 415.
* an SSE answer is ``event: message`` + ``data: <the JSON-RPC response>`` (no
  priming event: no event store is configured), then the stream ends.
* a notification (or a response) gets 202 with an empty body.
* after ``initialize``, ``MCP-Protocol-Version`` may be absent or any handshake
  version; any other value (``2026-07-28`` included) gets 400 (the modern-era
  handler wants a per-request ``_meta`` envelope).
* an unknown or ended session id (after ``DELETE`` or ``forget_sessions()``):
  404 (JSON-RPC error body, "Session not found"); a request without a session
  id that is not ``initialize``: 400.
* the SDK refuses a ``Host`` outside 127.0.0.1 / localhost / [::1] (DNS
  rebinding protection, on by default for a loopback host).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

__all__ = ["McpRequest", "McpServer", "ToolCallRecord"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class McpRequest:
    """One HTTP request the MCP server received."""

    method: str  # HTTP method
    path: str
    headers: dict[str, str]  # lower-case keys
    body: bytes
    status: int | None  # the status answered (None while unanswered, or if none was sent)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def rpc_method(self) -> str | None:
        """The JSON-RPC method of the body (None for a GET, DELETE or a response)."""
        data = self.json
        return data.get("method") if isinstance(data, dict) else None


@dataclass(frozen=True)
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]


def _build_server(owner: McpServer) -> MCPServer:
    server = MCPServer("test-mcp", version="1.0", log_level="WARNING")

    @server.tool(description="Search the documentation.")
    async def search_docs(query: str) -> str:
        owner._called("search_docs", {"query": query})
        return f'results for "{query}": page 1, page 2'

    @server.tool(description="Get one page of the documentation by its number.")
    async def get_page(page_id: int) -> str:
        owner._called("get_page", {"page_id": page_id})
        return f"page {page_id}: the text of page {page_id}"

    @server.tool(description="Always fails.")
    async def fail_tool() -> str:
        owner._called("fail_tool", {})
        raise ToolError("fail_tool failed on purpose")

    @server.tool(description="Sleeps, then answers.")
    async def slow_tool(seconds: float) -> str:
        owner._called("slow_tool", {"seconds": seconds})
        await anyio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Answers n characters.")
    async def big_tool(n: int) -> str:
        owner._called("big_tool", {"n": n})
        return "x" * n

    return server


class _Recorder:
    """ASGI middleware: records every HTTP request and answers 401 without the token."""

    def __init__(self, app: Any, owner: McpServer) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            k, v = key.decode("latin-1").lower(), value.decode("latin-1")
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        chunks: list[bytes] = []

        # the body is read here in full, then replayed to the app
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        rec = self.owner._append(McpRequest(scope["method"], scope["path"], headers, body, None))

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.owner._set_status(rec, int(message["status"]))
            await send(message)

        token = self.owner.require_token
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            payload = json.dumps({"error": "unauthorized"}).encode()
            await watch(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        await self.app(scope, replay, watch)


class McpServer:
    """The SDK's MCP server over Streamable HTTP on 127.0.0.1 (a free port)."""

    def __init__(
        self,
        json_response: bool = False,
        require_token: str | None = None,
        stateless: bool = False,
    ) -> None:
        self.json_response = json_response
        self.require_token = require_token
        self.stateless = stateless
        self._lock = threading.Lock()
        self._requests: list[McpRequest] = []
        self._calls: list[ToolCallRecord] = []
        self._mcp: MCPServer | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._failure: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 15.0) -> Self:
        if self._thread is not None:
            return self
        self._mcp = _build_server(self)
        app = self._mcp.streamable_http_app(
            json_response=self.json_response,
            stateless_http=self.stateless,
            host=HOST,
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            _Recorder(app, self),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._uvicorn = server

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                self._failure = exc
            finally:
                pending = asyncio.all_tasks(loop)  # e.g. sse-starlette's shutdown watchers
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                sock.close()
                loop.close()

        self._thread = threading.Thread(target=run, name=f"McpServer:{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the MCP server did not start: {self._failure!r}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        server, thread = self._uvicorn, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # still draining: close the connections
            server.force_exit = True
            thread.join(timeout=5)
        self._uvicorn = self._thread = self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- accessors ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None or self._thread is None:
            raise RuntimeError("McpServer is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/mcp"

    @property
    def requests(self) -> list[McpRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> list[ToolCallRecord]:
        with self._lock:
            return list(self._calls)

    def methods(self) -> list[str]:
        """The JSON-RPC methods of the POSTs received, in order."""
        return [m for r in self.requests if (m := r.rpc_method) is not None]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._calls.clear()

    def session_ids(self) -> list[str]:
        """The ids of the sessions open now."""
        manager = self._session_manager()
        return list(manager._server_instances)

    def forget_sessions(self, timeout: float = 10.0) -> int:
        """End every open session (as an idle timeout would); return how many.
        A request carrying one of their ids gets 404 from then on."""
        manager = self._session_manager()
        if self._loop is None:
            raise RuntimeError("McpServer is not running")

        async def discard() -> int:
            sessions = list(manager._server_instances.items())
            for session_id, transport in sessions:
                await manager._discard_session(session_id, transport)
            return len(sessions)

        return asyncio.run_coroutine_threadsafe(discard(), self._loop).result(timeout)

    # -- internals ---------------------------------------------------------

    def _session_manager(self) -> Any:
        if self._mcp is None:
            raise RuntimeError("McpServer is not running")
        # SDK internals (mcp 2.3): StreamableHTTPSessionManager keeps the open
        # sessions in `_server_instances` and ends one with `_discard_session`.
        return self._mcp.session_manager

    def _append(self, rec: McpRequest) -> McpRequest:
        with self._lock:
            self._requests.append(rec)
        return rec

    def _set_status(self, rec: McpRequest, status: int | None) -> None:
        with self._lock:
            for i, old in enumerate(self._requests):
                if old is rec:
                    self._requests[i] = McpRequest(old.method, old.path, old.headers, old.body, status)
                    break

    def _called(self, name: str, arguments: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(ToolCallRecord(name, arguments))
