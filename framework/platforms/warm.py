"""concurrency.warm_schedule (issue 14): the schedule expressions each platform's scheduler takes, and
the validate findings where a platform cannot run it as written. Pure; no SDK."""

from __future__ import annotations

from framework.findings import Finding
from framework.model import TargetSettings

# The event the EventBridge Scheduler schedule sends to the function (the Lambda handlers match it).
AWS_EVENT = {"agent-framework": "warmup"}
# The header the Cloud Scheduler job sends with the per-deploy secret (both runtimes check it).
HEADER = "x-agent-warmup"
DAY = 1440


def rate(minutes: int) -> str:
    """EventBridge Scheduler's rate expression: any whole number of minutes
    (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#rate-based)."""
    return f"rate({minutes} minute{'s' if minutes != 1 else ''})"


def cron(minutes: int) -> str | None:
    """A five-field unix cron that fires every `minutes` exactly, or None when cron cannot say it (a
    step must divide the hour or the day): Cloud Scheduler and Vercel Cron take this form."""
    if minutes == 1:
        return "* * * * *"
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if minutes % 60 == 0 and DAY % minutes == 0:
        hours = minutes // 60
        return "0 0 * * *" if hours == 24 else f"0 */{hours} * * *" if hours > 1 else "0 * * * *"
    return None


def ncrontab(minutes: int) -> str | None:
    """Azure Functions' six-field NCRONTAB (seconds first) for the same schedule
    (https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions)."""
    expression = cron(minutes)
    return None if expression is None else f"0 {expression}"


def check_cron(settings: TargetSettings, platform: str) -> list[Finding]:
    """The refusal when a cron-driven platform cannot fire every N minutes exactly."""
    minutes = settings.concurrency.warm_schedule
    if minutes is None or cron(minutes) is not None:
        return []
    return [Finding(settings.path_of("concurrency"), (
        f"{platform} schedules by a cron expression, which cannot fire every {minutes} minutes; "
        "use a number of minutes that divides 60 (1, 2, 3, 5, 10, 15, 20, 30) or a whole number of hours "
        "that divides 24 (60, 120, 180, 240, 360, 480, 720, 1440)"))]


def runtime_block(settings: TargetSettings, secret_env: str) -> dict:
    """agent.json's "warmup" where the scheduler sends an HTTP request: the variable holding its
    secret. Nothing without a schedule, so an agent without one renders as before."""
    return {"warmup": {"secret_env": secret_env}} if settings.concurrency.warm_schedule else {}
