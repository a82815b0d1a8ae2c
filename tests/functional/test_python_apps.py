"""Platform specifics of the generated Python apps, run in their real frameworks."""

from __future__ import annotations

import importlib.util
import json
from contextlib import contextmanager

import pytest

from tests.conftest import API_KEY
from tests.functional.apps import functions_framework, http_call
from tests.functional.test_conformance import JSON, running

PYTHON_TARGETS = ("aws", "gcp", "azure")


@contextmanager
def serve(target: str, app_dir, **env: str | None):
    if target == "gcp":
        with functions_framework(app_dir, env) as url:
            yield http_call(url)
        return
    with running("aws-handler" if target == "aws" else "azure-function", app_dir.parent, **env) as call:
        yield call


@pytest.mark.parametrize("target", PYTHON_TARGETS)
def test_a_missing_api_key_is_a_clear_500(target, contract_build, fake_model):
    with serve(target, contract_build / target, OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=None) as call:
        status, _, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 500
    assert json.loads(raw) == {"error": "OPENAI_API_KEY is not set in the function's environment"}


@pytest.mark.parametrize("target", ["aws", "azure"])
def test_an_unreachable_model_endpoint_gives_502(target, contract_build):

    with serve(target, contract_build / target,
               OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY=API_KEY) as call:
        status, _, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 502
    assert json.loads(raw) == {"error": "could not reach the model endpoint"}


# Platform specifics: each adapter maps its platform's shapes exactly.

def test_lambda_accepts_a_base64_encoded_function_url_body(contract_build, fake_model):
    from tests.functional.apps import LambdaContext, function_url_event

    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        event = function_url_event("POST", b'{"message": "b64 body"}', JSON, base64_body=True)
        result = call.module.lambda_handler(event, LambdaContext(4))
    assert result["statusCode"] == 200 and result["isBase64Encoded"] is False
    assert json.loads(result["body"])["response"] == "echo: b64 body"


def test_lambda_accepts_an_api_gateway_rest_event(contract_build, fake_model):
    from tests.functional.apps import LambdaContext, rest_api_event

    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        result = call.module.lambda_handler(rest_api_event("POST", b'{"message": "rest"}', JSON), LambdaContext(4))
        preflight = call.module.lambda_handler(rest_api_event("OPTIONS", b"", {"Origin": "https://app.example"}),
                                               LambdaContext(4))
    assert json.loads(result["body"])["response"] == "echo: rest"
    assert preflight["statusCode"] == 204
    assert preflight["headers"]["Access-Control-Allow-Origin"] == "https://app.example"


def test_lambda_direct_invocation_takes_the_event_as_the_body(contract_build, fake_model):
    from tests.functional.apps import LambdaContext

    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        result = call.module.lambda_handler({"message": "direct"}, LambdaContext(4))
    assert result["statusCode"] == 200 and json.loads(result["body"])["response"] == "echo: direct"


def test_lambda_answers_504_before_the_remaining_time_runs_out(contract_build, fake_model):
    from tests.functional.apps import LambdaContext

    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        context = LambdaContext(2.5)  # less time left than the configured timeout
        result = call.module.lambda_handler({"message": "[[hang:20]] short"}, context)
    assert result["statusCode"] == 504
    assert context.get_remaining_time_in_millis() > 0  # answered before Lambda would kill it


def test_azure_function_is_routed_at_api_agent_for_every_method(contract_build, fake_model):
    import azure.functions as func

    with serve("azure", contract_build / "azure", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        assert call.route == "/api/agent"
        assert call.auth_level == func.AuthLevel.ANONYMOUS


@pytest.mark.parametrize("target", ["aws", "azure"])
def test_an_api_key_saved_with_a_trailing_newline_still_works(target, contract_build, fake_model, request):
    with serve(target, contract_build / target, OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY + "\n") as call:
        status, _, raw = call("POST", json.dumps({"message": request.node.name}).encode(), JSON)
    assert status == 200
    (sent,) = fake_model.find(request.node.name)
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize("key", ["ab\ncd", "ab\rcd", "ab\x7fcd", "abé", "ab€"])
def test_an_api_key_that_cannot_be_sent_is_a_clear_500_not_a_crash(key, contract_build, fake_model):
    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=key) as call:
        status, _, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 500
    assert json.loads(raw) == {"error": "OPENAI_API_KEY holds characters not allowed in an API key "
                                        "(a line break, a control or a non-ASCII character)"}
    assert b"ab" not in raw


@pytest.mark.parametrize(("body", "status", "answer"), [
    # deeper than the JSON parser goes: refused as not JSON, not a RecursionError
    (b'{"message": "hi", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400,
     {"error": "the request body is not valid JSON"}),
    # a lone surrogate reaches the model as "?" (it cannot be encoded), and is answered
    (b'{"message": "\\ud800 lone surrogate"}', 200, {"response": "echo: ? lone surrogate", "tokens": 47, "steps": 1}),
])
def test_odd_json_bodies_never_crash_the_handler(body, status, answer, contract_build, fake_model):
    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        got, _, raw = call("POST", body, JSON)
    assert (got, json.loads(raw)) == (status, answer)


@pytest.mark.parametrize("target", PYTHON_TARGETS)
def test_an_unexpected_failure_is_a_json_500_not_the_platforms_page(target, contract_build, capfd):
    """A host name with an empty label fails in the idna codec (UnicodeError: neither a network nor
    an HTTP error, so no branch expects it): the runtime's last resort still answers the contract's
    JSON, where Flask would send its HTML page and Lambda its own 502."""
    with serve(target, contract_build / target, OPENAI_BASE_URL="http://a..b/v1", OPENAI_API_KEY=API_KEY) as call:
        status, headers, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 500 and headers["content-type"].startswith("application/json")
    assert json.loads(raw) == {"error": "the agent failed unexpectedly (UnicodeError); see the function's log"}
    if target != "gcp":  # gcp logs in its own process
        log = capfd.readouterr().err
        assert "unexpected UnicodeError (message withheld)" in log and API_KEY not in log


# The runtime itself, with each client, against model servers that close the connection after each
# answer: `Connection: close` and HTTP/1.0 (http.client then lets go of the socket: conn.sock = None).

CLIENTS = ["builtin", "openai"]
CLOSING = ["[[close]]", "[[http10]]"]


def runtime_agent(app_dir, client: str, base_url: str, **config):
    """An Agent of the generated agent_runtime.py, configured like the contract agent."""
    spec = importlib.util.spec_from_file_location(f"agent_runtime_{client}", app_dir / "agent_runtime.py")
    runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    settings = json.loads((app_dir / "agent.json").read_text())
    return runtime.Agent({**settings, "client": client, "base_url": base_url, **config},
                         environ={"OPENAI_API_KEY": API_KEY}, can_stream=True)


def ask(agent, message: str, stream: bool) -> tuple[int, dict, bytes]:
    reply = agent.handle("POST", {}, json.dumps({"message": message, "stream": stream}).encode())
    return reply.status, reply.headers, reply.body if isinstance(reply.body, bytes) else b"".join(reply.body)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", CLOSING)
def test_the_runtime_answers_in_json_from_a_server_that_closes(client, mode, contract_build, fake_model, request):
    agent = runtime_agent(contract_build / "gcp", client, fake_model.url)
    for attempt in range(2):
        message = f"{mode} {attempt} {request.node.name}"
        status, _, raw = ask(agent, message, stream=False)
        assert status == 200 and json.loads(raw)["response"] == f"echo: {message}"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", CLOSING)
def test_the_runtime_streams_from_a_server_that_closes(client, mode, contract_build, fake_model, request):
    agent = runtime_agent(contract_build / "gcp", client, fake_model.url)
    message = f"{mode} {request.node.name}"
    status, headers, raw = ask(agent, message, stream=True)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert raw.decode() == f"echo: {message}"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", CLOSING)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_runtime_retries_a_server_that_closes(client, mode, stream, contract_build, fake_model, request):
    agent = runtime_agent(contract_build / "gcp", client, fake_model.url)
    tag = f"{mode} {request.node.name}"
    status, _, raw = ask(agent, f"[[status-once:503]] {tag}", stream)
    assert status == 200 and tag in raw.decode()
    assert len(fake_model.find(tag)) == 2


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", CLOSING)
def test_the_runtime_keeps_its_deadline_on_a_stream_that_stalls_and_closes(client, mode, contract_build, fake_model,
                                                                          request):
    agent = runtime_agent(contract_build / "gcp", client, fake_model.url, timeout=2)
    status, _, raw = ask(agent, f"{mode} [[delay:20]] {request.node.name}", stream=True)
    assert status == 504 and json.loads(raw) == {"error": "the model did not answer within 2 s"}
