"""No configuration file can be fetched over HTTP from a running app: every path reaches the
function (or the platform's 404), never a file of the app's folder.

On the platforms themselves: a Lambda function URL only invokes the handler; functions-framework
routes every path to the function (Flask's static route exists only when the source has a
`static/` folder, which the build never writes); the Azure Functions host answers only the
function's route (/api/agent); Vercel is checked with its own build in test_vercel_build.py. Here
the same question is asked of each target served locally (`python -m framework serve`) with the
contract agent.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import NASTY_PROMPT
from tests.functional.apps import serve_cli

pytestmark = pytest.mark.slow

FILES = ("/agent.json", "/agent_runtime.py", "/lib/agent.mjs", "/static/agent.json", "/api/agent.json",
         "/api/agent_runtime.py")
FIRST_LINE = NASTY_PROMPT.split("\n", 1)[0]  # kept as is by JSON (no quote or backslash)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module", params=("aws", "gcp", "azure", "vercel"))
def origin(request, contract_build, fake_model) -> str:
    env = {"OPENAI_BASE_URL": fake_model.url, "OPENAI_API_KEY": "test-key-not-a-real-secret-files"}
    with serve_cli(request.param, contract_build.parent / "agent.yaml", contract_build, env) as url:
        parts = urllib.parse.urlsplit(url)
        yield f"{parts.scheme}://{parts.netloc}"


@pytest.mark.parametrize("path", FILES)
def test_a_get_for_a_file_of_the_app_never_returns_its_configuration(origin, path):
    status, body = get(origin + path)
    assert b"system_prompt" not in body and FIRST_LINE.encode() not in body, (status, body[:200])
    assert status != 200, body[:200]
