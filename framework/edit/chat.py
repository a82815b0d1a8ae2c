"""Try it: the saved agent in a platform's local runtime, started as `serve` starts it (the same
prepare, model_environment, local_store and launch), one per target, on first use; stopped after
each save so the next message runs the new build. The answer is the runtime's AI SDK UI message
stream, passed through as it arrives; an app that answers JSON (an AWS agent without `stream: true`
streams nothing) is told as the same parts, in one text-delta."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from framework.local import session
from framework.local.base import LocalApp


@dataclass
class _Running:
    app: LocalApp
    stack: ExitStack  # the local session store, when the agent keeps sessions
    timeout: float


def _part(part: dict | str) -> bytes:
    return b"data: " + (part if isinstance(part, str) else json.dumps(part, ensure_ascii=False)).encode() + b"\n\n"


def parts_of_json(status: int, body: bytes) -> Iterator[bytes]:
    """A JSON answer as the UI message stream's parts: the answer in one text-delta and its tokens and
    steps, or an error part with the app's own sentence."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    yield _part({"type": "start"})
    if 200 <= status < 300 and isinstance(answer.get("response"), str):
        yield _part({"type": "start-step"})
        yield _part({"type": "text-start", "id": "text-1"})
        yield _part({"type": "text-delta", "id": "text-1", "delta": answer["response"]})
        yield _part({"type": "text-end", "id": "text-1"})
        yield _part({"type": "finish-step"})
        metadata = {key: answer[key] for key in ("tokens", "steps", "stopped") if key in answer}
        yield _part({"type": "finish", "messageMetadata": metadata})
    else:
        error = answer.get("error")
        text = error if isinstance(error, str) else (error or {}).get("message") if isinstance(error, dict) else None
        yield _part({"type": "error", "errorText": text or f"the agent answered HTTP {status}"})
    yield _part("[DONE]")


class TryIt:
    """The local runtimes of one agent file, by target."""

    def __init__(self, file: str, build_lock: threading.Lock):
        self.file = file
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._build_lock = build_lock  # the editor's save lock: one writer of generated/ at a time

    def _start(self, target: str, output: str) -> _Running:
        """The target's runtime, started once (the first message waits for it)."""
        with self._build_lock, self._lock:  # in the order a save takes them (it stops the runtimes)
            if target in self._running:
                return self._running[target]
            prepared = session.prepare(self.file, output, target)
            env = session.model_environment(prepared.agent)
            stack = ExitStack()
            try:
                app_env = stack.enter_context(session.local_store(prepared, env))
                app = session.launch(prepared, 0, app_env)
            except BaseException:
                stack.close()
                raise
            running = _Running(app, stack, float(prepared.settings.timeout) + 30)
            self._running[target] = running
            return running

    def stream(self, target: str, output: str, message: str) -> tuple[int, Iterator[bytes]]:
        """POST the message as the page's chat would (a stream, Accept: text/event-stream); the
        runtime's status and its UI message stream."""
        running = self._start(target, output)
        parts = urllib.parse.urlsplit(running.app.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=running.timeout)
        try:
            conn.request("POST", parts.path or "/", body=json.dumps({"message": message, "stream": True}).encode(),
                         headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
            response = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if "text/event-stream" not in (response.getheader("Content-Type") or ""):
            body = response.read()
            conn.close()
            return response.status, parts_of_json(response.status, body)

        def chunks() -> Iterator[bytes]:
            """The runtime's stream; cut short (the runtime stopped, timed out), it ends as a stream
            does, with an error part and [DONE], so the page is never left waiting."""
            try:
                while chunk := response.read1(65536):
                    yield chunk
            except (OSError, http.client.HTTPException):
                yield _part({"type": "error", "errorText": "the local runtime stopped answering"})
                yield _part("[DONE]")
            finally:
                conn.close()

        return response.status, chunks()

    def stop(self) -> None:
        """Stop every runtime (after a save: the next message starts the new build)."""
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for one in running:
            try:
                one.app.close()
            finally:
                one.stack.close()
