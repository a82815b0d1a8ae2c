"""Deploy against moto (server mode, 127.0.0.1): API calls and wall time of a first deploy, a no-change
deploy and a prompt-only change. Run: .venv/bin/python bench/deploy.py"""

from __future__ import annotations

import io
import os
import socket
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


def main() -> None:
    import boto3

    from framework.deploy import commands

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", OPENAI_API_KEY="bench-key")
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
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
