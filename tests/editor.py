"""`agenthost edit` started as a user types it, for the server's HTTP tests and the browser tests: the
sample agent (its comments are what saving must keep) built once into folder/generated, then
`python -m framework edit --no-browser --port 0` on it; the address is the first line it prints."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, build

URL_LINE = re.compile(r"Editing (?P<file>.+) at (?P<url>http://127\.0\.0\.1:(?P<port>\d+)/\?token=(?P<token>[0-9a-f]{48}))")


@dataclass
class Editor:
    """A running `agenthost edit`: its folder (the cwd: generated/ is there), agent file, process and first line."""

    folder: Path
    agent: Path
    process: subprocess.Popen
    line: str
    port: int
    token: str
    version: str = ""  # the file's version (`base`) the last load or save saw: tests that save load first

    @property
    def url(self) -> str:
        """The address it printed, with the token."""
        return f"{self.base}/?token={self.token}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ask(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            api: bool = True) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request as the page sends it (Host, cookie, token header), `headers` overriding;
        a None value leaves that field out."""
        fields = {"Host": f"127.0.0.1:{self.port}"}
        if api:
            fields |= {"Cookie": f"agenthost_editor_{self.port}={self.token}", "X-Agenthost-Token": self.token}
        if body is not None:
            fields["Content-Type"] = "application/json"
        fields |= headers or {}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in fields.items():
                if value is not None:
                    conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def post(self, path: str, data: object) -> tuple[int, dict]:
        status, _, body = self.ask("POST", path, json.dumps(data).encode())
        return status, json.loads(body)

    def load(self) -> dict:
        """GET /api/state as the page does when it opens; its `base` is what save sends."""
        status, _, body = self.ask("GET", "/api/state")
        assert status == 200, body
        state = json.loads(body)
        self.version = state["base"]
        return state

    def save(self, text: str) -> tuple[int, dict]:
        """POST /api/save as the page does: the text, and the version of the file it loaded or last saved."""
        status, answer = self.post("/api/save", {"text": text, "base": self.version})
        self.version = answer.get("base", self.version)
        return status, answer


def start_editor(folder: Path, env: dict[str, str | None]) -> Editor:
    """The editor on a copy of the sample agent in folder; `env` overrides os.environ (None: unset)."""
    folder.mkdir(parents=True, exist_ok=True)
    agent = folder / "agent.yaml"
    shutil.copyfile(ROOT / "agent.yaml", agent)
    assert build(agent, folder / "generated") == 0
    merged = {key: value for key, value in {**os.environ, **env}.items() if value is not None}
    process = subprocess.Popen([sys.executable, "-m", "framework", "edit", "--no-browser", "--port", "0",
                                "-f", str(agent)], cwd=folder, env=merged, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline().rstrip("\n")
    match = URL_LINE.fullmatch(line)
    if not match:
        process.kill()
        raise RuntimeError(f"agenthost edit did not start: {line}{process.stderr.read()}")
    return Editor(folder, agent, process, line, int(match["port"]), match["token"])


def stop(process: subprocess.Popen) -> int:
    """Stop it as Ctrl-C's sibling SIGTERM does; its exit code."""
    process.terminate()
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@contextmanager
def running_editor(folder: Path, env: dict[str, str | None]) -> Iterator[Editor]:
    editor = start_editor(folder, env)
    try:
        yield editor
    finally:
        stop(editor.process)
