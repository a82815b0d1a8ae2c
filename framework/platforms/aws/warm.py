"""concurrency.warm_schedule on AWS (issue 14): an EventBridge Scheduler schedule that invokes the
function's `live` alias directly with the warm-up event, and the IAM role Scheduler assumes to do it.

Scheduler schedules take no tags (only schedule groups do:
https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html), so ours is
recognised by its Description; the role carries the usual tag. Pure, like planner.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from framework.deploy.plan import CREATE, DELETE, UNCHANGED, UPDATE, Change, Operation, Resource
from framework.deploy.skeleton import left_alone
from framework.errors import DeployError
from framework.platforms import warm
from framework.platforms.aws import planner as aws

# Scheduler assumes this role to call lambda:InvokeFunction
# (https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role)
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
POLICY = "agent-framework-warmup"


def schedule_name(agent: str) -> str:
    return f"{agent}-warmup"


def role_name(agent: str) -> str:
    return f"{agent}-agent-warm"


def description(agent: str) -> str:
    return f"Warm-up of the serverless agent {agent} (agent-framework)"


@dataclass(frozen=True)
class WarmState:
    """The schedule as GetSchedule answers it, and whether our role exists (and is ours)."""

    expression: str | None = None  # None: no schedule of that name
    description: str = ""
    target_arn: str = ""
    role_arn: str = ""
    input: str = ""
    state: str = ""
    role_tags: Mapping[str, str] | None = None  # None: no role of that name
    role_policy: Mapping[str, Any] | None = None


def _policy(target: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": target}]}


def plan(name: str, region: str, minutes: int | None, tags: list[dict[str, str]], snap: aws.Snapshot,
         warm_state: WarmState) -> list[Resource]:
    """The schedule and its role: created, updated or deleted so that they match warm_schedule; no
    operation when they already do."""
    schedule, role = schedule_name(name), role_name(name)
    target = f"arn:{snap.partition}:lambda:{region}:{snap.account}:function:{name}:{aws.ALIAS}"
    role_arn = f"arn:{snap.partition}:iam::{snap.account}:role/{role}"
    ours = warm_state.expression is not None and warm_state.description == description(name)
    role_ours = warm_state.role_tags is not None and warm_state.role_tags.get(aws.TAG_AGENT) == name
    if minutes is None:
        return destroy(name, warm_state)
    if warm_state.expression is not None and not ours:
        raise DeployError(
            f"an EventBridge Scheduler schedule {schedule} exists and was not created by this framework for "
            f"{name}: remove it, or remove concurrency.warm_schedule from agent.yaml")
    if warm_state.role_tags is not None and not role_ours:
        raise aws._not_ours("IAM role", role, name, "this AWS account")
    out: list[Resource] = []
    policy = _policy(target)
    if warm_state.role_tags is None:
        out.append(Resource("iam role", role, CREATE, (Change("may invoke", None, target),), (
            Operation("iam.create_role", {
                "RoleName": role, "AssumeRolePolicyDocument": json.dumps(TRUST, sort_keys=True),
                "Description": f"EventBridge Scheduler's role for the warm-up of {name} (agent-framework)",
                "Tags": tags}, "CreateRole"),
            Operation("iam.put_role_policy", {"RoleName": role, "PolicyName": POLICY,
                                              "PolicyDocument": json.dumps(policy, sort_keys=True)}, "PutRolePolicy"))))
    elif aws.normalize_policy(warm_state.role_policy) != aws.normalize_policy(policy):
        out.append(Resource("iam role", role, UPDATE, (Change("may invoke", "changed", target),), (
            Operation("iam.put_role_policy", {"RoleName": role, "PolicyName": POLICY,
                                              "PolicyDocument": json.dumps(policy, sort_keys=True)},
                      "PutRolePolicy"),)))
    # https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html and
    # API_UpdateSchedule.html (an update replaces every field, so it sends them all)
    args = {"Name": schedule, "ScheduleExpression": warm.rate(minutes), "Description": description(name),
            "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED",
            "Target": {"Arn": target, "RoleArn": role_arn, "Input": json.dumps(warm.AWS_EVENT, sort_keys=True)}}
    current = (warm_state.expression, warm_state.target_arn, warm_state.role_arn, warm_state.input, warm_state.state)
    wanted = (args["ScheduleExpression"], target, role_arn, args["Target"]["Input"], "ENABLED")
    if warm_state.expression is None:
        out.append(Resource("scheduler schedule", schedule, CREATE,
                            (Change("every", None, args["ScheduleExpression"]),),
                            (Operation("scheduler.create_schedule", args, "CreateSchedule"),)))
    elif current != wanted:
        out.append(Resource("scheduler schedule", schedule, UPDATE,
                            (Change("every", warm_state.expression, args["ScheduleExpression"]),),
                            (Operation("scheduler.update_schedule", args, "UpdateSchedule"),)))
    else:
        out.append(Resource("scheduler schedule", schedule, UNCHANGED, (), (), detail=args["ScheduleExpression"]))
    return out


def destroy(name: str, warm_state: WarmState) -> list[Resource]:
    """Delete the schedule and its role when they are ours; nothing when there are none."""
    schedule, role = schedule_name(name), role_name(name)
    out = []
    if warm_state.expression is not None and warm_state.description == description(name):
        out.append(Resource("scheduler schedule", schedule, DELETE, (Change("every", warm_state.expression, None),),
                            (Operation("scheduler.delete_schedule", {"Name": schedule}, "DeleteSchedule"),)))
    if warm_state.role_tags is not None and warm_state.role_tags.get(aws.TAG_AGENT) == name:
        ops = [Operation("iam.delete_role_policy", {"RoleName": role, "PolicyName": POLICY}, "DeleteRolePolicy")
               ] if warm_state.role_policy is not None else []
        ops.append(Operation("iam.delete_role", {"RoleName": role}, "DeleteRole"))
        out.append(Resource("iam role", role, DELETE, (), tuple(ops)))
    return out


def notes(name: str, warm_state: WarmState) -> list[str]:
    """What destroy leaves: a schedule of our name that is not ours."""
    if warm_state.expression is not None and warm_state.description != description(name):
        return [left_alone(f"EventBridge Scheduler schedule {schedule_name(name)}")]
    return []
