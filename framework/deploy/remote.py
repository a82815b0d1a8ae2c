"""invoke --deployed: the one request of `invoke`, sent to the deployed agent's URL instead of a local
app, as `sls invoke` and `sam remote invoke` do.

The URL is the one `info` reports (the target's Deployer.info()); the platform's own authentication
comes from the Deployer (invoke_headers: SigV4 on AWS_IAM function URLs, a Google ID token, the Azure
function key), the agent's API key (auth.api_keys) from AGENT_API_KEY. No credential is ever printed.
The answer is printed as local invoke prints it (framework/local/session.py show).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from framework.deploy import run
from framework.deploy.network import UnresolvedHost
from framework.errors import DeployError, ExitCode, UsageError
from framework.local.session import Answer, show
from framework.platforms import registry
from framework.project import Unit
from framework.report import TextReporter

API_KEY_ENV = "AGENT_API_KEY"  # one of the keys auth.api_keys holds, for the agent's own check
# an HTTP connection to a URL's host: tests connect to a local server instead (the request is unchanged)
Connect = Callable[[urllib.parse.SplitResult, float], http.client.HTTPConnection]


def _connect(parts: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=ssl.create_default_context())
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def _target(unit: Unit, target: str | None) -> str:
    """Exactly one target: the one asked for, else the only deployable one agent.yaml lists."""
    if target is not None:
        return target
    listed = [t.name for t in unit.validated.agent.targets]
    deployable = [name for name in listed if name in registry.deployable()]
    if len(deployable) != 1:
        raise UsageError(f"invoke --deployed sends one request to one deployed target; choose one with --target "
                         f"({', '.join(deployable or listed)})")
    return deployable[0]


def endpoint_url(url: str, path: str) -> str:
    """The agent's URL: `info`'s URL, with the platform's agent path when the URL is a bare host
    (Vercel's production domain answers the agent on /api/agent; Azure's URL already has it)."""
    parts = urllib.parse.urlsplit(url)
    if parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path=path))
    return url


def _api_key_headers(deployer: Any, platform: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The agent's API key (auth.api_keys) when it has one: as a Bearer token, or as x-api-key when the
    platform's own authentication takes the Authorization header (SigV4, a Google ID token); the
    runtime accepts both (README: auth.api_keys)."""
    auth = deployer.settings.auth
    if auth is None:
        return {}
    key = environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise UsageError(f"{deployer.agent.name} checks API keys (auth.api_keys: {auth.api_keys}): set {API_KEY_ENV} "
                         f"to one of the keys {auth.api_keys} holds")
    if any(name.lower() == "authorization" for name in platform):
        return {"x-api-key": key}
    return {"Authorization": f"Bearer {key}"}


def _reason(error: Exception) -> str:
    return "timed out" if isinstance(error, TimeoutError) else (str(error) or type(error).__name__)


def _send(url: str, body: bytes, headers: Mapping[str, str], timeout: float, connect: Connect) -> Answer:
    """One POST; the body is read as it arrives. A failed connection is said plainly (no traceback)."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = connect(parts, timeout)
    try:
        # Host as the URL names it: what SigV4 signed, whatever connection carries the request
        conn.request("POST", path, body=body, headers={"Host": parts.netloc, **headers})
        response = conn.getresponse()
    except socket.gaierror:
        conn.close()
        raise UnresolvedHost(url, None) from None
    except (OSError, http.client.HTTPException) as error:
        conn.close()
        raise DeployError(f"could not reach {url}: {_reason(error)}") from None

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := response.read1(65536):
                yield chunk
        except (OSError, http.client.HTTPException) as error:
            raise DeployError(f"the answer from {url} broke off: {_reason(error)}") from None
        finally:
            conn.close()

    return Answer(response.status, response.getheader("Content-Type") or "", chunks(),
                  response.getheader("x-session-id"))


def invoke_deployed(file: str | Sequence[str], target: str | None, output: str, message: str,
                    stream: bool | None, raw: bool, reporter: TextReporter, *, session_id: str | None = None,
                    stage: str | None = None, agents: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                    connect: Connect = _connect, **options: Any) -> ExitCode:
    """Find the deployed URL as `info` does, authenticate the platform's way, send the message, print
    the answer as local invoke does; FAILED (with the status on stderr) unless it was 2xx."""
    environ = os.environ if environ is None else environ
    units = run.select_units(file, output, stage, agents)
    if len(units) != 1:
        raise UsageError(f"invoke runs one agent; choose one with --agent ({', '.join(u.agent for u in units)})")
    unit = units[0]
    name = _target(unit, target)
    deployer = run.make_deployer(unit, name, reporter.stderr, environ=environ, **options)
    payload: dict[str, Any] = {"message": message}
    if stream is not None:
        payload["stream"] = stream
    if session_id is not None:
        payload["session_id"] = session_id
    body = json.dumps(payload).encode()
    with deployer.errors():
        deployed = deployer.info()
        if not deployed.get("deployed") or not deployed.get("url"):
            raise DeployError(f"{unit.validated.agent.name} is not deployed on {deployer.title} "
                              f"({deployed.get('note', 'no URL')}): run `agenthost deploy` first")
        url = endpoint_url(deployed["url"], registry.get(name).endpoint(deployer.agent, deployer.settings))
        if deployed.get("paused"):
            reporter.note(f"{name}: the agent is paused (`agenthost resume` lets requests in): the platform "
                          "will refuse this request")
        headers = {"Content-Type": "application/json"}
        platform = deployer.invoke_headers(deployed, url, body, headers)
        headers.update(platform)
        headers.update(_api_key_headers(deployer, platform, environ))
    answer = _send(url, body, headers, float(deployer.settings.timeout) + 30, connect)
    if not 200 <= answer.status < 300:
        reporter.note(f"{name}: {url} answered HTTP {answer.status}")
    return show(answer, raw, reporter)
