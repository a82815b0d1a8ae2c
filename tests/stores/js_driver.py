"""The JavaScript stores (framework/runtime/js/sessions.mjs) behind the Python protocol, for the store
contract suite: one `node tests/js/store-driver.mjs` per test session answers every opened store's
requests, concurrently (requests carry an id; the answers come back as the operations finish, so eight
threads saving at once really race). Also the "redis" back-end: a real redis-server behind the
Upstash REST front of framework/local/stores/upstash_front.py.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "js" / "store-driver.mjs"
TIMEOUT_S = 30


class DriverFailed(RuntimeError):
    """The node driver died or answered something else than the protocol."""


class NodeDriver:
    """One node process running store-driver.mjs; call() is thread-safe and concurrent."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise DriverFailed("node not found on PATH: the JavaScript stores' tests need Node.js 20+")
        self.process = subprocess.Popen([node, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1)
        self._ids = itertools.count(1)
        self._write = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            answer = json.loads(line)
            slot = self._waiting.pop(answer.get("id"), None)
            if slot is not None:
                slot[1].append(answer)
                slot[0].set()
        for event, _ in list(self._waiting.values()):  # the process ended: wake everyone
            event.set()

    def call(self, op: str, **fields: Any) -> dict:
        request_id = next(self._ids)
        event, box = threading.Event(), []
        self._waiting[request_id] = (event, box)
        line = json.dumps({"id": request_id, "op": op, **fields}, ensure_ascii=False)
        with self._write:
            assert self.process.stdin is not None
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        if not event.wait(TIMEOUT_S) or not box:
            self._waiting.pop(request_id, None)
            raise DriverFailed(f"store-driver.mjs gave no answer to {op} within {TIMEOUT_S} s")
        return box[0]

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


_driver: NodeDriver | None = None
_driver_lock = threading.Lock()


def node_driver() -> NodeDriver:
    global _driver
    with _driver_lock:
        if _driver is None or _driver.process.poll() is not None:
            _driver = NodeDriver()
            atexit.register(_driver.close)
        return _driver


def _raise(error: dict) -> None:
    from framework.runtime import agent_sessions

    kind = {"StoreConflict": agent_sessions.StoreConflict, "StoreError": agent_sessions.StoreError}
    raise kind.get(error["type"], DriverFailed)(error["message"])


class JsStore:
    """A store of sessions.mjs, opened in the shared node driver; the Python protocol's methods."""

    def __init__(self, config: dict[str, Any], agent: str, env: Mapping[str, str]) -> None:
        self.driver = node_driver()
        answer = self.driver.call("open", config=config, agent=agent, env=dict(env))
        if "error" in answer:
            _raise(answer["error"])
        self.handle = answer["ok"]["handle"]
        self.max_bytes = answer["ok"]["max_bytes"]
        self.kind = answer["ok"]["kind"]
        self.last_ms = 0.0  # the last operation's time inside node (without the pipe)

    def _call(self, op: str, **fields: Any) -> Any:
        answer = self.driver.call(op, store=self.handle, **fields)
        self.last_ms = answer.get("ms", 0.0)
        if "error" in answer:
            _raise(answer["error"])
        return answer["ok"]

    def load(self, session_id: str) -> tuple[list[dict], int]:
        ok = self._call("load", session_id=session_id)
        return ok["messages"], ok["version"]

    def save(self, session_id: str, messages: list[dict], version: int) -> int:
        return self._call("save", session_id=session_id, messages=messages, version=version)

    def add_tokens(self, key_id: str, day: str, tokens: int) -> int:
        return self._call("add_tokens", key_id=key_id, day=day, tokens=tokens)

    def tokens_used(self, key_id: str, day: str) -> int:
        return self._call("tokens_used", key_id=key_id, day=day)

    def close(self) -> None:
        with contextlib.suppress(DriverFailed):
            self.driver.call("close", store=self.handle)


def open_js_store(config: dict[str, Any], agent: str, env: Mapping[str, str]) -> JsStore:
    return JsStore(config, agent, env)


# --- the "redis" back-end: redis-server behind the Upstash REST front ----------------------------------

UPSTASH_TOKEN = "upstash-test-token-not-a-secret"  # noqa: S105 - the local front's own


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_backend(stack: contextlib.ExitStack) -> dict[str, Any]:
    """The keyword arguments of conftest's Backend (but its name): config, env, raw, unreachable_env."""
    from framework.local.stores.upstash_front import RedisServer, UpstashFront

    server = stack.enter_context(RedisServer())
    front = stack.enter_context(UpstashFront(server.socket, token=UPSTASH_TOKEN))
    client = front.client()

    class RedisRaw:
        def put(self, session_id, agent, messages, version, expires):
            key = f"s#{session_id}"
            client.delete(key)
            client.hset(key, mapping={"agent": agent, "messages": messages, "version": str(version),
                                      "expires": str(expires)})
            client.expireat(key, expires)

        def expires(self, session_id):
            value = client.hget(f"s#{session_id}", "expires")
            return int(value) if value is not None else None

        def counter_expires(self, key_id, day):
            when = client.expiretime(f"q#{key_id}#{day}")  # the key's own expiry (EXPIREAT), epoch seconds
            return when if when > 0 else None

    env = {"KV_REST_API_URL": front.url, "KV_REST_API_TOKEN": UPSTASH_TOKEN}
    unreachable = {**env, "KV_REST_API_URL": f"http://127.0.0.1:{closed_port()}"}
    config = {"store": "redis", "ttl_hours": 24, "max_messages": 40}
    return {"config": config, "env": env, "raw": RedisRaw(), "unreachable_env": unreachable}
