"""The local HTTP front every target shares: threaded HTTP/1.1 on 127.0.0.1, streaming bodies,
the platform's timeout enforced with the platform's status, JSON errors only (never a traceback)."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "proxy-authenticate", "proxy-authorization", "content-length"})


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    status: int
    headers: dict[str, str | list[str]] = field(default_factory=dict)  # a list sends the field once per value
    body: bytes | Iterable[bytes] = b""


Handler = Callable[[Request], Response]


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": message}).encode()
    return Response(status, {"Content-Type": "application/json", **(headers or {})}, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:  # a client hanging up is not our error
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agent-local"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args) -> None:
        if self.server.log:  # type: ignore[attr-defined]
            sys.stderr.write(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():  # fetch/curl streaming uploads
            parts = []
            while size := int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)  # the CRLF that ends each chunk
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:  # a Content-Length or chunk size that is not a number
            self.close_connection = True
            self._write(json_error(400, "malformed request body framing"))
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():  # a repeated field is one comma-joined value (RFC 9110 5.3)
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request = Request(self.command, self.path, headers, body)
        try:
            response = self.server.handler(request)  # type: ignore[attr-defined]
        except Exception as exc:  # the front must answer, whatever the app did
            response = json_error(500, f"the local server failed: {type(exc).__name__}")
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() not in HOP_BY_HOP:
                for one in value if isinstance(value, (list, tuple)) else (value,):  # a list: one line each
                    self.send_header(name, one)
        if isinstance(response.body, (bytes, bytearray)):
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(response.body, "close", None)
            if close:
                close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch


class Front:
    """Serve `handler` on host:port in a background thread."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, log: bool = False):
        self._server = _Server((host, port), _RequestHandler)
        self._server.handler = handler  # type: ignore[attr-defined]
        self._server.log = log  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Front:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def with_deadline(call: Callable[[], Response], seconds: float, on_timeout: Callable[[], Response]) -> Response:
    """Run `call` in a worker thread; past `seconds`, answer `on_timeout()` as the platform would
    (the worker is abandoned, like an invocation the platform has cut off)."""
    box: list[Response] = []
    worker = threading.Thread(target=lambda: box.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    return box[0] if box else on_timeout()


def proxy(upstream_port: int, request: Request, path: str, timeout: float,
          on_timeout: Callable[[], Response], total: float | None = None) -> Response:
    """Forward a request to a local upstream server, streaming its answer back. The response must
    start within `timeout` seconds, else `on_timeout()`; a stream is cut at `total` (default: timeout)."""
    deadline = time.monotonic() + (timeout if total is None else total)
    conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=timeout)
    headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP and k != "host"}
    try:
        conn.request(request.method, path, body=request.body or None, headers=headers)
        upstream = conn.getresponse()
    except TimeoutError:
        conn.close()
        return on_timeout()
    except OSError:
        conn.close()
        return json_error(502, "the local app is not answering")
    out_headers = {k: v for k, v in upstream.getheaders() if k.lower() not in HOP_BY_HOP}
    if upstream.getheader("Content-Length") is not None:
        try:
            body = upstream.read()
        except TimeoutError:
            conn.close()
            return on_timeout()
        conn.close()
        return Response(upstream.status, out_headers, body)
    return Response(upstream.status, out_headers, _stream(conn, upstream, deadline))


def _stream(conn: http.client.HTTPConnection, upstream: http.client.HTTPResponse, deadline: float) -> Iterator[bytes]:
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return  # the platform cuts a stream that outlives the timeout
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            try:
                chunk = upstream.read1(65536)
            except TimeoutError:
                return
            if not chunk:
                return
            yield chunk
    finally:
        conn.close()


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool]) -> bool:
    """Wait until something accepts connections on 127.0.0.1:port, while `alive()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def upstream_port() -> int:
    """A free port for a child server we start, drawn below the kernel's ephemeral range (32768 and
    up on Linux), so that no port handed out by bind(0) elsewhere lands on it while the child starts."""
    import random

    for _ in range(100):
        port = random.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()
