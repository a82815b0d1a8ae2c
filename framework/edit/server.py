"""agenthost edit: the editor's local HTTP server (the contract: /work/briefs/editor_contract.md, kept
in docs as the README's "edit").

It is the local front every runner uses (framework/local/http.py: threaded HTTP/1.1 on 127.0.0.1,
413 before an oversized body is read, JSON errors, never a traceback) with the editor's own checks
in front of every route: the Host header (no DNS rebinding), the token (from the URL once, then a
SameSite=Strict cookie), and for the API also the X-Agenthost-Token header and the Origin (no
cross-site request). Validation is `validate`'s own, on the text in memory; saving is an atomic
write of the one agent file, then `build` as the command runs it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.cookies
import io
import json
import os
import re
import secrets
import tempfile
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framework import commands, project
from framework.config import load
from framework.config.secrets import has_bare_hex_key, redact
from framework.config.validate import validate_stages
from framework.edit import document
from framework.edit.chat import TryIt
from framework.errors import ConfigError, ExitCode, FrameworkError, MissingKeyError, Problem, StaleError, UsageError
from framework.local.http import BodyLimit, Front, Request, Response
from framework.platforms import registry
from framework.report import TextReporter
from framework.schema import schema

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "agenthost_editor"  # + "_PORT": browsers share cookies across ports (RFC 6265 §8.5), editors must not
MAX_BODY = 1 << 20
OUTPUT = "generated"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".json": "application/json", ".map": "application/json", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8"}
_SECURITY = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_FORBIDDEN_PAGE = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>agenthost edit</title>"
                   "</head><body><p>Open the address agenthost edit printed.</p></body></html>")
_LABEL_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


# ---- findings -------------------------------------------------------------------------------------------

def _path_of(label: str, known: dict[str, tuple]) -> list[str | int]:
    """A message's setting (`targets.azure.timeout`, `cors.origins[0]`) as a path; [] for the file."""
    if label.startswith("("):
        return []
    if label in known:
        return list(known[label])
    return [int(index) if index else name for index, name in _LABEL_PART.findall(label)]


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def finding(problem: Problem, known: dict[str, tuple]) -> dict[str, Any]:
    path = _path_of(problem.path, known)
    return {"severity": problem.severity, "message": problem.message, "path": path, "pointer": _pointer(path),
            "line": problem.line, "column": problem.col}


def check(text: str, file: str) -> tuple[Any, list[dict[str, Any]]]:
    """The data the framework reads from text (None when it does not parse) and the findings
    `validate` would print for it, the agent and every stage checked."""
    try:
        doc = load.parse(text, file=file)
    except ConfigError as error:
        return None, [finding(p, {}) for p in error.problems]
    known = {load.format_path(path): path for path in (*doc.values, *doc.keys)}
    try:
        problems: list[Problem] = []
        for validated in validate_stages(doc):  # each warning once, as `validate` prints them
            problems += [w for w in validated.warnings if w not in problems]
    except ConfigError as error:
        problems = error.problems
    return doc.data, [finding(p, known) for p in problems]


def listed_targets(data: Any) -> list[str]:
    targets = data.get("targets") if isinstance(data, dict) else None
    return [name for name in registry.names() if isinstance(targets, dict) and name in targets]


def _redacted(value: Any, hex_runs: bool) -> Any:
    """Every text of a response, keys included, with whatever looks like a secret replaced."""
    if isinstance(value, str):
        return redact(value, hex_runs=hex_runs)
    if isinstance(value, dict):
        return {_redacted(key, hex_runs): _redacted(item, hex_runs) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, hex_runs) for item in value]
    return value


def _json(status: int, body: dict[str, Any]) -> Response:
    """The page never gets a secret back. A run of hex digits (a digest in a comment, a Key Vault
    version) is one only when validate takes a whole value for a key, else the text comes back as sent:
    the page saves what it shows."""
    data = body.get("data")
    hex_runs = data is None or has_bare_hex_key(data)
    shown = {key: value if key == "base" else _redacted(value, hex_runs) for key, value in body.items()}
    return Response(status, {"Content-Type": "application/json"}, json.dumps(shown, ensure_ascii=False).encode())


def base_of(text: str) -> str:
    """The version of the file a page loaded (sha256 of its text): Save compares it with the file on
    disk, so a page loaded before someone else's edit cannot overwrite that edit."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Refused(Exception):
    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


# ---- the editor ----------------------------------------------------------------------------------------

class Editor:
    """One agent file, its build, its try-it runtimes, behind the editor's checks."""

    def __init__(self, file: str, files: list[str], token: str):
        self.file = file
        self.files = files  # every agent file of the repository: where each one's build goes
        self.token = token
        self.port = 0  # set once the server listens
        self._save_lock = threading.Lock()
        self.try_it = TryIt(file, self._save_lock)

    # -- checks --
    def _hosts(self) -> tuple[str, str]:
        return f"127.0.0.1:{self.port}", f"localhost:{self.port}"

    def _good(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    def _cookie(self, request: Request) -> str | None:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(request.headers.get("cookie", ""))
        except http.cookies.CookieError:
            return None
        name = self._cookie_name()
        return jar[name].value if name in jar else None

    def _cookie_name(self) -> str:
        return f"{COOKIE}_{self.port}"

    def handle(self, request: Request) -> Response:
        """Every answer; the front adds _SECURITY's fields to each, its own refusals (413, 400) included."""
        response = self._route(request)
        if str(response.headers.get("Content-Type", "")).startswith("text/html"):
            response.headers["Content-Security-Policy"] = CSP
        return response

    def _route(self, request: Request) -> Response:
        if request.headers.get("host") not in self._hosts():
            return _json(403, {"error": "this editor answers only at the address agenthost edit printed"})
        url = urllib.parse.urlsplit(request.path)
        if url.path == "/" and request.method in ("GET", "HEAD"):
            query = urllib.parse.parse_qs(url.query)
            if "token" in query:
                if not self._good(query["token"][0]):
                    return Response(403, {"Content-Type": "text/html; charset=utf-8"}, _FORBIDDEN_PAGE.encode())
                return Response(303, {"Location": "/", "Set-Cookie": f"{self._cookie_name()}={self.token}; HttpOnly; "
                                                                     "SameSite=Strict; Path=/"})
        if not self._good(self._cookie(request)):
            if url.path.startswith("/api/"):
                return _json(403, {"error": "open the address agenthost edit printed"})
            return Response(403, {"Content-Type": "text/html; charset=utf-8"}, _FORBIDDEN_PAGE.encode())
        if url.path == "/" and request.method in ("GET", "HEAD"):
            page = (STATIC / "index.html").read_text(encoding="utf-8")
            page = page.replace('<meta name="agenthost-token" content="{{TOKEN}}">',
                                f'<meta name="agenthost-token" content="{self.token}">', 1)
            return Response(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())
        if url.path.startswith("/static/") and request.method in ("GET", "HEAD"):
            return self._static(urllib.parse.unquote(url.path[len("/static/"):]))
        if url.path.startswith("/api/"):
            return self._api(request, url.path)
        return _json(404, {"error": "no such page"})

    def _static(self, rel: str) -> Response:
        parts = rel.split("/")
        missing = _json(404, {"error": "no such file"})
        if not rel or any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
            return missing
        path = STATIC.joinpath(*parts)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return missing
        if not real.is_relative_to(STATIC) or not real.is_file():
            return missing
        kind = _TYPES.get(real.suffix.lower(), "text/plain; charset=utf-8" if real.name.isupper()
                          else "application/octet-stream")
        return Response(200, {"Content-Type": kind}, real.read_bytes())

    def _api(self, request: Request, path: str) -> Response:
        if not self._good(request.headers.get("x-agenthost-token")):
            return _json(403, {"error": "the X-Agenthost-Token header is missing or wrong"})
        origin = request.headers.get("origin")
        if origin is not None and origin not in tuple(f"http://{host}" for host in self._hosts()):
            return _json(403, {"error": "requests from other sites are refused"})
        routes: dict[tuple[str, str], Callable[[dict], Response]] = {
            ("GET", "/api/state"): lambda _: self.state(), ("POST", "/api/text"): self.text,
            ("POST", "/api/form"): self.form, ("POST", "/api/save"): self.save, ("POST", "/api/chat"): self.chat}
        route = routes.get((request.method, path))
        if route is None:
            return _json(404, {"error": f"no such route: {request.method} {path}"})
        body: dict = {}
        if request.method == "POST":
            try:
                body = json.loads(request.body or b"null")
            except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
                return _json(400, {"error": f"the request body is not JSON: {error}"})
            if not isinstance(body, dict):
                return _json(400, {"error": "the request body must be a JSON object"})
        try:
            return route(body)
        except _Refused as refused:
            return refused.response

    @staticmethod
    def _text(body: dict, name: str = "text") -> str:
        value = body.get(name)
        if not isinstance(value, str):
            raise _Refused(_json(400, {"error": f"{name!r} must be a string"}))
        return value

    def _checked(self, text: str) -> dict[str, Any]:
        data, findings = check(text, self.file)
        return {"text": text, "data": None if data is None else document.jsonable(data), "findings": findings,
                "ok": data is not None and not any(f["severity"] == "error" for f in findings),
                "targets": listed_targets(data)}

    def _key_name(self, data: Any) -> str:
        name = data.get("api_key_env") if isinstance(data, dict) else None
        return name if isinstance(name, str) and name else schema()["properties"]["api_key_env"]["default"]

    # -- routes --
    def state(self) -> Response:
        text = _read(Path(self.file))
        if text is None:
            return _json(409, {"error": f"{Path(self.file).name} cannot be read any more (moved, or not UTF-8)"})
        checked = self._checked(text)
        key = self._key_name(checked["data"])
        return _json(200, {"file": self.file, **checked, "base": base_of(text), "schema": schema(),
                           "platforms": list(registry.names()), "model_key": bool(os.environ.get(key)),
                           "model_key_name": key})

    def text(self, body: dict) -> Response:
        return _json(200, self._checked(self._text(body)))

    def form(self, body: dict) -> Response:
        text, data = self._text(body), body.get("data")
        if not isinstance(data, dict):
            return _json(400, {"error": "'data' must be an object (the form's values)"})
        try:
            merged = document.merge(text, data)
        except ConfigError as error:
            first = error.problems[0]
            return _json(409, {"error": f"Fix the YAML first: line {first.line}: {first.message}",
                               "findings": [finding(p, {}) for p in error.problems]})
        return _json(200, self._checked(merged))

    def save(self, body: dict) -> Response:
        text, base = self._text(body), self._text(body, "base")
        checked = self._checked(text)
        errors = [f for f in checked["findings"] if f["severity"] == "error"]
        if errors or checked["data"] is None:
            count = len(errors) or 1
            return _json(422, {"error": f"Not saved: {count} problem{'s' if count != 1 else ''} to fix first.",
                               "findings": checked["findings"], "ok": False})
        path = Path(self.file)
        with self._save_lock:
            on_disk = _read(path)
            if on_disk is None or base_of(on_disk) != base:  # edited, or removed, since this page loaded it
                return _json(409, {"error": f"{path.name} changed on disk since the editor loaded it; reload",
                                   "findings": checked["findings"], "ok": False})
            try:
                _write_atomically(path.resolve(), text)  # a symlinked agent file stays a link to the new text
            except OSError as error:
                return _json(500, {"error": f"Not saved: {path.name} cannot be written ({error.strerror}); "
                                            "nothing was changed", "findings": checked["findings"], "ok": False})
            self.try_it.stop()
            try:
                changed = self._build()
            except FrameworkError as error:  # another agent's file stops the build: say which
                detail = error.problems[0] if isinstance(error, ConfigError) else None
                where = f" ({detail.file}:{detail.line}: {detail.message})" if detail else f" ({error})"
                return _json(500, {"error": f"Saved, but the build failed{where}", "saved": True,
                                   "findings": checked["findings"], "ok": False})
        return _json(200, {"saved": True, "text": text, "data": checked["data"], "findings": checked["findings"],
                           "ok": True, "changed": changed, "base": base_of(text)})

    def _units(self) -> list[project.Unit]:
        units = project.units(self.files, OUTPUT, every_stage=True)
        return [unit for unit in units if unit.file == self.file]

    def _build(self) -> list[str]:
        """`agenthost build` of this agent (every stage); the files it changed (what `build --check`
        lists first), relative to the agent file's folder."""
        units = self._units()
        quiet = TextReporter(io.StringIO(), io.StringIO())
        try:
            commands.build(units, None, True, quiet)
            stale: list[str] = []
        except StaleError as error:
            stale = [line.split(maxsplit=1)[1] for line in error.details]  # "changed   aws/app.py"
        commands.build(units, None, False, quiet)
        root, base = units[0].root.resolve(), Path(self.file).resolve().parent
        return sorted({os.path.relpath(root / path, base) for path in stale})

    def _output(self) -> str:
        """Where the saved agent (as written, no stage) is built."""
        return str(next(unit.output for unit in self._units() if unit.stage is None))

    def chat(self, body: dict) -> Response:
        target, message = body.get("target"), body.get("message")
        saved, _ = check(_read(Path(self.file)) or "", self.file)
        if target not in listed_targets(saved):
            return _json(400, {"error": f"target {target!r} is not in the saved {Path(self.file).name} "
                                        f"(it lists: {', '.join(listed_targets(saved))})"})
        if not isinstance(message, str) or not message.strip():
            return _json(400, {"error": "write a message first"})
        key = self._key_name(saved)
        if not os.environ.get(key):
            return _no_key(key)
        try:
            status, chunks = self.try_it.stream(target, self._output(), message)
        except ConfigError as error:
            return _json(409, {"error": "Try it runs the saved agent file, which has problems: fix and save it",
                               "findings": [finding(p, {}) for p in error.problems]})
        except MissingKeyError:
            return _no_key(key)
        except (FrameworkError, OSError) as error:
            return _json(502, {"error": f"the local runtime of {target} did not start: {error}"})
        return Response(200, {"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}, chunks)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _no_key(key: str) -> Response:
    return _json(503, {"error": f"Try it needs {key} in the environment agenthost edit runs in: "
                                "set it and start the editor again."})


def _write_atomically(path: Path, text: str) -> None:
    """A temporary file beside it, its mode kept, then os.replace: a reader sees the old file or the new."""
    mode = path.stat().st_mode & 0o7777
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# ---- the command ---------------------------------------------------------------------------------------

def _choose(files: list[str], agents: list[str]) -> str:
    """The one agent file to edit: the only one, or the one whose name: --agent gives (read leniently:
    the file may well have problems, that is what the editor is for)."""
    if not agents:
        if len(files) != 1:
            raise UsageError(f"edit works on one agent file; choose one with --agent or -f ({', '.join(files)})")
        return files[0]
    named = {}
    for file in files:
        try:
            data = load.load(file).data
        except ConfigError:
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            named[data["name"]] = file
    chosen = [named[name] for name in agents if name in named]
    if len(agents) != 1 or not chosen:
        raise UsageError(f"--agent: name one agent of {', '.join(sorted(named)) or ', '.join(files)}")
    return chosen[0]


def edit_command(patterns: list[str], agents: list[str], port: int, browser: bool,
                 reporter: TextReporter) -> ExitCode:
    """Serve the editor until Ctrl-C or SIGTERM."""
    import signal
    import webbrowser

    files = project.agent_files(patterns)
    file = _choose(files, agents)
    if not Path(file).is_file():
        raise UsageError(f"{file}: no such file; write one with `agenthost init`")
    if _read(Path(file)) is None:
        raise UsageError(f"{file}: cannot be read as UTF-8 text; save it as UTF-8 and make it readable")
    editor = Editor(file, files, secrets.token_hex(24))
    try:
        front = Front(editor.handle, "127.0.0.1", port, body_limit=BodyLimit(
            MAX_BODY, f"the request body is larger than {MAX_BODY // (1 << 20)} MiB"), always=_SECURITY).start()
    except OSError as error:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}; choose another --port") from None
    editor.port = front.port
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # before the address is out: a caller may stop us at once
    url = f"http://127.0.0.1:{front.port}/?token={editor.token}"
    reporter.result([f"Editing {file} at {url}"], None)
    if browser:
        webbrowser.open(url)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        front.close(grace=2)
        editor.try_it.stop()
    return ExitCode.OK
