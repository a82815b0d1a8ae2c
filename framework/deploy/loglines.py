"""A function's log line as every platform's log service gives it back (`logs`, issue 14), and the
usage record inside it: a leaf module, so that the Deployer protocol (platforms/base.py) can name it.

The usage record is the one JSON line the runtimes print per request (framework/runtime/agent_runtime.py
`Agent._log_usage`, framework/runtime/js/agent.mjs): `"type": "agent.usage"`. A log service gives it back
either as the text printed (CloudWatch Logs, Vercel, Application Insights) or already parsed (Cloud
Logging's jsonPayload, which has lost `severity` to the entry's own field).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from framework.errors import UsageError

USAGE_TYPE = "agent.usage"
# what --request accepts: the request ids the platforms give (UUIDs, Vercel's "fra1::abc-123", hex ids);
# nothing that could change a filter pattern, a Logging filter or a KQL query it is put into
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


@dataclass(frozen=True)
class LogLine:
    """One line of a function's log: when (epoch ms), its text, the service's own id for it (never the
    same for two lines: what --follow keeps to show each line once) and, when the service parsed it,
    its JSON."""

    time_ms: int
    text: str
    key: str
    payload: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def record(self) -> dict[str, Any] | None:
        """The usage record this line is, else None."""
        if isinstance(self.payload, dict):
            return self.payload if self.payload.get("type") == USAGE_TYPE else None
        return usage_record(self.text)


# what a Deployer's log_reader returns: the lines logged at or after since_ms (epoch ms), oldest first. It
# is made once the function's log is found (its group, its Application Insights app, its deployment), so
# that --follow's polls send only the log query
LogReader = Callable[[int], list[LogLine]]


def usage_record(text: str) -> dict[str, Any] | None:
    """The usage record in a printed line (a service may put a prefix before it), else None."""
    if USAGE_TYPE not in text:
        return None
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        return value if isinstance(value, dict) and value.get("type") == USAGE_TYPE else None
    return None


def checked_request(request: str | None) -> str | None:
    """--request as given, once it is known to be only a request id."""
    if request is not None and not REQUEST_ID.fullmatch(request):
        raise UsageError(f"--request {request!r} is not a request id (letters, digits, '.', '_', ':' and '-')")
    return request


def iso(time_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC, as the log services' filters take it."""
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch_ms(text: str) -> int:
    """An RFC 3339 timestamp (any number of fraction digits, Z or an offset) as epoch milliseconds."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    whole, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(whole + (zone if zone and zone != "Z" else "+00:00"))
    return int(stamp.timestamp()) * 1000 + int((fraction or "0")[:3].ljust(3, "0"))
