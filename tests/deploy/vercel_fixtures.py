"""Fixtures for the Vercel deploy tests: one fake Vercel API per session, reset before each test."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from framework.deploy import commands
from tests.deploy import helpers
from tests.deploy.helpers import FAKE_KEY
from tests.fakes.vercel_server import FakeVercel

TOKEN = "test-vercel-token-0123"
TEAM = "team_fake123"

VERCEL_AGENT = """\
    name: support-bot
    prompt: |
      You are a helpful support assistant.
    model: gpt-4o-mini
    concurrency:
      max: 10
      warm: 0
    targets:
      vercel:
        runtime: edge
        stream: true
        team: team_fake123
"""

FILES = ["agent.json", "api/agent.ts", "lib/agent.mjs", "package.json", "public/robots.txt", "tsconfig.json",
         "vercel.json"]
# the mutating requests of a first deploy of VERCEL_AGENT, in order
CLEAN_DEPLOY = ["POST /v11/projects", "POST /v10/projects/prj_000001/env", "POST /v13/deployments",
                *["POST /v2/files"] * len(FILES), "POST /v13/deployments"]


@pytest.fixture(scope="session")
def vercel_server():
    with FakeVercel(token=TOKEN, team=TEAM) as fake:
        yield fake


@pytest.fixture
def fake(vercel_server, monkeypatch):
    """A clean fake and an environment that can only reach it; the deploying env holds a fake key."""
    vercel_server.reset()
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("VERCEL_API_URL", vercel_server.url)
    monkeypatch.setenv("VERCEL_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    return vercel_server


def write_agent(folder: Path, body: str = VERCEL_AGENT) -> Path:
    return helpers.write_agent(folder, body)


Run = helpers.Run


class Sleeps(list):
    """Records what the code would have slept (nothing is slept in tests)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def run(command: str, agent: Path, fmt: str = "text", sleep: Sleeps | None = None, **options) -> Run:
    """Call a deploy command in-process against the fake, with captured output."""
    out, err = io.StringIO(), io.StringIO()
    function = getattr(commands, command)
    args = [str(agent), "vercel", str(agent.parent / "generated"), fmt]
    if command in ("deploy", "destroy"):
        args.append(True)
    code = function(*args, stdout=out, stderr=err, sleep=sleep if sleep is not None else Sleeps(), **options)
    return Run(code, out.getvalue(), err.getvalue())
