"""Read a UI message stream (the Vercel AI SDK's SSE protocol, v1) with the ``ai``
package's own reader: tests/js/read-ui-stream.mjs run by node.

    from tests.functional.ui_stream import read_ui_stream, fetch_ui_stream

    parsed = read_ui_stream(raw_sse_bytes)
    parsed["chunks"]     # every chunk the SDK validated, in order ({"type": "start", ...}, ...)
    parsed["message"]    # the UIMessage the SDK built: {"id", "role", "metadata", "parts": [...]}
    parsed["metadata"]   # the finish part's messageMetadata (e.g. {"tokens", "steps", "stopped"})
    parsed["error"]      # None, or {"name", "message"}: what the SDK raised on a stream that
                         # breaks the protocol (bad JSON, unknown chunk, delta without start...)
    parsed["errorParts"] # errorText of each `error` part (a failure the stream reported)
    parsed["done"]       # the stream ended with `data: [DONE]` (the SDK itself does not check)
    parsed["events"], parsed["comments"]   # data events, comment lines (": keep-alive")

    fetch_ui_stream(url, body)   # node POSTs the JSON body with Accept: text/event-stream and
                                 # reads the answer; the result also has "status" and "headers"

Helpers (see ``text_of``, ``tool_parts``) pull the usual things out of ``message``.

The caller makes sure tests/js/node_modules holds the pinned ``ai`` package (``npm ci`` in
tests/js: ``make install-test`` does it, and so does the ``js_tool`` helper in tests/conftest.py
when its tool is missing); without it these functions raise ``UiStreamReaderMissing``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = [
    "AI_PACKAGE",
    "READER",
    "UiStreamReaderMissing",
    "fetch_ui_stream",
    "read_ui_stream",
    "reader_available",
    "text_of",
    "tool_parts",
]

JS_DIR = Path(__file__).resolve().parents[1] / "js"
READER = JS_DIR / "read-ui-stream.mjs"
AI_PACKAGE = JS_DIR / "node_modules" / "ai" / "package.json"


class UiStreamReaderMissing(RuntimeError):
    """node or the ai package is not installed."""


def reader_available() -> bool:
    return shutil.which("node") is not None and AI_PACKAGE.is_file()


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise UiStreamReaderMissing("node is not on PATH: reading a UI message stream needs Node.js 18+")
    if not AI_PACKAGE.is_file():
        raise UiStreamReaderMissing(
            f"{AI_PACKAGE.parent} is missing: run `npm ci` in {JS_DIR} (make install-test does) "
            "to install the pinned ai package the UI message stream is read with"
        )
    return node


def _run(args: list[str], stdin: bytes, timeout: float) -> dict[str, Any]:
    result = subprocess.run(
        [_node(), str(READER), *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=JS_DIR,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"read-ui-stream.mjs exited with {result.returncode}:\n{result.stderr.decode(errors='replace')}"
        )
    return json.loads(result.stdout)


def read_ui_stream(raw: bytes, timeout: float = 60) -> dict[str, Any]:
    """Parse the SSE bytes of a UI message stream with the ai package's reader."""
    return _run([], raw, timeout)


def fetch_ui_stream(url: str, body: Any, timeout: float = 120) -> dict[str, Any]:
    """POST ``body`` (JSON) to ``url`` with ``Accept: text/event-stream`` from node (fetch) and
    parse the answer with the ai package's reader; adds ``status`` and ``headers``."""
    return _run([url, json.dumps(body)], b"", timeout)


def text_of(parsed: dict[str, Any]) -> str:
    """The text of every text part of the final message, joined."""
    message = parsed.get("message") or {}
    return "".join(p.get("text", "") for p in message.get("parts", []) if p.get("type") == "text")


def tool_parts(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool parts of the final message (``type`` ``tool-NAME`` or ``dynamic-tool``), in order."""
    message = parsed.get("message") or {}
    return [
        p
        for p in message.get("parts", [])
        if p.get("type", "").startswith("tool-") or p.get("type") == "dynamic-tool"
    ]
