"""invoke --deployed (issue 14) on every deployable platform: deployed into its emulator (the deploy
contract's Clouds), the URL found as `info` finds it, the request authenticated the platform's way,
and answered by the real generated app run by the framework's own local runner.

Between the two stands a gateway on 127.0.0.1 that does what the platform's front does before the
function runs: it routes only the agent's path of the URL the cloud reported, and checks the platform's
authentication (AWS: the SigV4 signature, re-computed with botocore from the same credentials; Google:
the ID token; Azure: the function key that ARM's listkeys returns; Vercel: the protection bypass secret),
refusing as the platform does (403 / 401). The cloud-reported hosts (*.lambda-url.*.on.aws,
*.cloudfunctions.net, *.azurewebsites.net, *.vercel.app) do not resolve here, so the test hands the
command a connection to the gateway (remote.invoke_deployed's `connect`): the request itself, its Host
header and its signature are the ones the cloud would get.
"""

from __future__ import annotations

import hmac
import http.client
import io
import json
import os
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from framework.config.validate import validate_file
from framework.deploy import remote
from framework.errors import DeployError, ExitCode, UsageError
from framework.local.session import Prepared, launch
from framework.report import TextReporter
from tests.conftest import API_KEY, build
from tests.deploy import azure_fixtures
from tests.deploy.test_deploy_contract import (  # noqa: F401
    CLOUDS,
    FAST,
    Cloud,
    azure_env,
    azure_server,
    gcp_env,
    gcp_server,
    vercel_env,
    vercel_server,
)

KEYS_ENV = "AGENT_API_KEYS"
AGENT_KEY = "agent-key-5be0c2e1d9a7"
ID_TOKEN = "id-token-eyJhbGciOiJSUzI1NiJ9-3c9d"
BYPASS = "bypass-secret-a61f0e2b77"
MOTO_CREDENTIALS = Credentials("testing", "testing")  # what moto_env exports
# where each platform's front routes the agent, on the URL its API reports
PATHS = {"aws": "/", "gcp": "/support-bot", "azure": "/api/agent", "vercel": "/api/agent"}


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return CLOUDS[request.param](request)


def _agent(cloud: Cloud, *, private: bool = False, keys: bool = False) -> str:
    """The contract's agent.yaml, made private (not on Vercel, which refuses `public: false`) and/or
    checking API keys."""
    text = textwrap.dedent(cloud.agent)
    extra = ("public: false\n" if private else "") + (f"auth:\n  api_keys: {KEYS_ENV}\n" if keys else "")
    return text.replace("targets:\n", extra + "targets:\n", 1)


def _sigv4_valid(method: str, headers: dict[str, str], path: str, body: bytes) -> bool:
    """Whether the request carries a SigV4 signature for `lambda` that botocore, signing the same
    canonical request with the same credentials and time, computes too."""
    found = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/lambda/aws4_request, "
                         r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", headers.get("authorization", ""))
    if not found or found[1] != MOTO_CREDENTIALS.access_key or found[3] != "us-east-1":
        return False
    signed = found[4].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return False
    request = AWSRequest(method=method, url=f"https://{headers['host']}{path}", data=body,
                         headers={name: headers[name] for name in signed if name in headers})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(MOTO_CREDENTIALS, "lambda", "us-east-1")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return hmac.compare_digest(expected, found[5])


@dataclass
class Gateway:
    """The platform's front: routes its path to the app, checks its authentication, streams back."""

    app_url: str
    path: str
    check: Callable[[dict[str, str], str, bytes], tuple[int, dict] | None]
    seen: list[dict[str, str]] = field(default_factory=list)  # each request's headers (lower-case names)
    server: ThreadingHTTPServer | None = None

    def connect(self, parts, timeout: float) -> http.client.HTTPConnection:
        assert parts.scheme == "https"  # what the cloud reported; carried to the gateway over plain HTTP
        assert self.server is not None
        return http.client.HTTPConnection("127.0.0.1", self.server.server_address[1], timeout=timeout)


@contextmanager
def gateway(app_url: str, path: str, check) -> Iterator[Gateway]:
    gate = Gateway(app_url, path, check)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _answer(self, status: int, data: dict) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            gate.seen.append(headers)
            if self.path != gate.path:
                return self._answer(404, {"message": f"no route {self.path}"})
            refused = gate.check(headers, self.path, body)
            if refused is not None:
                return self._answer(*refused)
            app = urlsplit(app_url)
            target = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
            app_path = app.path or "/"
            passed = {k: v for k, v in headers.items() if k not in ("host", "connection", "content-length")}
            target.request("POST", app_path, body=body, headers=passed)
            answer = target.getresponse()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := answer.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            target.close()

    gate.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=gate.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gate
    finally:
        gate.server.shutdown()
        gate.server.server_close()


def _check(cloud: Cloud, private: bool) -> Callable[[dict[str, str], str, bytes], tuple[int, dict] | None]:
    """The platform's authentication at its front, as each documents its refusal."""
    if cloud.name == "aws" and private:
        # an AWS_IAM function URL: 403 {"Message": "Forbidden"} unless signed (urls-auth.html)
        return lambda h, path, body: None if _sigv4_valid("POST", h, path, body) else (403, {"Message": "Forbidden"})
    if cloud.name == "gcp" and private:
        return lambda h, path, body: None if h.get("authorization") == f"Bearer {ID_TOKEN}" else (
            403, {"error": "Your client does not have permission to get URL from this server."})
    if cloud.name == "azure" and private:
        def key(h: dict[str, str], path: str, body: bytes) -> tuple[int, dict] | None:
            site = (azure_fixtures.SUB.lower(), azure_fixtures.GROUP.lower(), "support-bot")
            return None if h.get("x-functions-key") == cloud.emulator.keys[site] else (401, {})
        return key
    if cloud.name == "vercel" and private:  # Deployment Protection on: the bypass secret lets automation in
        return lambda h, path, body: None if h.get("x-vercel-protection-bypass") == BYPASS else (
            401, {"error": "Authentication Required"})
    return lambda h, path, body: None


@dataclass
class Deployed:
    cloud: Cloud
    agent: Path
    gate: Gateway
    model: object

    def invoke(self, message: str, *, stream: bool | None = None, raw: bool = False,
               environ: dict[str, str] | None = None) -> tuple[int, str, str, list[float]]:
        """invoke --deployed in-process: exit code, stdout, stderr, and when each stdout write came."""
        sink = _Timed()
        out, err = io.TextIOWrapper(sink, encoding="utf-8", write_through=True), io.StringIO()
        code = remote.invoke_deployed(str(self.agent), self.cloud.name, str(self.agent.parent / "generated"),
                                      message, stream, raw, TextReporter(out, err), environ=environ or dict(os.environ),
                                      connect=self.gate.connect, sleep=self.cloud.sleeps.append, **FAST,
                                      **self.cloud.options)
        out.flush()
        return code, sink.getvalue().decode(), err.getvalue(), sink.times


class _Timed(io.BytesIO):
    """stdout's bytes, with the time each write came."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def write(self, data) -> int:
        self.times.append(time.monotonic())
        return super().write(data)


@contextmanager
def deployed(cloud: Cloud, folder: Path, fake_model, monkeypatch, *, private: bool = False,
             keys: bool = False) -> Iterator[Deployed]:
    """The agent deployed into the cloud's emulator, its generated app running locally behind the gateway."""
    monkeypatch.setenv(KEYS_ENV, f"{AGENT_KEY}\n")
    agent = folder / "agent.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    agent.write_text(_agent(cloud, private=private and cloud.name != "vercel", keys=keys), encoding="utf-8")
    assert build(agent, folder / "generated") == 0
    assert cloud.run("deploy", agent).code == 0
    validated = validate_file(str(agent)).agent
    env = {**os.environ, "OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": API_KEY}
    app = launch(Prepared(validated, validated.target(cloud.name), folder / "generated" / cloud.name, False), 0, env)
    try:
        with gateway(app.url, PATHS[cloud.name], _check(cloud, private)) as gate:
            yield Deployed(cloud, agent, gate, fake_model)
    finally:
        app.close()


def test_the_answer_is_printed_and_json_passes_the_body_through(cloud, tmp_path, fake_model, monkeypatch):
    fake_model.script("tok-remote-plain", ["hello from the deployed agent"])
    with deployed(cloud, tmp_path, fake_model, monkeypatch) as agent:
        code, out, err, _ = agent.invoke("tok-remote-plain", stream=False)
        assert code == ExitCode.OK, err
        assert json.loads(out)["response"] == "hello from the deployed agent"
        assert out.startswith("{\n")  # indented, as local invoke prints it
        code, out, _, _ = agent.invoke("tok-remote-plain", stream=False, raw=True)
        assert code == ExitCode.OK and "\n" not in out.strip() and json.loads(out)["response"]
        assert not {"authorization", "x-functions-key", "x-api-key"} & set(agent.gate.seen[-1])  # public: none
        assert agent.gate.seen[-1]["host"].endswith(
            {"aws": ".on.aws", "gcp": ".cloudfunctions.net", "azure": ".azurewebsites.net",
             "vercel": ".vercel.app"}[cloud.name])


@pytest.mark.parametrize("name", ["gcp", "vercel"])
def test_stream_prints_the_answer_as_it_arrives(name, request, tmp_path, fake_model, monkeypatch):
    cloud = CLOUDS[name](request)
    words = [f"word{n} " for n in range(5)]
    fake_model.script("tok-remote-stream", ["".join(words)])
    with deployed(cloud, tmp_path, fake_model, monkeypatch) as agent:
        started = time.monotonic()
        code, out, err, times = agent.invoke("tok-remote-stream [[delay:0.3]]", stream=True)
        assert code == ExitCode.OK, err
        assert out.strip() == "".join(words).strip()
        assert len(times) > 2 and times[0] - started < times[-1] - started - 0.5  # the first words came early


def test_private_agents_are_invoked_with_the_platforms_authentication(cloud, tmp_path, fake_model, monkeypatch):
    """AWS: a SigV4 signature that validates; Google: GOOGLE_ID_TOKEN; Azure: the listkeys key;
    Vercel (no per-function auth): the protection bypass secret. None is printed."""
    fake_model.script("tok-remote-private", ["private answer"])
    monkeypatch.setenv("GOOGLE_ID_TOKEN", ID_TOKEN)
    monkeypatch.setenv("VERCEL_AUTOMATION_BYPASS_SECRET", BYPASS)
    with deployed(cloud, tmp_path, fake_model, monkeypatch, private=True) as agent:
        code, out, err, _ = agent.invoke("tok-remote-private", stream=False)
        assert code == ExitCode.OK, err
        assert json.loads(out)["response"] == "private answer"
        sent = agent.gate.seen[-1]
        secrets = {"gcp": ID_TOKEN, "vercel": BYPASS, "aws": sent.get("authorization", "")[-64:],
                   "azure": sent.get("x-functions-key", "")}
        assert secrets[cloud.name] and secrets[cloud.name] not in out + err


def test_a_refusal_prints_the_status_and_the_body(cloud, tmp_path, fake_model, monkeypatch):
    """Wrong credentials: the platform's 401/403 and its JSON error are printed, exit 1, no traceback."""
    monkeypatch.setenv("GOOGLE_ID_TOKEN", "not-the-token")
    monkeypatch.setenv("VERCEL_AUTOMATION_BYPASS_SECRET", "not-the-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")  # signs, but not as moto's identity
    with deployed(cloud, tmp_path, fake_model, monkeypatch, private=True) as agent:
        if cloud.name == "azure":  # the key was rotated since listkeys answered
            agent.gate.check = lambda h, path, body: None if h.get("x-functions-key") == "rotated" else (401, {})
        code, out, err, _ = agent.invoke("tok-remote-refused", stream=False)
    status = {"aws": 403, "gcp": 403, "azure": 401, "vercel": 401}[cloud.name]
    assert code == ExitCode.FAILED
    assert f"answered HTTP {status}" in err and "Traceback" not in err
    assert "not-the-secret" not in out + err and "not-the-token" not in out + err


def test_the_agents_api_key_is_sent_and_never_printed(cloud, tmp_path, fake_model, monkeypatch):
    fake_model.script("tok-remote-keyed", ["keyed answer"])
    with deployed(cloud, tmp_path, fake_model, monkeypatch, keys=True) as agent:
        with pytest.raises(UsageError, match="set AGENT_API_KEY"):
            agent.invoke("tok-remote-keyed", stream=False, environ={k: v for k, v in os.environ.items()
                                                                    if k != remote.API_KEY_ENV})
        code, out, err, _ = agent.invoke("tok-remote-keyed", stream=False,
                                         environ={**os.environ, remote.API_KEY_ENV: AGENT_KEY})
        assert code == ExitCode.OK, err
        assert json.loads(out)["response"] == "keyed answer"
        assert agent.gate.seen[-1]["authorization"] == f"Bearer {AGENT_KEY}"
        assert AGENT_KEY not in out + err
        code, out, err, _ = agent.invoke("tok-remote-keyed", stream=False,
                                         environ={**os.environ, remote.API_KEY_ENV: "wrong-key"})
        assert code == ExitCode.FAILED and "answered HTTP 401" in err and "API key is not valid" in out


def test_a_private_aws_agent_with_api_keys_sends_the_key_beside_the_signature(request, tmp_path, fake_model,
                                                                             monkeypatch):
    """SigV4 takes the Authorization header: the agent's key goes in x-api-key, which the runtime accepts."""
    cloud = CLOUDS["aws"](request)
    fake_model.script("tok-remote-both", ["both answer"])
    with deployed(cloud, tmp_path, fake_model, monkeypatch, private=True, keys=True) as agent:
        code, out, err, _ = agent.invoke("tok-remote-both", stream=False,
                                         environ={**os.environ, remote.API_KEY_ENV: AGENT_KEY})
        assert code == ExitCode.OK, err
        sent = agent.gate.seen[-1]
        assert sent["x-api-key"] == AGENT_KEY and sent["authorization"].startswith("AWS4-HMAC-SHA256 ")


def test_an_agent_not_deployed_says_so(cloud, tmp_path):
    agent = tmp_path / "agent.yaml"
    agent.write_text(_agent(cloud), encoding="utf-8")
    with pytest.raises(DeployError, match="is not deployed on .*agenthost deploy"):
        remote.invoke_deployed(str(agent), cloud.name, str(tmp_path / "generated"), "hi", None, False,
                               TextReporter(io.StringIO(), io.StringIO()), sleep=cloud.sleeps.append, **FAST,
                               **cloud.options)


def test_the_command_line_takes_deployed_and_needs_one_target(request, tmp_path, capsys):
    """`agenthost invoke --deployed`: one target or a usage error naming the choices; a target not
    deployed is said plainly (exit 1, no traceback)."""
    from framework.cli import main

    cloud = CLOUDS["aws"](request)
    agent = tmp_path / "agent.yaml"
    two = _agent(cloud).replace("targets:\n", "targets:\n  vercel: {runtime: nodejs}\n", 1)
    agent.write_text(two, encoding="utf-8")
    assert main(["invoke", "--deployed", "-f", str(agent), "-m", "hi"]) == ExitCode.USAGE
    assert "choose one with --target (aws, vercel)" in capsys.readouterr().err
    assert main(["invoke", "--deployed", "-f", str(agent), "--target", "aws", "-m", "hi"]) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "support-bot is not deployed on AWS Lambda" in err and "Traceback" not in err


def test_google_without_an_id_token_says_how_to_get_one(request, tmp_path, fake_model, monkeypatch):
    """No GOOGLE_ID_TOKEN and no credentials google-auth can mint one from: said plainly, nothing sent."""
    cloud = CLOUDS["gcp"](request)
    monkeypatch.delenv("GOOGLE_ID_TOKEN", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with deployed(cloud, tmp_path / "a", fake_model, monkeypatch, private=True) as agent:
        with pytest.raises(DeployError, match=r"GOOGLE_ID_TOKEN=\$\(gcloud auth print-identity-token\)"):
            agent.invoke("tok-remote-no-token", stream=False)
        assert agent.gate.seen == []


def test_network_failures_are_said_plainly():
    """A host without DNS answer, and a server that refuses the connection: one sentence each."""
    import socket

    from framework.deploy.network import UnresolvedHost

    with pytest.raises(UnresolvedHost, match="cannot find the server no-such-agent.invalid"):
        remote._send("https://no-such-agent.invalid/", b"{}", {}, 5, remote._connect)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(DeployError, match=r"could not reach https://agent.example/: .*refused"):
        remote._send("https://agent.example/", b"{}", {}, 5,
                     lambda parts, timeout: http.client.HTTPConnection("127.0.0.1", port, timeout=timeout))
