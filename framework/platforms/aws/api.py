"""AWS Lambda deploy, the I/O part (the only module that imports boto3): read the deployed state
into a Snapshot, and the handlers that apply a Plan's operations, waiting after each update.

Retries: botocore's standard retry mode (throttling, 5xx and transient errors, with backoff).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, WaiterError

from framework.deploy.executor import Context, Executor, Progress, Registry
from framework.deploy.loglines import LogReader
from framework.deploy.plan import Plan
from framework.deploy.secrets import digest
from framework.deploy.skeleton import DeployerBase, DeployOptions, DeployPlan, session_store
from framework.deploy.versions import History, Version, read_note
from framework.errors import DeployError, DockerUnavailableError
from framework.model import Agent, TargetSettings
from framework.platforms.aws import planner as aws
from framework.platforms.aws import warm as aws_warm
from framework.platforms.aws.package import Package, image_content, package_lambda
from framework.render import File

title = "AWS Lambda"
RETRIES = {"mode": "standard", "max_attempts": 8}
_NOT_FOUND = {"ResourceNotFoundException", "NoSuchEntity", "RepositoryNotFoundException", "ImageNotFoundException",
              "ProvisionedConcurrencyConfigNotFoundException", "NotFoundException"}


class Api:
    """boto3 clients for one region, from one session (tests pass a session with event hooks)."""

    def __init__(self, region: str, session: boto3.Session | None = None, sleep: Callable[[float], None] = time.sleep):
        self.region = region
        self.session = session or boto3.Session()
        self.sleep = sleep
        self._clients: dict[str, Any] = {}

    def client(self, service: str):
        if service not in self._clients:
            config = Config(retries=dict(RETRIES), user_agent_extra="agent-framework")
            self._clients[service] = self.session.client(service, region_name=self.region, config=config)
        return self._clients[service]


def _missing(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _NOT_FOUND or status == 404


def _or_none(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as error:
        if _missing(error):
            return None
        raise


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """boto errors -> DeployError with a clear message."""
    try:
        yield
    except ClientError as error:
        info = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "a call")
        raise DeployError(f"AWS refused {operation}: {info.get('Code')}: {info.get('Message')}")
    except NoCredentialsError:
        raise DeployError("no AWS credentials found: configure them (aws configure, AWS_PROFILE, or in CI an OIDC "
                          "role with aws-actions/configure-aws-credentials)")
    except WaiterError as error:
        raise DeployError(f"the function did not become ready: {error}")
    except BotoCoreError as error:
        raise DeployError(f"could not talk to AWS: {error}")


# ---------------------------------------------------------------- reading the deployed state


def _config(answer: Mapping[str, Any]) -> aws.FunctionConfig:
    c = answer["Configuration"]
    env = (c.get("Environment") or {}).get("Variables") or {}
    return aws.FunctionConfig(
        package_type=c.get("PackageType") or "Zip", runtime=c.get("Runtime"), handler=c.get("Handler"),
        timeout=c["Timeout"], memory=c["MemorySize"], role=c["Role"], description=c.get("Description") or "",
        architecture=(c.get("Architectures") or ["x86_64"])[0],
        environment={name: digest(value) for name, value in sorted(env.items())},
        code_sha256=c.get("CodeSha256") or "", image_uri=(answer.get("Code") or {}).get("ImageUri"))


def _read_role(api: Api, name: str) -> aws.RoleState | None:
    iam = api.client("iam")
    answer = _or_none(lambda: iam.get_role(RoleName=name))
    if answer is None:
        return None
    role = answer["Role"]
    tags = {t["Key"]: t["Value"] for t in role.get("Tags") or []}
    attached = tuple(sorted(p["PolicyArn"] for page in iam.get_paginator("list_attached_role_policies")
                            .paginate(RoleName=name) for p in page["AttachedPolicies"]))
    inline = {}
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy in page["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            inline[policy] = json.loads(document) if isinstance(document, str) else document
    trust = role.get("AssumeRolePolicyDocument") or {}
    return aws.RoleState(arn=role["Arn"], tags=tags, trust=json.loads(trust) if isinstance(trust, str) else trust,
                         attached=attached, inline=inline)


def _read_table(api: Api, table: str) -> aws.TableState | None:
    """DescribeTable, ListTagsOfResource and DescribeTimeToLive of the sessions table."""
    dynamodb = api.client("dynamodb")
    answer = _or_none(lambda: dynamodb.describe_table(TableName=table))
    if answer is None:
        return None
    data = answer["Table"]
    types = {a["AttributeName"]: a["AttributeType"] for a in data.get("AttributeDefinitions") or []}
    key = tuple((k["AttributeName"], types.get(k["AttributeName"], "?")) for k in data.get("KeySchema") or [])
    listed = dynamodb.list_tags_of_resource(ResourceArn=data["TableArn"]).get("Tags") or []
    tags = {t["Key"]: t["Value"] for t in listed}
    ttl = dynamodb.describe_time_to_live(TableName=table).get("TimeToLiveDescription") or {}
    billing = (data.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    return aws.TableState(arn=data["TableArn"], tags=tags, billing_mode=billing, key_schema=key,
                          ttl_status=ttl.get("TimeToLiveStatus") or "DISABLED", ttl_attribute=ttl.get("AttributeName"))


def read_snapshot(api: Api, name: str, *, image_tag: str | None = None, repository: bool = False,
                  session_table: str | None = None) -> aws.Snapshot:
    """Everything the planner needs, read-only (Get*/List*/Describe* calls); the sessions table only
    when sessions are on (an agent without them makes no DynamoDB call)."""
    identity = api.client("sts").get_caller_identity()
    account, partition = identity["Account"], identity["Arn"].split(":")[1]
    role = _read_role(api, aws.role_name(name))
    lam = api.client("lambda")
    answer = _or_none(lambda: lam.get_function(FunctionName=name))
    function = alias_version = alias_config = url = provisioned = None
    statements: dict[str, str] = {}
    if answer is not None:
        tags = dict(answer.get("Tags") or {})
        reserved = (answer.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        if reserved is None and aws.TAG_PAUSED in tags:
            # issue 14: moto 5 leaves a reserved concurrency of 0 out of GetFunction (Lambda returns it);
            # GetFunctionConcurrency answers it on both
            # (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConcurrency.html)
            reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        function = aws.FunctionState(arn=answer["Configuration"]["FunctionArn"], tags=tags, config=_config(answer),
                                     reserved=reserved)
        alias = _or_none(lambda: lam.get_alias(FunctionName=name, Name=aws.ALIAS))
        if alias is not None:
            alias_version = alias["FunctionVersion"]
            version = _or_none(lambda: lam.get_function(FunctionName=name, Qualifier=alias_version))
            alias_config = _config(version) if version else None
            found = _or_none(lambda: lam.get_function_url_config(FunctionName=name, Qualifier=aws.ALIAS))
            if found is not None:
                url = aws.UrlState(url=found["FunctionUrl"], auth_type=found["AuthType"],
                                   invoke_mode=found.get("InvokeMode") or "BUFFERED")
            policy = _or_none(lambda: lam.get_policy(FunctionName=name, Qualifier=aws.ALIAS))
            for statement in json.loads(policy["Policy"])["Statement"] if policy else []:
                sid = statement.get("Sid", "")
                if sid.startswith(aws.SID_PREFIX):
                    statements[sid] = statement.get("Action")
            # moto 5.2 answers 404 to this call (not implemented): read as "none configured"
            config = _or_none(lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=aws.ALIAS))
            if config is not None:
                provisioned = config.get("RequestedProvisionedConcurrentExecutions")
    repo = pushed = None
    if repository or image_tag:
        ecr = api.client("ecr")
        found = _or_none(lambda: ecr.describe_repositories(repositoryNames=[name]))
        if found is not None:
            data = found["repositories"][0]
            tags = ecr.list_tags_for_resource(resourceArn=data["repositoryArn"]).get("tags") or []
            repo = aws.RepositoryState(uri=data["repositoryUri"], arn=data["repositoryArn"],
                                       tags={t["Key"]: t["Value"] for t in tags})
            if image_tag:
                pushed = _or_none(lambda: ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": image_tag}]))
    table = _read_table(api, session_table) if session_table else None
    return aws.Snapshot(account=account, partition=partition, role=role, function=function,
                        alias_version=alias_version, alias_config=alias_config, url=url, statements=statements,
                        provisioned=provisioned, repository=repo, image_pushed=bool(pushed), table=table)


# ---------------------------------------------------------------- handlers (the only mutations)

REGISTRY = Registry()


def _simple(kind: str, service: str, method: str, ignore_missing: bool = False) -> None:
    def handler(ctx: Context, args: dict[str, Any]) -> None:
        call = getattr(ctx.api.client(service), method)
        if ignore_missing:
            _or_none(lambda: call(**args))
        else:
            call(**args)
    REGISTRY.handler(kind)(handler)


for _kind, _service, _method, _ignore in (
    ("iam.create_role", "iam", "create_role", False),
    ("iam.update_assume_role_policy", "iam", "update_assume_role_policy", False),
    ("iam.attach_role_policy", "iam", "attach_role_policy", False),
    ("iam.put_role_policy", "iam", "put_role_policy", False),
    ("iam.delete_role_policy", "iam", "delete_role_policy", True),
    ("iam.detach_role_policy", "iam", "detach_role_policy", True),
    ("iam.delete_role", "iam", "delete_role", True),
    ("lambda.tag_resource", "lambda", "tag_resource", False),
    ("lambda.put_function_concurrency", "lambda", "put_function_concurrency", False),
    ("lambda.put_provisioned_concurrency_config", "lambda", "put_provisioned_concurrency_config", False),
    ("lambda.delete_provisioned_concurrency_config", "lambda", "delete_provisioned_concurrency_config", True),
    ("lambda.add_permission", "lambda", "add_permission", False),
    ("lambda.remove_permission", "lambda", "remove_permission", True),
    ("lambda.delete_function", "lambda", "delete_function", True),
    ("ecr.delete_repository", "ecr", "delete_repository", True),
    ("dynamodb.update_time_to_live", "dynamodb", "update_time_to_live", False),
    ("dynamodb.delete_table", "dynamodb", "delete_table", True),
):
    _simple(_kind, _service, _method, _ignore)


def _wait(ctx: Context, waiter: str, **args: Any) -> None:
    ctx.api.client("lambda").get_waiter(waiter).wait(**args, WaiterConfig={"Delay": 2, "MaxAttempts": 150})


@REGISTRY.handler("lambda.create_function")
def _create_function(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    lam = ctx.api.client("lambda")
    for attempt in range(10):
        try:
            answer = lam.create_function(**args)
            break
        except ClientError as error:
            # A new IAM role takes a few seconds to be usable by Lambda (eventual consistency).
            message = error.response.get("Error", {}).get("Message", "")
            if attempt == 9 or "cannot be assumed" not in message:
                raise
            ctx.api.sleep(min(2 ** attempt, 10))
    _wait(ctx, "function_active_v2", FunctionName=args["FunctionName"])
    return {"function_arn": answer["FunctionArn"]}


@REGISTRY.handler("lambda.update_function_code")
def _update_code(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.client("lambda").update_function_code(**args)
    _wait(ctx, "function_updated_v2", FunctionName=args["FunctionName"])


@REGISTRY.handler("lambda.update_function_configuration")
def _update_configuration(ctx: Context, args: dict[str, Any]) -> None:
    ctx.api.client("lambda").update_function_configuration(**args)
    _wait(ctx, "function_updated_v2", FunctionName=args["FunctionName"])


@REGISTRY.handler("lambda.publish_version")
def _publish(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    answer = ctx.api.client("lambda").publish_version(**args)
    _wait(ctx, "published_version_active", FunctionName=args["FunctionName"], Qualifier=answer["Version"])
    return {"version": answer["Version"]}


@REGISTRY.handler("lambda.create_alias")
def _create_alias(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    ctx.api.client("lambda").create_alias(**args)
    return {"version": args["FunctionVersion"]}


@REGISTRY.handler("lambda.update_alias")
def _update_alias(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    ctx.api.client("lambda").update_alias(**args)
    return {"version": args["FunctionVersion"]}


@REGISTRY.handler("lambda.create_function_url_config")
def _create_url(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return {"url": ctx.api.client("lambda").create_function_url_config(**args)["FunctionUrl"]}


@REGISTRY.handler("lambda.update_function_url_config")
def _update_url(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return {"url": ctx.api.client("lambda").update_function_url_config(**args)["FunctionUrl"]}


@REGISTRY.handler("dynamodb.create_table")
def _create_table(ctx: Context, args: dict[str, Any]) -> None:
    # The table starts CREATING; TTL can be set once it is ACTIVE
    # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html).
    dynamodb = ctx.api.client("dynamodb")
    dynamodb.create_table(**args)
    dynamodb.get_waiter("table_exists").wait(TableName=args["TableName"], WaiterConfig={"Delay": 2, "MaxAttempts": 150})


@REGISTRY.handler("dynamodb.update_table")
def _update_table(ctx: Context, args: dict[str, Any]) -> None:
    dynamodb = ctx.api.client("dynamodb")
    dynamodb.update_table(**args)
    dynamodb.get_waiter("table_exists").wait(TableName=args["TableName"], WaiterConfig={"Delay": 2, "MaxAttempts": 150})


@REGISTRY.handler("ecr.create_repository")
def _create_repository(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    answer = ctx.api.client("ecr").create_repository(**args)
    return {"repository_uri": answer["repository"]["repositoryUri"]}


# ---------------------------------------------------------------- container image (docker CLI)


def check_docker(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
    if shutil.which("docker") is None:
        raise DockerUnavailableError(
            "`package: image` builds and pushes a container image with the docker CLI, which is not installed "
            "here (no Docker engine on this machine): install and start Docker, or remove `package: image` "
            "under targets.aws to deploy the default zip package")
    try:
        result = run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DockerUnavailableError(f"`package: image` needs a running Docker engine, but `docker info` failed: "
                                     f"{error}; start Docker, or remove `package: image` under targets.aws")
    if result.returncode != 0:
        reason = (result.stderr or result.stdout or "").strip().splitlines()
        raise DockerUnavailableError(
            "`package: image` needs a running Docker engine, but none answers (`docker info`: "
            f"{reason[0] if reason else 'failed'}); start Docker, or remove `package: image` under targets.aws "
            "to deploy the default zip package")


def _docker(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or "").strip().splitlines()[-5:])
        raise DeployError(f"docker {args[0]} failed:\n{tail}")


@REGISTRY.handler("docker.push_image")
def _push_image(ctx: Context, args: dict[str, Any]) -> None:
    uri = args["ImageUri"]
    registry = uri.split("/", 1)[0]
    token = ctx.api.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, password = base64.b64decode(token).decode().split(":", 1)
    _docker("login", "--username", user, "--password-stdin", registry, stdin=password)
    platform = "linux/arm64" if args["Architecture"] == "arm64" else "linux/amd64"
    with tempfile.TemporaryDirectory(prefix="agent-image-") as folder:
        for file in ctx.files:
            path = Path(folder) / file.path.split("/", 1)[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(file.content)
        # --provenance=false: Lambda refuses the multi-platform manifest lists buildx makes by default
        _docker("build", "--platform", platform, "--provenance=false", "-t", uri, folder)
    _docker("push", uri)


# pause / resume (issue 14): UntagResource removes the pause mark
# (https://docs.aws.amazon.com/lambda/latest/api/API_UntagResource.html)
_simple("lambda.untag_resource", "lambda", "untag_resource")


# ---- pruning old versions (issue 14)


def read_versions(api: Api, name: str, snap: aws.Snapshot) -> aws.Snapshot:
    """The published versions (ListVersionsByFunction,
    https://docs.aws.amazon.com/lambda/latest/api/API_ListVersionsByFunction.html) and what every alias
    points at, its routing's extra versions included (ListAliases, RoutingConfig.AdditionalVersionWeights,
    https://docs.aws.amazon.com/lambda/latest/api/API_ListAliases.html): read only with keep_versions."""
    lam = api.client("lambda")
    versions = tuple(v["Version"] for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name)
                     for v in page["Versions"] if v["Version"] != "$LATEST")
    aliased = {a["Name"]: (a["FunctionVersion"], *sorted((a.get("RoutingConfig") or {})
                                                         .get("AdditionalVersionWeights") or {}))
               for page in lam.get_paginator("list_aliases").paginate(FunctionName=name) for a in page["Aliases"]}
    return replace(snap, versions=versions, aliased=aliased)


# ---------------------------------------------------------------- the deployer (used by commands.py)


# ---- warm_schedule (issue 14)

def read_warm(api: Api, name: str) -> aws_warm.WarmState:
    """GetSchedule of the warm-up schedule, and GetRole / GetRolePolicy of its role (read-only)
    (https://docs.aws.amazon.com/scheduler/latest/APIReference/API_GetSchedule.html)."""
    found = _or_none(lambda: api.client("scheduler").get_schedule(Name=aws_warm.schedule_name(name)))
    iam = api.client("iam")
    role = _or_none(lambda: iam.get_role(RoleName=aws_warm.role_name(name)))
    tags = policy = None
    if role is not None:
        tags = {t["Key"]: t["Value"] for t in role["Role"].get("Tags") or []}
        answer = _or_none(lambda: iam.get_role_policy(RoleName=aws_warm.role_name(name), PolicyName=aws_warm.POLICY))
        if answer is not None:
            document = answer["PolicyDocument"]
            policy = json.loads(document) if isinstance(document, str) else document
    if found is None:
        return aws_warm.WarmState(role_tags=tags, role_policy=policy)
    target = found.get("Target") or {}
    return aws_warm.WarmState(
        expression=found.get("ScheduleExpression"), description=found.get("Description") or "",
        target_arn=target.get("Arn") or "", role_arn=target.get("RoleArn") or "", input=target.get("Input") or "",
        state=found.get("State") or "", role_tags=tags, role_policy=policy)


def _with_warm(plan: Plan, resources: list, notes: Sequence[str]) -> Plan:
    return replace(plan, resources=plan.resources + tuple(resources), notes=plan.notes + tuple(notes))


for _kind, _method in (("scheduler.create_schedule", "create_schedule"),
                       ("scheduler.update_schedule", "update_schedule")):
    _simple(_kind, "scheduler", _method)
_simple("scheduler.delete_schedule", "scheduler", "delete_schedule", True)


class Deployer(DeployerBase):
    """One agent on AWS Lambda: prepare (package + desired state), read, plan, apply, destroy, info."""

    title = title
    planner = aws
    home = aws.SECRETS

    def __init__(self, agent: Agent, settings: TargetSettings, files: Sequence[File], options: DeployOptions):
        super().__init__(agent, settings, files, options)
        self.region = aws.resolve_region(settings.options, self.environ)
        self.api = Api(self.region, options.session, options.sleep)
        self.cache = options.cache
        self.package: Package | None = None
        store = session_store(self.files)
        self.session_table: str | None = store["table"] if store and store.get("store") == "dynamodb" else None

    translate = staticmethod(translate_errors)

    def prepare(self) -> aws.Desired:
        options = self.settings.options
        if options.get("package") == "image":
            content, sha = image_content(self.files), None
        else:
            self.package = package_lambda(self.files, options["runtime"], options["architecture"], cache=self.cache)
            content, sha = self.package.content, self.package.code_sha256
        self.desired = aws.desired_state(self.agent, self.settings, region=self.region, content=content,
                                         code_sha256=sha, secrets=self.secrets, session_table=self.session_table)
        return self.desired

    def snapshot(self, *, destroy: bool = False) -> aws.Snapshot:
        image = self.desired is not None and self.desired.package_type == "Image"
        self.warm_state = read_warm(self.api, self.agent.name)  # concurrency.warm_schedule (issue 14)
        snap = read_snapshot(self.api, self.agent.name, image_tag=self.desired.image_tag if image else None,
                             repository=destroy or image, session_table=self.session_table)
        if not destroy and self.desired is not None and self.desired.keep_versions and snap.function is not None:
            snap = read_versions(self.api, self.agent.name, snap)  # issue 14: pruning
        return snap

    def destroy_plan(self, snap: aws.Snapshot) -> DeployPlan:
        plan = aws.plan_destroy(self.agent.name, self.region, snap, self.session_table)
        return DeployPlan(_with_warm(plan, aws_warm.destroy(self.agent.name, self.warm_state),
                                     aws_warm.notes(self.agent.name, self.warm_state)))

    def preflight(self, deploy_plan: DeployPlan) -> None:
        """Refuse before the first call what would fail half-way: also a push without Docker."""
        super().preflight(deploy_plan)
        if any(op.kind == "docker.push_image" for op in deploy_plan.plan.operations):
            check_docker()

    def apply(self, plan: Plan, progress: Progress | None = None) -> dict[str, Any]:
        def keep(name: str) -> str:
            answer = self.api.client("lambda").get_function_configuration(FunctionName=self.agent.name)
            try:
                return answer["Environment"]["Variables"][name]
            except KeyError:
                raise DeployError(f"{name} is neither set in this environment nor on the deployed function any "
                                  "more: set it here and deploy again") from None
        context = Context(api=self.api, secrets=self.secrets.values(),
                          package=self.package.data if self.package else None, keep=keep, files=self.files)
        return Executor(REGISTRY, context, progress).run(plan)

    def outputs(self, snap: aws.Snapshot, results: Mapping[str, Any] | None = None) -> dict[str, Any]:
        out = aws.outputs(self.agent.name, snap, results)
        summary = f"{out['function']} version {out['version']} (alias {out['alias']}) in {self.region}"
        return {"target": "aws", "summary": summary, **out}

    def info(self) -> dict[str, Any]:
        snap = read_snapshot(self.api, self.agent.name)
        function = snap.function
        if function is None or not function.tags.get(aws.TAG_AGENT) == self.agent.name:
            return {"target": "aws", "deployed": False, "region": self.region,
                    "note": "not deployed" if function is None else "a function with this name exists but is not ours"}
        config = function.config
        report = {"target": "aws", "deployed": True, "region": self.region, **self.outputs(snap),
                  "content": function.tags.get(aws.TAG_CONTENT), "code_sha256": config.code_sha256,
                  "runtime": config.runtime, "architecture": config.architecture,
                  "timeout": config.timeout, "memory": config.memory,
                  "reserved_concurrency": function.reserved, "provisioned_concurrency": snap.provisioned or 0,
                  "auth": snap.url.auth_type if snap.url else None}
        report["paused"] = aws.paused(snap)  # issue 14
        if report["paused"]:
            report["summary"] = f"PAUSED (reserved concurrency 0: every request is throttled) {report['summary']}"
        report["details"] = {
            "auth": report["auth"],
            "function": report["function_arn"],
            "code": f"{config.code_sha256} (content {str(report['content'])[:12]})",
            "settings": f"{config.runtime} {config.architecture}, timeout {config.timeout} s, memory "
                        f"{config.memory} MB, concurrency max {function.reserved} warm {snap.provisioned or 0}",
        }
        return report

    # ---- pause / resume (issue 14)
    def pause_plan(self, resume: bool = False) -> Plan:
        """PutFunctionConcurrency 0 and the pause mark, or back to agent.yaml's concurrency (planner.plan_pause)."""
        snap = read_snapshot(self.api, self.agent.name)
        return aws.plan_pause(self.agent.name, self.region, snap, self.settings.concurrency.max,
                              self.settings.concurrency.warm, resume)

    # ---- history (issue 14)
    def history(self) -> History:
        """The published versions, newest first, and the one alias `live` points at: ListVersionsByFunction
        (https://docs.aws.amazon.com/lambda/latest/api/API_ListVersionsByFunction.html) and GetAlias
        (https://docs.aws.amazon.com/lambda/latest/api/API_GetAlias.html)."""
        lam = self.api.client("lambda")
        name = self.agent.name
        function = _or_none(lambda: lam.get_function(FunctionName=name))
        if function is None or not aws.OWNER.on(function.get("Tags"), name):
            return History("version", notes=("not deployed" if function is None else
                                             "a function with this name exists but is not ours",))
        alias = _or_none(lambda: lam.get_alias(FunctionName=name, Name=aws.ALIAS))
        live = alias["FunctionVersion"] if alias else None
        tags = function.get("Tags") or {}
        published = [v for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name)
                     for v in page["Versions"] if v["Version"] != "$LATEST"]
        published.sort(key=lambda v: int(v["Version"]), reverse=True)
        versions = []
        for v in published:
            content, prompt = read_note(v.get("Description"))
            if content is None and v.get("CodeSha256") == tags.get(aws.TAG_CODE):
                # published before the digests were kept in the description: the content tag is on the
                # function ($LATEST), so it is known for the versions running $LATEST's code
                content = tags.get(aws.TAG_CONTENT)
            versions.append(Version(id=v["Version"], created=v.get("LastModified"), live=v["Version"] == live,
                                    content=content, prompt=prompt))
        notes = [] if all(v.prompt for v in versions) else [
            "a version published by an earlier agenthost has no digests in its description: its content hash shows "
            "only where it runs the latest code, its prompt's digest not at all"]
        return History("version", tuple(versions), tuple(notes))

    def rollback(self, history: History, version: Version) -> dict[str, Any]:
        """UpdateAlias `live` -> that version: the URL, permissions and provisioned concurrency are on the
        alias, so they follow (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateAlias.html)."""
        self.api.client("lambda").update_alias(FunctionName=self.agent.name, Name=aws.ALIAS,
                                               FunctionVersion=version.id)
        return {"changed": True}

    # ---- logs (issue 14)
    def log_reader(self, request: str | None = None) -> LogReader:
        """The function's CloudWatch Logs lines (framework/platforms/aws/logs.py)."""
        from framework.platforms.aws.logs import reader

        return reader(self.api, self.agent.name, request)

    # ---- warm_schedule (issue 14)

    warm_state: aws_warm.WarmState = aws_warm.WarmState()

    def plan(self, snap: aws.Snapshot) -> DeployPlan:
        """The platform's plan, then the warm-up schedule and its role (after the alias they invoke)."""
        deploy_plan = super().plan(snap)
        desired = self.desired
        extra = aws_warm.plan(self.agent.name, self.region, self.settings.concurrency.warm_schedule,
                              desired.tag_list, snap, self.warm_state)
        return DeployPlan(_with_warm(deploy_plan.plan, extra, ()), deploy_plan.missing_secrets)

    # ---- invoke --deployed (issue 14)
    def invoke_headers(self, deployed: Mapping[str, Any], url: str, body: bytes,
                       headers: Mapping[str, str]) -> dict[str, str]:
        """A function URL with AuthType AWS_IAM takes a request signed with SigV4 for the service `lambda`
        (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html), credentials from boto3's standard
        chain; AuthType NONE: nothing to add."""
        if deployed.get("auth") != "AWS_IAM":
            return {}
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self.api.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), "lambda", self.region).add_auth(request)
        return {k: v for k, v in request.headers.items() if k.lower() not in {h.lower() for h in headers}}
