"""The local AWS Lambda runner: the generated handler under AWS's runtime interface client
(awslambdaric) in worker processes, behind a function URL front, driven over real HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import os
import textwrap
import threading
import urllib.parse
import uuid
from pathlib import Path

import pytest

from framework.local.base import LocalOptions
from tests.conftest import API_KEY
from tests.functional.apps import alive, wait_for

pytest.importorskip("awslambdaric")
aws_runner = pytest.importorskip("framework.platforms.aws.runner")

pytestmark = pytest.mark.slow

ECHO_TIMEOUT = 2  # seconds: the echo app's configured timeout
LAMBDA_THROTTLE = {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User",
                   "message": "Rate Exceeded."}

# A plain Lambda handler: echoes its event and context, or misbehaves on request (query string).
ECHO_HANDLER = '''\
import base64, json, os, time

INIT_PID = os.getpid()
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "loads.txt"), "a") as _f:
    _f.write(f"{INIT_PID}\\n")  # module-level code: once per execution environment
INVOCATIONS = 0


def lambda_handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    remaining = [context.get_remaining_time_in_millis()]
    time.sleep(0.02)  # let the clock move: the countdown must show it
    remaining.append(context.get_remaining_time_in_millis())
    q = event.get("queryStringParameters") or {}
    if "gate" in q:  # say we started, then wait for the test to open the gate
        open(q["gate"] + ".started", "w").close()
        while not os.path.exists(q["gate"]):
            time.sleep(0.01)
    if "pidfile" in q:
        with open(q["pidfile"], "w") as f:
            f.write(str(os.getpid()))
    if "sleep" in q:
        time.sleep(float(q["sleep"]))
    if "raise" in q:
        raise ValueError("boom from the handler")
    if "exit" in q:
        os._exit(3)
    if "plain" in q:
        return {"answer": 42, "list": [1, "two"]}
    if "binary" in q:
        return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if "cookies" in q:
        return {"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-Extra": "yes"},
                "cookies": ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly"], "body": "made"}
    if "big" in q:
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({
        "event": event,
        "remaining": remaining,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "invocations": INVOCATIONS,
        "env": {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                                               "AWS_REGION", "LAMBDA_TASK_ROOT", "_HANDLER", "OPENAI_BASE_URL")},
    })}
'''


def _options(app_dir: Path, env: dict, timeout: float, concurrency: int) -> LocalOptions:
    return LocalOptions(app_dir=app_dir, port=0, timeout=timeout, concurrency=concurrency, env=env,
                        function_name="echo-fn", memory=256)


def _env(fake_model) -> dict:
    return {**os.environ, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": fake_model.url}


def _echo_dir(root: Path, handler: str = ECHO_HANDLER) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lambda_function.py").write_text(textwrap.dedent(handler), encoding="utf-8")
    return root


def request(app, method: str = "GET", path: str = "/", body: bytes = b"",
            headers: list[tuple[str, str]] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urllib.parse.urlsplit(app.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest(method, path)
        for name, value in headers or []:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()




@pytest.fixture(scope="module")
def echo_app(tmp_path_factory, fake_model):
    app_dir = _echo_dir(tmp_path_factory.mktemp("aws-echo") / "app")
    app = aws_runner.start(_options(app_dir, _env(fake_model), ECHO_TIMEOUT, 2))
    app.app_dir = app_dir
    yield app
    app.close()


@pytest.fixture(scope="module")
def contract_app(contract_build, fake_model):
    app = aws_runner.start(LocalOptions(app_dir=contract_build / "aws", port=0, timeout=4, concurrency=1,
                                        env=_env(fake_model), function_name="contract-bot", memory=512))
    yield app
    app.close()


# --- the generated handler ----------------------------------------------------------------------

def test_contract_answer_through_the_runtime_client(contract_app, fake_model):
    status, headers, body = request(contract_app, "POST", "/", json.dumps({"message": "hello lambda"}).encode(),
                                    [("Content-Type", "application/json")])
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["response"] == "echo: hello lambda"


def test_beyond_concurrency_max_is_throttled_with_429(contract_app, fake_model):
    token = f"hold-{uuid.uuid4().hex}"
    first: list = []
    holder = threading.Thread(target=lambda: first.append(request(
        contract_app, "POST", "/", json.dumps({"message": f"{token} [[hang:2]]"}).encode(),
        [("Content-Type", "application/json")])))
    holder.start()
    wait_for(lambda: fake_model.find(token), "the first request reached the model")
    status, headers, body = request(contract_app, "POST", "/", json.dumps({"message": "second"}).encode(),
                                    [("Content-Type", "application/json")])
    assert status == 429
    assert json.loads(body) == LAMBDA_THROTTLE
    holder.join()
    assert first[0][0] == 200, first[0][2]
    # the one environment is free again afterwards
    assert request(contract_app, "POST", "/", json.dumps({"message": "third"}).encode(),
                   [("Content-Type", "application/json")])[0] == 200


# --- the event and the context ------------------------------------------------------------------

def test_the_handler_sees_a_function_url_v2_event_and_a_counting_down_context(echo_app, fake_model):
    payload = json.dumps({"message": "héllo"}).encode()
    status, _, body = request(echo_app, "POST", "/some/path?x=1&x=2&y=&z=%C3%A9", payload, [
        ("Content-Type", "application/json"), ("X-Dup", "a"), ("X-Dup", "b"), ("User-Agent", "aws-test/1"),
        ("Cookie", "c1=v1; c2=v2")])
    assert status == 200, body
    seen = json.loads(body)
    event = seen["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path"
    assert event["rawQueryString"] == "x=1&x=2&y=&z=%C3%A9"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "", "z": "é"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    headers = event["headers"]
    assert all(name == name.lower() for name in headers)
    assert headers["x-dup"] == "a, b"
    assert headers["content-type"] == "application/json"
    assert "cookie" not in headers
    context = event["requestContext"]
    assert context["accountId"] == "anonymous"
    assert context["apiId"] and context["domainName"] and context["domainPrefix"]
    assert context["http"] == {"method": "POST", "path": "/some/path", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "aws-test/1"}
    assert context["routeKey"] == "$default" and context["stage"] == "$default"
    assert context["requestId"] == seen["request_id"]
    assert isinstance(context["timeEpoch"], int) and context["time"].endswith("+0000")
    assert event["isBase64Encoded"] is False
    assert event["body"] == payload.decode()
    # the context: remaining time counts down from the configured timeout
    first, later = seen["remaining"]
    assert 0 < later < first <= ECHO_TIMEOUT * 1000
    assert seen["function_name"] == "echo-fn" and seen["memory"] == "256"
    assert seen["arn"].startswith("arn:aws:lambda:") and seen["arn"].endswith(":function:echo-fn")
    env = seen["env"]
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST" and env["AWS_REGION"]
    assert env["LAMBDA_TASK_ROOT"] == str(echo_app.app_dir)
    assert env["_HANDLER"] == "lambda_function.lambda_handler"
    assert env["OPENAI_BASE_URL"] == fake_model.url


def test_a_warm_worker_is_reused_and_its_module_code_ran_once(echo_app):
    answers = [json.loads(request(echo_app)[2]) for _ in range(4)]
    pids = {a["pid"] for a in answers}
    for pid in pids:
        mine = [a["invocations"] for a in answers if a["pid"] == pid]
        assert mine == sorted(mine) and len(set(mine)) == len(mine)  # one module state, reused
    assert all(a["init_pid"] == a["pid"] for a in answers)
    loads = (echo_app.app_dir / "loads.txt").read_text().split()
    assert all(loads.count(str(pid)) == 1 for pid in pids)  # module-level code ran once per worker
    assert len(answers) > len(pids)  # sequential requests do not cold-start a worker each


def test_binary_request_bodies_arrive_base64_encoded(echo_app):
    raw = bytes(range(256))
    seen = json.loads(request(echo_app, "POST", "/", raw, [("Content-Type", "application/octet-stream")])[2])
    assert seen["event"]["isBase64Encoded"] is True
    assert base64.b64decode(seen["event"]["body"]) == raw
    # UTF-8 text with a binary content type travels as base64 too
    seen = json.loads(request(echo_app, "POST", "/", b"PNG?", [("Content-Type", "image/png")])[2])
    assert seen["event"]["isBase64Encoded"] is True and base64.b64decode(seen["event"]["body"]) == b"PNG?"
    seen = json.loads(request(echo_app, "POST", "/", b"a=1&b=2",
                              [("Content-Type", "application/x-www-form-urlencoded")])[2])
    assert seen["event"]["isBase64Encoded"] is False and seen["event"]["body"] == "a=1&b=2"


# --- the result ---------------------------------------------------------------------------------

def test_a_base64_result_is_decoded(echo_app):
    status, headers, body = request(echo_app, "GET", "/?binary=1")
    assert status == 200
    assert headers["Content-Type"] == "application/octet-stream"
    assert body == bytes(range(256))


def test_cookies_become_set_cookie_headers(echo_app):
    status, headers, body = request(echo_app, "GET", "/?cookies=1")
    assert status == 201 and body == b"made"
    assert headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly"]
    assert headers["X-Extra"] == "yes" and headers["Content-Type"] == "text/plain"


def test_a_result_without_status_code_is_200_json(echo_app):
    status, headers, body = request(echo_app, "GET", "/?plain=1")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"answer": 42, "list": [1, "two"]}


# --- failures -----------------------------------------------------------------------------------

def test_a_handler_exception_is_a_502_json_error(echo_app):
    status, headers, body = request(echo_app, "GET", "/?raise=1")
    assert status == 502
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert "ValueError" in error
    assert "Traceback" not in body.decode() and "boom" not in body.decode()
    assert request(echo_app)[0] == 200  # the environment lives on, as in Lambda


def test_a_timeout_is_cut_off_with_502_and_the_worker_is_replaced(echo_app, tmp_path, capfd):
    pidfile = tmp_path / "pid"
    status, headers, body = request(echo_app, "GET", f"/?pidfile={urllib.parse.quote(str(pidfile))}&sleep=60")
    assert status == 502
    assert json.loads(body) == {"error": f"the function timed out after {ECHO_TIMEOUT} s (Task timed out)"}
    timed_out = int(pidfile.read_text())
    assert not alive(timed_out)  # the environment was discarded
    assert f"Task timed out after {ECHO_TIMEOUT:.2f} seconds" in capfd.readouterr().err
    status, _, body = request(echo_app)
    assert status == 200 and json.loads(body)["pid"] != timed_out


def test_a_worker_that_exits_mid_invocation_is_a_502_and_replaced(echo_app):
    status, _, body = request(echo_app, "GET", "/?exit=1")
    assert status == 502 and "Runtime.ExitError" in json.loads(body)["error"]
    assert request(echo_app)[0] == 200


def test_payloads_over_6_mb(echo_app):
    status, _, body = request(echo_app, "POST", "/", b"x" * (6 * 1024 * 1024 + 1), [("Content-Type", "text/plain")])
    assert status == 413 and "error" in json.loads(body)
    status, _, body = request(echo_app, "GET", "/?big=1")
    assert status == 502 and "ResponseSizeTooLarge" in json.loads(body)["error"]


def test_concurrency_max_workers_run_at_once_and_no_more(echo_app, tmp_path):
    gates = [tmp_path / "gate-a", tmp_path / "gate-b"]
    answers: list = [None, None]

    def hold(i: int) -> None:
        answers[i] = request(echo_app, "GET", f"/?gate={urllib.parse.quote(str(gates[i]))}")

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    for i, thread in enumerate(threads):
        thread.start()
        wait_for(lambda i=i: Path(f"{gates[i]}.started").exists(), f"request {i} is running")
    status, _, body = request(echo_app)  # a third one, while concurrency.max (2) are busy
    assert status == 429 and json.loads(body) == LAMBDA_THROTTLE
    for gate in gates:
        gate.touch()
    for thread in threads:
        thread.join()
    assert [a[0] for a in answers] == [200, 200]
    assert len({json.loads(a[2])["pid"] for a in answers}) == 2  # two environments, one invocation each


# --- lifecycle ----------------------------------------------------------------------------------

def test_an_init_error_is_a_502_json_error(tmp_path, fake_model):
    app_dir = _echo_dir(tmp_path / "broken", "raise RuntimeError('no config')\n\ndef lambda_handler(e, c):\n    pass\n")
    app = aws_runner.start(_options(app_dir, _env(fake_model), 2, 1))
    try:
        status, _, body = request(app)
        assert status == 502
        error = json.loads(body)["error"]
        assert "initialize" in error and "no config" not in error
    finally:
        app.close()


def test_close_stops_every_worker_and_is_idempotent(tmp_path, fake_model):
    app_dir = _echo_dir(tmp_path / "app")
    app = aws_runner.start(_options(app_dir, _env(fake_model), 2, 2))
    pids = {json.loads(request(app)[2])["pid"]}
    app.close()
    app.close()
    assert pids and not any(alive(pid) for pid in pids)
    parts = urllib.parse.urlsplit(app.url)
    with pytest.raises(OSError):
        http.client.HTTPConnection(parts.hostname, parts.port, timeout=5).connect()
