"""`agenthost logs` on every deployable platform, against each one's emulator (moto's CloudWatch Logs in
server mode; the fakes' Cloud Logging entries:list, Application Insights query API and Vercel runtime-logs
stream), through the real clients: the usage records as a table and other lines as they are, --format
json, --request, --since, --follow (no real sleeping: the sleep is injected), and a stage's logs never
showing another stage's lines.

Each test deploys the agent's `dev` stage (so its function is `support-bot-dev`), then puts lines into the
emulator as the platform's log service would hold them, for that function and for `support-bot` (the
agent as written, another stage's function): only the first may show."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import boto3
import pytest

from framework.deploy import commands
from framework.deploy import logs as logs_command
from framework.deploy.loglines import LogLine, iso
from framework.errors import DeployError, UsageError
from framework.runtime import agent_runtime
from tests.deploy import azure_fixtures, helpers
from tests.deploy.azure_fixtures import azure_env, azure_server  # noqa: F401
from tests.deploy.gcp_fixtures import gcp_env, gcp_server  # noqa: F401
from tests.deploy.helpers import Run
from tests.deploy.test_deploy_contract import CLOUDS, FAST, Cloud
from tests.deploy.vercel_fixtures import fake as vercel_env  # noqa: F401
from tests.deploy.vercel_fixtures import vercel_server  # noqa: F401

STAGED = "support-bot-dev"  # the dev stage's function, app or project
OTHER = "support-bot"  # the agent as written: another stage's
APP_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"  # the Application Insights resource's ApplicationId


def usage_line(request_id: str, *, status: int = 200, tokens: tuple[int, int] = (30, 12), steps: int = 2,
               stopped: str | None = "max_steps", agent: str = STAGED, latency_ms: int = 1234) -> str:
    """A usage record exactly as the Python runtime prints it (Agent._log_usage, run here)."""
    record = agent_runtime._Record(request_id)
    record.start -= latency_ms / 1000
    record.post, record.status, record.steps, record.stopped = True, status, steps, stopped
    record.input_tokens, record.output_tokens = tokens
    record.tokens = sum(tokens)
    holder = SimpleNamespace(name=agent, _template={"model": "gpt-4o-mini"}, log_content=False,
                             secrets=agent_runtime._Secrets())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        agent_runtime.Agent._log_usage(holder, record)
    return out.getvalue().rstrip("\n")


@dataclass
class LogCloud:
    """A Cloud of the deploy contract, with how its log service is given lines."""

    cloud: Cloud
    put: Callable[[str, int, str], None]  # (function, epoch ms, the line as printed)
    sent: Callable[[], list[str]]  # every request the emulator got since clear(), in order
    clear: Callable[[], None]
    query: str  # what names the log query among them
    ready: Callable[[], None] = lambda: None  # after the deploy: what the user sets up for logs

    def run(self, agent, command: str = "logs", fmt: str = "text", sleep=None, **options) -> Run:
        out, err = io.StringIO(), io.StringIO()
        common = {"stage": "dev", "stdout": out, "stderr": err, "sleep": sleep or self.cloud.sleeps.append,
                  **FAST, **self.cloud.options}
        output = str(agent.parent / "generated")
        if command == "deploy":
            code = commands.deploy(str(agent), self.cloud.name, output, fmt, True, **common)
        else:
            code = logs_command.logs(str(agent), self.cloud.name, output, fmt, **common, **options)
        return Run(code, out.getvalue(), err.getvalue())


def _aws(cloud: Cloud) -> LogCloud:
    client = boto3.client("logs", region_name="us-east-1")

    def put(function: str, at: int, text: str) -> None:
        group = f"/aws/lambda/{function}"
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            client.create_log_group(logGroupName=group)
        stream = f"2026/01/01/[$LATEST]{at}"
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": at, "message": text}])

    calls: list[str] = []
    cloud.options["session"].events.register("before-call", lambda model, **_: calls.append(model.name))
    return LogCloud(cloud, put, lambda: list(calls), calls.clear, "FilterLogEvents")


def _requests(fake) -> tuple[Callable[[], list[str]], Callable[[], None]]:
    """(sent, clear) of a fake server that records every request it gets."""
    def clear() -> None:
        fake.requests.clear()

    return lambda: [f"{r.method} {r.path}" for r in fake.requests], clear


def _gcp(cloud: Cloud) -> LogCloud:
    fake = cloud.emulator
    counter = iter(range(1, 10_000))

    def put(function: str, at: int, text: str) -> None:
        """As Cloud Run keeps a function's output: JSON as jsonPayload (severity moved out), else textPayload."""
        entry = {"logName": "projects/my-project-123/logs/run.googleapis.com%2Fstdout",
                 "resource": {"type": "cloud_run_revision",
                              "labels": {"service_name": function, "location": "us-central1",
                                         "revision_name": f"{function}-00001-abc"}},
                 "timestamp": iso(at).replace("Z", "123456Z"), "insertId": f"id{next(counter):06d}",
                 "severity": "DEFAULT"}
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            entry["severity"] = payload.pop("severity", "DEFAULT")
            entry["jsonPayload"] = payload
        else:
            entry["textPayload"] = text
        fake.add_log_entry(entry)

    return LogCloud(cloud, put, *_requests(fake), "POST /v2/entries:list")


def _azure(cloud: Cloud) -> LogCloud:
    fake = cloud.emulator

    def ready() -> None:
        """What the README asks of the user: the app connected to an Application Insights resource."""
        fake.add_insights_app(APP_ID)
        key = (azure_fixtures.SUB.lower(), azure_fixtures.GROUP.lower(), STAGED)
        fake.settings[key]["APPLICATIONINSIGHTS_CONNECTION_STRING"] = (
            f"InstrumentationKey=11111111-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in."
            f"applicationinsights.azure.com/;ApplicationId={APP_ID}")

    def put(function: str, at: int, text: str) -> None:
        fake.add_trace(APP_ID, function, iso(at), text)

    return LogCloud(cloud, put, *_requests(fake), f"POST /v1/apps/{APP_ID}/query", ready)


def _vercel(cloud: Cloud) -> LogCloud:
    fake = cloud.emulator

    def put(function: str, at: int, text: str) -> None:
        project = next((p for p in fake.state.projects.values() if p["name"] == function), None)
        if project is None:  # another stage's project, never deployed here: made as someone would have
            project = fake.add_project(function)
            fake.add_deployment(project["id"])
        deployment = max((d for d in fake.state.deployments.values() if d["projectId"] == project["id"]),
                         key=lambda d: d["createdAt"])
        fake.add_runtime_log(deployment["id"], text, at)

    return LogCloud(cloud, put, *_requests(fake), "/runtime-logs")


ADAPTERS = {"aws": _aws, "gcp": _gcp, "azure": _azure, "vercel": _vercel}


def test_every_deployable_platform_has_logs():
    assert set(ADAPTERS) == set(CLOUDS)


@pytest.fixture(params=sorted(CLOUDS))
def logs(request: pytest.FixtureRequest) -> LogCloud:
    return ADAPTERS[request.param](CLOUDS[request.param](request))


@pytest.fixture
def deployed(logs: LogCloud, tmp_path):
    """The dev stage deployed and set up for logs: (the LogCloud, agent.yaml)."""
    agent = helpers.write_agent(tmp_path, logs.cloud.agent + "    stages:\n      dev: {}\n")
    assert logs.run(agent, "deploy").code == 0
    logs.ready()
    return logs, agent


def now_ms(minutes_ago: float = 0) -> int:
    return int((time.time() - minutes_ago * 60) * 1000)


def test_usage_records_are_a_table_and_other_lines_are_shown_as_they_are(deployed):
    logs, agent = deployed
    logs.put(STAGED, now_ms(5), "cold start: loading the agent")
    logs.put(STAGED, now_ms(4), usage_line("req-aaa-111"))
    logs.put(STAGED, now_ms(3), usage_line("req-bbb-222", status=429, tokens=(0, 0), steps=0, stopped=None))
    logs.put(OTHER, now_ms(2), usage_line("req-other-stage", agent=OTHER))
    logs.put(OTHER, now_ms(2), "a line of another stage")
    shown = logs.run(agent)
    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "STATUS", "LATENCY", "TOKENS", "STEPS", "STOPPED", "REQUEST"]
    assert lines[1].endswith("  cold start: loading the agent")
    assert lines[2].split()[2:] == ["200", "1234", "ms", "42", "2", "max_steps", "req-aaa-111"]
    assert lines[3].split()[2:] == ["429", "1234", "ms", "0", "0", "-", "req-bbb-222"]
    assert len(lines) == 4  # another stage's lines never show
    assert "other" not in shown.stdout


def test_json_passes_the_records_through(deployed):
    logs, agent = deployed
    printed = usage_line("req-json-1")
    logs.put(STAGED, now_ms(2), "not a record")
    logs.put(STAGED, now_ms(1), printed)
    shown = logs.run(agent, fmt="json")
    assert shown.code == 0, shown.stderr
    (record,) = [json.loads(line) for line in shown.stdout.splitlines()]
    expected = json.loads(printed)
    if logs.cloud.name == "gcp":  # Cloud Logging moved severity out of the payload, as it does
        expected.pop("severity")
    assert record == expected


def test_request_shows_only_that_requests_lines(deployed):
    logs, agent = deployed
    logs.put(STAGED, now_ms(3), usage_line("req-keep-1"))
    logs.put(STAGED, now_ms(2), usage_line("req-drop-2"))
    logs.put(STAGED, now_ms(1), "END RequestId: req-keep-1")
    shown = logs.run(agent, request="req-keep-1")
    assert shown.code == 0, shown.stderr
    assert "req-drop-2" not in shown.stdout
    assert shown.stdout.count("req-keep-1") == 2


def test_since_leaves_older_lines_out(deployed):
    logs, agent = deployed
    logs.put(STAGED, now_ms(120), usage_line("req-two-hours-ago"))
    logs.put(STAGED, now_ms(30), usage_line("req-half-an-hour-ago"))
    logs.put(STAGED, now_ms(5), usage_line("req-five-minutes-ago"))
    shown = logs.run(agent)  # the default: the last hour
    assert "req-two-hours-ago" not in shown.stdout and "req-half-an-hour-ago" in shown.stdout
    shown = logs.run(agent, since="15m")
    assert "req-half-an-hour-ago" not in shown.stdout and "req-five-minutes-ago" in shown.stdout
    shown = logs.run(agent, since="10s")
    assert shown.stdout == "" and "no log lines since " in shown.stderr


def test_follow_shows_a_line_added_later_once_and_stops_on_ctrl_c(deployed):
    logs, agent = deployed
    logs.put(STAGED, now_ms(2), usage_line("req-before"))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            logs.put(STAGED, now_ms(), usage_line("req-later"))
        if len(waits) == 4:
            raise KeyboardInterrupt

    shown = logs.run(agent, sleep=sleep, follow=True)
    assert shown.code == 0
    assert "Traceback" not in shown.stderr
    assert shown.stdout.count("req-before") == 1 and shown.stdout.count("req-later") == 1
    assert waits == [1.0, 1.0, 2.0, 4.0]  # 1 s after lines came, doubling while none do


def test_follow_finds_the_function_once_then_each_poll_sends_only_the_log_query(deployed):
    logs, agent = deployed
    logs.put(STAGED, now_ms(2), usage_line("req-polled"))
    polls = 3

    def sleep(seconds: float) -> None:
        if sum(logs.query in request for request in logs.sent()) > polls:
            raise KeyboardInterrupt

    logs.clear()
    shown = logs.run(agent, sleep=sleep, follow=True)
    assert shown.code == 0 and shown.stdout.count("req-polled") == 1
    sent = logs.sent()
    first = next(i for i, request in enumerate(sent) if logs.query in request)
    assert len(sent) - first == polls + 1
    assert all(logs.query in request for request in sent[first:]), sent


def test_a_secret_value_in_a_line_is_never_shown(deployed):
    logs, agent = deployed
    logs.put(STAGED, now_ms(1), f"a library printed the key {helpers.FAKE_KEY} by mistake")
    shown = logs.run(agent)
    assert helpers.FAKE_KEY not in shown.stdout + shown.stderr
    assert "a library printed the key *** by mistake" in shown.stdout


def test_a_vercel_stream_line_that_is_not_a_log_row_is_a_plain_error(request, tmp_path, monkeypatch):
    logs = _vercel(CLOUDS["vercel"](request))
    fake = logs.cloud.emulator
    agent = helpers.write_agent(tmp_path, logs.cloud.agent + "    stages:\n      dev: {}\n")
    assert logs.run(agent, "deploy").code == 0
    route = fake.route

    def garbled(method: str, path: str, *args):
        found = route(method, path, *args)
        return (200, b"<html>502 Bad Gateway</html>\n", found[2]) if path.endswith("/runtime-logs") else found

    monkeypatch.setattr(fake, "route", garbled)
    with pytest.raises(DeployError, match="sent a line that is not a log row: '<html>502 Bad Gateway</html>'"):
        logs.run(agent)  # one target: its error is the command's, printed once at the CLI edge


def test_a_request_id_that_is_not_one_is_refused_before_any_call(logs, tmp_path):
    agent = helpers.write_agent(tmp_path, logs.cloud.agent + "    stages:\n      dev: {}\n")
    with pytest.raises(UsageError, match="is not a request id"):
        logs.run(agent, request='x" OR "')


def test_the_table_row_of_a_record_as_the_runtime_writes_it():
    line = LogLine(1_767_225_600_000, usage_line("req-row-1", tokens=(100, 23), steps=3, stopped="deadline"),
                   "k1")
    assert line.record is not None and line.record["gen_ai.usage.input_tokens"] == 100
    assert logs_command.row(line).split() == ["2026-01-01", "00:00:00.000", "200", "1234", "ms", "123", "3",
                                              "deadline", "req-row-1"]
    prefixed = LogLine(1_767_225_600_000, "2026-01-01T00:00:00Z\tINFO\t" + usage_line("req-row-2"), "k2")
    assert prefixed.record is not None and prefixed.record["request_id"] == "req-row-2"
    assert LogLine(0, "plain text", "k3").record is None


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800)])
def test_since_takes_a_number_and_a_unit(text, seconds):
    assert logs_command.since_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "-1h", "1.5h", "1w", "0m"])
def test_since_refuses_anything_else(text):
    with pytest.raises(UsageError, match="give a number and a unit"):
        logs_command.since_seconds(text)


def test_the_command_line_follows_until_ctrl_c_and_exits_0(moto_env, tmp_path, monkeypatch, capsys):
    """`agenthost logs --follow` as typed: the table, then Ctrl-C ends it with exit 0 and no traceback."""
    from framework.cli import main

    agent = helpers.write_agent(tmp_path, helpers.AGENT + "    stages:\n      dev: {}\n")
    assert commands.deploy(str(agent), "aws", str(tmp_path / "generated"), "text", True, stage="dev",
                           stdout=io.StringIO(), stderr=io.StringIO(), **FAST) == 0
    _aws(SimpleNamespace(options={"session": boto3.Session()})).put(STAGED, now_ms(1), usage_line("req-cli-1"))

    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(logs_command, "time", SimpleNamespace(sleep=ctrl_c, time=time.time))
    capsys.readouterr()
    code = main(["logs", "-f", str(agent), "--stage", "dev", "--follow", "-o", str(tmp_path / "generated")])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err
    assert captured.out.splitlines()[1].split()[2:] == ["200", "1234", "ms", "42", "2", "max_steps", "req-cli-1"]
