"""Several targets at once: plan, deploy, destroy and info work on the four clouds in parallel (AWS through
moto, Google, Azure and Vercel through their fakes), with one confirmation, whole progress lines per target,
results in agent.yaml's order, a failing target named while the others stand, --fail-fast and Ctrl-C.

Parallelism is shown with a barrier, not with wall-clock times: each cloud's first request of a kind waits
at a barrier that only opens once all four clouds have sent theirs, which a sequential run never does."""

from __future__ import annotations

import io
import os
import re
import signal
import textwrap
import threading
from collections.abc import Callable

import boto3
import pytest

from framework.deploy import commands, run
from framework.errors import DeployError
from tests.deploy.azure_fixtures import GROUP, STORAGE, SUB, azure_env, azure_server  # noqa: F401
from tests.deploy.gcp_fixtures import FUNCTION, gcp_env, gcp_server  # noqa: F401
from tests.deploy.helpers import is_read
from tests.deploy.vercel_fixtures import fake as vercel_env  # noqa: F401
from tests.deploy.vercel_fixtures import vercel_server  # noqa: F401
from tests.fakes import azure_server as azure_fake
from tests.fakes import gcp_server as gcp_fake

TARGETS = {
    "aws": "aws: {region: us-east-1}",
    "gcp": "gcp: {project: my-project-123, region: us-central1}",
    "azure": f"azure: {{subscription: {SUB}, resource_group: {GROUP}, region: westeurope, timeout: 230, "
             f"storage: {STORAGE}}}",
    "vercel": "vercel: {team: team_fake123, timeout: 25}",
}
ORDER = ("aws", "gcp", "azure", "vercel")
TITLES = {"aws": "AWS Lambda", "gcp": "Google Cloud Functions", "azure": "Azure Functions", "vercel": "Vercel"}
FAST = {"sleep": lambda seconds: None, "backoff": 0.0, "poll_interval": 0}
PROGRESS = re.compile(r"^(?P<target>aws|gcp|azure|vercel) +\[(?P<i>\d+)/(?P<n>\d+)\] .+ \.\.\.(?P<end> ok)?$")
Predicate = Callable[[str, str], bool]  # (method or AWS operation, path) -> gated?


def any_request(method: str, path: str) -> bool:
    return True


def writes(method: str, path: str) -> bool:
    """A request that changes something, as each emulator counts it (AWS: by operation name)."""
    if method[0].isupper() and method[1:2].islower():  # an AWS operation name, e.g. CreateFunction
        return not is_read(method)
    return azure_fake.is_mutating(method, path) and gcp_fake.is_mutating(method, path)


class Clouds:
    """The four emulators, an agent.yaml listing them, and a way to hold each cloud's first request."""

    def __init__(self, folder, gcp, azure, vercel, monkeypatch):
        self.folder, self.gcp, self.azure, self.vercel, self.monkeypatch = folder, gcp, azure, vercel, monkeypatch
        self.session = boto3.Session()
        self.aws_calls: list[str] = []
        self.session.events.register("before-call", lambda model, **kw: self.aws_calls.append(model.name))
        self.agent = self.write(reversed(ORDER))  # results come in the registry's order, whatever the file's

    def write(self, order) -> str:
        lines = "".join(f"  {TARGETS[name]}\n" for name in order)
        path = self.folder / "agent.yaml"
        path.write_text(textwrap.dedent("""\
            name: support-bot
            prompt: You are a helpful support assistant.
            model: gpt-4o-mini
            concurrency: {max: 10, warm: 0}
            targets:
            """) + lines, encoding="utf-8")
        return str(path)

    def run(self, command: str, *, yes: bool = True, stdin=None, fail_fast: bool = False,
            stderr: io.StringIO | None = None) -> tuple[int, str, str]:
        """The command on every target, in-process and without sleeping; stderr may be the caller's."""
        stdout, stderr = io.StringIO(), stderr or io.StringIO()
        function = getattr(commands, command)
        args = [self.agent, None, str(self.folder / "generated"), "text"]
        kwargs = dict(stdout=stdout, stderr=stderr, session=self.session, **FAST)
        if command in ("deploy", "destroy"):
            args.append(yes)
            kwargs.update(stdin=stdin, fail_fast=fail_fast)
        code = function(*args, **kwargs)
        return code, stdout.getvalue(), stderr.getvalue()

    def hold(self, gated: Predicate, then: Callable[[str], None]) -> None:
        """Call then(cloud) on each cloud's first request that `gated` selects (the first of the test), in
        the thread sending or answering it (the fakes' dispatch methods and a boto3 hook are wrapped)."""
        seen: set[str] = set()
        lock = threading.Lock()

        def first(cloud: str, method: str, path: str) -> None:
            if gated(method, path):
                with lock:
                    new = cloud not in seen
                    seen.add(cloud)
                if new:
                    then(cloud)

        self.session.events.register("before-call", lambda model, **kw: first("aws", model.name, ""))
        for cloud, fake, name in (("gcp", self.gcp, "handle"), ("vercel", self.vercel, "_handle")):
            self._wrap(fake, name, lambda method, raw_path, *rest, cloud=cloud: first(cloud, method, raw_path))
        self._wrap(self.azure, "_dispatch", lambda request: first("azure", request.method, request.path))

    def barrier(self, gated: Predicate) -> threading.Barrier:
        """Each cloud's first `gated` request waits until all four have sent theirs (a sequential run
        breaks the barrier after its timeout: the waiting request then fails)."""
        barrier = threading.Barrier(len(ORDER), timeout=15)
        self.hold(gated, lambda cloud: barrier.wait())
        return barrier

    def _wrap(self, fake, name: str, before: Callable[..., None]) -> None:
        original = getattr(fake, name)

        def wrapped(*args):
            before(*args)
            return original(*args)
        self.monkeypatch.setattr(fake, name, wrapped)

    def deployed(self) -> dict[str, bool]:
        """Whether each cloud holds the agent's function (app, project)."""
        functions = self.session.client("lambda", region_name="us-east-1").list_functions()["Functions"]
        return {"aws": any(f["FunctionName"] == "support-bot" for f in functions),
                "gcp": (self.gcp.function(FUNCTION) or {}).get("state") == gcp_fake.ACTIVE,
                "azure": any(key[2] == "support-bot" for key in self.azure.sites),
                "vercel": any(p["name"] == "support-bot" for p in self.vercel.state.projects.values())}


class Terminal(io.StringIO):
    """A stdin that is a terminal, with the person's answers in it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def clouds(moto_env, gcp_env, azure_env, vercel_env, tmp_path, monkeypatch):  # noqa: F811
    return Clouds(tmp_path, gcp_env, azure_env, vercel_env, monkeypatch)


def progress_lines(log: str) -> list[re.Match]:
    return [m for m in map(PROGRESS.match, log.splitlines()) if m]


# ---------------------------------------------------------------- parallel


def test_deploy_applies_the_four_targets_at_once(clouds):
    barrier = clouds.barrier(writes)
    code, text, log = clouds.run("deploy")
    assert code == 0, log
    assert not barrier.broken
    assert clouds.deployed() == dict.fromkeys(ORDER, True)


@pytest.mark.parametrize("command", ["plan", "info"])
def test_reading_runs_the_four_targets_at_once(clouds, command):
    barrier = clouds.barrier(any_request)
    code, _, log = clouds.run(command)
    assert code == (2 if command == "plan" else 0), log
    assert not barrier.broken


def test_destroy_deletes_on_the_four_targets_at_once(clouds):
    assert clouds.run("deploy")[0] == 0
    barrier = clouds.barrier(writes)
    code, text, log = clouds.run("destroy")
    assert code == 0, log
    assert not barrier.broken
    assert text.count("Destroyed support-bot on ") == 4
    assert clouds.deployed() == dict.fromkeys(ORDER, False)


# ---------------------------------------------------------------- what people read


def test_progress_lines_are_whole_and_each_names_its_target(clouds):
    code, _, log = clouds.run("deploy")
    assert code == 0
    lines = [line for line in log.splitlines() if "[" in line]
    assert lines and all(PROGRESS.match(line) for line in lines), "\n".join(lines)
    for target in ORDER:
        own = [m for m in progress_lines(log) if m["target"] == target]
        total = int(own[0]["n"])
        assert [(int(m["i"]), bool(m["end"])) for m in own] == [(i, end) for i in range(1, total + 1)
                                                                 for end in (False, True)]


def test_one_confirmation_names_every_target(clouds):
    code, _, log = clouds.run("deploy", yes=False, stdin=Terminal("y\n"))
    assert code == 0
    assert log.count("[y/N]") == 1
    assert f"Apply these changes to {', '.join(TITLES[t] for t in ORDER)}? [y/N]" in log


def test_results_follow_agent_yaml_order_not_the_order_they_finished_in(clouds):
    log = io.StringIO()
    clouds.hold(writes, lambda cloud: wait_until(lambda: finished(log) >= {"gcp", "azure", "vercel"})
                if cloud == "aws" else None)  # aws starts applying once the others are done
    code, text, _ = clouds.run("deploy", stderr=log)
    assert code == 0
    assert [m["target"] for m in progress_lines(log.getvalue()) if m["end"]][-1] == "aws"
    urls = [line for line in text.splitlines() if line.startswith("URL: ")]
    assert [cloud_of(url) for url in urls] == list(ORDER)


def finished(log: io.StringIO) -> set[str]:
    """The targets whose last operation has ended, as the progress lines say."""
    return {m["target"] for m in progress_lines(log.getvalue()) if m["end"] and m["i"] == m["n"]}


def cloud_of(url: str) -> str:
    for cloud, host in (("aws", "lambda-url"), ("gcp", "cloudfunctions.net"), ("azure", "azurewebsites"),
                        ("vercel", "vercel.app")):
        if host in url:
            return cloud
    raise AssertionError(f"whose URL is {url}?")


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        pause.wait(0.02)
    raise AssertionError("the condition never came true")


# ---------------------------------------------------------------- failures


def test_a_target_failing_half_way_leaves_the_others_deployed_and_is_named(clouds):
    clouds.gcp.fail_build("Build failed: pip could not install requirements.txt")
    code, text, log = clouds.run("deploy")
    assert code == 1
    assert "error: gcp: " in log and "pip could not install" in log
    assert log.splitlines()[-1] == "deploy failed for: gcp"
    assert text.count("URL: ") == 3
    assert clouds.deployed() == {"aws": True, "gcp": False, "azure": True, "vercel": True}
    assert re.search(r"^gcp +\[\d/\d\] .* \.\.\. failed$", log, re.M)


def test_fail_fast_lets_the_targets_in_flight_finish(clouds):
    clouds.barrier(writes)  # all four have started applying before the build fails
    clouds.gcp.fail_build()
    with pytest.raises(DeployError, match="Build failed"):
        clouds.run("deploy", fail_fast=True)
    assert clouds.deployed() == {"aws": True, "gcp": False, "azure": True, "vercel": True}


def test_fail_fast_does_not_start_the_targets_waiting_for_a_worker(clouds, monkeypatch):
    monkeypatch.setattr(run, "WORKERS", 1)  # one at a time: aws, then gcp fails, azure and vercel wait
    clouds.gcp.fail_build()
    stderr = io.StringIO()
    with pytest.raises(DeployError, match="Build failed"):
        clouds.run("deploy", fail_fast=True, stderr=stderr)
    assert stderr.getvalue().splitlines()[-1] == "stopped (--fail-fast): not started: azure, vercel"
    assert not clouds.azure.mutating and not clouds.vercel.mutating
    assert clouds.deployed() == {"aws": True, "gcp": False, "azure": False, "vercel": False}


def test_ctrl_c_is_said_once_and_stops_every_target_before_its_next_operation(clouds):
    log = io.StringIO()

    def press_ctrl_c(cloud: str) -> None:
        if cloud == "gcp":  # gcp's first write is under way: Ctrl-C, and answer once it is said
            os.kill(os.getpid(), signal.SIGINT)
            wait_until(lambda: run.INTERRUPTED in log.getvalue())
    clouds.hold(writes, press_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        clouds.run("deploy", stderr=log)
    text = log.getvalue()
    assert text.count(run.INTERRUPTED) == 1
    after = text.split(run.INTERRUPTED)[1]
    assert not [m for m in progress_lines(after) if not m["end"]]  # no operation started after it
    gcp = [m for m in progress_lines(text) if m["target"] == "gcp"]
    assert [(m["i"], bool(m["end"])) for m in gcp] == [("1", False), ("1", True)]  # its call ended, then it stopped


def test_after_ctrl_c_the_same_command_finishes_the_deploy(clouds):
    log = io.StringIO()
    clouds.hold(writes, lambda cloud: (os.kill(os.getpid(), signal.SIGINT),
                                       wait_until(lambda: run.INTERRUPTED in log.getvalue()))
                if cloud == "gcp" else None)
    with pytest.raises(KeyboardInterrupt):
        clouds.run("deploy", stderr=log)
    code, _, after = clouds.run("deploy")
    assert code == 0, after
    assert clouds.deployed() == dict.fromkeys(ORDER, True)
    assert clouds.run("plan")[0] == 0
