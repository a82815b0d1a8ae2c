"""The sessions table on AWS, against moto in server mode: created once (on demand, key pk, TTL on
`expires`, tagged as ours), the role allowed exactly that table, a no-change deploy with 0 mutating
calls, destroy deleting only a table of ours."""

from __future__ import annotations

import json

import boto3
import pytest

from framework.errors import DeployError
from framework.platforms.aws import planner as aws
from tests.deploy.helpers import AGENT, Recorder, run, write_agent

SESSIONS = AGENT + "    sessions:\n      ttl_hours: 24\n"
TABLE = "support-bot-sessions"
FIRST = ["CreateRole", "AttachRolePolicy", "PutRolePolicy", "CreateTable", "UpdateTimeToLive", "CreateFunction",
         "PutFunctionConcurrency", "PublishVersion", "CreateAlias", "CreateFunctionUrlConfig", "AddPermission",
         "AddPermission"]


def dynamodb():
    return boto3.client("dynamodb", region_name="us-east-1")


def iam():
    return boto3.client("iam", region_name="us-east-1")


def test_first_deploy_creates_the_table_once_and_grants_exactly_it(moto_env, tmp_path):
    agent = write_agent(tmp_path, SESSIONS)
    planned = run("plan", agent)
    assert "+ create    dynamodb table support-bot-sessions" in planned.stdout
    assert "billing: on demand (PAY_PER_REQUEST)" in planned.stdout and "ttl attribute: expires" in planned.stdout
    assert "sessions table: GetItem, PutItem, UpdateItem on arn:aws:dynamodb:us-east-1:123456789012:table/" \
        "support-bot-sessions" in planned.stdout
    recorder = Recorder()
    assert run("deploy", agent, recorder).code == 0
    assert recorder.mutating == FIRST

    table = dynamodb().describe_table(TableName=TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    tags = dynamodb().list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert tags == [{"Key": aws.TAG_AGENT, "Value": "support-bot"}]
    ttl = dynamodb().describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires")
    policy = iam().get_role_policy(RoleName="support-bot-agent-exec", PolicyName=aws.SESSIONS_POLICY)
    document = policy["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"] == [{"Sid": "Sessions", "Effect": "Allow",
                                      "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                                      "Resource": table["TableArn"]}]

    recorder = Recorder()
    again = run("deploy", agent, recorder)
    assert recorder.mutating == [] and "No changes" in again.stdout
    assert "DescribeTimeToLive" in recorder.calls  # read, never repeated (one UpdateTimeToLive an hour)
    assert "= unchanged dynamodb table support-bot-sessions (on demand, key pk, ttl expires)" in again.stdout


def test_an_agent_without_sessions_makes_no_dynamodb_call(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    recorder = Recorder()
    run("deploy", agent, recorder)
    run("destroy", agent, recorder)
    assert not any("Table" in call or "TimeToLive" in call for call in recorder.calls)
    assert dynamodb().list_tables()["TableNames"] == []


def test_turning_sessions_on_later_adds_the_table_and_the_grant(moto_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    write_agent(tmp_path, SESSIONS)
    recorder = Recorder()
    run("deploy", agent, recorder)
    assert recorder.mutating[:3] == ["PutRolePolicy", "CreateTable", "UpdateTimeToLive"]
    assert "UpdateFunctionCode" in recorder.mutating  # the store module is shipped now


def test_ttl_switched_off_outside_is_switched_on_again(moto_env, tmp_path):
    agent = write_agent(tmp_path, SESSIONS)
    run("deploy", agent)
    dynamodb().update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": False,
                                                                             "AttributeName": "expires"})
    recorder = Recorder()
    run("deploy", agent, recorder)
    assert recorder.mutating == ["UpdateTimeToLive"]


def test_destroy_deletes_the_table_it_created(moto_env, tmp_path):
    agent = write_agent(tmp_path, SESSIONS)
    run("deploy", agent)
    planned = run("destroy", agent, Recorder())
    assert "- delete    dynamodb table support-bot-sessions" in planned.stdout
    assert dynamodb().list_tables()["TableNames"] == []
    assert iam().list_roles()["Roles"] == []


def test_a_table_not_ours_is_used_as_it_is_and_left_on_destroy(moto_env, tmp_path):
    dynamodb().create_table(TableName="shared-sessions", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    agent = write_agent(tmp_path, AGENT + "        sessions:\n          table: shared-sessions\n")
    recorder = Recorder()
    deployed = run("deploy", agent, recorder)
    assert "CreateTable" not in recorder.mutating and "UpdateTimeToLive" not in recorder.mutating
    assert "note: DynamoDB table shared-sessions exists and was not created by this framework" in deployed.stdout
    assert "has no TTL on `expires`" in deployed.stdout
    policy = iam().get_role_policy(RoleName="support-bot-agent-exec", PolicyName=aws.SESSIONS_POLICY)
    assert "table/shared-sessions" in json.dumps(policy["PolicyDocument"])
    destroyed = run("destroy", agent)
    assert "note: left alone: DynamoDB table shared-sessions" in destroyed.stdout
    assert dynamodb().list_tables()["TableNames"] == ["shared-sessions"]


def test_a_table_with_another_key_is_refused_before_any_call(moto_env, tmp_path):
    dynamodb().create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    agent = write_agent(tmp_path, SESSIONS)
    recorder = Recorder()
    with pytest.raises(DeployError, match=r"has the key id \(S\) and the session store needs the partition key pk"):
        run("deploy", agent, recorder)
    assert recorder.mutating == []


def test_a_role_given_in_agent_yaml_gets_a_note_not_a_change(moto_env, tmp_path):
    role = iam().create_role(RoleName="theirs", AssumeRolePolicyDocument=json.dumps(aws.TRUST_POLICY))["Role"]["Arn"]
    agent = write_agent(tmp_path, AGENT + f"        role: {role}\n    sessions:\n      ttl_hours: 24\n")
    recorder = Recorder()
    deployed = run("deploy", agent, recorder)
    assert "PutRolePolicy" not in recorder.mutating and "CreateTable" in recorder.mutating
    assert (f"note: the sessions need the role {role} to allow dynamodb:GetItem, dynamodb:PutItem, "
            "dynamodb:UpdateItem on arn:aws:dynamodb:us-east-1:123456789012:table/support-bot-sessions: add that "
            "policy to it") in deployed.stdout
    assert iam().list_role_policies(RoleName="theirs")["PolicyNames"] == []
