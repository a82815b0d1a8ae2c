"""Platform specifics of the generated Python apps, run in their real frameworks."""

from __future__ import annotations

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


def test_an_api_key_that_cannot_be_a_header_is_a_clear_500_not_a_crash(contract_build, fake_model):
    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY="ab\ncd") as call:
        status, _, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 500
    assert json.loads(raw) == {"error": "OPENAI_API_KEY holds characters not allowed in an HTTP header"}
    assert b"ab" not in raw.replace(b"OPENAI", b"")


@pytest.mark.parametrize("body", [
    b'{"message": "hi", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than the JSON parser goes
    b'{"message": "\\ud800 lone surrogate"}',
])
def test_odd_json_bodies_never_crash_the_handler(body, contract_build, fake_model):
    with serve("aws", contract_build / "aws", OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        status, headers, raw = call("POST", body, JSON)
    assert status in (200, 400)
    assert "error" in json.loads(raw) or "response" in json.loads(raw)
