"""Azure Functions deploy, the I/O part (the only module importing the Azure SDKs): read the deployed
state into a Snapshot, and the handlers that apply a Plan's operations.

ARM calls go through azure-mgmt-web's WebSiteManagementClient (endpoint AZURE_ARM_ENDPOINT); the code
is published to the app's Kudu (SCM) site with plain HTTPS and the same bearer token (endpoint
AZURE_SCM_ENDPOINT, `{app}` standing for the app's name). Credentials: azure-identity's
DefaultAzureCredential (az login, workload identity, managed identity, ...), or a bearer token
given in AZURE_ACCESS_TOKEN. Retries: 408, 429 and 5xx with backoff, honouring Retry-After, on both: ARM
through azure-core's RetryPolicy (its backoff), Kudu under framework/deploy/http.py's policy; both read
Retry-After, say an unresolved host and announce each wait the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import urljoin

from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy
from azure.mgmt.web import WebSiteManagementClient

from framework.deploy import http
from framework.deploy.executor import Context, Executor, Progress, Registry
from framework.deploy.loglines import LogReader
from framework.deploy.network import UnresolvedHost, unresolved
from framework.deploy.package import DOCS, build_zip
from framework.deploy.plan import UNCHANGED, Plan
from framework.deploy.secrets import digest
from framework.deploy.skeleton import DeployerBase, DeployOptions, DeployPlan, session_store
from framework.deploy.versions import History, Version
from framework.errors import DeployError
from framework.model import Agent, TargetSettings
from framework.platforms.azure import packages
from framework.platforms.azure import planner as azure
from framework.render import File

title = "Azure Functions"
# One token for ARM and Kudu: Kudu accepts an Entra token for the ARM audience (the Azure CLI's
# Flex publish sends one; public deploy scripts use `az account get-access-token --resource
# https://management.azure.com` for POST /api/publish).
SCOPE = "https://management.azure.com/.default"
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
RETRIES, BACKOFF, POLL_INTERVAL = 6, 0.8, 5.0  # retries after the first try, the first wait, seconds between polls


class StaticToken:
    """A TokenCredential returning the bearer token given in AZURE_ACCESS_TOKEN."""

    def __init__(self, token: str):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3000)


def make_credential(environ: Mapping[str, str]):
    if environ.get("AZURE_ACCESS_TOKEN"):
        return StaticToken(environ["AZURE_ACCESS_TOKEN"])
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class _Retry(RetryPolicy):
    """azure-core's retry (its counts and backoff), plus POST/PATCH answered 429 (a throttled request was
    not executed), minus a host name that does not resolve (said at once); Retry-After read and each wait
    announced as framework/deploy/http.py does for the other clouds."""

    def __init__(self, policy: http.Policy, stderr: TextIO | None, wait: Callable[[float], None], **kwargs: Any):
        super().__init__(**kwargs)
        self.policy, self.stderr, self.wait = policy, stderr, wait

    def _is_method_retryable(self, settings, request, response=None):
        if response is not None and response.status_code == 429:
            return True
        return super()._is_method_retryable(settings, request, response)

    def increment(self, settings, response=None, error=None):
        if error is not None and unresolved(error):  # a name without DNS answer: no retry will find it
            raise UnresolvedHost(response.http_request.url, "AZURE_ARM_ENDPOINT") from None
        return super().increment(settings, response, error)

    def get_retry_after(self, response) -> float | None:
        return http.retry_after(response.http_response.headers.get("Retry-After"))

    def sleep(self, settings, transport, response=None) -> None:
        last = settings["history"][-1]
        failure = http.Failure(None if last.error is not None else last.http_response.status_code)
        wait = (self.get_retry_after(response) if response is not None else None) or self.get_backoff_time(settings)
        path = urllib.parse.urlsplit(last.http_request.url).path
        self.policy.announce(f"{last.http_request.method} {path}", failure, wait, len(settings["history"]),
                             self.stderr)
        if wait > 0:  # as azure-core's own sleep(), through the deployer's sleep (tests record it)
            self.wait(wait)


class _PlainHttpAuth(ARMChallengeAuthenticationPolicy):
    """Bearer tokens over http:// (a local endpoint given in AZURE_ARM_ENDPOINT): azure-core refuses
    them unless the request context says enforce_https False."""

    def on_request(self, request):
        request.context["enforce_https"] = False
        return super().on_request(request)


class KuduError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Answer(Exception):
    """A Kudu answer other than 2xx, raised between tries and returned after the last one."""

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes):
        super().__init__(status)
        self.status, self.headers, self.data = status, headers, data


def _kudu_failure(error: Exception) -> http.Failure | None:
    """A failed Kudu try as the retry policy reads it: an answer's status, or no answer at all."""
    if isinstance(error, _Answer):
        return http.Failure(error.status, _header(error.headers, "Retry-After"))
    if isinstance(error, (urllib.error.URLError, OSError)):
        return http.Failure(None)
    return None


def _raw(pipeline_response, deserialized, headers):
    """`cls=` for SDK calls: the answer's JSON as sent (e.g. listkeys' flat {"default": key})."""
    return pipeline_response.http_response.json()


class Api:
    """The ARM client for one subscription and resource group, plus Kudu over HTTPS."""

    def __init__(self, subscription: str, group: str, environ: Mapping[str, str], *,
                 sleep: Callable[[float], None] = time.sleep, retries: int = RETRIES, backoff: float = BACKOFF,
                 polling_interval: float = POLL_INTERVAL, poll_limit: int = 720, stderr: TextIO | None = None):
        self.subscription, self.group = subscription, group
        self.environ = environ
        self.sleep = sleep
        self.stderr = stderr
        self.retries, self.backoff = retries, backoff
        self.retry = http.Policy("azure", attempts=retries + 1, first=backoff, cap=60, statuses=RETRY_STATUS,
                                 cap_retry_after=False)
        self.poll_interval = polling_interval
        self.poll_limit = poll_limit
        self.credential = make_credential(environ)
        self.arm = (environ.get("AZURE_ARM_ENDPOINT") or azure.ARM_ENDPOINT).rstrip("/")
        self._client: WebSiteManagementClient | None = None

    @property
    def client(self) -> WebSiteManagementClient:
        if self._client is None:
            kwargs: dict[str, Any] = {
                "retry_policy": _Retry(self.retry, self.stderr, self.sleep, retry_total=self.retries,
                                       retry_status=self.retries, retry_backoff_factor=self.backoff,
                                       retry_backoff_max=60),
                "polling_interval": self.poll_interval,
                "user_agent": "agent-framework"}
            if self.arm.startswith("http://"):
                kwargs["authentication_policy"] = _PlainHttpAuth(self.credential, SCOPE)
            self._client = WebSiteManagementClient(self.credential, self.subscription, base_url=self.arm, **kwargs)
        return self._client

    # ------------------------------------------------------------ ARM reads
    def get_plan(self, name: str) -> dict[str, Any] | None:
        return _or_none(lambda: self.client.app_service_plans.get(self.group, name, cls=_raw))

    def get_site(self, name: str) -> dict[str, Any] | None:
        return _or_none(lambda: self.client.web_apps.get(self.group, name, cls=_raw))

    def web_config(self, name: str) -> dict[str, Any]:
        return self.client.web_apps.get_configuration(self.group, name, cls=_raw).get("properties") or {}

    def app_settings(self, name: str) -> dict[str, str]:
        answer = self.client.web_apps.list_application_settings(self.group, name, cls=_raw)
        return dict(answer.get("properties") or {})

    def function_key(self, name: str) -> str | None:
        answer = _or_none(lambda: self.client.web_apps.list_function_keys(self.group, name, azure.FUNCTION, cls=_raw))
        if not answer:
            return None
        return answer.get("default") or (answer.get("properties") or {}).get("default")

    # ------------------------------------------------------------ the sessions table (Microsoft.Storage)
    def table(self, method: str, account: str, table: str) -> int:
        """GET, PUT (body {}) or DELETE of a table through ARM, with the same credential and retries
        (https://learn.microsoft.com/en-us/rest/api/storagerp/table/create, .../get, .../delete); the
        status, 404 included; any other failure raised as the SDK raises it."""
        url = f"{self.arm}{azure.table_scope(self.subscription, self.group, account, table)}" \
              f"?api-version={azure.TABLE_API}"
        request = HttpRequest(method, url, json={} if method == "PUT" else None)
        answer = self.client.send_request(request)
        if answer.status_code == 404 and method != "PUT":
            return 404
        answer.raise_for_status()
        return answer.status_code

    # ------------------------------------------------------------ Kudu
    def scm_base(self, app: str) -> str:
        template = self.environ.get("AZURE_SCM_ENDPOINT")
        if template:
            return template.replace("{app}", app).rstrip("/")
        site = self.get_site(app) or {}
        for state in (site.get("properties") or {}).get("hostNameSslStates") or []:
            if state.get("hostType") == "Repository" and state.get("name"):
                return f"https://{state['name']}"
        return f"https://{app}.scm.azurewebsites.net"

    def kudu(self, method: str, url: str, body: bytes | None = None,
             headers: Mapping[str, str] | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """One Kudu call with the bearer token; 408/429/5xx and network errors retried (the last answer,
        whatever its status, is returned)."""
        def attempt(_: int) -> tuple[int, Mapping[str, str], bytes]:
            token = self.credential.get_token(SCOPE).token
            request = urllib.request.Request(url, data=body, method=method, headers={
                "Authorization": f"Bearer {token}", "User-Agent": "agent-framework", "Cache-Control": "no-cache",
                **(headers or {})})
            try:
                with urllib.request.urlopen(request, timeout=300) as answer:
                    return answer.status, dict(answer.headers), answer.read()
            except urllib.error.HTTPError as error:
                raise _Answer(error.code, dict(error.headers), error.read()) from None

        def exhausted(error: Exception, failure: http.Failure) -> Exception:
            if isinstance(error, _Answer):
                return error
            return KuduError(f"could not reach the Kudu site {url.split('/api/')[0]}: {error}")

        try:
            return http.send(self.retry, attempt, what=f"Kudu {method} {urllib.parse.urlsplit(url).path}",
                             failure=_kudu_failure, unresolved_host=lambda _: UnresolvedHost(url, "AZURE_SCM_ENDPOINT"),
                             exhausted=exhausted, sleep=self.sleep, stderr=self.stderr)
        except _Answer as answer:
            return answer.status, answer.headers, answer.data

    def wait_deployment(self, url: str) -> dict[str, Any]:
        """Poll a Kudu deployment until `complete` (the HTTP status says little: rely on the body)."""
        for _ in range(self.poll_limit):
            status, _, data = self.kudu("GET", url)
            if status not in (200, 202):
                raise KuduError(f"Kudu answered {status} to GET {url}: {_text(data)}", status)
            result = json.loads(data or b"{}")
            if result.get("complete"):
                return result
            self.sleep(self.poll_interval)
        raise KuduError(f"the deployment did not complete after {self.poll_limit} polls; see {url}")

    def publish(self, app: str, data: bytes, flex: bool) -> dict[str, Any]:
        base = self.scm_base(app)
        if flex:
            # Flex Consumption: one deploy (OneDeploy) with a remote build; application/zip or 415
            url, content_type = f"{base}/api/publish?RemoteBuild=true&Deployer=agent-framework", "application/zip"
        else:
            url, content_type = f"{base}/api/zipdeploy?isAsync=true&Deployer=agent-framework", \
                "application/octet-stream"
        for attempt in range(3):
            status, headers, body = self.kudu("POST", url, data, {"Content-Type": content_type})
            if status == 409 and attempt < 2:  # another deployment runs (e.g. an interrupted one): let it end
                with contextlib.suppress(KuduError):
                    self.wait_deployment(f"{base}/api/deployments/latest")
                continue
            break
        if status not in (200, 202):
            raise KuduError(f"Kudu refused the package ({status}): {_text(body)}", status)
        location = _header(headers, "Location")
        if flex and body.strip():
            ident = json.loads(body)
            poll = f"{base}/api/deployments/{ident}" if isinstance(ident, str) else None
        else:
            poll = None
        poll = poll or (urljoin(base + "/", location) if location else f"{base}/api/deployments/latest")
        result = self.wait_deployment(poll)
        if result.get("status") != 4:
            raise KuduError(f"the deployment of {app} failed (Kudu status {result.get('status')}, "
                            f"{result.get('status_text') or result.get('message') or 'no message'}); see the build "
                            f"log at {base}/api/deployments/{result.get('id', 'latest')}/log")
        return result


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _text(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text[:300] or "(no message)"


def _or_none(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ResourceNotFoundError as error:
        if _error_code(error) == "ResourceGroupNotFound":
            raise
        return None


def _error_code(error: HttpResponseError) -> str:
    with contextlib.suppress(Exception):
        return (error.response.json().get("error") or {}).get("code") or ""
    return ""


def _error_message(error: HttpResponseError) -> str:
    with contextlib.suppress(Exception):
        info = error.response.json().get("error") or {}
        if info.get("message"):
            return f"{info.get('code') or error.status_code}: {info['message']}"
    return str(error.message or error).splitlines()[0]


@contextlib.contextmanager
def translate_errors(group: str = "", subscription: str = "") -> Iterator[None]:
    """SDK and HTTP errors -> DeployError with a clear one-line message."""
    try:
        yield
    except ClientAuthenticationError as error:
        raise DeployError(
            "Azure did not accept the credentials (" + _error_message(error) + "): sign in with `az login`, "
            "or in CI use a workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE), "
            "or pass a token in AZURE_ACCESS_TOKEN")
    except HttpResponseError as error:
        if _error_code(error) == "ResourceGroupNotFound":
            raise DeployError(f"the resource group {group} does not exist in subscription {subscription}: create it "
                              f"with `az group create -n {group} -l REGION`, or fix resource_group under targets.azure")
        request = error.response.request if error.response is not None else None
        what = f"{request.method} {request.url.split('?')[0].split('/providers/Microsoft.Web/')[-1]}" \
            if request is not None else "a call"
        status = error.status_code
        tail = " (after retries)" if status in RETRY_STATUS else ""
        raise DeployError(f"Azure refused {what}: {status} {_error_message(error)}{tail}")
    except KuduError as error:
        raise DeployError(str(error))
    except (ServiceRequestError, ServiceResponseError) as error:
        raise DeployError(f"could not talk to Azure: {str(error).splitlines()[0]}")
    except Exception as error:
        if type(error).__name__ == "CredentialUnavailableError":
            raise DeployError("no Azure credentials found: sign in with `az login`, or in CI use a workload "
                              "identity or a managed identity, or pass a token in AZURE_ACCESS_TOKEN")
        raise


# ---------------------------------------------------------------- reading the deployed state


def read_snapshot(api: Api, app: str, plan_name: str, *, owner: str,
                  table: tuple[str, str] | None = None) -> azure.Snapshot:
    """Everything the planner needs, read-only (GET, and POST .../list which only reads)."""
    plan = site = None
    settings: dict[str, str] = {}
    markers: dict[str, str] = {}
    raw_plan = api.get_plan(plan_name)
    if raw_plan is not None:
        props = raw_plan.get("properties") or {}
        sku = raw_plan.get("sku") or {}
        plan = azure.PlanState(id=raw_plan.get("id") or "", sku=sku.get("name") or "", tier=sku.get("tier") or "",
                               max_elastic=props.get("maximumElasticWorkerCount"),
                               sites=int(props.get("numberOfSites") or 0), tags=dict(raw_plan.get("tags") or {}))
    raw_site = api.get_site(app)
    if raw_site is not None:
        props = raw_site.get("properties") or {}
        tags = dict(raw_site.get("tags") or {})
        config = props.get("functionAppConfig") or {}
        fields: dict[str, Any] = {}
        if config:
            scale = config.get("scaleAndConcurrency") or {}
            storage = (config.get("deployment") or {}).get("storage") or {}
            ready = sum(int(item.get("instanceCount") or 0) for item in scale.get("alwaysReady") or []
                        if item.get("name") == "http")
            fields = dict(python=(config.get("runtime") or {}).get("version"), memory=scale.get("instanceMemoryMB"),
                          max_instances=scale.get("maximumInstanceCount"), always_ready=ready,
                          storage=storage.get("value"), storage_auth=dict(storage.get("authentication") or {}))
        owned = tags.get(azure.TAG_AGENT) == owner
        if owned and not config:
            web = api.web_config(app)
            fields = dict(linux_fx=web.get("linuxFxVersion"), min_elastic=web.get("minimumElasticInstanceCount"),
                          scale_limit=web.get("functionAppScaleLimit"))
        site = azure.SiteState(id=raw_site.get("id") or "", tags=tags, server_farm_id=props.get("serverFarmId") or "",
                               host=props.get("defaultHostName"), state=props.get("state"), **fields)
        if owned:
            values = api.app_settings(app)
            settings = {name: digest(value) for name, value in sorted(values.items())}
            markers = {name: values[name] for name in (azure.SETTING_PACKAGE, azure.SETTING_FILES,
                                                       azure.SETTING_OWNED, azure.SETTING_TABLE) if name in values}
    exists = api.table("GET", *table) != 404 if table else None
    return azure.Snapshot(plan=plan, site=site, settings=settings, markers=markers, table=exists)


# ---------------------------------------------------------------- handlers (the only mutations)

REGISTRY = Registry()


@REGISTRY.handler("serverfarm.put")
def _put_plan(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    api.client.app_service_plans.begin_create_or_update(api.group, args["name"], args["body"]).result()


@REGISTRY.handler("site.put")
def _put_site(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    api: Api = ctx.api
    api.client.web_apps.begin_create_or_update(api.group, args["name"], args["body"]).result()
    return {"site_created": True}


@REGISTRY.handler("site.patch")
def _patch_site(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    api.client.web_apps.update(api.group, args["name"], args["body"], cls=_raw)


@REGISTRY.handler("site.config")
def _patch_config(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    api.client.web_apps.update_configuration(api.group, args["name"], args["body"], cls=_raw)


@REGISTRY.handler("appsettings.merge")
def _merge_settings(ctx: Context, args: dict[str, Any]) -> None:
    """List, merge ours, PUT only when different: settings the user added themselves survive."""
    api: Api = ctx.api
    current = api.app_settings(args["app"])
    merged = {k: v for k, v in current.items() if k not in set(args["remove"])}
    merged.update({k: str(v) for k, v in args["set"].items()})
    if merged != current:
        api.client.web_apps.update_application_settings(api.group, args["app"], {"properties": merged}, cls=_raw)


@REGISTRY.handler("table.put")
def _put_table(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.table("PUT", args["account"], args["table"])


@REGISTRY.handler("table.delete")
def _delete_table(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.table("DELETE", args["account"], args["table"])  # 404: already gone


@REGISTRY.handler("kudu.publish")
def _publish(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    result = ctx.api.publish(args["app"], args["zip"], flex=True)
    return {"deployment": result.get("id")}


@REGISTRY.handler("kudu.zipdeploy")
def _zipdeploy(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    result = ctx.api.publish(args["app"], args["zip"], flex=False)
    return {"deployment": result.get("id")}


@REGISTRY.handler("site.delete")
def _delete_site(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    _or_none(lambda: api.client.web_apps.delete(api.group, args["name"]))


@REGISTRY.handler("serverfarm.delete")
def _delete_plan(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    # deleting the site may already have removed the plan it left empty: 404 is done
    _or_none(lambda: api.client.app_service_plans.delete(api.group, args["name"]))


# pause / resume (issue 14): Web Apps - Stop / Start
# (https://learn.microsoft.com/en-us/rest/api/appservice/web-apps/stop, .../web-apps/start)
@REGISTRY.handler("site.stop")
def _stop_site(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    api.client.web_apps.stop(api.group, args["name"])


@REGISTRY.handler("site.start")
def _start_site(ctx: Context, args: dict[str, Any]) -> None:
    api: Api = ctx.api
    api.client.web_apps.start(api.group, args["name"])


# ---------------------------------------------------------------- the deployer (used by commands.py)


def package_files(files: Sequence[File], target: str = "azure") -> tuple[bytes, str, str]:
    """The app's zip (every generated file but its docs at the root; remote build installs requirements.txt),
    its sha256, and the per-file digests kept in AGENT_FRAMEWORK_FILES."""
    entries = [(f.path.removeprefix(f"{target}/"), f.content, 0o644) for f in files
               if f.path.removeprefix(f"{target}/") not in DOCS]
    data = build_zip(entries)
    names = ",".join(f"{name}={hashlib.sha256(content).hexdigest()[:12]}" for name, content, _ in sorted(entries))
    return data, hashlib.sha256(data).hexdigest(), names


# ---- history (issue 14): the packages the framework keeps (framework/platforms/azure/packages.py)


def blobs(api: Api, account: str) -> packages.Blobs:
    """The package container of `account` with the deployer's credential and retry policy."""
    return packages.Blobs(account, api.environ, api.credential, api.retry, api.sleep, api.stderr)


@REGISTRY.handler("blob.put")
def _put_blob(ctx: Context, args: dict[str, Any]) -> None:
    blobs(ctx.api, args["account"]).put(args["app"], args["sha"], args["zip"], args["files"], args["prompt"])


@REGISTRY.handler("blob.delete")
def _delete_blob(ctx: Context, args: dict[str, Any]) -> None:
    blobs(ctx.api, args["account"]).delete(args["app"], args["sha"])


class Deployer(DeployerBase):
    """One agent on Azure Functions: prepare (package + desired state), read, plan, apply, destroy, info."""

    title = title
    planner = azure
    home = azure.SECRETS

    def __init__(self, agent: Agent, settings: TargetSettings, files: Sequence[File], options: DeployOptions):
        super().__init__(agent, settings, files, options)
        self.subscription, self.group, self.region = azure.resolve_location(settings, self.environ)
        self.app = agent.staged(settings.options.get("app") or agent.name)
        self.api = Api(self.subscription, self.group, self.environ, sleep=options.sleep,
                       retries=RETRIES if options.retries is None else options.retries,
                       backoff=BACKOFF if options.backoff is None else options.backoff,
                       polling_interval=POLL_INTERVAL if options.poll_interval is None else options.poll_interval,
                       stderr=options.stderr)
        self.package: bytes | None = None
        store = session_store(self.files)
        self.sessions = store if store and store.get("store") == "table" else None
        self.stored: list[packages.Stored] | None = None  # the kept packages, read with keep_packages (issue 14)

    @property
    def plan_name(self) -> str:
        return f"{self.app}-plan"

    def translate(self) -> contextlib.AbstractContextManager[None]:
        return translate_errors(self.group, self.subscription)

    def prepare(self) -> azure.Desired:
        self.package, sha, names = package_files(self.files)
        self.desired = azure.desired_state(self.agent, self.settings, subscription=self.subscription,
                                           resource_group=self.group, region=self.region, package_sha256=sha,
                                           files=names, secrets=self.secrets, sessions=self.sessions)
        return self.desired

    @property
    def session_table(self) -> tuple[str, str] | None:
        """(account, table) of agent.json's sessions, when both are known."""
        if self.sessions is None or not self.sessions.get("account"):
            return None
        return self.sessions["account"], self.sessions["table"]

    def snapshot(self, *, destroy: bool = False) -> azure.Snapshot:
        snap = read_snapshot(self.api, self.app, self.plan_name, owner=self.agent.name, table=self.session_table)
        self.stored = None if destroy else self.read_stored(snap)  # keep_packages (issue 14)
        return snap

    def destroy_plan(self, snap: azure.Snapshot) -> DeployPlan:
        table = "/".join(self.session_table) if self.session_table else None
        return DeployPlan(azure.plan_destroy(self.agent.name, self.app, self.group, snap, table))

    def apply(self, plan: Plan, progress: Progress | None = None) -> dict[str, Any]:
        context = Context(api=self.api, secrets=self.secrets.values(), package=self.package, files=self.files)
        return Executor(REGISTRY, context, progress).run(plan)

    def _plan_label(self, kind: str | None, sku: str | None) -> str:
        if kind == "flex" or sku == "FC1":
            return "Flex Consumption"
        return f"Elastic Premium {sku}" if sku else "Azure Functions"

    def outputs(self, snap: azure.Snapshot, results: Mapping[str, Any] | None = None) -> dict[str, Any]:
        results = results or {}
        site = snap.site
        if results or site is None:  # what was just created or changed: read it back
            raw = self.api.get_site(self.app) or {}
            host = (raw.get("properties") or {}).get("defaultHostName")
        else:
            host = site.host
        kind = self.desired.plan_kind if self.desired else None
        sku = self.desired.sku if self.desired else (snap.plan.sku if snap.plan else None)
        package = self.desired.package_sha256 if self.desired else snap.markers.get(azure.SETTING_PACKAGE)
        out: dict[str, Any] = {
            "target": "azure", "url": azure.function_url(host), "app": self.app, "resource_group": self.group,
            "region": self.region, "plan": self._plan_label(kind, sku), "package_sha256": package,
            "auth": "anonymous" if self.agent.public else "function",
            "summary": f"{self.app} ({self._plan_label(kind, sku)}) in {self.region}, package "
                       f"{(package or '?')[:12]}",
        }
        if not self.agent.public:
            # the key itself is never printed: people fetch it when they need it
            out["key"] = (f"az functionapp function keys list -g {self.group} -n {self.app} "
                          f"--function-name {azure.FUNCTION}")
            out["summary"] += f"; the URL needs the function key (x-functions-key header): {out['key']}"
        return out

    def info(self) -> dict[str, Any]:
        snap = self.snapshot()
        site = snap.site
        if site is None or site.tags.get(azure.TAG_AGENT) != self.agent.name:
            return {"target": "azure", "deployed": False,
                    "note": "not deployed" if site is None else
                    f"a function app named {self.app} exists but is not ours"}
        out = self.outputs(snap)
        details = {"app": self.app, "resource group": self.group, "region": self.region, "plan": out["plan"],
                   "state": site.state, "package": (snap.markers.get(azure.SETTING_PACKAGE) or "?")[:12],
                   "auth": out["auth"]}
        if site.memory is not None:
            details.update({"python": site.python, "instance memory": site.memory,
                            "max instances": site.max_instances, "always ready": site.always_ready})
        else:
            details.update({"python": (site.linux_fx or "").removeprefix("Python|"),
                            "max instances": site.scale_limit, "always ready": site.min_elastic})
        if not self.agent.public:
            details["function key"] = "present" if self.api.function_key(self.app) else "not yet (no deployment)"
        paused = site.state == azure.STOPPED  # issue 14
        if paused:
            out["summary"] = f"PAUSED (the app is stopped: every request is refused) {out['summary']}"
        return {**out, "target": "azure", "deployed": True, "details": details, "paused": paused}

    # ---- pause / resume (issue 14)
    def pause_plan(self, resume: bool = False) -> Plan:
        """Stop or start the function app (planner.plan_pause)."""
        return azure.plan_pause(self.agent.name, self.app, self.group, self.snapshot(), resume)

    # ---- history (issue 14)
    @property
    def package_account(self) -> str | None:
        """The storage account that keeps this agent's packages (packages.account_of)."""
        return packages.account_of(self.settings.options)

    def read_stored(self, snap: azure.Snapshot) -> list[packages.Stored] | None:
        """The kept packages, newest first: read only with keep_packages, on an app of ours."""
        keep, account = self.settings.options.get("keep_packages"), self.package_account
        if not keep or not account or snap.site is None or snap.site.tags.get(azure.TAG_AGENT) != self.agent.name:
            return None
        return blobs(self.api, account).list(self.app)

    def plan(self, snap: azure.Snapshot) -> DeployPlan:
        """The planner's plan, plus keeping the package it publishes ("stored package" before "code
        package") and, with keep_packages, deleting the kept packages beyond the newest N."""
        found = super().plan(snap)
        account = self.package_account
        if account is None or self.desired is None:
            return found
        resources = list(found.plan.resources)
        code = next(i for i, r in enumerate(resources) if r.kind == "code package")
        sha = self.desired.package_sha256
        publishing = sha if resources[code].action != UNCHANGED else None
        if publishing:
            prompt = self.agent.prompt_digest
            resources.insert(code, packages.plan_store(account, self.app, sha, self.desired.files, prompt))
        resources += packages.plan_prune(account, self.app, self.settings.options.get("keep_packages"),
                                         self.stored or [], snap.markers.get(azure.SETTING_PACKAGE),
                                         publishing)
        return dataclasses.replace(found, plan=dataclasses.replace(found.plan, resources=tuple(resources)))

    def history(self) -> History:
        """The packages kept in the agent's storage account (List Blobs), newest first; the live one is
        the sha256 the app records in AGENT_FRAMEWORK_PACKAGE."""
        account = self.package_account
        if account is None:
            raise DeployError(packages.NONE_KEPT)
        snap = read_snapshot(self.api, self.app, self.plan_name, owner=self.agent.name)
        if snap.site is None or snap.site.tags.get(azure.TAG_AGENT) != self.agent.name:
            return History(packages.KIND, notes=(f"not deployed (no function app {self.app} of this agent)",))
        live = snap.markers.get(azure.SETTING_PACKAGE)
        stored = blobs(self.api, account).list(self.app)
        versions = tuple(Version(s.sha[:12], s.created, content=s.sha, prompt=s.prompt, live=s.sha == live)
                         for s in stored)
        notes = [] if not live or any(v.live for v in versions) else [
            f"the live package {live[:12]} is not kept in {account}/{packages.CONTAINER} (deployed before packages "
            "were kept, or deleted by another hand)"]
        return History(packages.KIND, versions, tuple(notes))

    def rollback(self, history: History, version: Version) -> dict[str, Any]:
        """Publish the kept package again through the deploy's own path (Flex: OneDeploy /api/publish;
        Premium: /api/zipdeploy, https://learn.microsoft.com/en-us/azure/azure-functions/functions-deployment-technologies),
        then record it in AGENT_FRAMEWORK_PACKAGE, so a later plan shows agent.yaml's package as a change."""
        account = self.package_account
        if account is None:
            raise DeployError(packages.NONE_KEPT)
        kept = blobs(self.api, account)
        sha = version.content or ""
        stored = next((s for s in kept.list(self.app) if s.sha == sha), None)
        snap = read_snapshot(self.api, self.app, self.plan_name, owner=self.agent.name)
        if stored is None or snap.site is None:
            raise DeployError(f"the package {version.id} is no longer kept for {self.app}: nothing to publish")
        data = kept.get(self.app, sha)
        if hashlib.sha256(data).hexdigest() != sha:
            raise DeployError(f"the kept package {version.id} does not match its sha256: it was changed since it "
                              "was stored; not published")
        self.api.publish(self.app, data, flex=snap.site.memory is not None)
        _merge_settings(Context(api=self.api), {"app": self.app, "remove": [], "set": {
            azure.SETTING_PACKAGE: sha, azure.SETTING_FILES: stored.files}})
        return {"changed": True}

    # ---- logs (issue 14)
    def log_reader(self, request: str | None = None) -> LogReader:
        """The app's traces in Application Insights (framework/platforms/azure/logs.py)."""
        from framework.platforms.azure.logs import reader

        return reader(self.api, self.app, request)

    # ---- invoke --deployed (issue 14)
    def invoke_headers(self, deployed: Mapping[str, Any], url: str, body: bytes,
                       headers: Mapping[str, str]) -> dict[str, str]:
        """An HTTP function with authLevel function takes its key in the x-functions-key header
        (https://learn.microsoft.com/en-us/azure/azure-functions/function-keys-how-to), read through ARM
        (Web Apps - List Function Keys: POST .../sites/{app}/functions/{fn}/listkeys,
        https://learn.microsoft.com/en-us/rest/api/appservice/web-apps/list-function-keys); never printed."""
        if deployed.get("auth") != "function":
            return {}
        key = self.api.function_key(self.app)
        if not key:
            raise DeployError(f"the function app {self.app} has no function key yet (no successful deployment): "
                              "run `agenthost deploy`")
        return {"x-functions-key": key}
