"""Deploy against the emulators on 127.0.0.1.

1. AWS against moto (server mode): API calls and wall time of a first deploy, a no-change deploy and a
   prompt-only change.
2. Parallel deploy: a first deploy of each platform alone, then of all four at once (AWS: moto, Google,
   Azure, Vercel: tests/fakes), every request delayed by --delay seconds (the fakes' `delay`; for moto, a
   boto3 hook before each send) to stand for a cloud's latency. Prints the median wall time of each and
   the ratio all-four / slowest-alone (target: <= 1.2).

Run: .venv/bin/python bench/deploy.py [--delay 0.05] [--runs 5]"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

AGENT = """\
name: bench-bot
prompt: "You are a helpful assistant. {n}"
model: gpt-4o-mini
targets:
  aws:
    region: us-east-1
"""


PARALLEL_AGENT = """\
name: bench-bot
prompt: You are a helpful assistant.
model: gpt-4o-mini
concurrency: {max: 10, warm: 0}
targets:
  aws: {region: us-east-1}
  gcp: {project: bench-project, region: us-central1}
  azure: {subscription: 11111111-2222-3333-4444-555555555555, resource_group: bench-rg, region: westeurope,
          timeout: 230, storage: "https://benchdeploy.blob.core.windows.net/app-package-bench-bot"}
  vercel: {team: team_bench, timeout: 25}
"""
AZURE = ("11111111-2222-3333-4444-555555555555", "bench-rg", "benchdeploy")
PLATFORMS = ("aws", "gcp", "azure", "vercel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added to every request (default 0.05)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement; the median is shown (default 5)")
    args = parser.parse_args()
    moto, port = start_moto()
    try:
        aws_calls()
        parallel(port, args.delay, args.runs)
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def start_moto() -> tuple[subprocess.Popen, int]:
    """moto's server on a free port, and the environment pointing every AWS call at it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1", OPENAI_API_KEY="bench-key",
                      AGENT_FRAMEWORK_CACHE=tempfile.mkdtemp())
    return moto, port


def aws_calls() -> None:
    """AWS alone, no delay: the calls of a first, a no-change and a prompt-only deploy."""
    import boto3

    from framework.deploy import commands

    folder = Path(tempfile.mkdtemp())
    agent = folder / "agent.yaml"
    print(f"{'deploy':<22} {'calls':>6} {'mutating':>9} {'wall s':>8}")
    for label, n in (("first", 0), ("no change", 0), ("prompt only", 1)):
        agent.write_text(textwrap.dedent(AGENT).format(n=n), encoding="utf-8")
        session = boto3.Session()
        calls: list[str] = []
        session.events.register("before-call", lambda model, calls=calls, **kw: calls.append(model.name))
        start = time.perf_counter()
        commands.deploy(str(agent), "aws", str(folder / "generated"), "text", True, session=session,
                        stdout=io.StringIO(), stderr=io.StringIO())
        wall = time.perf_counter() - start
        mutating = [c for c in calls if not c.startswith(("Get", "List", "Describe"))]
        print(f"{label:<22} {len(calls):>6} {len(mutating):>9} {wall:>8.2f}")


def parallel(moto_port: int, delay: float, runs: int) -> None:
    """Median wall time of a first deploy of each platform alone and of all four at once."""
    from tests.fakes.azure_server import FakeAzure
    from tests.fakes.gcp_server import FakeGcp
    from tests.fakes.vercel_server import FakeVercel

    with contextlib.ExitStack() as stack:
        gcp = FakeGcp().start()
        stack.callback(gcp.stop)
        azure = stack.enter_context(FakeAzure(token="bench-token"))
        vercel = stack.enter_context(FakeVercel(token="bench-token", team="team_bench"))
        measure(moto_port, delay, runs, gcp, azure, vercel)


def measure(moto_port: int, delay: float, runs: int, gcp, azure, vercel) -> None:
    """The table of `parallel`, against the running fakes."""
    import boto3

    from framework.deploy import commands

    fakes = (gcp, azure, vercel)
    os.environ.update(GCP_FUNCTIONS_ENDPOINT=gcp.url, GCP_RUN_ENDPOINT=gcp.url, GCP_FIRESTORE_ENDPOINT=gcp.url,
                      GOOGLE_OAUTH_ACCESS_TOKEN="bench-token", AZURE_ARM_ENDPOINT=azure.url,
                      AZURE_SCM_ENDPOINT=azure.scm_url, AZURE_ACCESS_TOKEN="bench-token",
                      VERCEL_API_URL=vercel.url, VERCEL_TOKEN="bench-token")
    folder = Path(tempfile.mkdtemp())
    agent = folder / "agent.yaml"
    agent.write_text(PARALLEL_AGENT, encoding="utf-8")

    def first_deploy(target: str | None, delay: float) -> float:
        """Every emulator emptied, then one first deploy with `delay` per request; its wall time."""
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{moto_port}/moto-api/reset",
                                                      method="POST")).close()
        for fake in fakes:
            fake.reset()
            fake.delay = delay
        azure.add_resource_group(*AZURE[:2])
        azure.add_storage_account(*AZURE)
        session = boto3.Session()
        session.events.register("before-send", lambda **kw: time.sleep(delay))
        stderr = io.StringIO()
        start = time.perf_counter()
        code = commands.deploy(str(agent), target, str(folder / "generated"), "text", True, session=session,
                               stdout=io.StringIO(), stderr=stderr, sleep=lambda seconds: None, poll_interval=0)
        wall = time.perf_counter() - start
        if code:
            raise SystemExit(f"deploy {target or 'all'} failed:\n{stderr.getvalue()}")
        return wall

    first_deploy(None, 0.0)  # warm up: imports, the package cache
    print(f"\nparallel deploy, {delay * 1000:g} ms per request, median of {runs} runs")
    print(f"{'platforms':<22} {'wall s':>8}")
    alone = {}
    for target in (*PLATFORMS, None):
        wall = statistics.median(first_deploy(target, delay) for _ in range(runs))
        if target:
            alone[target] = wall
        print(f"{target or 'all four':<22} {wall:>8.2f}")
    slowest = max(alone, key=alone.__getitem__)
    print(f"{'all four / ' + slowest:<22} {wall / alone[slowest]:>8.2f}  (the four alone add up to "
          f"{sum(alone.values()):.2f} s)")


if __name__ == "__main__":
    main()
