"""AWS Lambda entry point (handler: lambda_function.lambda_handler). Generated; do not edit."""

import base64
import json
import os

from agent_runtime import Agent

CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.json")


def _resolve_secrets(refs):
    """Read referenced secrets (Secrets Manager ARN or ssm:/name) into the environment, once.

    boto3 ships with Lambda's Python runtime; it is imported only when a secret is referenced.
    """
    missing = {name: ref for name, ref in refs.items() if not os.environ.get(name)}
    if not missing:
        return
    import boto3

    for name, ref in sorted(missing.items()):
        if ref.startswith("ssm:"):
            answer = boto3.client("ssm").get_parameter(Name=ref[4:], WithDecryption=True)
            os.environ[name] = answer["Parameter"]["Value"]
        else:
            os.environ[name] = boto3.client("secretsmanager").get_secret_value(SecretId=ref)["SecretString"]


# Cold start: secrets, configuration and model client are set up once per instance, never per request.
with open(CONFIG_FILE, encoding="utf-8") as _handle:
    _CONFIG = json.load(_handle)
_resolve_secrets(_CONFIG.get("secret_refs", {}))
# A function URL in BUFFERED mode sends one body: Lambda streams natively only on Node.js, which is
# what the build generates instead when agent.yaml asks for streaming.
AGENT = Agent(_CONFIG, no_stream=(
    "this agent is built without streaming on AWS: set `stream: true` in agent.yaml to build the "
    "streaming Lambda, or send the request without \"stream\": true"))


def _request(event):
    """(method, lower-case headers, body bytes, path) from a function URL / HTTP API (2.0), REST API (1.0)
    or direct event."""
    if not isinstance(event, dict):  # direct invocation with a JSON array, string or number
        return "POST", {}, json.dumps(event).encode("utf-8"), None
    if "requestContext" in event and "http" in event["requestContext"]:
        method, path = event["requestContext"]["http"]["method"], event.get("rawPath")
    elif "httpMethod" in event:
        method, path = event["httpMethod"], event.get("path")
    else:  # direct invocation: the event itself is the JSON body
        return "POST", {}, json.dumps(event).encode("utf-8"), None
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    return method, headers, raw, path


# concurrency.warm_schedule: the EventBridge Scheduler schedule invokes the function directly with this
# event. A function URL request always has requestContext.http, so only a caller allowed
# lambda:InvokeFunction (the schedule's role) can send it; it is answered without a model call.
WARM_EVENT = {"agent-framework": "warmup"}


def lambda_handler(event, context):
    method, headers, body, path = _request(event)
    # path: <URL>/v1/chat/completions and <URL>/v1/models are the OpenAI-compatible endpoint
    reply = AGENT.warm_up("aws-scheduler") if event == WARM_EVENT else AGENT.handle(method, headers, body, remaining=context.get_remaining_time_in_millis() / 1000.0,
                         request_id=getattr(context, "aws_request_id", None), path=path)
    return {
        "statusCode": reply.status,
        "headers": reply.headers,
        "body": reply.body.decode("utf-8"),
        "isBase64Encoded": False,
    }
