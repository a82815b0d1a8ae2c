"""Fixtures of the tool-loop suites: the recording tool server, the MCP server, the tools agent's builds, and
the ways of running an app as an HTTP endpoint (Way, running_way) that the OpenAI endpoint and API key suites share."""

from __future__ import annotations

import itertools
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import API_KEY, build, write_agent
from tests.fakes.mcp_server import McpServer
from tests.fakes.tool_server import ToolServer
from tests.functional.apps import (
    LambdaContext,
    azure_caller,
    function_url_event,
    http_call,
    lambda_caller,
    load_module,
    serve_cli,
)
from tests.functional.test_conformance import environment

if TYPE_CHECKING:
    import openai

TOOL_TOKEN = "tool-token-value-7f3a9c"
MCP_TOKEN = "mcp-token-value-51be02"
TIMEOUT = 6
MAX_STEPS = 6
TOOL_TIMEOUT = 2
BUDGET = 25  # the fake model's calls cost 10 tokens each unless a script says otherwise

TOOLS_AGENT = """\
name: tools-bot
prompt: You use tools.
model: fake-model-1
{client}
timeout: {timeout}
secrets:
  TOOL_TOKEN: {{}}
  MCP_TOKEN: {{}}
limits:
  max_steps: {max_steps}
  max_request_tokens: {budget}
tools:
  - name: lookup_order
    description: Look up an order by its number.
    parameters:
      type: object
      properties:
        order_id: {{type: string, pattern: "^[0-9]+$"}}
      required: [order_id]
    http:
      url: "{tools}/orders/{{order_id}}"
      headers: {{Authorization: "Bearer ${{TOOL_TOKEN}}"}}
      timeout: {tool_timeout}
  - name: echo
    description: Echo a path back.
    parameters:
      type: object
      properties: {{path: {{type: string}}, note: {{type: string}}}}
      required: [path]
    http: {{url: "{tools}/echo/{{path}}", timeout: {tool_timeout}}}
  - name: create_note
    description: Store a note.
    parameters:
      type: object
      properties: {{text: {{type: string}}, pinned: {{type: boolean}}}}
      required: [text]
    http: {{method: POST, url: "{tools}/echo/notes", timeout: {tool_timeout}}}
  - name: status
    description: Answer with a status code.
    parameters: {{type: object, properties: {{code: {{type: string}}}}, required: [code]}}
    http:
      url: "{tools}/status/{{code}}?echo=headers"
      headers: {{X-Token: "${{TOOL_TOKEN}}"}}
      timeout: {tool_timeout}
  - name: sleep
    description: Wait.
    parameters: {{type: object, properties: {{seconds: {{type: string}}}}, required: [seconds]}}
    http: {{url: "{tools}/sleep/{{seconds}}", timeout: {tool_timeout}}}
  - name: big
    description: A long answer.
    parameters: {{type: object, properties: {{n: {{type: string}}}}, required: [n]}}
    http: {{url: "{tools}/big/{{n}}", timeout: {tool_timeout}}}
  - name: pick
    description: Pick a color.
    parameters:
      type: object
      properties:
        color: {{enum: [red, blue]}}
        count: {{type: integer, minimum: 1, maximum: 5}}
      required: [color]
      additionalProperties: false
    http: {{url: "{tools}/echo/pick", timeout: {tool_timeout}}}
  - name: moved
    description: A tool that redirects.
    parameters: {{type: object, properties: {{}}}}
    http: {{url: "{tools}/redirect", timeout: {tool_timeout}}}
  - mcp:
      url: "{mcp}"
      headers: {{Authorization: "Bearer ${{MCP_TOKEN}}"}}
      tools: [search_docs, fail_tool]
      timeout: {tool_timeout}
targets:
  aws: {{}}
  gcp: {{}}
  azure: {{}}
  vercel: {{runtime: edge, stream: true}}
"""


@pytest.fixture(scope="session")
def tool_server():
    with ToolServer() as server:
        yield server


@pytest.fixture(scope="session")
def mcp_server():
    with McpServer(require_token=MCP_TOKEN) as server:
        yield server


def tools_build(tmp_path_factory, tool_server, mcp_server, variant: str, **settings) -> Path:
    """The tools agent built for every platform; settings override the suite's numbers."""
    folder = tmp_path_factory.mktemp(f"tools-{variant}")
    numbers = {"timeout": TIMEOUT, "max_steps": MAX_STEPS, "budget": BUDGET, "tool_timeout": TOOL_TIMEOUT, **settings}
    text = TOOLS_AGENT.format(client="client: openai" if variant == "openai" else "", tools=tool_server.url,
                              mcp=mcp_server.url, **numbers)
    if variant == "aws-stream":
        text = text.replace("  aws: {}\n", "  aws: {stream: true}\n")
    agent = write_agent(folder, text)
    assert build(agent, folder / "generated") == 0
    return folder / "generated"


@pytest.fixture(scope="session")
def builds(tmp_path_factory, tool_server, mcp_server):
    """The tools agent built with the built-in client ("") and with the openai SDK ("openai")."""
    return {client: tools_build(tmp_path_factory, tool_server, mcp_server, client or "builtin")
            for client in ("", "openai")}


@contextmanager
def running(kind: str, build_dir: Path, env: dict[str, str]):
    """A caller for one way of running an app built in build_dir: `serve-TARGET` over HTTP, or the
    Lambda handler / Azure function in-process (they read their environment once, at import)."""
    if kind.startswith("serve-"):
        with serve_cli(kind.removeprefix("serve-"), build_dir.parent / "agent.yaml", build_dir, env) as url:
            yield http_call(url)
        return
    with environment(**env):
        yield lambda_caller(build_dir / "aws", timeout_s=TIMEOUT) if kind == "aws-handler" else azure_caller(
            build_dir / "azure")


# the ways of running an app the endpoint suites use ("+openai": the agent built with the openai SDK)
APPS = ("aws-handler", "azure-function", "serve-aws", "serve-gcp", "serve-azure", "serve-vercel",
        "aws-handler+openai", "serve-gcp+openai")
CLIENT_KEY = "any-key"  # the clients need one; without auth.api_keys the agent takes any


class Way:
    """One way of running an app, seen as an HTTP endpoint: `raw` for hand-made requests, `client`
    for the official Python client (in-process apps through an httpx transport)."""

    def __init__(self, kind: str, base: str | None = None, app=None, prefix: str = ""):
        self.kind, self.base, self._app, self.prefix = kind, base, app, prefix

    def raw(self, method: str, path: str, headers: dict | None = None, body: bytes = b"") -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if self._app is not None:
            return self._app(method, self.prefix + path, {k.lower(): v for k, v in headers.items()}, body)
        request = urllib.request.Request(self.base + path, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as failure:
            return failure.code, {k.lower(): v for k, v in failure.headers.items()}, failure.read()

    def client(self, key: str = CLIENT_KEY, **options) -> openai.OpenAI:
        import openai

        if self._app is None:
            return openai.OpenAI(base_url=self.base + "/v1", api_key=key, **options)

        def handler(request: httpx2.Request) -> httpx2.Response:
            status, headers, body = self._app(request.method, request.url.raw_path.decode(),
                                              {k.lower(): v for k, v in request.headers.items()}, request.read())
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            return httpx2.Response(status, headers=headers, content=body)

        import httpx2

        transport = httpx2.Client(transport=httpx2.MockTransport(handler))
        return openai.OpenAI(base_url=f"http://agent.invalid{self.prefix}/v1", api_key=key, http_client=transport,
                             **options)


def lambda_app(app_dir: Path):
    module = load_module(app_dir, "lambda_function")

    def app(method: str, path: str, headers: dict, body: bytes):
        event = function_url_event(method, body, headers)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path.partition("?")[0]
        result = module.lambda_handler(event, LambdaContext(TIMEOUT))
        json.dumps(result)  # Lambda serialises the result: it must be plain JSON
        return result["statusCode"], {k.lower(): v for k, v in result["headers"].items()}, result["body"].encode()

    return app


def azure_app(app_dir: Path):
    import azure.functions as func

    from framework.platforms.azure.runner import route_pattern

    module = load_module(app_dir, "function_app")
    (function,) = module.app.get_functions()
    trigger = function.get_trigger()
    pattern = route_pattern(f"/api/{trigger.route}")
    methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods}

    def app(method: str, path: str, headers: dict, body: bytes):
        if method not in methods or not pattern.fullmatch(path.partition("?")[0].rstrip("/")):
            return 404, {}, b""  # the host answers unrouted paths itself
        request = func.HttpRequest(method=method, url=f"http://localhost:7071{path}", headers=headers, params={},
                                   route_params={}, body=body)
        response = function.get_user_function()(request)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.get_body()

    return app


@contextmanager
def running_way(kind: str, build_dir: Path, env: dict[str, str]) -> Iterator[Way]:
    """`kind` (one of APPS' ways without "+openai") of the app built in build_dir, as a Way: `serve`
    as typed (a subprocess), else the Lambda handler or Azure function in-process."""
    if kind.startswith("serve-"):
        with serve_cli(kind.removeprefix("serve-"), build_dir.parent / "agent.yaml", build_dir, env) as url:
            yield Way(kind, base=url.rstrip("/"))
        return
    with environment(**env):  # read once, at cold start
        if kind == "aws-handler":
            yield Way(kind, app=lambda_app(build_dir / "aws"))
        else:
            yield Way(kind, app=azure_app(build_dir / "azure"), prefix="/api/agent")


def tools_env(fake_model) -> dict[str, str]:
    """What the apps' environment holds: the model's address and key, the tools' secrets."""
    return {"OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY, "TOOL_TOKEN": TOOL_TOKEN,
            "MCP_TOKEN": MCP_TOKEN}


_TAGS = itertools.count()


@pytest.fixture
def tag(request) -> str:
    """A token unique to this test, in characters no encoding changes."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"tok{next(_TAGS)}-{request.node.name}")[:80]


