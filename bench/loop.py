"""Benchmark: the Python runtime's agent loop, in-process, against an instant model and instant tools.

Run: PYTHONPATH=. .venv/bin/python bench/loop.py [--runs 30] [--steps 8]   (not part of the tests)

1. Loop overhead per step. The fake model (tests/fakes/openai_server.py) answers at once and the
   tool (tests/fakes/tool_server.py /echo) too; what is left is our own work per step: building the
   payload, parsing the answer, checking the arguments, building the URL, threads, messages.
     T1    = one request of an agent without tools (one model call)
     TN    = one request of N steps (N-1 rounds of one instant tool call, then the answer)
     Ttool = one GET of the same tool with http.client (a fresh connection, as the runtime makes)
   overhead/step = (TN - N*T1 - (N-1)*Ttool) / N, and the cruder (TN - N*T1) / N (tool time included).
   Each model call costs about as much as T1 (the fake's answer time is part of it), so the first
   formula is our loop's own time per step. Target: under 2 ms.
2. Parallel vs sequential tool calls: three tools that each sleep 0.2 s, in one step (run at once,
   one thread each) or in three steps of one call each.
Prints medians.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.runtime.agent_runtime import Agent  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, call  # noqa: E402
from tests.fakes.tool_server import ToolServer  # noqa: E402


def agent(model: FakeOpenAI, tools: list, max_steps: int = 16) -> Agent:
    config = {"name": "bench", "model": "m", "max_tokens": 50, "temperature": None, "base_url": model.url,
              "client": "builtin", "system_prompt": "You help.", "timeout": 300, "stream": False,
              "api_key_env": "K", "cors": {"origins": []}, "retries": 0, "tools": tools, "mcp": [],
              "limits": {"max_steps": max_steps, "max_request_tokens": None}, "log_content": False}
    return Agent(config, environ={"K": "bench-key"})


def tool(name: str, url: str) -> dict:
    return {"name": name, "description": name, "parameters": {"type": "object", "properties": {}},
            "http": {"method": "GET", "url": url, "headers": {}, "timeout": 10}}


def timed(bot: Agent, message: str) -> float:
    body = json.dumps({"message": message}).encode()
    start = time.perf_counter()
    reply = bot.handle("POST", {}, body)
    took = time.perf_counter() - start
    assert reply.status == 200, reply.body
    return took


def tool_get(url: str) -> float:
    parts = urllib.parse.urlsplit(url)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path, headers={"Accept": "application/json"})
    conn.getresponse().read()
    conn.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    n = args.steps
    quiet = open("/dev/null", "w")  # noqa: SIM115  the usage lines, one per request
    stdout, sys.stdout = sys.stdout, quiet
    try:
        with FakeOpenAI() as model, ToolServer() as tools:
            plain = agent(model, [])
            looping = agent(model, [tool("echo", tools.url + "/echo")])
            model.script("bench-steps", [call("echo", {})] * (n - 1) + ["done"])
            for _ in range(5):  # warm up connections and caches
                timed(plain, "warm"), timed(looping, "bench-steps"), tool_get(tools.url + "/echo")
            one, many, get = [], [], []
            for _ in range(args.runs):  # interleaved, so that load on the machine hits all alike
                one.append(timed(plain, "hello"))
                many.append(timed(looping, "bench-steps"))
                get.append(tool_get(tools.url + "/echo"))
                model.clear()
                tools.clear()
                model.script("bench-steps", [call("echo", {})] * (n - 1) + ["done"])
            t1, tn, tt = (statistics.median(x) for x in (one, many, get))

            sleepy = agent(model, [tool(name, tools.url + "/sleep/0.2") for name in ("a", "b", "c")])
            model.script("bench-par", [[call("a"), call("b"), call("c")]])
            model.script("bench-seq", [call("a"), call("b"), call("c")])
            runs = max(3, args.runs // 6)
            parallel = statistics.median(timed(sleepy, "bench-par") for _ in range(runs))
            sequential = statistics.median(timed(sleepy, "bench-seq") for _ in range(runs))
    finally:
        sys.stdout = stdout
        quiet.close()
    print(f"loop overhead, median of {args.runs} (instant fake model, instant /echo tool, {n} steps):")
    print(f"  1-step request without tools (T1)         {t1 * 1000:8.2f} ms")
    print(f"  {n}-step request, {n - 1} tool calls (TN)        {tn * 1000:8.2f} ms")
    print(f"  one GET of the tool by itself (Ttool)     {tt * 1000:8.2f} ms")
    print(f"  overhead per step (TN - N*T1 - (N-1)*Ttool)/N  {(tn - n * t1 - (n - 1) * tt) / n * 1000:6.2f} ms"
          "   (target: under 2 ms)")
    print(f"  (TN - N*T1)/N, tool time included          {(tn - n * t1) / n * 1000:6.2f} ms")
    print(f"3 tools sleeping 0.2 s, median of {runs}:")
    print(f"  in one step (parallel)                    {parallel * 1000:8.0f} ms")
    print(f"  in three steps (sequential)               {sequential * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
