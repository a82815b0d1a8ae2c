"""`logs` on Azure Functions (issue 14): the app's traces in Application Insights, by its query API.

The framework's deploy creates no Application Insights resource: a function app logs to one when its
app setting APPLICATIONINSIGHTS_CONNECTION_STRING names it
(https://learn.microsoft.com/en-us/azure/azure-functions/configure-monitoring). That connection string
carries the resource's ApplicationId (https://learn.microsoft.com/en-us/azure/azure-monitor/app/connection-strings),
the {appId} of POST https://api.applicationinsights.io/v1/apps/{appId}/query {"query", "timespan"}, which
answers {"tables": [{"name", "columns": [{"name", "type"}], "rows"}]}
(https://learn.microsoft.com/en-us/rest/api/application-insights/query/execute), with an Entra token for
https://api.applicationinsights.io (https://learn.microsoft.com/en-us/azure/azure-monitor/logs/api/access-api).
The query is KQL over the `traces` table, where a function's output lands, one app's rows by
cloud_RoleName, the app's name (several apps may share one resource: each stage has its own app).
Endpoint AZURE_LOGS_ENDPOINT (default https://api.applicationinsights.io). Reading needs a role with
Microsoft.Insights/components/query/read (Reader, Monitoring Reader) on the resource.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from framework.deploy import http
from framework.deploy.loglines import LogLine, LogReader, epoch_ms, iso
from framework.deploy.network import UnresolvedHost
from framework.errors import DeployError
from framework.platforms.azure.api import Api, _Answer, _kudu_failure, _text

INSIGHTS = "https://api.applicationinsights.io"
SCOPE = "https://api.applicationinsights.io/.default"
SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SETUP = (f"create an Application Insights resource (az monitor app-insights component create) and set its "
         f"connection string on the app (az functionapp config appsettings set --settings {SETTING}=...): deploy "
         "keeps settings it did not write")


def application_id(settings: Mapping[str, str], app: str) -> str:
    """The ApplicationId in the app's connection string (the string itself is never shown)."""
    connection = settings.get(SETTING)
    if not connection:
        raise DeployError(f"the function app {app} sends no logs to Application Insights (no {SETTING} app "
                          f"setting; the framework creates no Application Insights resource): {SETUP}")
    parts = {key.strip().lower(): value.strip() for key, _, value in
             (part.partition("=") for part in connection.split(";"))}
    found = parts.get("applicationid", "")
    if not _GUID.fullmatch(found):
        raise DeployError(f"the {SETTING} of {app} has no ApplicationId, which the query API needs: set the "
                          "connection string the Application Insights resource shows now (newer ones carry it)")
    return found


def query(app: str, since_ms: int, request: str | None = None) -> str:
    """The KQL of one app's traces from since_ms on (the names are checked: no quote in them)."""
    lines = ["traces", f"| where timestamp >= datetime({iso(since_ms)})", f"| where cloud_RoleName =~ '{app}'"]
    if request:
        lines.append(f"| where message contains '{request}'")
    return "\n".join(lines + ["| order by timestamp asc", "| project timestamp, itemId, message"])


def reader(api: Api, app: str, request: str | None = None) -> LogReader:
    """The app's Application Insights resource, found once (its app settings); then every trace of the
    app from since_ms on, oldest first."""
    app_id = application_id(api.app_settings(app), app)
    base = (api.environ.get("AZURE_LOGS_ENDPOINT") or INSIGHTS).rstrip("/")
    url = f"{base}/v1/apps/{app_id}/query"

    def read(since_ms: int) -> list[LogLine]:
        until = iso(int((time.time() + 300) * 1000))
        body = json.dumps({"query": query(app, since_ms, request),
                           "timespan": f"{iso(since_ms)}/{until}"}).encode()

        def attempt(_: int) -> dict[str, Any]:
            token = api.credential.get_token(SCOPE).token
            sent = urllib.request.Request(url, data=body, method="POST", headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json",
                "User-Agent": "agent-framework"})
            try:
                with urllib.request.urlopen(sent, timeout=120) as answer:
                    return json.loads(answer.read() or b"{}")
            except urllib.error.HTTPError as error:
                raise _Answer(error.code, dict(error.headers), error.read()) from None

        try:
            answer = http.send(api.retry, attempt, what="Application Insights query", failure=_kudu_failure,
                               unresolved_host=lambda _: UnresolvedHost(url, "AZURE_LOGS_ENDPOINT"),
                               sleep=api.sleep, stderr=api.stderr)
        except _Answer as failed:
            hint = " (reading needs Reader or Monitoring Reader on the Application Insights resource)" \
                if failed.status == 403 else ""
            raise DeployError(f"Application Insights refused the query ({failed.status}): {_text(failed.data)}"
                              f"{hint}") from None
        except (urllib.error.URLError, OSError) as error:
            raise DeployError(f"could not reach Application Insights at {base}: {error}") from None
        tables = answer.get("tables") or [{}]
        names = [column["name"] for column in tables[0].get("columns") or []]
        rows = [dict(zip(names, row, strict=False)) for row in tables[0].get("rows") or []]
        return [LogLine(epoch_ms(row["timestamp"]), str(row.get("message") or ""), str(row["itemId"]))
                for row in rows]

    return read
