"""The HTTP contract, held by every generated Python app in its real framework.

aws: the Lambda handler with function URL (payload 2.0) events and a context object;
gcp: main.py served by functions-framework over HTTP; azure: the function registered on the
generated FunctionApp, called with azure.functions.HttpRequest.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager

import pytest

from tests.conftest import API_KEY, NASTY_PROMPT
from tests.functional.apps import azure_caller, functions_framework, http_call, lambda_caller

PYTHON_TARGETS = ("aws", "gcp", "azure")
JSON = {"Content-Type": "application/json"}


@contextmanager
def environment(**values: str | None):
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def serve(target: str, app_dir, **env: str | None):
    """A caller for one generated app, started with the given model environment."""
    if target == "gcp":
        with functions_framework(app_dir, env) as url:
            yield http_call(url)
        return
    with environment(**env):  # the app reads its environment once, at cold start (import)
        call = lambda_caller(app_dir, timeout_s=4) if target == "aws" else azure_caller(app_dir)
    yield call


@pytest.fixture(scope="module", params=PYTHON_TARGETS)
def app(request, contract_build, fake_model):
    with serve(request.param, contract_build / request.param,
               OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        call.target = request.param
        yield call


def post(app, payload, headers=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, response_headers, raw = app("POST", body, {**JSON, **(headers or {})})
    return status, response_headers, json.loads(raw) if raw else None


def token(request) -> str:
    return f"tok-{request.node.callspec.id}-{request.node.name[:40]}"


def test_post_answers_with_the_response_and_token_count(app, request):
    message = f"hello {token(request)}"
    status, headers, body = post(app, {"message": message})
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert body["response"] == f"echo: {message}"
    words = len((NASTY_PROMPT + " " + message).split())
    assert body["tokens"] == words + len(body["response"].split())


def test_system_prompt_reaches_the_model_byte_for_byte(app, fake_model, request):
    tag = token(request)
    post(app, {"message": tag})
    (sent,) = fake_model.find(tag)
    assert sent.json["messages"][0] == {"role": "system", "content": NASTY_PROMPT}
    assert sent.json["messages"][1] == {"role": "user", "content": tag}


def test_model_settings_and_api_key_are_sent(app, fake_model, request):
    tag = token(request)
    post(app, {"message": tag})
    (sent,) = fake_model.find(tag)
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "fake-model-1"
    assert sent.json["max_tokens"] == 77
    assert sent.json["temperature"] == 0.5
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"


BAD_REQUESTS = [
    (b"not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"hello"', "must be a JSON object"),
    (b"{}", "'message' is required"),
    (b'{"message": ""}', "'message' must not be empty"),
    (b'{"message": "   "}', "'message' must not be empty"),
    (b'{"message": 42}', "'message' must be a string"),
    (b'{"message": null}', "'message' must be a string"),
    (b'{"message": ["a"]}', "'message' must be a string"),
    (b'{"message": "hi", "stream": "yes"}', "'stream' must be true or false"),
    (b'{"message": "hi", "stream": true}', "does not stream"),
    (b"\xff\xfe garbage", "not valid JSON"),
]


@pytest.mark.parametrize("raw, expected", BAD_REQUESTS, ids=[e for _, e in BAD_REQUESTS])
def test_bad_request_gets_400_with_a_plain_error(app, raw, expected):
    status, headers, body = post(app, raw)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert expected in body["error"]
    assert "Traceback" not in body["error"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405(app, method):
    status, headers, raw = app(method, b"", {})
    assert status == 405
    assert headers["allow"] == "POST, OPTIONS"
    assert "use POST" in json.loads(raw)["error"]


def test_preflight_from_an_allowed_origin_gets_204_and_cors_headers(app):
    status, headers, raw = app("OPTIONS", b"", {"Origin": "https://app.example",
                                                "Access-Control-Request-Method": "POST"})
    assert status == 204 and raw == b""
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in headers["access-control-allow-methods"]
    assert "Content-Type" in headers["access-control-allow-headers"]


def test_preflight_from_another_origin_gets_204_without_cors_headers(app):
    status, headers, _ = app("OPTIONS", b"", {"Origin": "https://evil.example"})
    assert status == 204
    assert "access-control-allow-origin" not in headers


def test_post_from_an_allowed_origin_carries_the_cors_header(app, request):
    status, headers, _ = post(app, {"message": token(request)}, {"Origin": "https://app.example"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["vary"] == "Origin"


def test_model_failure_gives_502_without_secrets_or_traces(app, request):
    status, _, body = post(app, {"message": f"[[status:500]] {token(request)}"})
    assert status == 502
    assert body == {"error": "the model endpoint answered HTTP 500"}


def test_a_client_error_from_the_model_is_not_retried(app, fake_model, request):
    tag = token(request)
    status, _, body = post(app, {"message": f"[[status:401]] {tag}"})
    assert status == 502 and "401" in body["error"]
    assert len(fake_model.find(tag)) == 1


def test_rate_limits_are_retried_then_reported(app, fake_model, request):
    tag = token(request)
    status, _, body = post(app, {"message": f"[[status:429,retry-after:0]] {tag}"})
    assert status == 502 and "429" in body["error"]
    assert len(fake_model.find(tag)) == 3  # the first try and two retries


def test_a_transient_failure_is_retried_and_succeeds(app, fake_model, request):
    tag = token(request)
    status, _, body = post(app, {"message": f"[[status-once:503]] {tag}"})
    assert status == 200 and tag in body["response"]
    assert len(fake_model.find(tag)) == 2


def test_a_model_that_hangs_gives_504(app, request):
    status, _, body = post(app, {"message": f"[[hang:20]] {token(request)}"})
    assert status == 504
    assert body == {"error": "the model did not answer within 4 s"}


def test_a_malformed_model_answer_gives_502(app, request):
    status, _, body = post(app, {"message": f"[[malformed]] {token(request)}"})
    assert status == 502 and body == {"error": "the model endpoint sent a malformed answer"}


def test_missing_usage_counts_zero_tokens(app, request):
    status, _, body = post(app, {"message": f"[[empty-usage]] {token(request)}"})
    assert status == 200 and body["tokens"] == 0


def test_unicode_round_trips(app, request):
    message = f"Grüße, 世界! 🤖 \"quoted\" \\ {{{{x}}}} {token(request)}"
    status, _, body = post(app, {"message": message})
    assert status == 200 and body["response"] == f"echo: {message}"


def test_a_one_megabyte_message_is_accepted(app, request):
    message = token(request) + " " + "word " * 200_000
    status, _, body = post(app, {"message": message})
    assert status == 200 and body["response"] == f"echo: {message}"


def test_concurrent_requests_each_get_their_own_answer(app, request):
    results: dict[int, tuple] = {}

    def worker(index: int) -> None:
        results[index] = post(app, {"message": f"{token(request)}-{index}"})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(8):
        status, _, body = results[index]
        assert status == 200 and body["response"] == f"echo: {token(request)}-{index}"


@pytest.mark.parametrize("target", PYTHON_TARGETS)
def test_a_missing_api_key_is_a_clear_500(target, contract_build, fake_model):
    with serve(target, contract_build / target, OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=None) as call:
        status, _, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 500
    assert json.loads(raw) == {"error": "OPENAI_API_KEY is not set in the function's environment"}


@pytest.mark.parametrize("target", ["aws", "azure"])
def test_an_unreachable_model_endpoint_gives_502(target, contract_build):
    from tests.functional.apps import free_port

    with serve(target, contract_build / target,
               OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", OPENAI_API_KEY=API_KEY) as call:
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
