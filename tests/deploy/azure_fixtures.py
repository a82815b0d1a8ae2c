"""Fixtures for the Azure deploy tests: one fake ARM + Kudu server per session, reset per test."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from framework.deploy import commands
from tests.deploy import helpers
from tests.deploy.helpers import FAKE_KEY
from tests.fakes.azure_server import FakeAzure
from tests.fakes.blob_azurite import BlobService

SUB = "11111111-2222-3333-4444-555555555555"
GROUP = "agents-rg"
TOKEN = "fake-arm-token-0123"
ACCOUNT = "agentsdeploy"
STORAGE = f"https://{ACCOUNT}.blob.core.windows.net/app-package-support-bot"
PACKAGES = "agent-framework-packages"  # the container of the kept packages (framework/platforms/azure/packages.py)

AGENT = f"""\
    name: support-bot
    prompt: |
      You are a helpful support assistant.
    model: gpt-4o-mini
    concurrency:
      max: 10
      warm: 0
    targets:
      azure:
        subscription: {SUB}
        resource_group: {GROUP}
        region: westeurope
        timeout: 230
        storage: {STORAGE}
"""

# the mutating requests of a first deploy of AGENT, in order
CLEAN_DEPLOY = ["PUT serverfarms/support-bot-plan", "PUT sites/support-bot", "POST kudu /api/publish",
                "PUT sites/support-bot/config/appsettings"]

SESSIONS = AGENT + "    sessions:\n      ttl_hours: 24\n"
PREMIUM = AGENT.replace(f"        storage: {STORAGE}\n", "        plan: premium\n")


_BLOBS: list[BlobService] = []


def blob_service() -> BlobService:
    """Azurite's blob service for the kept packages (issue 14), started once per test process."""
    if not _BLOBS:
        import atexit

        _BLOBS.append(BlobService(ACCOUNT))
        atexit.register(_BLOBS[0].close)
    return _BLOBS[0]


@pytest.fixture(scope="session")
def azure_server():
    with FakeAzure(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def azure_env(azure_server, monkeypatch, tmp_path):
    """A clean fake with the resource group, and an environment that can only reach it."""
    azure_server.reset()
    blobs = blob_service()
    blobs.reset(PACKAGES)
    azure_server.blobs = blobs  # the kept packages' service, for the tests that look at it
    azure_server.add_resource_group(SUB, GROUP)
    azure_server.add_storage_account(SUB, GROUP, ACCOUNT)
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "CI",
                 "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_ARM_ENDPOINT", azure_server.url)
    monkeypatch.setenv("AZURE_SCM_ENDPOINT", azure_server.scm_url)
    monkeypatch.setenv("AZURE_LOGS_ENDPOINT", azure_server.url)  # the Application Insights query API (logs)
    monkeypatch.setenv("AZURE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("AZURE_BLOB_ENDPOINT", blobs.url)  # the kept packages (issue 14): Azurite
    monkeypatch.setenv("AZURE_STORAGE_ACCESS_TOKEN", blobs.token)
    monkeypatch.setenv("AGENT_FRAMEWORK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    return azure_server


def write_agent(folder: Path, body: str = AGENT) -> Path:
    return helpers.write_agent(folder, body)


Run = helpers.Run


FAST = {"sleep": lambda seconds: None, "backoff": 0.0, "poll_interval": 0, "retries": 4}


def run(command: str, agent: Path, fmt: str = "text", yes: bool = True, **options) -> Run:
    """A deploy command in-process against the fake (no sleeping), output captured."""
    out, err = io.StringIO(), io.StringIO()
    kwargs = {**FAST, "stdout": out, "stderr": err, **options}
    output = str(agent.parent / "generated")
    function = getattr(commands, command)
    if command in ("deploy", "destroy"):
        code = function(str(agent), "azure", output, fmt, yes, **kwargs)
    else:
        code = function(str(agent), "azure", output, fmt, **kwargs)
    return Run(code, out.getvalue(), err.getvalue())
