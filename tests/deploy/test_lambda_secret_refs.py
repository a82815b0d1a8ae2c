"""The generated Lambda reads referenced secrets at cold start (SSM Parameter Store, Secrets Manager).

boto3 against moto in server mode, as the function's role would in AWS; the model is the fake server.
"""

from __future__ import annotations

import json
import os

import boto3
import pytest

from tests.conftest import build, write_agent
from tests.functional.apps import LambdaContext, function_url_event, load_module

AGENT = """\
    name: secret-agent
    prompt: You are helpful.
    model: fake-model
    secrets:
      OPENAI_API_KEY: {{aws: "{ref}"}}
    targets:
      aws: {{region: us-east-1}}
"""


def _handler(tmp_path, ref: str, fake_model, monkeypatch):
    agent = write_agent(tmp_path, AGENT.format(ref=ref))
    assert build(agent, tmp_path / "generated") == 0
    config = json.loads((tmp_path / "generated" / "aws" / "agent.json").read_text())
    assert config["secret_refs"] == {"OPENAI_API_KEY": ref}  # a reference, never a value
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_model.url)
    module = load_module(tmp_path / "generated" / "aws", "lambda_function")
    return module.lambda_handler


@pytest.mark.parametrize("store", ["ssm", "secretsmanager"])
def test_the_function_reads_its_api_key_from_the_referenced_secret(store, moto_env, fake_model, tmp_path,
                                                                   monkeypatch, request):
    value = f"key-from-{store}-0123456789"
    if store == "ssm":
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/agents/openai-key", Value=value, Type="SecureString")
        ref = "ssm:/agents/openai-key"
    else:
        ref = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="openai-key", SecretString=value)["ARN"]
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    try:
        handler = _handler(tmp_path, ref, fake_model, monkeypatch)
        tag = f"tok-{request.node.name}"
        result = handler(function_url_event("POST", json.dumps({"message": tag}).encode(), {}), LambdaContext(30))
    finally:
        os.environ.pop("OPENAI_API_KEY", None)  # the cold start put it there, as in a Lambda sandbox
    assert result["statusCode"] == 200
    (sent,) = fake_model.find(tag)
    assert sent.headers["authorization"] == f"Bearer {value}"
