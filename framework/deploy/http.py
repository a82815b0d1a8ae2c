"""The one retry policy of the REST-based clouds' HTTP calls (gcp, azure, vercel): which answers are
transient, how many tries, the backoff and its cap, Retry-After (seconds or an HTTP-date), and a host
name without DNS answer said at once. Each cloud's client knows only how its library reports a failed
try; the waiting, the counting and the line on stderr per wait are here, so the clouds cannot drift.
(The function runtime keeps its own Retry-After parser: it ships inside the functions and imports
nothing of the framework.)"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TextIO, TypeVar

from framework.deploy.network import unresolved

T = TypeVar("T")

TRANSIENT = frozenset({429, 500, 502, 503, 504})  # throttled, or the server failing for now


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """The seconds a Retry-After header asks to wait (delta-seconds or an HTTP-date, never negative);
    None when absent or unreadable, so the backoff decides."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Failure:
    """What one failed try said: its HTTP status (None: no answer at all) and its Retry-After header."""

    status: int | None
    retry_after: str | None = None

    @property
    def reason(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else "no connection"


@dataclass(frozen=True)
class Policy:
    """How one cloud's calls are retried. The backoff doubles from `first` up to `cap`; a Retry-After is
    honoured as sent, capped too unless `cap_retry_after` is off (azure-core honours it uncapped, and
    Kudu follows ARM)."""

    platform: str  # names the line on stderr
    attempts: int = 6
    first: float = 1.0
    cap: float = 60.0
    statuses: Collection[int] = TRANSIENT
    cap_retry_after: bool = True

    def transient(self, failure: Failure) -> bool:
        """No answer at all, or an answer in `statuses`, may heal on its own; anything else will not."""
        return failure.status is None or failure.status in self.statuses

    def delay(self, attempt: int, failure: Failure, now: Callable[[], float] = time.time) -> float:
        """The wait after failed try number `attempt` (1-based)."""
        asked = retry_after(failure.retry_after, now)
        if asked is not None:
            return min(self.cap, asked) if self.cap_retry_after else asked
        return min(self.cap, self.first * 2 ** (attempt - 1))

    def announce(self, what: str, failure: Failure, wait: float, attempt: int, stderr: TextIO | None) -> None:
        """One line per wait, so a call against an endpoint that refuses is not silent for a minute."""
        print(f"{self.platform}: {what} failed ({failure.reason}), retrying in {wait:g} s "
              f"(attempt {attempt} of {self.attempts})", file=stderr or sys.stderr, flush=True)


def send(policy: Policy, attempt: Callable[[int], T], *, what: str,
         failure: Callable[[Exception], Failure | None], unresolved_host: Callable[[Exception], Exception],
         exhausted: Callable[[Exception, Failure], Exception] | None = None,
         sleep: Callable[[float], None] = time.sleep, stderr: TextIO | None = None) -> T:
    """attempt(n) for n = 1.. until it returns, retrying what `failure` reads as transient.

    `failure` reads the cloud library's exception (None: not an HTTP failure, raised as it is); a name
    that does not resolve raises `unresolved_host(error)` at once; once the tries are used up, the last
    error is raised, or what `exhausted` makes of it (the error itself: raised as it is)."""
    for number in range(1, policy.attempts + 1):
        try:
            return attempt(number)
        except Exception as error:
            found = failure(error)
            if found is None:
                raise
            if unresolved(error):
                raise unresolved_host(error) from None
            if not policy.transient(found):
                raise
            if number == policy.attempts:
                final = error if exhausted is None else exhausted(error, found)
                if final is error:
                    raise
                raise final from error
            wait = policy.delay(number, found)
            policy.announce(what, found, wait, number, stderr)
            sleep(wait)
    raise AssertionError("unreachable")
