"""AWS Lambda deploy, the pure part: desired state, a snapshot of what is deployed, and the planner.

`plan_deploy(desired, snapshot)` and `plan_destroy(name, snapshot)` are pure functions returning a
Plan; reading the snapshot and executing the plan live in aws_api.py (the only module importing
boto3). Every resource the framework creates carries the tag `agent-framework:agent = <name>`;
anything without it is never changed or deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from framework.deploy.plan import CREATE, DELETE, UNCHANGED, UPDATE, Change, Operation, Plan, Resource
from framework.deploy.skeleton import DeployPlan, Mark, SecretHome, desired_env, environment_changes, left_alone, short
from framework.deploy.versions import version_note
from framework.errors import DeployError
from framework.platforms.aws.target import lambda_runtime
from framework.platforms.base import PausedAnswer

TAG_AGENT = "agent-framework:agent"
TAG_CONTENT = "agent-framework:content"
TAG_CODE = "agent-framework:code-sha256"
TAG_STAGE = "agent-framework:stage"
TAG_PAUSED = "agent-framework:paused"  # set by `agenthost pause` (issue 14): deploy keeps the function paused
OWNER = Mark("tag", TAG_AGENT)
ALIAS = "live"
SECRETS_POLICY = "agent-framework-secrets"
SESSIONS_POLICY = "agent-framework-sessions"
# What the session store calls (framework/runtime/agent_sessions.py, sessions.mjs): GetItem to load,
# a conditional PutItem to save, UpdateItem ADD for the token counters; nothing else, on one table.
SESSION_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
SESSION_KEY = "pk"  # the partition key (S) the store writes: s#<session id>, q#<key id>#<day>
SESSION_TTL = "expires"  # the TTL attribute (Number, epoch seconds) the store sets on every save
SID_URL = "agent-framework-url-public"
SID_INVOKE = "agent-framework-url-invoke"
SID_PREFIX = "agent-framework-"
SECRETS = SecretHome("aws", copied_into="the function's environment", keeper="the deployed function",
                     holder="the function", reference="aws: ssm:/your/parameter",
                     otherwise=lambda name: f", or reference a secret: secrets: {{{name}: {{aws: ssm:/...}}}}")
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def role_name(agent: str) -> str:
    return f"{agent}-agent-exec"


def basic_policy(partition: str) -> str:
    return f"arn:{partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def resolve_region(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    region = options.get("region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise DeployError("no AWS region: set `region:` under targets.aws in agent.yaml "
                          "(or AWS_REGION in the environment)")
    return region


# ---------------------------------------------------------------- desired state


@dataclass(frozen=True)
class Desired:
    name: str
    region: str
    package_type: str  # "Zip" | "Image"
    runtime: str
    handler: str
    architecture: str
    timeout: int
    memory: int
    reserved: int
    provisioned: int
    auth_type: str  # "NONE" | "AWS_IAM"
    invoke_mode: str  # "BUFFERED" | "RESPONSE_STREAM"
    content: str  # hex hash of the code (zip entries, or the image's inputs)
    code_sha256: str | None = None  # zip: the package's CodeSha256
    role_arn: str | None = None  # given in agent.yaml: no role is managed
    # environment variables from the deploying environment: name -> digest, or None when not set here
    secret_env: Mapping[str, str | None] = field(default_factory=dict)
    secret_refs: Mapping[str, str] = field(default_factory=dict)  # name -> Secrets Manager ARN or ssm:/name
    session_table: str | None = None  # the DynamoDB table of agent.json's "sessions" (None: sessions off)
    stage: str | None = None  # agent.yaml's stage, tagged on every resource
    keep_versions: int | None = None  # targets.aws.keep_versions (issue 14): None keeps every version
    prompt: str = ""  # the prompt's digest (Agent.prompt_digest), kept in each published version's description

    @property
    def tags(self) -> dict[str, str]:
        """The tags every resource gets: whose it is, and its stage."""
        return {TAG_AGENT: self.name, **({TAG_STAGE: self.stage} if self.stage else {})}

    @property
    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": key, "Value": value} for key, value in self.tags.items()]

    @property
    def role_name(self) -> str:
        return role_name(self.name)

    @property
    def description(self) -> str:
        return f"Serverless agent {self.name} (agent-framework)"

    @property
    def version_description(self) -> str:
        """PublishVersion's Description, the one text Lambda keeps per version (at most 256 characters,
        https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html): history reads it back."""
        return version_note(self.content, self.prompt)

    @property
    def image_tag(self) -> str:
        return self.content[:20]


def desired_state(agent, settings, *, region: str, content: str, code_sha256: str | None,
                  secrets, session_table: str | None = None) -> Desired:
    """From the validated agent, its AWS settings and the package; `secrets` is a SecretValues."""
    options = settings.options
    runtime, handler = lambda_runtime(settings)
    refs, from_env = SECRETS.split(agent.secrets, secrets)
    return Desired(
        name=agent.name, region=region,
        package_type="Image" if options.get("package") == "image" else "Zip",
        runtime=runtime, handler=handler, architecture=options["architecture"],
        timeout=settings.timeout, memory=settings.memory,
        reserved=settings.concurrency.max, provisioned=settings.concurrency.warm,
        auth_type="NONE" if agent.public else "AWS_IAM",
        invoke_mode="RESPONSE_STREAM" if settings.stream else "BUFFERED",
        content=content, code_sha256=code_sha256, role_arn=options.get("role"),
        secret_env=from_env, secret_refs=refs, session_table=session_table, stage=agent.stage,
        keep_versions=options.get("keep_versions"), prompt=agent.prompt_digest,
    )


# ---------------------------------------------------------------- snapshot of the deployed state


@dataclass(frozen=True)
class RoleState:
    arn: str
    tags: Mapping[str, str]
    trust: Mapping[str, Any]
    attached: tuple[str, ...]
    inline: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class FunctionConfig:
    """What $LATEST or a published version runs (environment values as digests, never values)."""

    package_type: str
    runtime: str | None
    handler: str | None
    timeout: int
    memory: int
    role: str
    description: str
    architecture: str
    environment: Mapping[str, str]
    code_sha256: str
    image_uri: str | None = None


@dataclass(frozen=True)
class FunctionState:
    arn: str
    tags: Mapping[str, str]
    config: FunctionConfig
    reserved: int | None


@dataclass(frozen=True)
class UrlState:
    url: str
    auth_type: str
    invoke_mode: str


@dataclass(frozen=True)
class RepositoryState:
    uri: str
    arn: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class TableState:
    """The sessions table as DynamoDB describes it (read only when sessions are on)."""

    arn: str
    tags: Mapping[str, str]
    billing_mode: str  # "PAY_PER_REQUEST" | "PROVISIONED"
    key_schema: tuple[tuple[str, str], ...]  # (attribute, type) of the key, e.g. (("pk", "S"),)
    ttl_status: str  # ENABLED, ENABLING, DISABLED or DISABLING
    ttl_attribute: str | None


@dataclass(frozen=True)
class Snapshot:
    account: str
    partition: str = "aws"
    role: RoleState | None = None
    function: FunctionState | None = None
    alias_version: str | None = None
    alias_config: FunctionConfig | None = None
    url: UrlState | None = None
    statements: Mapping[str, str] = field(default_factory=dict)  # our Sids -> action
    provisioned: int | None = None
    repository: RepositoryState | None = None
    image_pushed: bool = False
    table: TableState | None = None
    # pruning (issue 14), read only with keep_versions: the published versions, and each alias's versions
    versions: tuple[str, ...] = ()
    aliased: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------- planner


def _owned(tags: Mapping[str, str], name: str) -> bool:
    return OWNER.on(tags, name)


def _not_ours(kind: str, name: str, agent: str, where: str) -> DeployError:
    return OWNER.refusal(f"{kind} {name}", where, agent, "rename the agent, or remove or rename that resource yourself")


def secrets_policy(desired: Desired, snap: Snapshot) -> dict[str, Any] | None:
    arns = sorted(ref for ref in desired.secret_refs.values() if not ref.startswith("ssm:"))
    params = sorted(f"arn:{snap.partition}:ssm:{desired.region}:{snap.account}:parameter/{ref[4:].lstrip('/')}"
                    for ref in desired.secret_refs.values() if ref.startswith("ssm:"))
    statements = []
    if arns:
        statements.append({"Sid": "ReadSecrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": arns})
    if params:
        statements.append({"Sid": "ReadParameters", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                           "Resource": params})
    return {"Version": "2012-10-17", "Statement": statements} if statements else None


def table_arn(desired: Desired, snap: Snapshot) -> str:
    assert desired.session_table
    return f"arn:{snap.partition}:dynamodb:{desired.region}:{snap.account}:table/{desired.session_table}"


def sessions_policy(desired: Desired, snap: Snapshot) -> dict[str, Any] | None:
    """The role's grant on the sessions table, exactly what the store calls (None: sessions off)."""
    if not desired.session_table:
        return None
    return {"Version": "2012-10-17", "Statement": [{"Sid": "Sessions", "Effect": "Allow",
                                                    "Action": list(SESSION_ACTIONS),
                                                    "Resource": table_arn(desired, snap)}]}


def normalize_policy(document: Mapping[str, Any] | None) -> Any:
    """Policies compare equal whatever the order of lists or single values vs one-item lists."""
    if document is None:
        return None

    def norm(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: norm(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            items = [norm(v) for v in value]
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return value

    out = dict(norm(document))
    for statement in out.get("Statement", []):
        for key in ("Action", "Resource"):
            if isinstance(statement.get(key), str):
                statement[key] = [statement[key]]
    return out


def _plan_role(desired: Desired, snap: Snapshot) -> Resource:
    name = desired.role_name
    policy = secrets_policy(desired, snap)
    basic = basic_policy(snap.partition)
    role = snap.role
    tags = desired.tag_list
    if role is None:
        ops = [Operation("iam.create_role", {
            "RoleName": name, "AssumeRolePolicyDocument": json.dumps(TRUST_POLICY, sort_keys=True),
            "Description": f"Execution role of the serverless agent {desired.name} (agent-framework)",
            "Tags": tags}, "CreateRole"),
            Operation("iam.attach_role_policy", {"RoleName": name, "PolicyArn": basic}, "AttachRolePolicy")]
        changes = [Change("policies", None, ["AWSLambdaBasicExecutionRole"] + ([SECRETS_POLICY] if policy else []))]
        if policy:
            ops.append(Operation("iam.put_role_policy", {"RoleName": name, "PolicyName": SECRETS_POLICY,
                                                         "PolicyDocument": json.dumps(policy, sort_keys=True)},
                                 "PutRolePolicy"))
            changes.append(Change("secrets readable", None, sorted(desired.secret_refs.values())))
        sessions = sessions_policy(desired, snap)
        if sessions:
            changes[0] = Change("policies", None, changes[0].new + [SESSIONS_POLICY])
            ops.append(_put_sessions_policy(name, sessions))
            changes.append(Change("sessions table", None, _grant(desired, snap)))
        return Resource("iam role", name, CREATE, tuple(changes), tuple(ops))
    if not _owned(role.tags, desired.name):
        raise _not_ours("IAM role", name, desired.name, "this AWS account")
    ops, changes = [], []
    if normalize_policy(role.trust) != normalize_policy(TRUST_POLICY):
        changes.append(Change("trust policy", "changed outside the framework", "lambda.amazonaws.com"))
        ops.append(Operation("iam.update_assume_role_policy", {
            "RoleName": name, "PolicyDocument": json.dumps(TRUST_POLICY, sort_keys=True)}, "UpdateAssumeRolePolicy"))
    if basic not in role.attached:
        changes.append(Change("AWSLambdaBasicExecutionRole", "detached", "attached"))
        ops.append(Operation("iam.attach_role_policy", {"RoleName": name, "PolicyArn": basic}, "AttachRolePolicy"))
    current = role.inline.get(SECRETS_POLICY)
    if normalize_policy(current) != normalize_policy(policy):
        if policy is None:
            changes.append(Change("secrets readable", "some", None))
            ops.append(Operation("iam.delete_role_policy", {"RoleName": name, "PolicyName": SECRETS_POLICY},
                                 "DeleteRolePolicy"))
        else:
            old = sorted(s for st in (current or {}).get("Statement", []) for s in _as_list(st.get("Resource")))
            changes.append(Change("secrets readable", old or None, sorted(desired.secret_refs.values())))
            ops.append(Operation("iam.put_role_policy", {"RoleName": name, "PolicyName": SECRETS_POLICY,
                                                         "PolicyDocument": json.dumps(policy, sort_keys=True)},
                                 "PutRolePolicy"))
    sessions, current = sessions_policy(desired, snap), role.inline.get(SESSIONS_POLICY)
    if normalize_policy(current) != normalize_policy(sessions):
        if sessions is None:
            changes.append(Change("sessions table", "granted", None))
            ops.append(Operation("iam.delete_role_policy", {"RoleName": name, "PolicyName": SESSIONS_POLICY},
                                 "DeleteRolePolicy"))
        else:
            changes.append(Change("sessions table", "changed" if current else None, _grant(desired, snap)))
            ops.append(_put_sessions_policy(name, sessions))
    return Resource("iam role", name, UPDATE if ops else UNCHANGED, tuple(changes), tuple(ops))


def _grant(desired: Desired, snap: Snapshot) -> str:
    return f"{', '.join(a.split(':')[1] for a in SESSION_ACTIONS)} on {table_arn(desired, snap)}"


def _put_sessions_policy(role: str, policy: Mapping[str, Any]) -> Operation:
    return Operation("iam.put_role_policy", {"RoleName": role, "PolicyName": SESSIONS_POLICY,
                                             "PolicyDocument": json.dumps(policy, sort_keys=True)}, "PutRolePolicy")


def _ttl_operation(table: str) -> Operation:
    # UpdateTimeToLive may not be repeated within an hour (a ValidationException): it is planned
    # only when DescribeTimeToLive says DISABLED
    # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html).
    return Operation("dynamodb.update_time_to_live", {
        "TableName": table, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": SESSION_TTL}},
        "UpdateTimeToLive")


def _plan_table(desired: Desired, snap: Snapshot) -> tuple[Resource | None, list[str]]:
    """The sessions table: on demand, key pk (S), TTL on `expires`, tagged as ours. A table of that
    name that is not ours is used as it is (agent.yaml named it) and never changed; its key must fit."""
    name, table = desired.session_table, snap.table
    assert name
    label = "dynamodb table"
    if table is None:
        tags = desired.tag_list
        create = Operation("dynamodb.create_table", {
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": SESSION_KEY, "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": SESSION_KEY, "KeyType": "HASH"}], "Tags": tags}, "CreateTable")
        return Resource(label, name, CREATE, (
            Change("billing", None, "on demand (PAY_PER_REQUEST)"), Change("key", None, f"{SESSION_KEY} (S)"),
            Change("ttl attribute", None, SESSION_TTL), Change("holds", None, "the sessions and token counts")),
            (create, _ttl_operation(name))), []
    if table.key_schema != ((SESSION_KEY, "S"),):
        raise DeployError(
            f"the DynamoDB table {name} has the key {', '.join(f'{k} ({t})' for k, t in table.key_schema)} and the "
            f"session store needs the partition key {SESSION_KEY} (S) alone: set another `table:` under "
            "targets.aws.sessions in agent.yaml, or remove that table")
    ttl_ok = table.ttl_status in ("ENABLED", "ENABLING") and table.ttl_attribute == SESSION_TTL
    if not _owned(table.tags, desired.name):
        notes = [f"DynamoDB table {name} exists and was not created by this framework for this agent: the sessions "
                 "use it as it is; it is never changed, and destroy leaves it"]
        if not ttl_ok:
            notes.append(f"the DynamoDB table {name} has no TTL on `{SESSION_TTL}`: expired sessions stay in it "
                         f"(enable Time to Live on the attribute {SESSION_TTL})")
        return None, notes
    ops, changes = [], []
    if table.billing_mode != "PAY_PER_REQUEST":
        changes.append(Change("billing", table.billing_mode, "PAY_PER_REQUEST"))
        ops.append(Operation("dynamodb.update_table", {"TableName": name, "BillingMode": "PAY_PER_REQUEST"},
                             "UpdateTable"))
    if not ttl_ok:
        if table.ttl_status != "DISABLED":
            raise DeployError(
                f"the DynamoDB table {name} has Time to Live {table.ttl_status.lower()} on `{table.ttl_attribute}`, "
                f"and the session store's is `{SESSION_TTL}`: DynamoDB changes it at most once an hour; "
                "deploy again once it is disabled")
        changes.append(Change("ttl attribute", None, SESSION_TTL))
        ops.append(_ttl_operation(name))
    detail = "" if ops else f"on demand, key {SESSION_KEY}, ttl {SESSION_TTL}"
    return Resource(label, name, UPDATE if ops else UNCHANGED, tuple(changes), tuple(ops), detail=detail), []


def _as_list(value: Any) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def _env_args(env: Mapping[str, str | None]) -> dict[str, Any]:
    return {"Variables": {name: ({"$secret": name} if value is not None else {"$keep": name})
                          for name, value in sorted(env.items())}}


def _config_changes(desired: Desired, config: FunctionConfig, role_arn: str,
                    env: Mapping[str, str | None]) -> tuple[list[Change], dict[str, Any]]:
    """Configuration fields that differ (display changes, and the update's arguments)."""
    changes, args = [], {}
    wanted = {"Timeout": ("timeout", desired.timeout, config.timeout),
              "MemorySize": ("memory", desired.memory, config.memory),
              "Role": ("role", role_arn, config.role),
              "Description": ("description", desired.description, config.description)}
    if desired.package_type == "Zip":
        wanted["Runtime"] = ("runtime", desired.runtime, config.runtime)
        wanted["Handler"] = ("handler", desired.handler, config.handler)
    for key, (label, new, old) in wanted.items():
        if new != old:
            changes.append(Change(label, old, new))
            args[key] = new
    env_changes = environment_changes(env, config.environment)
    changes.extend(env_changes)
    if env_changes:
        args["Environment"] = _env_args(env)
    return changes, args


def _code_current(desired: Desired, function: FunctionState) -> bool:
    config = function.config
    if desired.package_type == "Image":
        return config.image_uri is not None and config.image_uri.endswith(f":{desired.image_tag}")
    # Same zip bytes, or the same content uploaded by us with another zlib (tags record both).
    return config.code_sha256 == desired.code_sha256 or (
        function.tags.get(TAG_CONTENT) == desired.content and function.tags.get(TAG_CODE) == config.code_sha256)


def image_uri(desired: Desired, snap: Snapshot) -> str:
    base = snap.repository.uri if snap.repository else (
        f"{snap.account}.dkr.ecr.{desired.region}.amazonaws.com{'.cn' if snap.partition == 'aws-cn' else ''}"
        f"/{desired.name}")
    return f"{base}:{desired.image_tag}"


def _code_args(desired: Desired, snap: Snapshot) -> dict[str, Any]:
    if desired.package_type == "Image":
        return {"ImageUri": image_uri(desired, snap)}
    return {"ZipFile": {"$package": desired.code_sha256}}


def _plan_function(desired: Desired, snap: Snapshot, role_arn: str) -> tuple[Resource, list[str], str]:
    """The function resource, the secrets missing from the deploying environment, $LATEST's code sha."""
    name = desired.name
    function = snap.function
    env, missing = desired_env(desired.secret_env, function.config.environment if function else None)
    tags = {**desired.tags, TAG_CONTENT: desired.content}
    if desired.code_sha256:
        tags[TAG_CODE] = desired.code_sha256
    if function is None:
        args: dict[str, Any] = {
            "FunctionName": name, "Role": role_arn, "PackageType": desired.package_type,
            "Code": _code_args(desired, snap), "Timeout": desired.timeout, "MemorySize": desired.memory,
            "Description": desired.description, "Architectures": [desired.architecture],
            "Environment": _env_args({k: v for k, v in env.items()}), "Tags": tags, "Publish": False}
        if desired.package_type == "Zip":
            args.update(Runtime=desired.runtime, Handler=desired.handler)
        changes = [Change("code", None, short(desired.code_sha256) or image_uri(desired, snap)),
                   Change("runtime", None, desired.runtime if desired.package_type == "Zip" else "container image"),
                   Change("architecture", None, desired.architecture),
                   Change("timeout", None, desired.timeout), Change("memory", None, desired.memory)]
        changes += [Change(f"environment {n}", None, "(value hidden)") for n in sorted(env)]
        return (Resource("lambda function", name, CREATE, tuple(changes),
                         (Operation("lambda.create_function", args, "CreateFunction"),)),
                missing, desired.code_sha256 or "")
    if not _owned(function.tags, name):
        raise _not_ours("Lambda function", name, name, f"region {desired.region}")
    config = function.config
    if config.package_type != desired.package_type:
        raise DeployError(
            f"the function {name} is deployed as a {config.package_type.lower()} package and agent.yaml asks for "
            f"{desired.package_type.lower()}: Lambda cannot switch a function's package type; run "
            "`agenthost destroy` first, then deploy")
    ops, changes = [], []
    latest_sha = config.code_sha256
    code_current = _code_current(desired, function)
    if not code_current or config.architecture != desired.architecture:
        code = _code_args(desired, snap)
        if not code_current:
            old = short(config.code_sha256) if desired.package_type == "Zip" else config.image_uri
            changes.append(Change("code", old, short(desired.code_sha256) or code["ImageUri"]))
        if config.architecture != desired.architecture:
            changes.append(Change("architecture", config.architecture, desired.architecture))
        ops.append(Operation("lambda.update_function_code", {
            "FunctionName": name, **code, "Architectures": [desired.architecture]}, "UpdateFunctionCode"))
        latest_sha = desired.code_sha256 or ""
    elif desired.code_sha256 and config.code_sha256 != desired.code_sha256:
        tags[TAG_CODE] = config.code_sha256  # same content zipped by another zlib: keep what is there
    config_changes, config_args = _config_changes(desired, config, role_arn, env)
    if config_args:
        changes += config_changes
        ops.append(Operation("lambda.update_function_configuration", {"FunctionName": name, **config_args},
                             "UpdateFunctionConfiguration"))
    stale_tags = {k: v for k, v in tags.items() if function.tags.get(k) != v}
    if stale_tags:
        changes += [Change(f"tag {k}", short(function.tags.get(k)), short(v)) for k, v in sorted(stale_tags.items())]
        ops.append(Operation("lambda.tag_resource", {"Resource": function.arn, "Tags": stale_tags}, "TagResource"))
    return (Resource("lambda function", name, UPDATE if ops else UNCHANGED, tuple(changes), tuple(ops),
                     detail="" if ops else f"code {short(config.code_sha256) or config.image_uri}"),
            missing, latest_sha)


def _same_version(alias: FunctionConfig, latest: FunctionConfig, latest_sha: str) -> bool:
    """The version the alias points at runs what $LATEST runs: its description is the version's own."""
    return alias.code_sha256 == latest_sha and alias == FunctionConfig(**{**latest.__dict__,
                                                                          "code_sha256": alias.code_sha256,
                                                                          "description": alias.description})


def _plan_alias(desired: Desired, snap: Snapshot, latest_changes: bool, latest_sha: str) -> Resource:
    name = f"{desired.name}:{ALIAS}"
    publish = Operation("lambda.publish_version", {"FunctionName": desired.name,
                                                   "Description": desired.version_description}, "PublishVersion")
    if snap.alias_version is None:
        create = Operation("lambda.create_alias", {"FunctionName": desired.name, "Name": ALIAS,
                                                   "FunctionVersion": {"$output": "version"}}, "CreateAlias")
        return Resource("version + alias", name, CREATE, (Change("version", None, "(new)"),), (publish, create))
    assert snap.function is not None
    if (not latest_changes and snap.alias_config is not None
            and _same_version(snap.alias_config, snap.function.config, latest_sha)):
        return Resource("version + alias", name, UNCHANGED, detail=f"version {snap.alias_version}")
    update = Operation("lambda.update_alias", {"FunctionName": desired.name, "Name": ALIAS,
                                               "FunctionVersion": {"$output": "version"}}, "UpdateAlias")
    return Resource("version + alias", name, UPDATE, (Change("version", snap.alias_version, "(new)"),),
                    (publish, update))


def paused(snap: Snapshot) -> bool:
    """The function carries the pause mark (`agenthost pause`): deploy keeps its concurrency at 0."""
    return snap.function is not None and TAG_PAUSED in snap.function.tags


def _plan_reserved(desired: Desired, snap: Snapshot) -> Resource:
    current = snap.function.reserved if snap.function else None
    label = "reserved concurrency"
    if paused(snap):  # issue 14: a paused function stays at 0
        desired = replace(desired, reserved=0)
    if current == desired.reserved:
        return Resource(label, desired.name, UNCHANGED, detail=str(current))
    op = Operation("lambda.put_function_concurrency", {
        "FunctionName": desired.name, "ReservedConcurrentExecutions": desired.reserved}, "PutFunctionConcurrency")
    action = CREATE if current is None else UPDATE
    return Resource(label, desired.name, action, (Change("max", current, desired.reserved),), (op,))


def _plan_provisioned(desired: Desired, snap: Snapshot) -> Resource:
    label, name = "provisioned concurrency", f"{desired.name}:{ALIAS}"
    current = snap.provisioned
    if paused(snap):  # issue 14: no warm instance while paused (resume puts them back)
        desired = replace(desired, provisioned=0)
    if (current or 0) == desired.provisioned:
        return Resource(label, name, UNCHANGED, detail=str(current or 0))
    if desired.provisioned == 0:
        return Resource(label, name, DELETE, (Change("warm", current, 0),), (Operation(
            "lambda.delete_provisioned_concurrency_config", {"FunctionName": desired.name, "Qualifier": ALIAS},
            "DeleteProvisionedConcurrencyConfig"),))
    op = Operation("lambda.put_provisioned_concurrency_config", {
        "FunctionName": desired.name, "Qualifier": ALIAS, "ProvisionedConcurrentExecutions": desired.provisioned},
        "PutProvisionedConcurrencyConfig")
    return Resource(label, name, CREATE if current is None else UPDATE,
                    (Change("warm", current, desired.provisioned),), (op,))


def _plan_url(desired: Desired, snap: Snapshot) -> Resource:
    label, name = "function url", f"{desired.name}:{ALIAS}"
    url = snap.url
    if url is None:
        return Resource(label, name, CREATE, (Change("auth", None, desired.auth_type),
                                              Change("invoke mode", None, desired.invoke_mode)),
                        (Operation("lambda.create_function_url_config", {
                            "FunctionName": desired.name, "Qualifier": ALIAS, "AuthType": desired.auth_type,
                            "InvokeMode": desired.invoke_mode}, "CreateFunctionUrlConfig"),))
    changes, args = [], {}
    if url.auth_type != desired.auth_type:
        changes.append(Change("auth", url.auth_type, desired.auth_type))
        args["AuthType"] = desired.auth_type
    if url.invoke_mode.upper() != desired.invoke_mode:
        changes.append(Change("invoke mode", url.invoke_mode, desired.invoke_mode))
        args["InvokeMode"] = desired.invoke_mode
    if not args:
        return Resource(label, name, UNCHANGED, detail=url.url)
    return Resource(label, name, UPDATE, tuple(changes), (Operation("lambda.update_function_url_config", {
        "FunctionName": desired.name, "Qualifier": ALIAS, **args}, "UpdateFunctionUrlConfig"),))


def _wanted_statements(desired: Desired) -> dict[str, dict[str, Any]]:
    if desired.auth_type != "NONE":
        return {}
    base = {"FunctionName": desired.name, "Qualifier": ALIAS, "Principal": "*"}
    return {
        # Public function URL: both permissions are required for URLs created since October 2025
        # (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html).
        SID_URL: {**base, "StatementId": SID_URL, "Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"},
        SID_INVOKE: {**base, "StatementId": SID_INVOKE, "Action": "lambda:InvokeFunction",
                     "InvokedViaFunctionUrl": True},
    }


def _plan_permissions(desired: Desired, snap: Snapshot) -> Resource:
    label, name = "public url permission", f"{desired.name}:{ALIAS}"
    wanted = _wanted_statements(desired)
    ops, changes = [], []
    for sid, action in sorted(snap.statements.items()):
        if sid not in wanted or wanted[sid]["Action"] != action:
            changes.append(Change(sid, action, None))
            ops.append(Operation("lambda.remove_permission", {"FunctionName": desired.name, "Qualifier": ALIAS,
                                                              "StatementId": sid}, "RemovePermission"))
    for sid, args in wanted.items():
        if snap.statements.get(sid) != args["Action"]:
            changes.append(Change(sid, snap.statements.get(sid), f"{args['Action']} for everyone"))
            ops.append(Operation("lambda.add_permission", args, "AddPermission"))
    if not ops:
        return Resource(label, name, UNCHANGED, detail="public" if wanted else "IAM auth, no public statement")
    if not snap.statements:
        action = CREATE
    elif not wanted:
        action = DELETE
    else:
        action = UPDATE
    return Resource(label, name, action, tuple(changes), tuple(ops))


def _plan_image(desired: Desired, snap: Snapshot) -> list[Resource]:
    resources = []
    repo = snap.repository
    tags = desired.tag_list
    if repo is None:
        resources.append(Resource("ecr repository", desired.name, CREATE, (), (Operation(
            "ecr.create_repository", {"repositoryName": desired.name, "tags": tags,
                                      "imageScanningConfiguration": {"scanOnPush": True}}, "CreateRepository"),)))
    elif not _owned(repo.tags, desired.name):
        raise _not_ours("ECR repository", desired.name, desired.name, f"region {desired.region}")
    else:
        resources.append(Resource("ecr repository", desired.name, UNCHANGED, detail=repo.uri))
    uri = image_uri(desired, snap)
    if snap.image_pushed:
        resources.append(Resource("container image", uri, UNCHANGED))
    else:
        resources.append(Resource("container image", uri, CREATE, (Change("image", None, uri),), (Operation(
            "docker.push_image", {"ImageUri": uri, "Architecture": desired.architecture}, "docker build + push"),)))
    return resources


def plan_deploy(desired: Desired, snap: Snapshot) -> DeployPlan:
    """Pure: what to do so that `snap` becomes `desired`."""
    resources: list[Resource] = []
    notes: list[str] = []
    if desired.package_type == "Image":
        resources += _plan_image(desired, snap)
    if desired.role_arn:
        role_arn = desired.role_arn
        notes.append(f"execution role given in agent.yaml ({role_arn}): not managed by the framework")
        if desired.session_table:
            notes.append(f"the sessions need the role {role_arn} to allow {', '.join(SESSION_ACTIONS)} on "
                         f"{table_arn(desired, snap)}: add that policy to it (the framework does not change a role "
                         "it did not create)")
    else:
        role_arn = f"arn:{snap.partition}:iam::{snap.account}:role/{desired.role_name}"
        resources.append(_plan_role(desired, snap))
    if desired.session_table:
        table, table_notes = _plan_table(desired, snap)
        resources += [table] if table else []
        notes += table_notes
    function, missing, latest_sha = _plan_function(desired, snap, role_arn)
    resources.append(function)
    resources.append(_plan_reserved(desired, snap))
    resources.append(_plan_alias(desired, snap, bool(function.operations), latest_sha))
    resources.append(_plan_provisioned(desired, snap))
    resources.append(_plan_url(desired, snap))
    resources.append(_plan_permissions(desired, snap))
    # issue 14, after the alias moved; only a change to $LATEST's code or configuration makes a new version
    publishes = any(op.kind != "lambda.tag_resource" for op in function.operations)
    resources += plan_prune(desired, snap, publishes)
    notes += SECRETS.notes(desired.secret_env, missing)
    if paused(snap):
        notes.append(PAUSED_NOTE)
    title = f"{desired.name} on AWS Lambda (region {desired.region}, account {snap.account})"
    return DeployPlan(Plan("aws", title, tuple(resources), tuple(notes)), tuple(missing))


def plan_destroy(name: str, region: str, snap: Snapshot, session_table: str | None = None) -> Plan:
    """Pure: delete what carries our tag for this agent; list what is left alone."""
    resources, notes = [], []
    function = snap.function
    if function is not None:
        if _owned(function.tags, name):
            resources.append(Resource("lambda function", name, DELETE, (
                Change("with", "versions, alias live, function url, concurrency", None),),
                (Operation("lambda.delete_function", {"FunctionName": name}, "DeleteFunction"),)))
        else:
            notes.append(left_alone(f"Lambda function {name}"))
    role = snap.role
    rname = role_name(name)
    if role is not None:
        if _owned(role.tags, name):
            ops = [Operation("iam.detach_role_policy", {"RoleName": rname, "PolicyArn": arn}, "DetachRolePolicy")
                   for arn in sorted(role.attached)]
            ops += [Operation("iam.delete_role_policy", {"RoleName": rname, "PolicyName": policy}, "DeleteRolePolicy")
                    for policy in sorted(role.inline)]
            ops.append(Operation("iam.delete_role", {"RoleName": rname}, "DeleteRole"))
            resources.append(Resource("iam role", rname, DELETE, (), tuple(ops)))
        else:
            notes.append(left_alone(f"IAM role {rname}"))
    repo = snap.repository
    if repo is not None:
        if _owned(repo.tags, name):
            resources.append(Resource("ecr repository", name, DELETE, (Change("with", "its images", None),), (
                Operation("ecr.delete_repository", {"repositoryName": name, "force": True}, "DeleteRepository"),)))
        else:
            notes.append(left_alone(f"ECR repository {name}"))
    table = snap.table
    if table is not None and session_table:
        if _owned(table.tags, name):
            resources.append(Resource("dynamodb table", session_table, DELETE, (
                Change("with", "its sessions and token counts", None),), (
                Operation("dynamodb.delete_table", {"TableName": session_table}, "DeleteTable"),)))
        else:
            notes.append(left_alone(f"DynamoDB table {session_table}"))
    title = f"destroy {name} on AWS Lambda (region {region}, account {snap.account})"
    return Plan("aws", title, tuple(resources), tuple(notes))


def outputs(desired_name: str, snap: Snapshot, results: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a deploy reports: function ARN, alias, version, URL (from the snapshot and what was done)."""
    results = results or {}
    function_arn = results.get("function_arn") or (snap.function.arn if snap.function else None)
    version = results.get("version") or snap.alias_version
    return {
        "function": desired_name,
        "function_arn": function_arn,
        "alias": ALIAS,
        "alias_arn": f"{function_arn}:{ALIAS}" if function_arn else None,
        "version": version,
        "url": results.get("url") or (snap.url.url if snap.url else None),
    }


# ---- pause / resume (issue 14)

PAUSED_NOTE = ("paused: deploy keeps it paused (reserved concurrency 0, no warm instance); `agenthost resume` "
               "lets requests in")

# What a function URL answers while reserved concurrency is 0: Lambda throttles the invocation before the
# function runs, buffered and streaming URLs alike (429 TooManyRequestsException, "Rate Exceeded.", reason
# ReservedFunctionConcurrentInvocationLimitExceeded:
# https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors,
# https://repost.aws/knowledge-center/lambda-troubleshoot-throttling).
PAUSED_ANSWER = PausedAnswer(
    429, {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"},
    b'{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}',
    "429 as Lambda answers with reserved concurrency 0")


def plan_pause(desired_name: str, region: str, snap: Snapshot, reserved: int, warm: int, resume: bool) -> Plan:
    """Pure: pause = reserved concurrency 0, with which Lambda throttles every invocation and runs none
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html), the warm instances
    released (provisioned concurrency cannot exceed reserved), then the pause mark. Resume: agent.yaml's
    concurrency.max and warm, the mark removed. No operation when it already is so."""
    function = snap.function
    title = f"{desired_name} on AWS Lambda (region {region}, account {snap.account})"
    if function is None or not _owned(function.tags, desired_name):
        raise DeployError(f"{desired_name} is not deployed on AWS Lambda in {region} (or the function is not ours): "
                          f"nothing to {'resume' if resume else 'pause'}")
    name, marked = desired_name, TAG_PAUSED in function.tags
    ops: list[Operation] = []
    changes: list[Change] = []
    if not resume:
        if snap.provisioned:
            changes.append(Change("warm", snap.provisioned, 0))
            ops.append(Operation("lambda.delete_provisioned_concurrency_config", {"FunctionName": name,
                                                                                   "Qualifier": ALIAS},
                                 "DeleteProvisionedConcurrencyConfig"))
        if function.reserved != 0:
            changes.append(Change("reserved concurrency", function.reserved, 0))
            ops.append(Operation("lambda.put_function_concurrency", {
                "FunctionName": name, "ReservedConcurrentExecutions": 0}, "PutFunctionConcurrency"))
        if not marked:
            changes.append(Change(f"tag {TAG_PAUSED}", None, "true"))
            ops.append(Operation("lambda.tag_resource", {"Resource": function.arn, "Tags": {TAG_PAUSED: "true"}},
                                 "TagResource"))
    elif marked or function.reserved == 0:
        changes.append(Change("reserved concurrency", function.reserved, reserved))
        ops.append(Operation("lambda.put_function_concurrency", {
            "FunctionName": name, "ReservedConcurrentExecutions": reserved}, "PutFunctionConcurrency"))
        if warm and not snap.provisioned:
            changes.append(Change("warm", None, warm))
            ops.append(Operation("lambda.put_provisioned_concurrency_config", {
                "FunctionName": name, "Qualifier": ALIAS, "ProvisionedConcurrentExecutions": warm},
                "PutProvisionedConcurrencyConfig"))
        if marked:
            changes.append(Change(f"tag {TAG_PAUSED}", "true", None))
            ops.append(Operation("lambda.untag_resource", {"Resource": function.arn, "TagKeys": [TAG_PAUSED]},
                                 "UntagResource"))
    if not ops:
        state = "running" if resume else "paused"
        return Plan("aws", title, (Resource("lambda function", name, UNCHANGED, detail=state),))
    return Plan("aws", title, (Resource("lambda function", name, UPDATE, tuple(changes), tuple(ops)),))


# ---- pruning old versions (issue 14)


def plan_prune(desired: Desired, snap: Snapshot, publishes: bool) -> list[Resource]:
    """Pure: delete the published versions beyond the newest `keep_versions`, with DeleteFunction and
    a Qualifier (https://docs.aws.amazon.com/lambda/latest/api/API_DeleteFunction.html: "You can't
    delete a version that an alias references"). Kept whatever their age: the version `live` points at
    now (still serving until this deploy moves the alias) and every version any alias points at or
    routes to (ListAliases, https://docs.aws.amazon.com/lambda/latest/api/API_ListAliases.html). A
    deploy that changes $LATEST publishes a new version, which takes one of the N places; without a
    change PublishVersion makes none (https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html).
    Nothing when keep_versions is unset (every version is kept, as before) or nothing is beyond N."""
    keep = desired.keep_versions
    if keep is None or snap.function is None:
        return []
    newest = sorted(snap.versions, key=int, reverse=True)
    protected = {v for versions in snap.aliased.values() for v in versions} | (
        {snap.alias_version} if snap.alias_version else set())
    kept = newest[:max(keep - (1 if publishes else 0), 0)]
    doomed = [v for v in newest if v not in kept and v not in protected]
    held = sorted((v for v in newest if v not in kept and v in protected), key=int, reverse=True)
    detail = f"{len(newest)} published, keep the newest {keep}" + (f" and aliased {', '.join(held)}" if held else "")
    resources = [Resource("lambda versions", desired.name, UNCHANGED, detail=detail)]
    for version in reversed(doomed):  # oldest first
        resources.append(Resource("lambda version", f"{desired.name}:{version}", DELETE, (
            Change("version", version, None),), (Operation("lambda.delete_function", {
                "FunctionName": desired.name, "Qualifier": version}, "DeleteFunction"),)))
    return resources
