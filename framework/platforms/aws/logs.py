"""`logs` on AWS Lambda (issue 14): the function's CloudWatch Logs group, read with FilterLogEvents.

Lambda writes a function's output to the log group `/aws/lambda/<function>` unless its LoggingConfig names
another (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html); the framework sets
none, but a group set by hand is read from the function's configuration. FilterLogEvents
(https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html) takes
startTime in epoch ms and a filter pattern: a quoted term matches the events containing it
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html), how --request
keeps one request's lines. Each event carries its own eventId (what --follow keeps).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from framework.deploy.loglines import LogLine, LogReader
from framework.errors import DeployError
from framework.platforms.aws.api import Api, _missing


def log_group(api: Api, function: str) -> str:
    """The function's log group; a function that is not deployed is an error saying so."""
    try:
        config = api.client("lambda").get_function_configuration(FunctionName=function)
    except ClientError as error:
        if _missing(error):
            raise DeployError(f"{function} is not deployed on AWS Lambda in {api.region}: nothing has logged yet "
                              "(agenthost deploy first)") from None
        raise
    return (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{function}"


def reader(api: Api, function: str, request: str | None = None) -> LogReader:
    """The function's log group, found once; then every event of it from since_ms on (a group not made
    yet: none), by time."""
    group = log_group(api, function)

    def read(since_ms: int) -> list[LogLine]:
        arguments = {"logGroupName": group, "startTime": since_ms}
        if request:
            arguments["filterPattern"] = f'"{request}"'  # checked_request: no quote or space can be in it
        lines = []
        try:
            for page in api.client("logs").get_paginator("filter_log_events").paginate(**arguments):
                lines += [LogLine(event["timestamp"], event["message"], event["eventId"]) for event in page["events"]]
        except ClientError as error:
            if not _missing(error):  # the group is made by the function's first log line
                raise
        return sorted(lines, key=lambda line: line.time_ms)

    return read
