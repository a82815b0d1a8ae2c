"""AWS Lambda entry point (handler: lambda_function.lambda_handler). Generated; do not edit."""

import base64
import json
import os

from agent_runtime import Agent

# Cold start: configuration and model client are built once per instance, never per request.
AGENT = Agent.from_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.json"))


def _request(event):
    """(method, lower-case headers, body bytes) from a function URL / HTTP API (2.0), REST API (1.0) or direct event."""
    if "requestContext" in event and "http" in event["requestContext"]:
        method = event["requestContext"]["http"]["method"]
    elif "httpMethod" in event:
        method = event["httpMethod"]
    else:  # direct invocation: the event itself is the JSON body
        return "POST", {}, json.dumps(event).encode("utf-8")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    return method, headers, raw


def lambda_handler(event, context):
    method, headers, body = _request(event)
    reply = AGENT.handle(method, headers, body, remaining=context.get_remaining_time_in_millis() / 1000.0)
    return {
        "statusCode": reply.status,
        "headers": reply.headers,
        "body": reply.body.decode("utf-8"),
        "isBase64Encoded": False,
    }
