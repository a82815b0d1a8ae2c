"""Azure Functions entry point (Python v2 programming model), route /api/agent. Generated; do not edit."""

import os

import azure.functions as func

from agent_runtime import Agent

# Cold start: configuration and model client are built once per instance, never per request.
# Azure streams Python responses only through its FastAPI extension, which is not generated.
AGENT = Agent.from_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.json"), no_stream=(
    "Azure Functions does not stream this agent's answers: send the request without \"stream\": true"))

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# Every method is routed here so that the function itself answers 405 (the host would answer 404).
# {*rest}: a catch-all, which matches nothing too, so /api/agent and the OpenAI-compatible endpoint
# under it (/api/agent/v1/chat/completions, /api/agent/v1/models) reach this one function.
@app.route(route="agent/{*rest}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def agent(req: func.HttpRequest, context: func.Context = None) -> func.HttpResponse:
    # context: the worker passes the invocation's (its id goes in the usage line); None when called directly
    headers = {k.lower(): v for k, v in req.headers.items()}
    reply = AGENT.handle(req.method, headers, req.get_body(), request_id=getattr(context, "invocation_id", None),
                         path=req.url)
    return func.HttpResponse(body=reply.body, status_code=reply.status, headers=reply.headers)
