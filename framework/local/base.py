"""What every local runner takes and gives: options in, an app serving on 127.0.0.1 out (each
platform's runner is its PLATFORM.runner, see framework/platforms/base.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class LocalOptions:
    app_dir: Path  # generated/<target>
    port: int  # where the agent answers (0: any free port)
    timeout: float  # the target's timeout, seconds: enforced as the platform does
    concurrency: int  # concurrency.max: instances that may run at once (where the platform caps it)
    env: dict[str, str]  # the app's environment (OPENAI_API_KEY, OPENAI_BASE_URL, ...), complete
    function_name: str
    memory: int
    settings: Mapping[str, Any] = field(default_factory=dict)  # the target's own options (runtime, ...)
    host: str = "127.0.0.1"
    log: bool = False


class LocalApp(Protocol):
    url: str  # the full URL to POST to, e.g. http://127.0.0.1:8080/api/agent

    def close(self) -> None: ...

