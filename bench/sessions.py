"""Benchmark: what sessions (issue 12) add to a request and to the cold start of the generated apps.

Run: .venv/bin/python bench/sessions.py [--runs 15] [--requests 50]   (not part of the tests).
The same agent is built twice for AWS Lambda, without and with `sessions: {store: auto}`, and runs
against moto's DynamoDB server started locally and the instant fake model. Prints:
- cold start: a fresh interpreter imports the entry module and serves one request (median), without
  and with sessions (with: the store module imported and opened, the first turn saved);
- per request, warm: the store round trips and their time, from the usage records (`store_round_trips`,
  `store_ms`), over a conversation of --requests turns (the first turn makes no read: its id is new);
- the app's files without and with sessions (agent_sessions.py ships only with them).
Local stores answer in well under a millisecond of network; the cloud's own add their latency
(DynamoDB, Firestore, Table Storage: single-digit milliseconds within a region) per round trip.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framework.local import stores  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

AGENT = """\
name: bench-bot
prompt: You are terse.
model: bench-model
{sessions}targets:
  aws: {{}}
"""

EVENT = ('{{"version": "2.0", "routeKey": "$default", "rawPath": "/", "headers": {{"content-type": '
         '"application/json"}}, "requestContext": {{"http": {{"method": "POST", "path": "/"}}}}, '
         '"body": {body}, "isBase64Encoded": false}}')

DRIVER = """
import json, sys, time
class Context:
    def get_remaining_time_in_millis(self):
        return 300000
import lambda_function
session = None
for i in range(REQUESTS):
    payload = {"message": f"turn {i}"}
    if session:
        payload["session_id"] = session
    event = json.loads(EVENT_TEMPLATE.format(body=json.dumps(json.dumps(payload))))
    result = lambda_function.lambda_handler(event, Context())
    assert result["statusCode"] == 200, result
    session = json.loads(result["body"]).get("session_id")
"""


def build(work: Path, sessions: bool) -> Path:
    folder = work / ("with" if sessions else "without")
    folder.mkdir()
    (folder / "agent.yaml").write_text(AGENT.format(sessions="sessions: {store: auto}\n" if sessions else ""))
    subprocess.run([sys.executable, "-m", "framework", "build", "-f", str(folder / "agent.yaml"), "-o",
                    str(folder / "generated")], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return folder / "generated"


def run(app_dir: Path, env: dict[str, str], requests: int) -> tuple[float, list[dict]]:
    code = f"REQUESTS = {requests}\nEVENT_TEMPLATE = {EVENT!r}\n{DRIVER}"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=app_dir, env=env, check=True, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - start
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"type": "agent.usage"')]
    return elapsed, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as model, stores.start_dynamodb() as dynamo:
        work = Path(tmp)
        without, with_sessions = build(work, False), build(work, True)
        table = json.loads((with_sessions / "aws" / "agent.json").read_text())["sessions"]["table"]
        stores.prepare_dynamodb(dynamo.env, table)
        env = {**os.environ, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": model.url,
               "PYTHONDONTWRITEBYTECODE": "1", **dynamo.env}
        apps = {"aws without sessions": without / "aws", "aws with sessions (DynamoDB)": with_sessions / "aws"}
        for folder in apps.values():
            run(folder, env, 1)  # warm the file cache, untimed
        samples: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(args.runs):
            for name, folder in apps.items():
                samples[name].append(run(folder, env, 1)[0])
        print(f"cold start: fresh interpreter, import lambda_function, serve one request (median of {args.runs})")
        base = statistics.median(samples["aws without sessions"])
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"  {name:<36}{median * 1000:>8.0f} ms  (+{(median - base) * 1000:.0f} ms)")
        _, lines = run(with_sessions / "aws", env, args.requests)
        trips = [line.get("store_round_trips", 0) for line in lines]
        ms = [line.get("store_ms", 0.0) for line in lines]
        latency = [line["latency_ms"] for line in lines]
        print(f"per request, warm, one conversation of {args.requests} turns (aws, moto's DynamoDB):")
        print(f"  store round trips: first turn {trips[0]} (a write), later turns max {max(trips[1:])} "
              f"(one read, one write); every turn: {sorted(set(trips))}")
        print(f"  store time per turn: median {statistics.median(ms[1:]):.1f} ms; request latency median "
              f"{statistics.median(latency[1:])} ms")
        _, plain = run(without / "aws", env, args.requests)
        print(f"  the same without sessions: request latency median {statistics.median(x['latency_ms'] for x in plain)}"
              " ms, 0 store round trips")
        for name, folder in (("without", without), ("with", with_sessions)):
            files = sorted(p.name for p in (folder / "aws").iterdir())
            print(f"  aws app files {name} sessions: {', '.join(files)}")


if __name__ == "__main__":
    main()
