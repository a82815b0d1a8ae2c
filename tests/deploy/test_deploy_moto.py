"""Deploy, plan and destroy against moto in server mode (a real HTTP AWS API emulator on 127.0.0.1).

moto 5.2 gaps (see test_deploy_stubbed.py for the calls it cannot answer): Put/Get/Delete
ProvisionedConcurrencyConfig answer 404 (read as "none configured", so only warm: 0 runs here);
UpdateFunctionCode ignores Architectures; UpdateFunctionUrlConfig ignores InvokeMode; function URL
configs ignore the qualifier; Invoke needs Docker, so the code itself is run by the local runtime tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from framework.cli import main
from framework.errors import ConfirmationRequired, DeployError, DockerUnavailableError
from framework.platforms.aws import planner as aws
from tests.deploy.helpers import (
    AGENT,
    CLEAN_DEPLOY,
    FAKE_KEY,
    Interrupted,
    Recorder,
    outputs_of_every_command,
    run,
    write_agent,
)


def lam():
    return boto3.client("lambda", region_name="us-east-1")


def iam():
    return boto3.client("iam", region_name="us-east-1")


def test_first_deploy_creates_everything(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    recorder = Recorder()
    result = run("deploy", agent, recorder, fmt="json")
    assert result.code == 0
    assert recorder.mutating == CLEAN_DEPLOY
    outputs = json.loads(result.stdout)
    assert outputs["version"] == "1" and outputs["alias"] == "live" and outputs["changed"] is True
    assert outputs["url"].startswith("https://") and outputs["function_arn"].endswith(":function:support-bot")

    role = iam().get_role(RoleName="support-bot-agent-exec")["Role"]
    assert {"Key": aws.TAG_AGENT, "Value": "support-bot"} in role["Tags"]
    attached = iam().list_attached_role_policies(RoleName="support-bot-agent-exec")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]

    function = lam().get_function(FunctionName="support-bot")
    config = function["Configuration"]
    assert (config["Runtime"], config["Handler"], config["Timeout"], config["MemorySize"], config["Architectures"]) \
        == ("python3.12", "lambda_function.lambda_handler", 300, 1024, ["x86_64"])
    assert config["Role"] == role["Arn"]
    assert config["Environment"]["Variables"] == {"OPENAI_API_KEY": FAKE_KEY}  # from the deploying env
    assert function["Tags"][aws.TAG_AGENT] == "support-bot"
    assert function["Tags"][aws.TAG_CODE] == config["CodeSha256"]
    assert len(function["Tags"][aws.TAG_CONTENT]) == 64
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 10

    assert lam().get_alias(FunctionName="support-bot", Name="live")["FunctionVersion"] == "1"
    url = lam().get_function_url_config(FunctionName="support-bot", Qualifier="live")
    assert (url["AuthType"], url["InvokeMode"], url["FunctionUrl"]) == ("NONE", "BUFFERED", outputs["url"])
    policy = json.loads(lam().get_policy(FunctionName="support-bot", Qualifier="live")["Policy"])
    actions = {s["Sid"]: s["Action"] for s in policy["Statement"]}
    assert actions == {aws.SID_URL: "lambda:InvokeFunctionUrl", aws.SID_INVOKE: "lambda:InvokeFunction"}
    assert all(s["Principal"] == "*" for s in policy["Statement"])


def test_second_deploy_makes_no_mutating_call(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    recorder = Recorder()
    result = run("deploy", agent, recorder)
    assert recorder.mutating == []
    assert "No changes" in result.stdout and "Up to date: support-bot version 1" in result.stdout
    assert run("plan", agent).code == 0


def test_private_agent_gets_iam_auth_and_no_public_statement(moto_env, tmp_path):
    agent = write_agent(tmp_path, AGENT + "    public: false\n")
    run("deploy", agent)
    assert lam().get_function_url_config(FunctionName="support-bot", Qualifier="live")["AuthType"] == "AWS_IAM"
    with pytest.raises(lam().exceptions.ResourceNotFoundException):
        lam().get_policy(FunctionName="support-bot", Qualifier="live")
    # going public later adds exactly the two statements, and the URL's auth
    write_agent(tmp_path, AGENT)
    recorder = Recorder()
    run("deploy", agent, recorder)
    assert recorder.mutating == ["UpdateFunctionUrlConfig", "AddPermission", "AddPermission"]


def test_prompt_change_updates_code_and_publishes(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    write_agent(tmp_path, AGENT.replace("helpful support", "terse support"))
    planned = json.loads(run("plan", agent, fmt="json").stdout)  # its calls: the contract's prompt_only
    changed = {r["kind"]: [c["field"] for c in r["changes"]]
               for r in planned["resources"] if r["action"] != "unchanged"}
    assert changed == {"lambda function": ["code", f"tag {aws.TAG_CODE}", f"tag {aws.TAG_CONTENT}"],
                       "version + alias": ["version"]}
    result = run("deploy", agent, fmt="json")
    assert json.loads(result.stdout)["version"] == "2"
    assert lam().get_alias(FunctionName="support-bot", Name="live")["FunctionVersion"] == "2"


def test_concurrency_change_touches_only_concurrency(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    write_agent(tmp_path, AGENT.replace("max: 10", "max: 25"))
    result = run("plan", agent)
    assert result.code == 2 and "max: 10 -> 25" in result.stdout  # its calls: the contract's concurrency_only
    run("deploy", agent)
    assert lam().get_function_concurrency(FunctionName="support-bot")["ReservedConcurrentExecutions"] == 25
    assert lam().get_alias(FunctionName="support-bot", Name="live")["FunctionVersion"] == "1"


def test_memory_change_updates_configuration_only(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    write_agent(tmp_path, AGENT + "    memory: 2048\n")
    recorder = Recorder()
    run("deploy", agent, recorder)
    assert recorder.mutating == ["UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"]
    assert lam().get_function_configuration(FunctionName="support-bot:live")["MemorySize"] == 2048


def test_interrupted_update_converges(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    for n in range(1, 4):  # killed after UpdateFunctionCode, TagResource, PublishVersion
        write_agent(tmp_path, AGENT.replace("helpful support", f"terse support {n}"))
        with pytest.raises(Interrupted):
            run("deploy", agent, Recorder(fail_after=n))
        run("deploy", agent)
        assert Recorder().mutating == [] and run("plan", agent).code == 0
    assert lam().get_alias(FunctionName="support-bot", Name="live")["FunctionVersion"] == "4"


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def test_a_function_not_ours_is_never_touched(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    iam().create_role(RoleName="someone-role", AssumeRolePolicyDocument="{}")
    role = iam().get_role(RoleName="someone-role")["Role"]["Arn"]
    lam().create_function(FunctionName="support-bot", Runtime="python3.12", Role=role, Handler="x.y",
                          Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18})
    recorder = Recorder()
    with pytest.raises(DeployError, match="not created by this framework"):
        run("deploy", agent, recorder)
    assert recorder.mutating == []
    result = run("destroy", agent, recorder)
    assert "left alone: Lambda function support-bot" in result.stdout and recorder.mutating == []
    assert lam().get_function(FunctionName="support-bot")["Configuration"]["Handler"] == "x.y"


def test_secret_values_never_appear_in_outputs_tags_or_files(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    assert main(["build", "-f", str(agent), "-o", str(tmp_path / "generated")]) == 0
    texts = outputs_of_every_command(run, agent, AGENT)
    function = lam().get_function(FunctionName="support-bot")
    texts.append(json.dumps(function["Tags"]))
    texts.append(function["Configuration"]["Description"])
    texts.append(json.dumps(iam().get_role(RoleName="support-bot-agent-exec")["Role"], default=str))
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    assert texts and not [t for t in texts if FAKE_KEY in t]
    assert function["Configuration"]["Environment"]["Variables"]["OPENAI_API_KEY"] == FAKE_KEY


def test_cloud_error_messages_are_scrubbed(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    recorder = Recorder()

    def echo_secret(model, **kwargs):
        if model.name == "CreateFunction":
            http = AWSResponse("http://x", 400, {}, _Raw(b""))
            return http, {"Error": {"Code": "InvalidParameterValueException",
                                    "Message": f"env too large: {{OPENAI_API_KEY={FAKE_KEY}}}"},
                          "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    recorder.session.events.register("before-call.lambda", echo_secret)
    with pytest.raises(DeployError) as caught:
        run("deploy", agent, recorder)
    assert "InvalidParameterValueException" in str(caught.value) and FAKE_KEY not in str(caught.value)


def test_secret_reference_grants_read_access_and_no_env(moto_env, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    agent = write_agent(tmp_path, AGENT + "    secrets:\n      OPENAI_API_KEY: {aws: 'ssm:/agents/openai'}\n")
    recorder = Recorder()
    run("deploy", agent, recorder)
    assert "PutRolePolicy" in recorder.mutating
    document = iam().get_role_policy(RoleName="support-bot-agent-exec", PolicyName=aws.SECRETS_POLICY)
    statement = document["PolicyDocument"]["Statement"]
    assert statement == [{"Sid": "ReadParameters", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                          "Resource": ["arn:aws:ssm:us-east-1:123456789012:parameter/agents/openai"]}]
    assert "Environment" not in lam().get_function_configuration(FunctionName="support-bot") or \
        not lam().get_function_configuration(FunctionName="support-bot")["Environment"].get("Variables")
    again = Recorder()
    run("deploy", agent, again)
    assert again.mutating == []


def test_image_package_without_docker_is_a_clear_error(moto_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    agent = write_agent(tmp_path, AGENT.replace("region: us-east-1", "region: us-east-1\n        package: image"))
    recorder = Recorder()
    assert run("plan", agent).code == 2  # planning needs no docker
    with pytest.raises(DockerUnavailableError, match="no Docker engine on this machine"):
        run("deploy", agent, recorder)
    assert recorder.mutating == []


def test_cli_exit_codes_and_confirmation(moto_env, tmp_path, monkeypatch, capsys):
    agent = str(write_agent(tmp_path))
    out = str(tmp_path / "generated")
    assert main(["plan", "-f", agent, "-o", out]) == 2
    monkeypatch.setattr("sys.stdin", open("/dev/null"))  # not a terminal
    assert main(["deploy", "-f", agent, "-o", out]) == 2
    assert "pass --yes" in capsys.readouterr().err
    monkeypatch.setenv("CI", "true")
    assert main(["deploy", "-f", agent, "-o", out]) == 2
    assert main(["deploy", "-f", agent, "-o", out, "--yes"]) == 0
    assert main(["plan", "-f", agent, "-o", out]) == 0
    assert main(["deploy", "-f", agent, "-o", out]) == 0  # nothing to confirm when nothing changes
    assert main(["destroy", "-f", agent, "-o", out]) == 2
    assert main(["destroy", "-f", agent, "-o", out, "-y", "--format", "json"]) == 0
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    write_agent(tmp_path, AGENT.replace("\n        region: us-east-1", " {}"))
    capsys.readouterr()
    assert main(["plan", "-f", agent, "-o", out]) == 1
    assert "no AWS region" in capsys.readouterr().err


def test_stale_generated_folder_is_warned_about(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    assert main(["build", "-f", str(agent), "-o", str(tmp_path / "generated")]) == 0
    assert "out of date" not in run("plan", agent).stderr
    write_agent(tmp_path, AGENT.replace("helpful", "kind"))
    assert "generated/aws/ is out of date" in run("plan", agent).stderr


def test_confirmation_required_without_terminal(moto_env, tmp_path):
    import io

    agent = write_agent(tmp_path)
    with pytest.raises(ConfirmationRequired):
        run("deploy", agent, yes=False, stdin=io.StringIO("y\n"))
