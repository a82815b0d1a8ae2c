"""Calls moto 5.2 cannot answer (it returns 404 for provisioned concurrency), covered with botocore's Stubber:
the reader and the handlers make exactly the real API calls."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from framework.deploy.executor import Context, Executor
from framework.deploy.plan import Plan
from framework.platforms.aws import planner as aws
from framework.platforms.aws.api import REGISTRY, Api, read_snapshot
from framework.platforms.aws.target import PYTHON_HANDLER


class _StubbedApi(Api):
    def __init__(self, clients):
        super().__init__("us-east-1", boto3.Session(aws_access_key_id="x", aws_secret_access_key="x"))
        self._clients = clients


def test_provisioned_concurrency_put_and_delete_are_the_real_calls():
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    desired = aws.Desired(name="bot", region="us-east-1", package_type="Zip", runtime="python3.12",
                          handler=PYTHON_HANDLER,
                          architecture="x86_64", timeout=3, memory=128, reserved=5, provisioned=2, auth_type="NONE",
                          invoke_mode="BUFFERED", content="c" * 64, code_sha256="s=")
    resource = aws._plan_provisioned(desired, aws.Snapshot(account="1"))
    removal = aws._plan_provisioned(aws.Desired(**{**desired.__dict__, "provisioned": 0}),
                                    aws.Snapshot(account="1", provisioned=2))
    with Stubber(client) as stub:
        stub.add_response("put_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": 2},
                          {"FunctionName": "bot", "Qualifier": "live", "ProvisionedConcurrentExecutions": 2})
        stub.add_response("delete_provisioned_concurrency_config", {}, {"FunctionName": "bot", "Qualifier": "live"})
        Executor(REGISTRY, Context(api=_StubbedApi({"lambda": client}))).run(
            Plan("aws", "t", (resource, removal)))
        stub.assert_no_pending_responses()


def test_reader_sees_provisioned_concurrency():
    session = dict(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    clients = {name: boto3.client(name, **session) for name in ("lambda", "iam", "sts")}
    config = {"FunctionName": "bot", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:bot", "Runtime": "python3.12",
              "Handler": PYTHON_HANDLER, "Timeout": 3, "MemorySize": 128, "Role": "arn:aws:iam::1:role/r",
              "CodeSha256": "s=", "Architectures": ["x86_64"], "PackageType": "Zip"}
    stubs = {name: Stubber(client) for name, client in clients.items()}
    stubs["sts"].add_response("get_caller_identity", {"Account": "123456789012",
                                                      "Arn": "arn:aws:iam::123456789012:user/u", "UserId": "u"})
    stubs["iam"].add_client_error("get_role", "NoSuchEntity", http_status_code=404)
    stubs["lambda"].add_response("get_function", {"Configuration": config, "Tags": {aws.TAG_AGENT: "bot"}})
    stubs["lambda"].add_response("get_alias", {"FunctionVersion": "1", "Name": "live"})
    stubs["lambda"].add_response("get_function", {"Configuration": config})
    stubs["lambda"].add_client_error("get_function_url_config", "ResourceNotFoundException", http_status_code=404)
    stubs["lambda"].add_client_error("get_policy", "ResourceNotFoundException", http_status_code=404)
    stubs["lambda"].add_response("get_provisioned_concurrency_config",
                                 {"RequestedProvisionedConcurrentExecutions": 2, "Status": "READY"},
                                 {"FunctionName": "bot", "Qualifier": "live"})
    for stub in stubs.values():
        stub.activate()
    snap = read_snapshot(_StubbedApi(clients), "bot")
    assert snap.provisioned == 2 and snap.alias_version == "1" and snap.role is None and snap.url is None
    for stub in stubs.values():
        stub.assert_no_pending_responses()
