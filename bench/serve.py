"""Benchmark: throughput and latency of the generated Cloud Functions app under functions-framework,
side by side with the seed's Cloud Function handler under the same server, against an instant model.

Run: .venv/bin/python bench/serve.py [--seconds 30] [--connections 20]   (not part of the tests).
Needs wrk (Debian: apt-get install wrk). Everything runs on 127.0.0.1: the fake OpenAI-compatible
model server, functions-framework (same THREADS/WORKERS for both apps) and wrk.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "serverless-agent-hosting.md"
sys.path.insert(0, str(ROOT))

from framework.local.http import free_port, wait_for_port  # noqa: E402

POST_LUA = """
wrk.method = "POST"
wrk.body = '{"message": "hello from wrk"}'
wrk.headers["Content-Type"] = "application/json"
"""


def seed_gcf_handler() -> str:
    text = SEED.read_text(encoding="utf-8")
    section = text[text.index("### Cloud Function handler"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def start(command: list[str], env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_port(port, 30, lambda: proc.poll() is None):
        proc.kill()
        raise SystemExit(f"could not start: {' '.join(command)}")
    return proc


def wrk(url: str, seconds: int, connections: int, script: Path) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": ms("50%"), "p99": ms("99%"), "non2xx": float(errors.group(1)) if errors else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        script = work / "post.lua"
        script.write_text(POST_LUA)
        subprocess.run([sys.executable, "-m", "framework", "build", "-f", str(ROOT / "agent.yaml"),
                        "-o", str(work / "generated")], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        seed_dir = work / "seed"
        seed_dir.mkdir()
        (seed_dir / "main.py").write_text(seed_gcf_handler())
        model_port = free_port()
        base_env = {**os.environ, "THREADS": "8", "WORKERS": "1"}
        model = start([sys.executable, "-m", "tests.fakes.openai_server", "--port", str(model_port)],
                      base_env, ROOT, model_port)
        env = {**base_env, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": f"http://127.0.0.1:{model_port}/v1"}
        try:
            alone = wrk(f"http://127.0.0.1:{model_port}/v1/chat/completions", args.seconds, args.connections,
                        _model_script(work))
            results = {}
            for name, folder in (("generated gcp", work / "generated" / "gcp"), ("seed gcp", seed_dir)):
                port = free_port()
                server = start([sys.executable, "-m", "functions_framework", "--target", "agent_handler",
                                "--source", str(folder / "main.py"), "--host", "127.0.0.1", "--port", str(port)],
                               env, folder, port)
                try:
                    results[name] = wrk(f"http://127.0.0.1:{port}/", args.seconds, args.connections, script)
                finally:
                    server.terminate()
                    server.wait()
        finally:
            model.terminate()
            model.wait()
    print(f"wrk: {args.connections} connections, {args.seconds} s, POST {{\"message\": ...}}; "
          "functions-framework (gunicorn, 1 worker, 8 threads)")
    print(f"{'server':<28}{'req/s':>10}{'p50':>10}{'p99':>10}{'non-2xx':>9}")
    for name, r in {"model server alone": alone, **results}.items():
        print(f"{name:<28}{r['rps']:>10.0f}{r['p50']:>8.1f}ms{r['p99']:>8.1f}ms{r['non2xx']:>9.0f}")
    ours, seed = results["generated gcp"], results["seed gcp"]
    print(f"generated vs seed: {ours['rps'] / seed['rps']:.2f}x throughput, {ours['p99'] / seed['p99']:.2f}x p99 "
          "(budget: at least 2x throughput, at most 0.5x p99)")


def _model_script(work: Path) -> Path:
    path = work / "model.lua"
    path.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"model": "m", "messages": [{"role": "user", "content": "hello"}]}\'\n')
    return path


if __name__ == "__main__":
    main()
