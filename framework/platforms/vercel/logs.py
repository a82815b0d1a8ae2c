"""`logs` on Vercel (issue 14): the production deployment's runtime logs.

GET /v1/projects/{projectId}/deployments/{deploymentId}/runtime-logs answers application/stream+json, one
JSON object per line: level, message, rowId, source, timestampInMs, domain, messageTruncated,
requestMethod, requestPath, responseStatusCode (https://vercel.com/docs/rest-api/logs/get-logs-for-a-deployment).
The endpoint takes no time range and no search: the lines from since_ms on, and those holding the
--request id, are kept here. It is a stream that may stay open for new lines: it is read until the
server closes it or sends nothing for STREAM_IDLE seconds. Only the production deployment the project
serves now is read (older deployments' lines are not), and Vercel keeps runtime logs for a limited time
per plan (https://vercel.com/docs/logs/runtime).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from typing import Any

from framework.deploy import http
from framework.deploy.loglines import LogLine, LogReader
from framework.deploy.network import UnresolvedHost
from framework.errors import DeployError
from framework.platforms.vercel import planner as vercel
from framework.platforms.vercel.api import RETRY, USER_AGENT, Api, ApiError, _failure, read_snapshot

STREAM_IDLE = 5.0  # seconds without a new line after which the stream is taken as read


def _open(api: Api, path: str) -> Any:
    """The stream's response, once the API answered 200 (429 and 5xx retried as every call)."""
    if not api.token:
        raise DeployError("VERCEL_TOKEN is not set: create a token at https://vercel.com/account/tokens and "
                          "export VERCEL_TOKEN=...")
    query = urllib.parse.urlencode(vercel.team_query(api.team))
    url = api.base + path + (f"?{query}" if query else "")
    headers = {"Authorization": f"Bearer {api.token}", "User-Agent": USER_AGENT,
               "Accept": "application/stream+json"}

    def attempt(number: int) -> Any:
        try:
            return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=STREAM_IDLE)
        except urllib.error.HTTPError as error:
            payload = error.read()[:300].decode("utf-8", "replace")
            raise ApiError("GET", path, error.code, "", payload, number - 1, error.headers.get("Retry-After")) \
                from None
        except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as error:
            raise ApiError("GET", path, 0, "network", str(getattr(error, "reason", error)), number - 1) from error

    return http.send(RETRY, attempt, what=f"GET {path}", failure=_failure,
                     unresolved_host=lambda _: UnresolvedHost(api.base, "VERCEL_API_URL"),
                     sleep=api.sleep, stderr=api.stderr)


def _row(raw: bytes, path: str) -> dict[str, Any]:
    """One line of the stream: a JSON object, else an error saying what came instead."""
    try:
        row = json.loads(raw)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        raise DeployError(f"Vercel's runtime-logs stream (GET {path}) sent a line that is not a log row: "
                          f"{raw[:200].decode('utf-8', 'replace').strip()!r}")
    return row


def reader(api: Api, project: str, agent: str, request: str | None = None) -> LogReader:
    """The production deployment the project serves now, found once; then its lines from since_ms on
    (with the request id in them), oldest first."""
    snap = read_snapshot(api, project, agent)
    if snap.project is None or snap.latest is None:
        raise DeployError(f"the Vercel project {project} has no production deployment: nothing has logged yet "
                          "(agenthost deploy first)")
    path = f"/v1/projects/{snap.project.id}/deployments/{snap.latest.uid}/runtime-logs"

    def read(since_ms: int) -> list[LogLine]:
        lines = []
        with _open(api, path) as stream:
            try:
                for raw in stream:
                    if not raw.strip():
                        continue
                    row = _row(raw, path)
                    text, at = str(row.get("message") or ""), int(row.get("timestampInMs") or 0)
                    if at >= since_ms and (not request or request in text):
                        lines.append(LogLine(at, text, str(row.get("rowId") or f"{at}:{text}")))
            except TimeoutError:  # nothing more for STREAM_IDLE seconds: what came is what there is
                pass
            except (OSError, HTTPException) as error:
                raise DeployError(f"Vercel's runtime-logs stream broke off (GET {path}): {error}; run the same "
                                  "command again") from None
        return sorted(lines, key=lambda line: line.time_ms)

    return read
