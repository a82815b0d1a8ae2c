"""The planner is a pure function of (desired state, snapshot): tested without any cloud."""

from __future__ import annotations

import dataclasses
import json

import pytest

from framework.deploy.plan import format_json, format_text
from framework.errors import DeployError
from framework.platforms.aws import planner as aws
from framework.platforms.aws.target import PYTHON_HANDLER

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bot-agent-exec"
DESIRED = aws.Desired(
    name="bot", region="us-east-1", package_type="Zip", runtime="python3.12", handler=PYTHON_HANDLER,
    architecture="x86_64",
    timeout=300, memory=1024, reserved=10, provisioned=0, auth_type="NONE", invoke_mode="BUFFERED",
    content="c" * 64, code_sha256="zipsha=", secret_env={"OPENAI_API_KEY": "digest:1"})


def deployed(desired: aws.Desired = DESIRED) -> aws.Snapshot:
    """The snapshot of a clean deploy of `desired`."""
    config = aws.FunctionConfig(
        package_type="Zip", runtime=desired.runtime, handler=desired.handler, timeout=desired.timeout,
        memory=desired.memory, role=ROLE, description=desired.description, architecture=desired.architecture,
        environment={"OPENAI_API_KEY": "digest:1"}, code_sha256=desired.code_sha256)
    return aws.Snapshot(
        account=ACCOUNT,
        role=aws.RoleState(arn=ROLE, tags={aws.TAG_AGENT: "bot"}, trust=aws.TRUST_POLICY,
                           attached=(aws.basic_policy("aws"),), inline={}),
        function=aws.FunctionState(arn="arn:aws:lambda:us-east-1:1:function:bot", config=config, reserved=10,
                                   tags={aws.TAG_AGENT: "bot", aws.TAG_CONTENT: desired.content,
                                         aws.TAG_CODE: desired.code_sha256}),
        alias_version="1", alias_config=config, url=aws.UrlState("https://u", "NONE", "BUFFERED"),
        statements={aws.SID_URL: "lambda:InvokeFunctionUrl", aws.SID_INVOKE: "lambda:InvokeFunction"})


def apis(desired: aws.Desired, snap: aws.Snapshot) -> list[str]:
    return [op.api for op in aws.plan_deploy(desired, snap).plan.operations]


def test_empty_account_plans_every_resource_in_order():
    assert apis(DESIRED, aws.Snapshot(account=ACCOUNT)) == [
        "CreateRole", "AttachRolePolicy", "CreateFunction", "PutFunctionConcurrency", "PublishVersion",
        "CreateAlias", "CreateFunctionUrlConfig", "AddPermission", "AddPermission"]


def test_deployed_state_plans_nothing():
    plan = aws.plan_deploy(DESIRED, deployed()).plan
    assert not plan.has_changes and plan.operations == []
    assert "No changes" in format_text(plan)


def test_prompt_change_is_code_tags_and_a_new_version():
    new = dataclasses.replace(DESIRED, content="d" * 64, code_sha256="newsha=")
    assert apis(new, deployed()) == ["UpdateFunctionCode", "TagResource", "PublishVersion", "UpdateAlias"]


def test_concurrency_changes_touch_only_concurrency():
    assert apis(dataclasses.replace(DESIRED, reserved=50), deployed()) == ["PutFunctionConcurrency"]
    assert apis(dataclasses.replace(DESIRED, provisioned=2), deployed()) == ["PutProvisionedConcurrencyConfig"]
    warm = dataclasses.replace(deployed(), provisioned=2)
    assert apis(DESIRED, warm) == ["DeleteProvisionedConcurrencyConfig"]


def test_same_content_zipped_by_another_zlib_is_not_reuploaded():
    elsewhere = dataclasses.replace(DESIRED, code_sha256="otherzlib=")
    assert apis(elsewhere, deployed()) == []


def test_code_uploaded_by_someone_else_is_replaced():
    snap = deployed()
    config = dataclasses.replace(snap.function.config, code_sha256="manual=")
    snap = dataclasses.replace(snap, function=dataclasses.replace(snap.function, config=config))
    assert apis(DESIRED, snap) == ["UpdateFunctionCode", "PublishVersion", "UpdateAlias"]


def test_an_interrupted_publish_is_completed():
    snap = deployed()
    stale = dataclasses.replace(snap.alias_config, code_sha256="old=")
    assert apis(DESIRED, dataclasses.replace(snap, alias_config=stale)) == ["PublishVersion", "UpdateAlias"]


def test_secret_values_are_only_placeholders():
    plan = aws.plan_deploy(DESIRED, aws.Snapshot(account=ACCOUNT)).plan
    create = next(op for op in plan.operations if op.api == "CreateFunction")
    assert create.args["Environment"] == {"Variables": {"OPENAI_API_KEY": {"$secret": "OPENAI_API_KEY"}}}
    assert create.args["Code"] == {"ZipFile": {"$package": "zipsha="}}
    assert "digest:1" not in format_json(plan) + format_text(plan)


def test_secret_changed_in_the_deploying_env_updates_configuration_hidden():
    plan = aws.plan_deploy(dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": "digest:2"}), deployed()).plan
    assert [op.api for op in plan.operations] == ["UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"]
    assert "(new value hidden)" in format_text(plan) and "digest:2" not in format_text(plan)


def test_secret_not_in_env_keeps_the_deployed_value_or_is_missing():
    unset = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": None})
    kept = aws.plan_deploy(unset, deployed())
    assert kept.plan.operations == [] and kept.missing_secrets == ()
    memory = aws.plan_deploy(dataclasses.replace(unset, memory=2048), deployed()).plan
    update = memory.operations[0]
    assert update.args == {"FunctionName": "bot", "MemorySize": 2048}  # the environment is left as it is
    assert aws.plan_deploy(unset, aws.Snapshot(account=ACCOUNT)).missing_secrets == ("OPENAI_API_KEY",)


def test_secret_refs_make_a_least_privilege_policy():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbC"
    refs = dataclasses.replace(DESIRED, secret_env={}, secret_refs={"A": arn, "B": "ssm:/agents/b"})
    policy = aws.secrets_policy(refs, aws.Snapshot(account=ACCOUNT))
    assert policy["Statement"] == [
        {"Sid": "ReadSecrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [arn]},
        {"Sid": "ReadParameters", "Effect": "Allow", "Action": ["ssm:GetParameter"],
         "Resource": ["arn:aws:ssm:us-east-1:123456789012:parameter/agents/b"]}]
    assert "PutRolePolicy" in apis(refs, deployed())


def test_private_agent_removes_the_public_statements():
    private = dataclasses.replace(DESIRED, auth_type="AWS_IAM")
    assert apis(private, deployed()) == ["UpdateFunctionUrlConfig", "RemovePermission", "RemovePermission"]


def test_resources_not_ours_are_refused_and_left_alone():
    snap = deployed()
    foreign = dataclasses.replace(snap, function=dataclasses.replace(snap.function, tags={}))
    with pytest.raises(DeployError, match="not created by this framework"):
        aws.plan_deploy(DESIRED, foreign)
    destroy = aws.plan_destroy("bot", "us-east-1", foreign)
    assert [op.api for op in destroy.operations] == ["DetachRolePolicy", "DeleteRole"]
    assert any("left alone: Lambda function bot" in note for note in destroy.notes)


def test_package_type_switch_is_refused():
    with pytest.raises(DeployError, match="destroy"):
        aws.plan_deploy(dataclasses.replace(DESIRED, package_type="Image"), deployed())


def test_image_plan_creates_repository_and_pushes():
    image = dataclasses.replace(DESIRED, package_type="Image", code_sha256=None)
    plan = aws.plan_deploy(image, aws.Snapshot(account=ACCOUNT)).plan
    assert [op.kind for op in plan.operations][:2] == ["ecr.create_repository", "docker.push_image"]
    create = next(op for op in plan.operations if op.api == "CreateFunction")
    assert create.args["Code"] == {"ImageUri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/bot:{'c' * 20}"}
    assert "Runtime" not in create.args and "Handler" not in create.args


def test_every_planned_kind_has_a_handler_and_plans_serialise():
    from framework.deploy.executor import DisplayExecutor
    from framework.platforms.aws.api import REGISTRY

    plans = [aws.plan_deploy(DESIRED, aws.Snapshot(account=ACCOUNT)).plan,
             aws.plan_deploy(dataclasses.replace(DESIRED, package_type="Image", provisioned=1),
                             aws.Snapshot(account=ACCOUNT)).plan,
             aws.plan_destroy("bot", "us-east-1", deployed())]
    for plan in plans:
        # check() raises for an operation kind without a handler; the dry run lists every call in plan order
        assert DisplayExecutor(REGISTRY).run(plan) == [
            f"{resource.kind} {resource.name}: {op.api or op.kind}"
            for resource in plan.resources for op in resource.operations]
        assert plan.operations
        assert json.loads(format_json(plan))["target"] == "aws"
