"""`logs` on Google Cloud Functions 2nd gen (issue 14): Cloud Logging's entries.list.

A 2nd gen function runs as a Cloud Run service of the same name, whose output Cloud Logging keeps under
resource.type "cloud_run_revision", resource.labels.service_name the service
(https://cloud.google.com/functions/docs/monitoring/logging). A line printed as JSON becomes the entry's
jsonPayload (its `severity` moved to the entry's own), other lines its textPayload
(https://cloud.google.com/run/docs/logging#writing_structured_logs).
POST https://logging.googleapis.com/v2/entries:list {resourceNames, filter, orderBy, pageSize, pageToken}
answers {entries, nextPageToken} (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list);
the filter is the Logging query language (https://cloud.google.com/logging/docs/view/logging-query-language:
comparisons joined by AND, a quoted term alone searches every field: how --request keeps one request's
lines). Endpoint GCP_LOGGING_ENDPOINT (default https://logging.googleapis.com; no token over plain http),
retried as every other call (Api.call). Reading needs roles/logging.viewer.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from framework.deploy.loglines import LogLine, LogReader, epoch_ms, iso
from framework.errors import DeployError
from framework.platforms.gcp.api import Api, _http_message

LOGGING = "https://logging.googleapis.com"
PAGE_SIZE = 1000  # the most entries.list returns at once


def log_filter(service: str, since_ms: int, request: str | None = None) -> str:
    """The Logging query of one service's lines from since_ms on (the names are checked: no quote in them)."""
    terms = ['resource.type="cloud_run_revision"', f'resource.labels.service_name="{service}"',
             f'timestamp>="{iso(since_ms)}"']
    if request:
        terms.append(f'"{request}"')
    return " AND ".join(terms)


def _line(entry: dict[str, Any]) -> LogLine:
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        text = json.dumps(payload, ensure_ascii=False)
    else:
        text, payload = str(entry.get("textPayload") or ""), None
    key = entry.get("insertId") or f"{entry.get('logName')}@{entry.get('timestamp')}"
    return LogLine(epoch_ms(entry["timestamp"]), text, str(key), payload)


def reader(api: Api, project: str, service: str, request: str | None = None) -> LogReader:
    """The Logging endpoint's session, made once (no token over plain http: a local fake); then every
    entry of the service's log from since_ms on, oldest first, all pages."""
    base = (api.environ.get("GCP_LOGGING_ENDPOINT") or LOGGING).rstrip("/")
    session = api.session_for(base)

    def send(body: dict[str, Any]) -> dict[str, Any]:
        answer = session.post(f"{base}/v2/entries:list", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def read(since_ms: int) -> list[LogLine]:
        body: dict[str, Any] = {"resourceNames": [f"projects/{project}"], "orderBy": "timestamp asc",
                                "filter": log_filter(service, since_ms, request), "pageSize": PAGE_SIZE}
        lines: list[LogLine] = []
        while True:
            try:
                page = api.call("Cloud Logging entries.list", send, body)
            except requests.HTTPError as error:
                hint = " (reading logs needs roles/logging.viewer on the project)" \
                    if error.response is not None and error.response.status_code == 403 else ""
                raise DeployError(f"Cloud Logging refused entries.list: {_http_message(error)}{hint}") from None
            lines += [_line(entry) for entry in page.get("entries") or []]
            if not page.get("nextPageToken"):
                return lines
            body["pageToken"] = page["nextPageToken"]

    return read
