"""The packages the framework keeps for history and rollback on Azure (issue 14).

Azure keeps one package per function app (Flex Consumption: the latest in its deployment container,
https://learn.microsoft.com/en-us/azure/azure-functions/flex-consumption-plan#deployments; Premium:
the zip Kudu deployed), so the framework keeps every package it publishes itself: a block blob
`<app>/<sha256>.zip` in the container `agent-framework-packages` of the agent's storage account (the
account of targets.azure.storage, else of targets.azure.sessions.account), with its creation time,
files and prompt digest as blob metadata. Rollback publishes a kept package again through the same
Kudu path a deploy uses. Blob service REST API (https://learn.microsoft.com/en-us/rest/api/storageservices/blob-service-rest-api)
with a Microsoft Entra token for https://storage.azure.com (the deploying identity needs Storage Blob
Data Contributor on the account: https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-azure-active-directory).
Endpoint AZURE_BLOB_ENDPOINT (`{account}` standing for the account; Azurite in tests).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from framework.deploy import http
from framework.deploy.network import UnresolvedHost
from framework.deploy.plan import CREATE, DELETE, UNCHANGED, Change, Operation, Resource
from framework.errors import DeployError

CONTAINER = "agent-framework-packages"
# x-ms-version: https://learn.microsoft.com/en-us/rest/api/storageservices/versioning-for-the-azure-storage-services
BLOB_API = "2021-12-02"
STORAGE_SCOPE = "https://storage.azure.com/.default"
# with AZURE_ACCESS_TOKEN (an ARM token), the Blob service needs its own: `az account get-access-token
# --resource https://storage.azure.com`
STORAGE_TOKEN = "AZURE_STORAGE_ACCESS_TOKEN"
ENDPOINT = "https://{account}.blob.core.windows.net"
KIND = "package"
NONE_KEPT = ("history and rollback on Azure need a storage account to keep the packages in (Azure keeps only the "
             "app's current one: https://learn.microsoft.com/en-us/azure/azure-functions/flex-consumption-plan"
             "#deployments): set `storage:` (Flex Consumption) or `sessions: {account: ...}` under targets.azure")


def account_of(options: Mapping[str, Any]) -> str | None:
    """The storage account that keeps the packages: the Flex deployment container's, else the sessions'."""
    from framework.platforms.azure.planner import STORAGE

    match = STORAGE.match(options.get("storage") or "")
    if match:
        return match.group(1)
    return (options.get("sessions") or {}).get("account")


@dataclass(frozen=True)
class Stored:
    """One kept package, as its blob and metadata say."""

    sha: str
    created: str | None
    files: str = ""  # the AGENT_FRAMEWORK_FILES value of the package
    prompt: str | None = None


class BlobError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


class Blobs:
    """The package container of one storage account, over the Blob REST API with the deployer's
    credential and its retry policy (framework/deploy/http.py)."""

    def __init__(self, account: str, environ: Mapping[str, str], credential: Any, policy: http.Policy,
                 sleep: Callable[[float], None], stderr: TextIO | None):
        self.account = account
        self.base = (environ.get("AZURE_BLOB_ENDPOINT") or ENDPOINT).replace("{account}", account).rstrip("/")
        self.environ, self.credential, self.policy, self.sleep, self.stderr = environ, credential, policy, sleep, stderr

    def _token(self) -> str:
        if self.environ.get(STORAGE_TOKEN):
            return self.environ[STORAGE_TOKEN]
        if self.environ.get("AZURE_ACCESS_TOKEN"):
            raise DeployError(f"AZURE_ACCESS_TOKEN is an ARM token, which the Blob service that keeps the packages "
                              f"does not take: set {STORAGE_TOKEN} too (az account get-access-token --resource "
                              "https://storage.azure.com)")
        return self.credential.get_token(STORAGE_SCOPE).token

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """One Blob call; 408/429/5xx and network errors retried; the answer, whatever its status."""
        url = f"{self.base}/{path}"

        def attempt(_: int) -> tuple[int, Mapping[str, str], bytes]:
            request = urllib.request.Request(url, data=body, method=method, headers={
                "Authorization": f"Bearer {self._token()}", "x-ms-version": BLOB_API,
                "x-ms-date": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
                "User-Agent": "agent-framework", **({"Content-Length": str(len(body))} if body is not None else {}),
                **(headers or {})})
            try:
                with urllib.request.urlopen(request, timeout=300) as answer:
                    return answer.status, dict(answer.headers), answer.read()
            except urllib.error.HTTPError as error:
                status, data = error.code, error.read()
                if status in self.policy.statuses:
                    raise _Transient(status, error.headers.get("Retry-After")) from None
                return status, dict(error.headers), data

        def failure(error: Exception) -> http.Failure | None:
            if isinstance(error, _Transient):
                return http.Failure(error.status, error.retry_after)
            if isinstance(error, (urllib.error.URLError, OSError)):
                return http.Failure(None)
            return None

        def exhausted(error: Exception, found: http.Failure) -> Exception:
            return DeployError(f"the Blob service of {self.account} did not answer {method} {path.split('?')[0]}: "
                               f"{error}")

        return http.send(self.policy, attempt, what=f"Blob {method} {path.split('?')[0]}", failure=failure,
                         unresolved_host=lambda _: UnresolvedHost(url, "AZURE_BLOB_ENDPOINT"), exhausted=exhausted,
                         sleep=self.sleep, stderr=self.stderr)

    def _check(self, answer: tuple[int, Mapping[str, str], bytes], what: str, ok: tuple[int, ...]) -> None:
        status, _, data = answer
        if status not in ok:
            code, message = _error(data)
            raise DeployError(f"the Blob service of {self.account} refused {what}: {status} {code} {message}".rstrip())

    def put(self, app: str, sha: str, data: bytes, files: str, prompt: str | None) -> None:
        """Put Blob (https://learn.microsoft.com/en-us/rest/api/storageservices/put-blob), creating the
        container on its first use (Create Container, https://learn.microsoft.com/en-us/rest/api/storageservices/create-container;
        409 ContainerAlreadyExists is fine)."""
        created = datetime.now(UTC).isoformat(timespec="microseconds")
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/zip", "x-ms-meta-created": created,
                   "x-ms-meta-sha256": sha, "x-ms-meta-files": files, **(
                       {"x-ms-meta-prompt": prompt} if prompt else {})}
        answer = self.request("PUT", f"{CONTAINER}/{app}/{sha}.zip", data, headers)
        if answer[0] == 404 and _error(answer[2])[0] == "ContainerNotFound":
            self._check(self.request("PUT", f"{CONTAINER}?restype=container", b""), f"creating the container "
                        f"{CONTAINER}", (201, 409))
            answer = self.request("PUT", f"{CONTAINER}/{app}/{sha}.zip", data, headers)
        self._check(answer, f"Put Blob {CONTAINER}/{app}/{sha[:12]}.zip", (201,))

    def list(self, app: str) -> list[Stored]:
        """List Blobs with their metadata, every page, newest first
        (https://learn.microsoft.com/en-us/rest/api/storageservices/list-blobs); no container: none."""
        found: list[Stored] = []
        marker = ""
        while True:
            query = urllib.parse.urlencode({"restype": "container", "comp": "list", "prefix": f"{app}/",
                                            "include": "metadata", **({"marker": marker} if marker else {})})
            answer = self.request("GET", f"{CONTAINER}?{query}")
            if answer[0] == 404:
                return []
            self._check(answer, f"List Blobs {CONTAINER}/{app}/", (200,))
            root = ElementTree.fromstring(answer[2])
            for blob in root.iter("Blob"):
                name = blob.findtext("Name") or ""
                meta = {child.tag.lower(): child.text or "" for child in blob.find("Metadata") or []}
                sha = name.removeprefix(f"{app}/").removesuffix(".zip")
                if "/" in sha or meta.get("sha256") != sha:
                    continue  # not one of ours
                found.append(Stored(sha, meta.get("created") or _iso(blob.findtext("Properties/Creation-Time")),
                                    meta.get("files", ""), meta.get("prompt") or None))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return sorted(found, key=lambda s: s.created or "", reverse=True)

    def get(self, app: str, sha: str) -> bytes:
        """Get Blob (https://learn.microsoft.com/en-us/rest/api/storageservices/get-blob)."""
        answer = self.request("GET", f"{CONTAINER}/{app}/{sha}.zip")
        self._check(answer, f"Get Blob {CONTAINER}/{app}/{sha[:12]}.zip", (200,))
        return answer[2]

    def delete(self, app: str, sha: str) -> None:
        """Delete Blob (https://learn.microsoft.com/en-us/rest/api/storageservices/delete-blob); 404: gone."""
        self._check(self.request("DELETE", f"{CONTAINER}/{app}/{sha}.zip"),
                    f"Delete Blob {CONTAINER}/{app}/{sha[:12]}.zip", (202, 404))


class _Transient(Exception):
    def __init__(self, status: int, retry_after: str | None):
        super().__init__(status)
        self.status, self.retry_after = status, retry_after


def _error(data: bytes) -> tuple[str, str]:
    """(Code, first line of Message) of a Blob service error body."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return "", data[:200].decode("utf-8", "replace")
    return root.findtext("Code") or "", (root.findtext("Message") or "").split("\n")[0]


def _iso(rfc1123: str | None) -> str | None:
    if not rfc1123:
        return None
    return datetime.strptime(rfc1123, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC).isoformat()


# ---------------------------------------------------------------- the plan's part (pure)


def plan_store(account: str, app: str, sha: str, files: str, prompt: str) -> Resource:
    """Keep the package being published (before the publish, so a live package is always kept)."""
    return Resource("stored package", f"{account}/{CONTAINER}/{app}/{sha[:12]}.zip", CREATE, (
        Change("sha256", None, sha[:12]),), (Operation("blob.put", {
            "account": account, "app": app, "sha": sha, "zip": {"$package": sha}, "files": files, "prompt": prompt},
            "Put Blob"),))


def plan_prune(account: str, app: str, keep: int | None, stored: list[Stored], live: str | None,
               publishing: str | None) -> list[Resource]:
    """Delete the kept packages beyond the newest `keep` (newest first in `stored`), never the live one
    nor the one being published; a package this deploy adds takes one of the N places."""
    if keep is None:
        return []
    adds = publishing is not None and publishing not in {s.sha for s in stored}
    kept = {s.sha for s in stored[:max(keep - (1 if adds else 0), 0)]}
    protected = {live, publishing} - {None}
    doomed = [s for s in stored if s.sha not in kept and s.sha not in protected]
    detail = f"{len(stored)} kept in {account}/{CONTAINER}, keep the newest {keep}"
    resources = [Resource("stored packages", app, UNCHANGED, detail=detail)]
    for item in reversed(doomed):  # oldest first
        resources.append(Resource("stored package", f"{account}/{CONTAINER}/{app}/{item.sha[:12]}.zip", DELETE, (
            Change("sha256", item.sha[:12], None),), (Operation("blob.delete", {
                "account": account, "app": app, "sha": item.sha}, "Delete Blob"),)))
    return resources
