"""The local HTTP front every target shares: threaded HTTP/1.1 on 127.0.0.1, streaming bodies,
the platform's timeout enforced with the platform's status, JSON errors only (never a traceback)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "proxy-authenticate", "proxy-authorization", "content-length"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: 405, as the apps answer
MAX_LINE = 65536  # the longest request line, header line or chunk-size line read
MAX_TRAILERS = 100
FIELD_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\0]*\r?\n")
DIGITS = re.compile(r"[0-9]{1,18}")
HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
LINGER = 2.0  # seconds spent draining a body left unread after the answer
GRACE = 10.0  # seconds the requests in flight get when the server stops (Cloud Run's SIGTERM grace)
STOP_POLL = 0.05


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


@dataclass(frozen=True)
class BodyLimit:
    """A platform's request-body limit and its 413 message."""

    size: int  # bytes
    error: str


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": message}).encode()
    return Response(status, {"Content-Type": "application/json", **(headers or {})}, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    body_limit: BodyLimit | None = None
    always: dict[str, str] = {}  # fields sent with every answer, the front's own refusals included

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.closing = False  # set by Front.close: answer what is in flight, keep no connection open
        self.in_flight = 0
        self.idle = threading.Condition()

    def handle_error(self, request, client_address) -> None:  # a client hanging up is not our error
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Reject(Exception):
    """A request the front answers itself, with a JSON error, and then closes the connection."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.response = json_error(status, message, headers)


class _Recorder:
    """The handler's rfile, keeping the lines read through it (the header section, before the
    email parser folds them): a bare CR or a malformed field line is visible only there."""

    def __init__(self, rfile):
        self._rfile = rfile
        self.lines: list[bytes] = []

    def readline(self, size: int = -1) -> bytes:
        line = self._rfile.readline(size)
        self.lines.append(line)
        return line


def check_fields(lines: list[bytes]) -> str | None:
    """Why a header section breaks RFC 9112 5 (field name a token, no space before the colon, no
    obs-fold, no CR/LF/NUL inside a value), or None when it is well formed."""
    for line in lines:
        if line in (b"\r\n", b"\n", b""):
            break
        if not FIELD_LINE.fullmatch(line):
            return "malformed header field"
    return None


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agent-local"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server: _Server
    _linger = False  # the answer went out before the body was read: drain it before closing
    _continue = False  # the client waits for "100 Continue" before it sends the body
    _framing: int | None = 0  # the body's Content-Length, or None for chunked

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.server.log:  # type: ignore[attr-defined]
            target = "".join(c if c.isprintable() else "?" for c in (getattr(self, "path", "") or "-")[:200])
            sys.stderr.write(f"{self.command or '-'} {target} -> {code}\n")

    def log_message(self, format: str, *args) -> None:
        pass  # every answer is logged by log_request; a malformed request is answered, not logged twice

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's answers to an unparsable request line or header section, as JSON."""
        self.close_connection = self._linger = True
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):  # else the status line is left out (HTTP/0.9)
            self.request_version = "HTTP/1.1"
        self._write(json_error(code, (message or self.responses.get(code, ("bad request",))[0])[:200]))

    def handle_expect_100(self) -> bool:
        self._continue = True  # sent once the framing and size are known to be acceptable
        return True

    def parse_request(self) -> bool:
        self.command, self.request_version = None, "HTTP/1.1"  # for the answer to an unusable request line
        if len(self.raw_requestline.split()) != 3:  # method, target, version: no HTTP/0.9, no stray bytes
            self.send_error(400, "malformed request line")
            return False
        recorder = _Recorder(self.rfile)
        self.rfile, rfile = recorder, self.rfile  # type: ignore[assignment]
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = rfile
        problem = check_fields(recorder.lines)
        if not problem and self.request_version != "HTTP/1.0" and len(self.headers.get_all("Host") or []) != 1:
            problem = "an HTTP/1.1 request carries exactly one Host header field"
        if problem:
            self.send_error(400, problem)
            return False
        return True

    def handle_one_request(self) -> None:
        """One request: its line and header section parsed and checked, its method known, its body
        framed (RFC 9112 6) and within the platform's limit, before the app sees anything."""
        self._continue = False
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
            if len(self.raw_requestline) > MAX_LINE:
                self.requestline = self.request_version = ""
                self.command = None
                self.send_error(414, "the request line is too long")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            try:
                if self.command not in METHODS:
                    raise _Reject(405, "method not allowed; use POST", {"Allow": "POST, OPTIONS"})
                self._framing = self._check_framing()
                if self._continue:
                    super().handle_expect_100()
                if self.server.closing:
                    self.close_connection = True
                self._dispatch()
            except _Reject as reject:
                self.close_connection = self._linger = True
                self._write(reject.response)
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def _check_framing(self) -> int | None:
        """The body's length (None: chunked), or _Reject: one Transfer-Encoding ending in chunked
        or one Content-Length of digits, never both; a length past the platform's limit is a 413."""
        codings = [c.strip().lower() for c in ",".join(self.headers.get_all("Transfer-Encoding") or []).split(",")]
        lengths = self.headers.get_all("Content-Length") or []
        if codings != [""]:
            if lengths:
                raise _Reject(400, "a request may not carry both Transfer-Encoding and Content-Length")
            if codings[-1] != "chunked":
                raise _Reject(400, "Transfer-Encoding must end with chunked")
            if codings.count("chunked") > 1:
                raise _Reject(400, "chunked may be applied to a request body only once")
            if len(codings) > 1:
                raise _Reject(501, f"transfer coding {codings[0][:40]!r} is not supported")
            return None
        if len(lengths) > 1:
            raise _Reject(400, "a request may carry only one Content-Length")
        value = lengths[0].strip() if lengths else "0"
        if not DIGITS.fullmatch(value):
            raise _Reject(400, "Content-Length is not a number")
        length = int(value)
        self._over_limit(length)
        return length

    def _over_limit(self, size: int) -> None:
        limit = self.server.body_limit
        if limit is not None and size > limit.size:
            raise _Reject(413, limit.error)

    def _read_exactly(self, size: int) -> bytes:
        parts = []
        while size > 0:  # in pieces: a huge length is never one allocation
            piece = self.rfile.read(min(size, 1 << 20))
            if not piece:
                raise _Reject(400, "the request body ended early")
            parts.append(piece)
            size -= len(piece)
        return b"".join(parts)

    def _read_body(self) -> bytes:
        if self._framing is not None:
            return self._read_exactly(self._framing)
        parts, total = [], 0
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            size = line.split(b";", 1)[0].strip(b" \t\r\n")
            if not line.endswith(b"\n") or not HEX.fullmatch(size):
                raise _Reject(400, "malformed chunk size in the request body")
            total += int(size, 16)
            self._over_limit(total)
            if size.strip(b"0") == b"":
                break
            parts.append(self._read_exactly(int(size, 16)))
            if self.rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n"):
                raise _Reject(400, "a chunk of the request body does not end with CRLF")
        for _ in range(MAX_TRAILERS):  # trailer fields, read and dropped
            line = self.rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not line.endswith(b"\n") or not FIELD_LINE.fullmatch(line):
                break
        raise _Reject(400, "malformed trailer section in the request body")

    def _dispatch(self) -> None:
        with self.server.idle:
            self.server.in_flight += 1
        try:
            body = self._read_body()
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
        finally:
            with self.server.idle:
                self.server.in_flight -= 1
                self.server.idle.notify_all()

    def _write(self, response: Response) -> None:
        """Send a response: one Server and one Date (the app's when it set them), and a body only
        where HTTP allows one (none for HEAD, 1xx, 204, 304; a 204 has no Content-Length either)."""
        self.log_request(response.status)
        self.send_response_only(response.status)
        sent = set()
        given = {name.lower() for name in response.headers}  # the handler's field wins, however it spells it
        always = {name: value for name, value in self.server.always.items() if name.lower() not in given}
        for name, value in {**always, **response.headers}.items():
            if name.lower() not in HOP_BY_HOP:
                sent.add(name.lower())
                for one in value if isinstance(value, (list, tuple)) else (value,):  # a list: one line each
                    self.send_header(name, one)
        if "server" not in sent:
            self.send_header("Server", self.version_string())
        if "date" not in sent:
            self.send_header("Date", self.date_time_string())
        bodiless = response.status in (204, 304) or response.status < 200
        streamed = not isinstance(response.body, (bytes, bytearray))
        if streamed and self.request_version == "HTTP/1.0":  # no chunked coding before 1.1: the close ends it
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0":  # it asked to keep the connection: say it stays open
            self.send_header("Connection", "keep-alive")
        try:
            if bodiless or self.command == "HEAD":
                length = _header(response.headers, "content-length") or (
                    None if streamed else str(len(response.body)))
                if not bodiless and length is not None:  # a HEAD answer tells the length a GET would have
                    self.send_header("Content-Length", length)
                self.end_headers()
            elif not streamed:
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
            elif self.request_version == "HTTP/1.0":
                self.end_headers()
                for chunk in response.body:
                    self.wfile.write(chunk)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in response.body:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(response.body, "close", None)
            if close:
                close()

    def finish(self) -> None:
        super().finish()
        if self._linger:  # closing with unread input sends a reset, which can destroy the answer in flight
            try:
                self.connection.shutdown(socket.SHUT_WR)
                end = time.monotonic() + LINGER
                while time.monotonic() < end:
                    self.connection.settimeout(max(0.01, end - time.monotonic()))
                    if not self.connection.recv(1 << 16):
                        break
            except OSError:
                pass


def _header(headers: dict[str, str | list[str]], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value if isinstance(value, str) else value[0]
    return None


class Front:
    """Serve `handler` on host:port in a background thread. With a `body_limit`, a larger request
    body is answered 413 as soon as its size is known, without reading the rest. `always`: header
    fields every answer carries (the handler's own value wins), the front's 400s and 413s included."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, log: bool = False,
                 body_limit: BodyLimit | None = None, always: dict[str, str] | None = None):
        self._server = _Server((host, port), _RequestHandler)
        self._server.handler = handler  # type: ignore[attr-defined]
        self._server.log = log  # type: ignore[attr-defined]
        self._server.body_limit = body_limit
        self._server.always = dict(always or {})
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.stopping = threading.Event()  # set once the grace period of close() is over

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Front:
        self._thread.start()
        return self

    def close(self, grace: float = GRACE) -> None:
        """Stop accepting connections, then give the requests in flight up to `grace` seconds to be
        answered (as a platform drains an instance it stops) before `stopping` is set."""
        self._server.closing = True
        self._server.shutdown()
        self._server.server_close()
        end = time.monotonic() + grace
        with self._server.idle:
            while self._server.in_flight and (left := end - time.monotonic()) > 0:
                self._server.idle.wait(left)
        self.stopping.set()


def with_deadline(call: Callable[[], Response], seconds: float, on_timeout: Callable[[], Response],
                  on_error: Callable[[BaseException], Response],
                  stopping: threading.Event | None = None, on_stop: Callable[[], Response] | None = None) -> Response:
    """Run `call` in a worker thread; past `seconds`, answer `on_timeout()` as the platform would
    (the worker is abandoned, like an invocation the platform has cut off). An exception is
    answered `on_error(exc)`; once `stopping` is set, `on_stop()` (the host shut down)."""
    box: list[Response] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(call())
        except Exception as exc:  # reported as the platform reports an unhandled exception
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    end = time.monotonic() + seconds
    while not done.wait(min(STOP_POLL, max(0.0, end - time.monotonic()))):
        if time.monotonic() >= end:
            return on_timeout()
        if stopping is not None and on_stop is not None and stopping.is_set():
            return on_stop()
    return box[0] if box else on_error(failed[0])


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
    out_headers = {k: v for k, v in upstream.getheaders()
                   if k.lower() not in HOP_BY_HOP or (k.lower() == "content-length" and request.method == "HEAD")}
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
