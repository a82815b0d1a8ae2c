"""The HTTP contract, one suite for every way a generated app runs.

aws-handler: the Lambda handler called in-process with function URL (payload 2.0) events and a
context object; azure-function: the function registered on the generated FunctionApp, called with
azure.functions.HttpRequest; and each target served by `python -m framework serve` as a
subprocess (Lambda runtime client, functions-framework, the Azure front, Vercel's edge-runtime)
driven over real HTTP.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager

import pytest

from tests.conftest import API_KEY, NASTY_PROMPT
from tests.functional.apps import azure_caller, http_call, lambda_caller, serve_cli

APPS = ("aws-handler", "azure-function", "serve-aws", "serve-gcp", "serve-azure", "serve-vercel",
        # the official openai SDK (agent.yaml `client: openai`) must hold the same contract
        "aws-handler+openai", "serve-gcp+openai")
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
def running(kind: str, build_dir, **env: str | None):
    """A caller for one way of running the contract agent, with the given model environment."""
    if kind.startswith("serve-"):
        target = kind.removeprefix("serve-").removesuffix("-stream")
        with serve_cli(target, build_dir.parent / "agent.yaml", build_dir, env) as url:
            call = http_call(url)
            call.url = url
            yield call
        return
    with environment(**env):  # the app reads its environment once, at cold start (import)
        call = lambda_caller(build_dir / "aws", timeout_s=4) if kind == "aws-handler" else azure_caller(
            build_dir / "azure")
    yield call


@pytest.fixture(scope="module", params=APPS)
def app(request, fake_model):
    kind, _, client = request.param.partition("+")
    build_dir = request.getfixturevalue("contract_build_openai" if client else "contract_build")
    with running(kind, build_dir, OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        call.kind = request.param
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


# Where platforms differ, the difference is stated with the platform's documented reason.
STREAM_REQUEST = {
    # Lambda streams natively only on Node.js runtimes and Azure Functions (Python) only through its
    # FastAPI extension; the generated apps answer one JSON body, so a request asking is refused.
    "aws-handler": 400, "azure-function": 400, "serve-aws": 400, "serve-azure": 400, "aws-handler+openai": 400,
    # Cloud Run functions and Vercel stream the body as the model writes it; so does a Lambda whose
    # agent streams: it is generated for the Node.js runtime (awslambda.streamifyResponse).
    "serve-gcp": 200, "serve-gcp+openai": 200, "serve-vercel": 200, "serve-aws-stream": 200,
}


def build_for(kind: str, request) -> object:
    """The build a kind of app runs from: the SDK client's, the streaming Lambda's, or the plain one."""
    if kind.endswith("+openai"):
        return request.getfixturevalue("contract_build_openai")
    if kind.endswith("-stream"):
        return request.getfixturevalue("contract_build_aws_stream")
    return request.getfixturevalue("contract_build")


STREAM_REFUSAL = {
    "aws": "this agent is built without streaming on AWS: set `stream: true` in agent.yaml to build the "
           "streaming Lambda, or send the request without \"stream\": true",
    "azure": "Azure Functions does not stream this agent's answers: send the request without \"stream\": true",
}


def test_a_request_asking_for_a_stream(app, request):
    tag = token(request)
    status, headers, raw = app("POST", json.dumps({"message": tag, "stream": True}).encode(), JSON)
    assert status == STREAM_REQUEST[app.kind]
    if status == 200:
        assert headers["content-type"].startswith("text/plain")
        assert raw.decode() == f"echo: {tag}"
    else:
        platform = "aws" if "aws" in app.kind else "azure"
        assert json.loads(raw) == {"error": STREAM_REFUSAL[platform]}


def test_stream_null_is_the_same_as_no_stream_field(app, request):
    """A JSON null for the optional field means "absent": the agent's default (here: not streamed)."""
    tag = token(request)
    status, headers, raw = app("POST", json.dumps({"message": tag, "stream": None}).encode(), JSON)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(raw)["response"] == f"echo: {tag}"


# Model servers that close the connection after every answer: `Connection: close`, or HTTP/1.0.
CLOSING = ["[[close]]", "[[http10]]"]


@pytest.mark.parametrize("mode", CLOSING)
def test_a_model_server_that_closes_each_connection_is_answered(app, mode, request):
    for attempt in range(2):  # the second request needs a new connection
        message = f"{mode} {attempt} {token(request)}"
        status, _, body = post(app, {"message": message})
        assert status == 200 and body["response"] == f"echo: {message}"


@pytest.mark.parametrize("mode", CLOSING)
def test_retries_run_against_a_model_server_that_closes_each_connection(app, fake_model, mode, request):
    tag = f"{mode} {token(request)}"
    status, _, body = post(app, {"message": f"[[status-once:503]] {tag}"})
    assert status == 200 and tag in body["response"]
    assert len(fake_model.find(tag)) == 2


def test_a_json_answer_with_an_invalid_chunk_size_is_a_502_without_retry(app, fake_model, request):
    tag = token(request)
    status, _, body = post(app, {"message": f"[[bad-chunk]] {tag}"})
    assert status == 502 and body == {"error": "the model endpoint's answer was cut off or invalid"}
    assert len(fake_model.find(tag)) == 1



@pytest.mark.parametrize("kind", [k for k, status in STREAM_REQUEST.items() if status == 200])
def test_a_stream_starts_before_the_model_has_finished(kind, fake_model, request):
    """The first piece reaches the caller while the model is still writing (it waits between pieces)."""
    import http.client
    import urllib.parse

    base = kind.partition("+")[0]
    build_dir = build_for(kind, request)
    with running(base, build_dir, OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        tag = token(request)
        message = f"[[delay:0.3]] one two three four {tag}"
        url = urllib.parse.urlsplit(call.url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.request("POST", url.path or "/", body=json.dumps({"message": message, "stream": True}), headers=JSON)
            response = conn.getresponse()
            assert response.status == 200
            first = response.read1(65536)
            sent_at_first = fake_model.chunks_sent(tag)
            rest = response.read()
        finally:
            conn.close()
    assert (first + rest).decode() == f"echo: {message}"
    assert first and sent_at_first < fake_model.chunks_sent(tag)


@pytest.mark.parametrize("kind", [k for k, status in STREAM_REQUEST.items() if status == 200])
def test_a_stream_that_stalls_before_its_first_word_is_a_json_504(kind, fake_model, request):
    """The model answers 200 and then waits past the deadline: the caller still gets a JSON error."""
    base = kind.partition("+")[0]
    build_dir = build_for(kind, request)
    with running(base, build_dir, OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        status, headers, raw = call("POST", json.dumps({"message": f"[[delay:20]] a {token(request)}",
                                                        "stream": True}).encode(), JSON)
    assert status == 504
    assert json.loads(raw) == {"error": "the model did not answer within 4 s"}


@pytest.mark.parametrize(("stream", "answer_type"), [(False, "application/json"), (None, "text/plain")])
def test_a_streaming_lambda_follows_the_requests_stream_field(stream, answer_type, fake_model, request):
    """false: the JSON answer; null: as if absent, so the agent's own stream: true decides."""
    with running("serve-aws-stream", build_for("serve-aws-stream", request),
                 OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        tag = token_of(request)
        status, headers, raw = call("POST", json.dumps({"message": tag, "stream": stream}).encode(), JSON)
        bad_status, _, bad = call("POST", b"not json", JSON)
    assert status == 200 and headers["content-type"].startswith(answer_type)
    assert (json.loads(raw)["response"] if stream is False else raw.decode()) == f"echo: {tag}"
    assert bad_status == 400 and json.loads(bad) == {"error": "the request body is not valid JSON"}


def token_of(request) -> str:
    return f"tok-{request.node.name[:60]}"


STREAMING = [k for k, status in STREAM_REQUEST.items() if status == 200]


@pytest.fixture(scope="module", params=STREAMING)
def stream_app(request, fake_model):
    """Every way of running an app that streams on request, one at a time."""
    with running(request.param.partition("+")[0], build_for(request.param, request),
                 OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY=API_KEY) as call:
        call.kind = request.param
        yield call


def ask_stream(app, message: str) -> tuple[int, dict, bytes]:
    return app("POST", json.dumps({"message": message, "stream": True}).encode(), JSON)


@pytest.mark.parametrize("mode", CLOSING)
def test_a_stream_from_a_model_server_that_closes_each_connection(stream_app, mode, request):
    message = f"{mode} {token(request)}"
    status, headers, raw = ask_stream(stream_app, message)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert raw.decode() == f"echo: {message}"


def test_a_stream_that_ends_before_any_text_is_a_json_502(stream_app, request):
    status, headers, raw = ask_stream(stream_app, f"[[no-text]] {token(request)}")
    assert status == 502 and headers["content-type"].startswith("application/json")
    assert json.loads(raw) == {"error": "the model endpoint ended the stream without an answer"}


def test_a_stream_with_an_invalid_chunk_size_is_a_json_502_not_a_timeout(stream_app, request):
    status, _, raw = ask_stream(stream_app, f"[[bad-chunk]] {token(request)}")
    assert status == 502
    assert json.loads(raw) == {"error": "the model endpoint's answer was cut off or invalid"}


# One of each runtime: the Python one under each platform's adapter (and with the SDK client), the
# JavaScript one on Vercel and as the streaming Lambda.
RUNTIMES = ["aws-handler", "azure-function", "serve-azure", "serve-gcp", "serve-vercel", "serve-aws-stream",
            "aws-handler+openai"]


@pytest.mark.parametrize("kind", RUNTIMES)
def test_an_api_key_with_a_line_break_is_a_clear_500_naming_the_setting(kind, fake_model, request):
    with running(kind.partition("+")[0], build_for(kind, request),
                 OPENAI_BASE_URL=fake_model.url, OPENAI_API_KEY="sk-secret\nvalue") as call:
        status, headers, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 500 and headers["content-type"].startswith("application/json")
    assert json.loads(raw) == {"error": "OPENAI_API_KEY holds characters not allowed in an API key "
                                        "(a line break, a control or a non-ASCII character)"}
    assert b"secret" not in raw


@pytest.mark.parametrize("kind", RUNTIMES)
def test_an_unreachable_model_is_a_502_on_every_runtime(kind, request):
    """The real class of failure, not a timeout: port 9 (discard) refuses the connection at once."""
    with running(kind.partition("+")[0], build_for(kind, request),
                 OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY=API_KEY) as call:
        status, _, raw = call("POST", b'{"message": "hi"}', JSON)
    assert status == 502
    assert json.loads(raw) == {"error": "could not reach the model endpoint"}
