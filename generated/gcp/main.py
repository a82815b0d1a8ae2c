"""Google Cloud Functions (2nd gen) entry point: agent_handler. Generated; do not edit.

functions-framework serves any plain function as an HTTP function, so the decorator
import is left out: one import less at cold start.
"""

import os

from agent_runtime import Agent

# Cold start: configuration and model client are built once per instance, never per request.
# Cloud Run functions stream a response whose body is an iterator (Flask streams generators).
AGENT = Agent.from_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.json"), can_stream=True)


def agent_handler(request):
    headers = {k.lower(): v for k, v in request.headers.items()}
    # a UI message stream's body is a generator: it sends ": keep-alive" while a tool runs
    # path: <URL>/v1/chat/completions and <URL>/v1/models are the OpenAI-compatible endpoint
    reply = AGENT.handle(request.method, headers, request.get_data(cache=False),
                         request_id=headers.get("function-execution-id"), path=request.path)
    return reply.body, reply.status, reply.headers
