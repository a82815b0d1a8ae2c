"""A local upstream server run as a child process (functions-framework, the Edge harness)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from framework.errors import LocalRunError
from framework.local.base import LocalOptions
from framework.local.http import BodyLimit, Front, Request, Response, wait_for_port


def log_line(line: str) -> None:
    """One line to our stderr, for the local runtime's own notices; a closed stderr loses it quietly."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Child:
    """Start `command`, wait until it listens on `port`; its output goes to our stderr when `log`."""

    def __init__(self, command: list[str], port: int, env: dict[str, str], cwd: Path, log: bool,
                 what: str, startup: float = 60.0):
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._output: list[bytes] = []
        self._pump = threading.Thread(target=self._read, args=(log,), daemon=True)
        self._pump.start()
        if not wait_for_port(port, startup, lambda: self.proc.poll() is None):
            self.close()
            tail = b"".join(self._output)[-2000:].decode(errors="replace")
            raise LocalRunError(f"{what} did not start:\n{tail}")

    def _read(self, log: bool) -> None:
        for line in iter(self.proc.stdout.readline, b""):
            self._output.append(line)
            del self._output[:-200]
            if log:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ProxiedChild:
    """A local app that is a child process (the platform's own server) behind the front that
    enforces the platform's limits; `handle` forwards a request to the child."""

    def __init__(self, child: Child, handle: Callable[[Request], Response], options: LocalOptions,
                 body_limit: BodyLimit, path: str):
        self._child = child
        try:
            self._front = Front(handle, options.host, options.port, options.log, body_limit).start()
        except OSError as exc:
            child.close()
            raise LocalRunError(f"cannot listen on {options.host}:{options.port}: {exc.strerror}") from None
        self.url = f"http://{options.host}:{self._front.port}{path}"

    def close(self) -> None:
        self._front.close()
        self._child.close()
