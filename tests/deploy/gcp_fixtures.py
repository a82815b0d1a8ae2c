"""Fixtures and a small driver for the Google Cloud Functions deploy tests (fake server on 127.0.0.1).

The driver follows the Deployer interface the way commands.py does (prepare -> snapshot -> plan ->
preflight -> apply -> outputs) so these tests do not depend on the orchestrator's text output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from framework.deploy.plan import Plan, format_text
from tests.deploy import helpers
from tests.deploy.helpers import FAKE_KEY
from tests.fakes.gcp_server import FakeGcp

PROJECT, REGION = "my-project-123", "us-central1"
FUNCTION = f"projects/{PROJECT}/locations/{REGION}/functions/support-bot"
SERVICE = f"projects/{PROJECT}/locations/{REGION}/services/support-bot"
P = f"/v2/projects/{PROJECT}/locations/{REGION}"
# the mutating requests of a first deploy of AGENT, in order (as calls() shows them)
CLEAN_DEPLOY = [f"POST {P}/functions:generateUploadUrl", "PUT", f"POST {P}/functions",
                f"POST {P}/services/support-bot:setIamPolicy"]

AGENT = """\
    name: support-bot
    prompt: |
      You are a helpful support assistant.
      Answer briefly.
    model: gpt-4o-mini
    timeout: 300
    memory: 1024
    concurrency:
      max: 10
      warm: 0
    targets:
      gcp:
        project: my-project-123
        region: us-central1
"""


SESSIONS = AGENT + "    sessions:\n      ttl_hours: 24\n"
TTL_FIELD = f"projects/{PROJECT}/databases/(default)/collectionGroups/support-bot-sessions/fields/expires"


@pytest.fixture(scope="session")
def gcp_server():
    fake = FakeGcp().start()
    yield fake
    fake.stop()


@pytest.fixture
def gcp_env(gcp_server, monkeypatch, tmp_path):
    """A clean fake and an environment that can only reach it; the deploying env holds a fake key."""
    gcp_server.reset()
    for name in ("GOOGLE_OAUTH_ACCESS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT",
                 "CLOUDSDK_CORE_PROJECT", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GCP_FUNCTIONS_ENDPOINT", gcp_server.url)
    monkeypatch.setenv("GCP_RUN_ENDPOINT", gcp_server.url)
    monkeypatch.setenv("GCP_FIRESTORE_ENDPOINT", gcp_server.url)
    monkeypatch.setenv("GCP_LOGGING_ENDPOINT", gcp_server.url)  # Cloud Logging (logs)
    monkeypatch.setenv("GCP_SCHEDULER_ENDPOINT", gcp_server.url)  # Cloud Scheduler (warm_schedule)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("AGENT_FRAMEWORK_CACHE", str(tmp_path / "cache"))
    return gcp_server


def calls(fake: FakeGcp) -> list[str]:
    """Mutating requests, the signed upload shortened to PUT (its object name varies)."""
    return ["PUT" if c.startswith("PUT /upload/") else c for c in fake.mutating()]


def write_agent(folder: Path, body: str = AGENT) -> Path:
    return helpers.write_agent(folder, body)


@dataclass
class Result:
    plan: Plan
    text: str
    outputs: dict[str, Any]
    sleeps: list[float] = field(default_factory=list)

    @property
    def apis(self) -> list[str]:
        return [op.api for op in self.plan.operations]


def make_deployer(agent: Path, sleeps: list[float] | None = None, sleep=None):
    from framework.build import render_all
    from framework.config.validate import validate_file
    from framework.deploy.skeleton import DeployOptions
    from framework.platforms.gcp.api import Deployer

    validated = validate_file(str(agent))
    files = render_all(validated, only="gcp").targets["gcp"]
    record = sleeps if sleeps is not None else []
    return Deployer(validated.agent, validated.agent.target("gcp"), files,
                    DeployOptions(environ=dict(os.environ), sleep=sleep or record.append))


def deploy(agent: Path, *, apply: bool = True, sleep=None) -> Result:
    sleeps: list[float] = []
    deployer = make_deployer(agent, sleeps, sleep)
    with deployer.errors():
        deployer.prepare()
        snap = deployer.snapshot()
        result = deployer.plan(snap)
        results: dict[str, Any] = {}
        if apply and result.plan.has_changes:
            deployer.preflight(result)
            results = deployer.apply(result.plan)
        outputs = deployer.outputs(snap, results)
    return Result(result.plan, format_text(result.plan), outputs, sleeps)


def destroy(agent: Path) -> Result:
    deployer = make_deployer(agent)
    with deployer.errors():
        plan = deployer.destroy_plan(deployer.snapshot(destroy=True)).plan
        if plan.has_changes:
            deployer.apply(plan)
    return Result(plan, format_text(plan, verb="destroy"), {})
