"""Benchmark: cold start and package size of the generated Python apps against the seed's handler.

Run: .venv/bin/python bench/coldstart.py [--runs 15] [-f agent.yaml]   (not part of the tests; needs pip access to
PyPI once, to build the seed's Lambda package). For each Python target a fresh interpreter imports
the generated entry module and serves one request against an instant local model (the fake
OpenAI-compatible server on 127.0.0.1); the seed's AWS handler (../shared/seed, which builds an
`openai.OpenAI` client at import) runs the same way, interleaved in the same run. Prints medians
and ratios; then the deployment package sizes, zipped as Lambda gets them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "serverless-agent-hosting.md"
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

EVENT = ('{"version": "2.0", "routeKey": "$default", "rawPath": "/", "headers": {"content-type": '
         '"application/json"}, "requestContext": {"http": {"method": "POST", "path": "/"}}, '
         '"body": "{\\"message\\": \\"hello\\"}", "isBase64Encoded": false}')

CONTEXT = """
class Context:
    def get_remaining_time_in_millis(self):
        return 300000
"""

# One request through each entry module, the way its platform calls it.
DRIVERS = {
    "aws": CONTEXT + """
import json, lambda_function
result = lambda_function.lambda_handler(json.loads(EVENT), Context())
assert result["statusCode"] == 200, result
""",
    "gcp": """
import main
class Request:  # what functions-framework hands over: method, path, headers, body
    method = "POST"
    path = "/"
    headers = {"Content-Type": "application/json"}
    def get_data(self, cache=True):
        return b'{"message": "hello"}'
body, status, headers = main.agent_handler(Request())
assert status == 200, body
""",
    "azure": """
import azure.functions as func
import function_app
(function,) = function_app.app.get_functions()
request = func.HttpRequest("POST", "http://localhost/api/agent", headers={}, body=b'{"message": "hello"}')
response = function.get_user_function()(request)
assert response.status_code == 200, response.get_body()
""",
    # Azure's Python worker imports azure.functions before it loads function_app.py: the platform's cost.
    "azure.functions alone": """
import azure.functions
""",
    "seed": CONTEXT + """
import json, lambda_function
result = lambda_function.lambda_handler(json.loads(EVENT), Context())
assert result["statusCode"] == 200, result
""",
}


def seed_handler() -> str:
    """The seed's AWS Lambda handler, taken from the lesson as written."""
    text = SEED.read_text(encoding="utf-8")
    section = text[text.index("### Lambda handler"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_once(app_dir: Path, driver: str, env: dict[str, str]) -> float:
    code = f"EVENT = {EVENT!r}\n{driver}"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=app_dir, env=env, check=True)
    return time.perf_counter() - start


def zip_size(files: dict[str, bytes]) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.tell()


def folder_files(folder: Path, keep=lambda p: True) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and keep(p) and "__pycache__" not in p.parts}


def lambda_dependencies(requirements: str, cache: Path) -> dict[str, bytes]:
    """Install requirements as Lambda gets them (manylinux wheels for Python 3.12, no bytecode)."""
    if not requirements.strip():
        return {}
    target = cache / hashlib.sha256(requirements.encode()).hexdigest()[:16]
    if not target.exists():
        req = cache / "requirements.txt"
        req.write_text(requirements)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--only-binary=:all:",
                        "--platform", "manylinux2014_x86_64", "--python-version", "3.12", "--implementation", "cp",
                        "--target", str(target), "-r", str(req)], check=True, stderr=subprocess.DEVNULL)
    return folder_files(target)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("-f", "--file", type=Path, default=ROOT / "agent.yaml",
                        help="the agent to build and start (e.g. bench/agent-tools.yaml: "
                             "tools and an MCP server declared)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as model:
        work = Path(tmp)
        out = work / "generated"
        subprocess.run([sys.executable, "-m", "framework", "build", "-f", str(args.file.resolve()), "-o", str(out)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        seed_dir = work / "seed"
        seed_dir.mkdir()
        (seed_dir / "lambda_function.py").write_text(seed_handler())
        env = {**os.environ, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": model.url,
               "PYTHONDONTWRITEBYTECODE": "1"}
        apps = {"aws": out / "aws", "gcp": out / "gcp", "azure": out / "azure",
                "azure.functions alone": work, "seed": seed_dir}
        samples: dict[str, list[float]] = {name: [] for name in apps}
        for name, folder in apps.items():  # warm the file cache once, untimed
            run_once(folder, DRIVERS[name], env)
        for _ in range(args.runs):  # interleaved, so that load on the machine hits every app alike
            for name, folder in apps.items():
                samples[name].append(run_once(folder, DRIVERS[name], env))
        bare = statistics.median(run_once(work, "pass", env) for _ in range(args.runs))
        seed = statistics.median(samples["seed"])
        print(f"cold start: fresh interpreter, import the entry module, serve one request (median of {args.runs})")
        print(f"{'app':<40}{'median':>10}{'vs seed':>10}")
        for name in ("aws", "gcp", "azure"):
            median = statistics.median(samples[name])
            print(f"{'generated ' + name:<40}{median * 1000:>8.0f}ms{median / seed:>9.2f}x")
        platform = statistics.median(samples["azure.functions alone"])
        print(f"{'  of which import azure.functions':<40}{platform * 1000:>8.0f}ms{platform / seed:>9.2f}x")
        print(f"{'seed AWS handler (import openai)':<40}{seed * 1000:>8.0f}ms{1:>9.2f}x")
        print(f"{'python -c pass':<40}{bare * 1000:>8.0f}ms")
        print("budget: generated cold start at most 0.15x the seed's")
        print()
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agent-framework" / "bench-deps"
        cache.mkdir(parents=True, exist_ok=True)
        print(f"{'deployment package (zip, as Lambda gets it)':<48}{'zipped':>10}{'unzipped':>12}")
        code = lambda p: p.name not in ("Dockerfile", "template.yaml")  # noqa: E731
        rows = {
            "generated aws (code + requirements)": {**folder_files(out / "aws", code),
                                                   **lambda_dependencies((out / "aws" / "requirements.txt")
                                                                         .read_text().split("#")[0], cache)},
            "generated gcp (source; deps built by Google)": folder_files(out / "gcp"),
            "generated azure (source; deps built by Azure)": folder_files(out / "azure"),
            "seed aws (handler + openai and its deps)": {**folder_files(seed_dir),
                                                        **lambda_dependencies("openai\n", cache)},
        }
        for label, files in rows.items():
            unzipped = sum(len(b) for b in files.values())
            print(f"{label:<48}{zip_size(files) / 1024:>8.1f}KB{unzipped / 1024:>10.1f}KB")
        print("budget: AWS zip package at most 100 KB")


if __name__ == "__main__":
    main()
