"""agent.json's "sessions" block, the same way for every platform: its store kind (what `auto`
means there), the agent-wide settings, and the store's settings with the platform's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from framework.findings import Finding
from framework.model import TargetSettings

STORES = {"dynamodb": "DynamoDB", "firestore": "Firestore", "table": "Azure Table Storage",
          "redis": "Redis (Upstash's REST API)"}


def runtime_block(settings: TargetSettings, store: str, defaults: Mapping[str, Any]) -> dict[str, Any] | None:
    """None when sessions are off for the target."""
    sessions = settings.sessions
    if sessions is None:
        return None
    return {"store": store, "ttl_hours": sessions.ttl_hours, "max_messages": sessions.max_messages,
            **defaults, **sessions.settings}


def check(settings: TargetSettings, store: str | None, title: str) -> list[Finding]:
    """The store named must be the one the platform has; a quota needs a store to count in."""
    out = []
    sessions, auth = settings.sessions, settings.auth
    if sessions is not None and sessions.store not in ("auto", store):
        kind = f"keeps them in {STORES[store]}: write `store: auto` (or {store})" if store else \
            "cannot keep them yet: remove sessions for this platform"
        out.append(Finding(settings.path_of("sessions") + ("store",),
                           f"{STORES[sessions.store]} is not available on {title}, which {kind}"))
    if auth is not None and auth.daily_tokens is not None and sessions is None:
        out.append(Finding(settings.path_of("auth") + ("daily_tokens",), (
            "a daily token quota is counted in the sessions store: add `sessions: {store: auto}` "
            "(or remove daily_tokens)")))
    return out
