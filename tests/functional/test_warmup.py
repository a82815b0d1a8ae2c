"""concurrency.warm_schedule (issue 14) in the real local runtimes: the warm-up each platform's scheduler
sends is answered `{"warm": true}` with no model call (the fake model server records none), and a forged
marker is an ordinary request. Google and Vercel over HTTP (`serve`: functions-framework, Vercel's
edge-runtime), AWS as the direct-invoke event the EventBridge Scheduler schedule sends, through AWS's
runtime interface clients (awslambdaric for Python, aws-lambda-ric for the Node.js app); Azure's timer
function called as the Functions host calls it (see test_the_azure_timer_*). Plus the rendered schedules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from framework.local.base import LocalOptions
from framework.local.lambda_runtime_api import Invocation
from framework.platforms import warm
from tests.conftest import API_KEY, build, write_agent
from tests.functional.apps import http_call, load_module, serve_cli
from tests.functional.test_conformance import environment

SECRET = "warm-secret-for-the-tests-0123456789"
AGENT = """\
name: warm-bot
prompt: You keep warm.
model: fake-model-1
timeout: 4
concurrency:
  warm_schedule: 5
targets:
  aws: {aws}
  gcp: {{}}
  azure: {{}}
  vercel: {{runtime: {vercel}}}
"""


def _build(root: Path, aws: str = "{}", vercel: str = "edge", schedule: bool = True) -> Path:
    text = AGENT.format(aws=aws, vercel=vercel)
    if not schedule:
        text = text.replace("concurrency:\n  warm_schedule: 5\n", "")
    agent = write_agent(root, text)
    assert build(agent, root / "generated") == 0
    return root / "generated"


@pytest.fixture(scope="module")
def warm_build(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("warm"))


def _env(fake_model) -> dict[str, str]:
    # the secrets deploy generates: AGENT_WARMUP_SECRET on Google, CRON_SECRET on Vercel
    return {"OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY, "AGENT_WARMUP_SECRET": SECRET,
            "CRON_SECRET": SECRET}


# ---------------------------------------------------------------- Google and Vercel: the scheduler's GET


@pytest.fixture(scope="module", params=["serve-gcp", "serve-vercel"])
def http_app(request, warm_build, fake_model):
    target = request.param.removeprefix("serve-")
    with serve_cli(target, warm_build.parent / "agent.yaml", warm_build, _env(fake_model)) as url:
        call = http_call(url)
        call.target = target
        yield call


MARKS = {"gcp": {"x-agent-warmup": SECRET}, "vercel": {"Authorization": f"Bearer {SECRET}"}}  # what each sends


def test_the_schedulers_get_is_a_warm_up_without_a_model_call(http_app, fake_model):
    fake_model.clear()
    status, headers, body = http_app("GET", b"", MARKS[http_app.target])
    assert (status, json.loads(body)) == (200, {"warm": True})
    assert headers["content-type"].startswith("application/json")
    assert fake_model.requests == []


@pytest.mark.parametrize("headers", [{}, {"x-agent-warmup": "not-the-secret-0123456789"},
                                     {"Authorization": f"Bearer {SECRET[:-1]}"}, {"x-agent-warmup": ""}])
def test_a_forged_marker_is_an_ordinary_get(http_app, fake_model, headers):
    fake_model.clear()
    status, _, body = http_app("GET", b"", headers)
    assert status == 405  # the contract's answer to a GET
    assert b"warm" not in body
    assert fake_model.requests == []


def test_a_post_carrying_the_secret_is_an_ordinary_request(http_app, fake_model):
    fake_model.clear()
    status, _, body = http_app("POST", json.dumps({"message": "hello warm"}).encode(),
                               {"Content-Type": "application/json", **MARKS[http_app.target]})
    assert status == 200 and json.loads(body)["response"] == "echo: hello warm"
    assert len(fake_model.find("hello warm")) == 1


# ---------------------------------------------------------------- AWS and Azure over HTTP: no secret GET at all


@pytest.mark.parametrize("target", ["aws", "azure"])
def test_on_aws_and_azure_a_marked_get_is_an_ordinary_request(target, warm_build, fake_model):
    """Their schedulers send no HTTP request (a direct invoke, a timer): no HTTP request is a warm-up."""
    fake_model.clear()
    with serve_cli(target, warm_build.parent / "agent.yaml", warm_build, _env(fake_model)) as url:
        for headers in MARKS.values():
            status, _, body = http_call(url)("GET", b"", headers)
            assert status in (404, 405) and b"warm" not in body
    assert fake_model.requests == []


# ---------------------------------------------------------------- AWS: the schedule's direct invoke


def _invoke(app, event: dict) -> dict:
    """One direct invocation (what lambda:InvokeFunction sends: the event as is, no function URL around
    it) handed to a worker of the local runner, i.e. to the runtime interface client's Runtime API."""
    invocation = Invocation(json.dumps(event).encode())
    worker = app._acquire()
    assert worker is not None
    worker.submit(invocation)
    assert invocation.done.wait(30), "the runtime client never answered"
    assert invocation.outcome.kind == "response", invocation.outcome
    if invocation.stream_type is None:
        return json.loads(invocation.outcome.payload)
    # a streamed response (the Node.js app): the HTTP integration prelude, eight NUL bytes, the body
    prelude, _, body = b"".join(invocation.chunks).partition(b"\0" * 8)
    return {**json.loads(prelude), "body": body.decode()}


@pytest.mark.parametrize("variant", ["python", "node"])
def test_aws_the_schedules_event_through_the_runtime_client(variant, tmp_path_factory, fake_model):
    pytest.importorskip("awslambdaric")
    from framework.platforms.aws import runner

    built = _build(tmp_path_factory.mktemp(f"warm-aws-{variant}"), aws="{stream: true}" if variant == "node" else "{}")
    if variant == "node":
        assert (built / "aws" / "index.mjs").is_file()
    app = runner.start(LocalOptions(app_dir=built / "aws", port=0, timeout=4, concurrency=1,
                                    env={**os.environ, **_env(fake_model)}, function_name="warm-bot", memory=512))
    try:
        fake_model.clear()
        result = _invoke(app, warm.AWS_EVENT)
        assert result["statusCode"] == 200 and json.loads(result["body"]) == {"warm": True}
        assert fake_model.requests == []
        # anything else invoked directly is not a warm-up: never a warm reply
        other = _invoke(app, {"agent-framework": "warmup", "x": 1})
        assert '"warm": true' not in json.dumps(other) and '"warm":true' not in json.dumps(other)
    finally:
        app.close()


def test_aws_handler_in_process_answers_the_event_and_not_a_lookalike(warm_build, fake_model):
    from tests.functional.apps import LambdaContext, function_url_event

    with environment(**_env(fake_model)):
        module = load_module(warm_build / "aws", "lambda_function")
    fake_model.clear()
    reply = module.lambda_handler(dict(warm.AWS_EVENT), LambdaContext(4))
    assert (reply["statusCode"], json.loads(reply["body"])) == (200, {"warm": True})
    # the same JSON as a function URL request's body is a chat request, refused for its shape
    url = module.lambda_handler(function_url_event("POST", json.dumps(warm.AWS_EVENT).encode(),
                                                   {"content-type": "application/json"}), LambdaContext(4))
    assert url["statusCode"] == 400
    assert fake_model.requests == []


# ---------------------------------------------------------------- Azure: the timer trigger


def test_the_azure_timer_function_warms_up_without_a_model_call(warm_build, fake_model, capsys):
    """The timer is run by the Functions host on its NCRONTAB schedule; neither the suite's in-process
    runner nor `serve --target azure` has a host (Azure Functions Core Tools, `func start`, is not
    installed here, and its timer needs a storage account for its schedule monitor unless
    use_monitor=False), so the registered function is called as the host calls it: with a
    azure.functions TimerRequest."""
    from azure.functions.timer import TimerRequest

    with environment(**_env(fake_model)):
        module = load_module(warm_build / "azure", "function_app")
    timers = [f for f in module.app.get_functions() if f.get_trigger().type == "timerTrigger"]
    (timer,) = timers
    assert timer.get_trigger().schedule == warm.ncrontab(5) == "0 */5 * * * *"
    fake_model.clear()
    capsys.readouterr()
    assert timer.get_user_function()(TimerRequest(past_due=False)) is None
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "agent.warmup" in x]
    assert line == {"type": "agent.warmup", "severity": "DEBUG", "agent": "warm-bot", "source": "azure-timer"}
    assert fake_model.requests == []


def test_serve_azure_serves_an_app_with_a_timer(warm_build, fake_model):
    """The local front serves the HTTP function beside the timer (which it does not schedule)."""
    with serve_cli("azure", warm_build.parent / "agent.yaml", warm_build, _env(fake_model)) as url:
        status, _, body = http_call(url)("POST", json.dumps({"message": "azure warm"}).encode(),
                                         {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["response"] == "echo: azure warm"


# ---------------------------------------------------------------- the rendered schedules


def test_rendered_schedules(warm_build, tmp_path):
    function_app = (warm_build / "azure" / "function_app.py").read_text()
    assert '@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False' in function_app
    assert 'AGENT.warm_up("azure-timer")' in function_app
    vercel_json = json.loads((warm_build / "vercel" / "vercel.json").read_text())
    assert vercel_json["crons"] == [{"path": "/api/agent", "schedule": "*/5 * * * *"}]
    for target in ("gcp", "vercel"):
        config = json.loads((warm_build / target / "agent.json").read_text())
        assert config["warmup"] == {"secret_env": "AGENT_WARMUP_SECRET" if target == "gcp" else "CRON_SECRET"}
    assert "warmup" not in json.loads((warm_build / "azure" / "agent.json").read_text())

    plain = _build(tmp_path / "plain", schedule=False)
    assert "timer_trigger" not in (plain / "azure" / "function_app.py").read_text()
    assert "crons" not in json.loads((plain / "vercel" / "vercel.json").read_text())
    for target in ("gcp", "vercel", "aws", "azure"):
        assert "warmup" not in json.loads((plain / target / "agent.json").read_text())
