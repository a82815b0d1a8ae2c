"""The one retry policy of the REST clouds (framework/deploy/http.py), as a table per rule."""

from __future__ import annotations

import io
import socket
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from framework.deploy import http
from framework.deploy.network import UnresolvedHost

NOW = 1_000_000.0
POLICY = http.Policy("cloud", attempts=4, first=0.5, cap=3.0)


def date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, UTC), usegmt=True)


@pytest.mark.parametrize(("status", "retried"), [
    (None, True),  # no answer at all
    (429, True), (500, True), (502, True), (503, True), (504, True),
    (400, False), (401, False), (403, False), (404, False), (409, False), (501, False),
])
def test_throttling_server_failures_and_no_answer_are_transient(status, retried):
    assert POLICY.transient(http.Failure(status)) is retried


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None), ("", None),
    ("7", 7.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0),
    (date(12), 12.0), (date(-60), 0.0),
    ("soon", None), ("Mon, 99 Foo 2026", None),
])
def test_retry_after_is_seconds_or_an_http_date_and_garbage_is_ignored(header, seconds):
    assert http.retry_after(header, now=lambda: NOW) == seconds


@pytest.mark.parametrize(("attempt", "header", "wait"), [
    (1, None, 0.5), (2, None, 1.0), (3, None, 2.0), (4, None, 3.0), (9, None, 3.0),  # doubling, capped
    (1, "2", 2.0), (3, "0", 0.0),  # Retry-After wins over the backoff
    (1, "100", 3.0),  # and is capped too
    (2, "soon", 1.0),  # unreadable: the backoff decides
])
def test_the_wait_doubles_up_to_the_cap_unless_retry_after_says(attempt, header, wait):
    assert POLICY.delay(attempt, http.Failure(503, header)) == wait


def test_a_policy_may_honour_a_long_retry_after_as_sent():
    uncapped = http.Policy("cloud", cap=3.0, cap_retry_after=False)
    assert uncapped.delay(1, http.Failure(429, "100")) == 100.0
    assert uncapped.delay(9, http.Failure(429)) == 3.0


class Flaky(Exception):
    def __init__(self, status: int | None, retry_after: str | None = None):
        super().__init__(f"status {status}")
        self.failure = http.Failure(status, retry_after)


def failure(error: Exception) -> http.Failure | None:
    return error.failure if isinstance(error, Flaky) else None


def send(errors: list[Exception], **options):
    """http.send over a call failing with `errors` in turn, then answering "ok"; the waits and the
    lines on stderr are returned beside the result."""
    sleeps: list[float] = []
    stderr = io.StringIO()
    tries: list[int] = []

    def attempt(number: int) -> str:
        tries.append(number)
        if errors:
            raise errors.pop(0)
        return "ok"

    try:
        result: object = http.send(POLICY, attempt, what="GET /thing", failure=failure,
                                   unresolved_host=lambda error: UnresolvedHost("https://api.example", "API_URL"),
                                   sleep=sleeps.append, stderr=stderr, **options)
    except Exception as error:  # noqa: BLE001 - the outcome under test
        result = error
    return result, tries, sleeps, stderr.getvalue().splitlines()


def test_transient_failures_are_retried_with_one_line_per_wait():
    result, tries, sleeps, lines = send([Flaky(503), Flaky(429, "2"), Flaky(None)])
    assert result == "ok" and tries == [1, 2, 3, 4]
    assert sleeps == [0.5, 2.0, 2.0]
    assert lines == ["cloud: GET /thing failed (HTTP 503), retrying in 0.5 s (attempt 1 of 4)",
                     "cloud: GET /thing failed (HTTP 429), retrying in 2 s (attempt 2 of 4)",
                     "cloud: GET /thing failed (no connection), retrying in 2 s (attempt 3 of 4)"]


def test_the_attempts_are_bounded_and_the_last_error_is_raised():
    last = Flaky(503)
    result, tries, sleeps, _ = send([Flaky(503), Flaky(503), Flaky(503), last, Flaky(503)])
    assert result is last and tries == [1, 2, 3, 4] and len(sleeps) == 3


def test_exhausted_turns_the_last_error_into_the_clouds_message():
    result, _, _, _ = send([Flaky(503)] * 4,
                           exhausted=lambda error, found: RuntimeError(f"gave up ({found.reason})"))
    assert isinstance(result, RuntimeError) and str(result) == "gave up (HTTP 503)"
    assert isinstance(result.__cause__, Flaky)


@pytest.mark.parametrize("error", [Flaky(404), ValueError("not an HTTP failure")])
def test_what_will_not_heal_is_raised_at_once(error):
    result, tries, sleeps, lines = send([error])
    assert result is error and tries == [1] and sleeps == [] and lines == []


def test_a_name_without_dns_answer_is_said_at_once():
    error = Flaky(None)
    error.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    result, tries, sleeps, _ = send([error])
    assert isinstance(result, UnresolvedHost) and tries == [1] and sleeps == []
    assert "api.example" in str(result) and "API_URL" in str(result)
