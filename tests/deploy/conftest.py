"""Deploy tests: one moto server per test session (per xdist worker), reset before each test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from framework.local.http import upstream_port
from tests.deploy.helpers import FAKE_KEY


@pytest.fixture(scope="session")
def moto_server():
    """`python -m moto.server` on 127.0.0.1 (AWS managed policies loaded, for the basic execution role)."""
    port = upstream_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("moto server did not start")
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("moto server did not answer")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def moto_env(moto_server, monkeypatch, tmp_path):
    """A clean moto and an environment that can only reach it; the deploying env holds a fake key."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AGENT_FRAMEWORK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    return moto_server
