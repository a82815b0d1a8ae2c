"""Tool steps streamed in the AI SDK's UI message stream, read by the `ai` package's own reader, on
every platform that streams (Google Cloud Functions, Vercel Edge, the streaming AWS Lambda); and the
usage record each request logs, on every platform, as `serve` shows the function's log."""

from __future__ import annotations

import json
import os
import urllib.request
from contextlib import contextmanager

import pytest

from tests.conftest import API_KEY, js_tool
from tests.fakes.openai_server import call
from tests.functional.apps import serve_cli, serve_process
from tests.functional.conftest import MCP_TOKEN, TOOL_TOKEN, tools_build, tools_env
from tests.functional.ui_stream import fetch_ui_stream, text_of, tool_parts

STREAMING = ("gcp", "vercel", "aws")


@pytest.fixture(scope="session")
def ai_reader(tmp_path_factory):
    """tests/js/node_modules, where the pinned `ai` package lives."""
    js_tool(tmp_path_factory, "tsc")


@pytest.fixture(scope="session")
def stream_builds(tmp_path_factory, tool_server, mcp_server):
    """The tools agent for the streaming platforms: aws as the streaming Lambda; a slow variant whose
    tool may run past the 10 s keep-alive interval."""
    return {"fast": tools_build(tmp_path_factory, tool_server, mcp_server, "aws-stream"),
            "slow": tools_build(tmp_path_factory, tool_server, mcp_server, "aws-stream", timeout=40,
                                tool_timeout=20)}


@contextmanager
def streaming_app(target: str, build_dir, fake_model):
    with serve_cli(target, build_dir.parent / "agent.yaml", build_dir, tools_env(fake_model)) as url:
        yield url


@pytest.fixture(scope="module", params=STREAMING)
def stream_url(request, fake_model, stream_builds, ai_reader):
    with streaming_app(request.param, stream_builds["fast"], fake_model) as url:
        yield url


def test_streamed_tool_steps_parse_with_the_ai_sdk(stream_url, fake_model, tag):
    fake_model.script(tag, [call("lookup_order", {"order_id": "42"})])
    parsed = fetch_ui_stream(stream_url, {"message": tag, "stream": True})
    assert parsed["error"] is None and parsed["done"], parsed
    assert parsed["status"] == 200
    assert parsed["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    assert parsed["headers"]["content-type"].startswith("text/event-stream")
    kinds = [chunk["type"] for chunk in parsed["chunks"]]
    assert kinds[:5] == ["start", "start-step", "tool-input-available", "tool-output-available", "finish-step"]
    assert kinds[-1] == "finish" and kinds.count("start-step") == 2 == kinds.count("finish-step")
    (tool,) = tool_parts(parsed)
    assert tool["input"] == {"order_id": "42"} and tool["state"] == "output-available"
    assert json.loads(tool["output"]) == {"order_id": "42", "status": "shipped"}
    assert text_of(parsed).startswith('tools said: {"order_id"')
    assert parsed["metadata"] == {"tokens": 20, "steps": 2}


def test_a_limit_reached_in_a_stream_is_in_the_finish_metadata(stream_url, fake_model, tag):
    fake_model.script(tag, [], forever=call("lookup_order", {"order_id": "7"}), tokens=[20, 20, 1])
    parsed = fetch_ui_stream(stream_url, {"message": tag, "stream": True})
    assert parsed["error"] is None
    assert parsed["metadata"] == {"tokens": 41, "steps": 3, "stopped": "token_budget"}
    assert len(tool_parts(parsed)) == 2


def test_a_model_failure_after_the_first_byte_is_an_error_part(stream_url, fake_model, tag):
    fake_model.script(tag, [call("lookup_order", {"order_id": "1"}), "never sent"], delays=[0, 30])
    parsed = fetch_ui_stream(stream_url, {"message": tag, "stream": True})
    assert parsed["error"] is None and parsed["done"]
    assert parsed["errorParts"] and "did not answer within" in parsed["errorParts"][0]
    assert API_KEY not in json.dumps(parsed)


def test_without_the_accept_header_the_stream_is_plain_text(stream_url, fake_model, tag):
    fake_model.script(tag, [call("lookup_order", {"order_id": "5"})])
    request = urllib.request.Request(stream_url, data=json.dumps({"message": tag, "stream": True}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.read().decode() == 'tools said: {"order_id": "5", "status": "shipped"}'


@pytest.mark.parametrize("target", STREAMING)
def test_a_long_tool_call_keeps_the_stream_alive_with_comments(target, fake_model, stream_builds, ai_reader, tag):
    fake_model.script(tag, [call("sleep", {"seconds": "11"})])
    with streaming_app(target, stream_builds["slow"], fake_model) as url:
        parsed = fetch_ui_stream(url, {"message": tag, "stream": True})
    assert parsed["error"] is None
    assert parsed["comments"] >= 1, "no keep-alive comment while the 11 s tool ran"
    assert text_of(parsed) == 'tools said: {"slept": 11.0}'


@pytest.mark.parametrize("target", ("aws", "gcp", "azure", "vercel"))
def test_each_request_logs_one_usage_record_without_content_or_secrets(target, fake_model, builds, tmp_path, tag):
    build_dir = builds[""]
    log = tmp_path / "serve.log"
    fake_model.script(tag, [[call("lookup_order", {"order_id": "9"}), call("status", {"code": "503"})]])
    with serve_process(target, build_dir.parent / "agent.yaml", build_dir, tools_env(fake_model), log) as (proc, url):
        request = urllib.request.Request(url, data=json.dumps({"message": tag, "stream": False}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    text = log.read_text(errors="replace")
    records = [json.loads(line[line.index("{"):]) for line in text.splitlines() if '"agent.usage"' in line]
    assert len(records) == 1, text
    (record,) = records
    assert (record["agent"], record["status"], record["steps"]) == ("tools-bot", 200, answer["steps"])
    assert record["gen_ai.request.model"] == "fake-model-1"
    assert record["gen_ai.usage.input_tokens"] + record["gen_ai.usage.output_tokens"] == answer["tokens"]
    assert [(t["name"], t["outcome"]) for t in record["tools"]] == [("lookup_order", "ok"), ("status", "error")]
    assert all(isinstance(t["duration_ms"], (int, float)) for t in record["tools"])
    assert record["latency_ms"] >= 0 and record["request_id"]
    line = next(line for line in text.splitlines() if '"agent.usage"' in line)
    for secret_or_content in (tag, TOOL_TOKEN, MCP_TOKEN, API_KEY, "shipped", "You use tools"):
        assert secret_or_content not in line


def invoke(build_dir, target: str, message: str, env: dict[str, str]):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "framework", "invoke", "--target", target, "--no-stream",
                           "-m", message, "-f", str(build_dir.parent / "agent.yaml"), "-o", str(build_dir)],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("target", ("aws", "gcp", "azure", "vercel"))
def test_invoke_prints_the_answer_on_stdout_and_the_functions_usage_record_on_stderr(target, fake_model, builds,
                                                                                    tag):
    fake_model.script(tag, [call("lookup_order", {"order_id": "3"})])
    result = invoke(builds[""], target, tag, {**tools_env(fake_model)})
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)  # nothing but the answer
    assert answer["steps"] == 2
    (record,) = [json.loads(line[line.index("{"):]) for line in result.stderr.splitlines() if '"agent.usage"' in line]
    assert record["tools"][0]["outcome"] == "ok" and TOOL_TOKEN not in result.stderr


def test_invoke_says_which_declared_secret_is_not_set(fake_model, builds, tag):
    env = {key: value for key, value in tools_env(fake_model).items() if key != "TOOL_TOKEN"}
    result = invoke(builds[""], "gcp", tag, {**env, "TOOL_TOKEN": ""})
    assert result.returncode == 0, result.stderr
    assert "TOOL_TOKEN is not set here" in result.stderr and "MCP_TOKEN is not set" not in result.stderr
