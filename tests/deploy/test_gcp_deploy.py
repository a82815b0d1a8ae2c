"""Deploy, plan and destroy on Google Cloud Functions 2nd gen against a stateful local fake of the
functions v2 / Cloud Run v2 REST APIs, through the real google-cloud clients (endpoint override)."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import functions_v2

from framework.config.validate import validate_file
from framework.deploy import commands
from framework.deploy.versions import read_note
from framework.errors import DeployError
from framework.platforms.gcp import planner as gcp
from framework.platforms.gcp.api import ATTEMPTS
from tests.deploy import gcp_fixtures
from tests.deploy.gcp_fixtures import (
    AGENT,
    CLEAN_DEPLOY,
    FUNCTION,
    PROJECT,
    REGION,
    SERVICE,
    P,
    calls,
    deploy,
    make_deployer,
    write_agent,
)
from tests.deploy.helpers import FAKE_KEY

gcp_server, gcp_env = gcp_fixtures.gcp_server, gcp_fixtures.gcp_env  # the fixtures, used by name


def last(fake, method: str, suffix: str = ""):
    return [r for r in fake.requests if r.method == method and r.path.endswith(suffix)][-1]


def invokers(fake) -> list[str]:
    policy = fake.policy(SERVICE) or {}
    return [m for b in policy.get("bindings", []) if b["role"] == gcp.INVOKER for m in b["members"]]


def test_first_deploy_creates_the_function_and_public_access(gcp_env, tmp_path):
    fake = gcp_env
    agent = write_agent(tmp_path)
    result = deploy(agent)
    assert calls(fake) == CLEAN_DEPLOY
    assert result.apis == ["generateUploadUrl + PUT", "CreateFunction", "getIamPolicy + setIamPolicy"]
    function = fake.function(FUNCTION)
    assert function["state"] == 1  # ACTIVE
    assert function["buildConfig"]["runtime"] == "python312"
    assert function["buildConfig"]["entryPoint"] == "agent_handler"
    service = function["serviceConfig"]
    assert (service["timeoutSeconds"], service["availableMemory"], service["maxInstanceCount"]) == (300, "1Gi", 10)
    assert service.get("minInstanceCount", 0) == 0 and service["maxInstanceRequestConcurrency"] == 1
    assert service["ingressSettings"] == 1 and service["allTrafficOnLatestRevision"] is True
    env = service["environmentVariables"]
    assert env.pop("OPENAI_API_KEY") == FAKE_KEY  # chosen: injected from the env
    content, prompt = read_note(env.pop(gcp.VERSION_ENV))  # for history: this revision's digests
    assert env == {} and prompt == validate_file(agent).agent.prompt_digest
    assert content is not None and content.startswith(function["labels"][gcp.LABEL_CONTENT])
    assert "availableCpu" not in last(fake, "POST", "/functions").text  # 1 GiB: the platform's default vCPU
    labels = function["labels"]
    assert labels[gcp.LABEL_AGENT] == "support-bot" and len(labels[gcp.LABEL_CONTENT]) == 63
    assert invokers(fake) == ["allUsers"]
    assert result.outputs["url"] == f"https://{REGION}-{PROJECT}.cloudfunctions.net/support-bot"
    assert result.outputs["target"] == "gcp" and "support-bot revision" in result.outputs["summary"]

    # the uploaded zip is the generated app, byte-reproducible, sent without an Authorization header
    put = last(fake, "PUT")
    assert "authorization" not in {k.lower() for k in put.headers}
    assert put.headers.get("content-type", put.headers.get("Content-Type")) == "application/zip"
    with zipfile.ZipFile(io.BytesIO(put.body)) as archive:
        assert sorted(archive.namelist()) == ["agent.json", "agent_runtime.py", "main.py", "requirements.txt"]
    deployer = make_deployer(tmp_path / "agent.yaml")
    deployer.prepare()
    assert deployer.package == put.body
    assert labels[gcp.LABEL_CONTENT] == deployer.desired.content[:63]
    # API calls carry the REST transport's query; operation polls do not
    assert all(r.query.get("$alt") == ["json;enum-encoding=int"] for r in fake.requests
               if r.path.startswith("/v2/") and "/operations/" not in r.path)


def test_second_deploy_makes_no_mutating_call(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    deploy(agent)
    gcp_env.clear_requests()
    result = deploy(agent)
    assert calls(gcp_env) == []
    assert not result.plan.has_changes and "No changes" in result.text
    assert result.outputs["url"] and "revision support-bot-00001" in result.outputs["summary"]


def test_plan_and_deploy_through_the_commands(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    output = str(tmp_path / "generated")
    assert commands.plan(str(agent), "gcp", output, "json", stdout=out, stderr=err, sleep=lambda s: None) == 2
    assert calls(gcp_env) == []
    out = io.StringIO()
    assert commands.deploy(str(agent), "gcp", output, "json", True, stdout=out, stderr=err,
                           sleep=lambda s: None) == 0
    assert calls(gcp_env) == CLEAN_DEPLOY
    out = io.StringIO()
    assert commands.plan(str(agent), "gcp", output, "text", stdout=out, stderr=err, sleep=lambda s: None) == 0
    assert "No changes" in out.getvalue()


def test_prompt_only_change_uploads_and_patches_the_source(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    deploy(agent)
    gcp_env.clear_requests()
    write_agent(tmp_path, AGENT.replace("helpful support", "terse support"))
    planned = deploy(agent, apply=False)
    assert planned.apis == ["generateUploadUrl + PUT", "UpdateFunction (PATCH)"]
    assert calls(gcp_env) == []  # plan reads only (the deployed source is downloaded for the diff)
    assert "-You are a helpful support assistant." in planned.text
    assert "+You are a terse support assistant." in planned.text
    assert " Answer briefly." in planned.text
    result = deploy(agent)
    assert calls(gcp_env) == [f"POST {P}/functions:generateUploadUrl", "PUT", f"PATCH {P}/functions/support-bot"]
    patch = last(gcp_env, "PATCH")
    assert patch.query["updateMask"] == ["buildConfig.source,serviceConfig.environmentVariables,labels"]
    body = json.loads(patch.body)
    assert set(body) == {"buildConfig", "serviceConfig", "labels"}  # name: in the path
    assert set(body["buildConfig"]) == {"source"}
    assert set(body["serviceConfig"]) == {"environmentVariables"}  # the new prompt's digest, for history
    assert "revision support-bot-00002" in result.outputs["summary"]


def test_concurrency_only_change_patches_instances_only(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    deploy(agent)
    gcp_env.clear_requests()
    write_agent(tmp_path, AGENT.replace("max: 10", "max: 20").replace("warm: 0", "warm: 2"))
    result = deploy(agent)
    assert result.apis == ["UpdateFunction (PATCH)"]
    assert calls(gcp_env) == [f"PATCH {P}/functions/support-bot"]
    patch = last(gcp_env, "PATCH")
    assert patch.query["updateMask"] == ["serviceConfig.minInstanceCount,serviceConfig.maxInstanceCount"]
    assert json.loads(patch.body) == {"serviceConfig": {"minInstanceCount": 2, "maxInstanceCount": 20}}
    changes = {c.field: (c.old, c.new) for r in result.plan.resources for c in r.changes}
    assert changes == {"warm instances (min)": (0, 2), "max instances": (10, 20)}
    service = gcp_env.function(FUNCTION)["serviceConfig"]
    assert (service["minInstanceCount"], service["maxInstanceCount"]) == (2, 20)


def test_memory_needing_more_cpu_sets_it_and_resets_it_when_smaller(gcp_env, tmp_path):
    agent = write_agent(tmp_path, AGENT.replace("memory: 1024", "memory: 8192"))
    deploy(agent)
    service = gcp_env.function(FUNCTION)["serviceConfig"]
    assert (service["availableMemory"], service["availableCpu"]) == ("8Gi", "2")
    gcp_env.clear_requests()
    write_agent(tmp_path)
    deploy(agent)
    patch = last(gcp_env, "PATCH")
    assert patch.query["updateMask"] == ["serviceConfig.availableMemory,serviceConfig.availableCpu"]
    assert json.loads(patch.body)["serviceConfig"] == {"availableMemory": "1Gi"}  # cpu: back to the default
    assert gcp_env.function(FUNCTION)["serviceConfig"]["availableCpu"] == "0.5833"
    gcp_env.clear_requests()
    assert not deploy(agent).plan.has_changes


def test_request_concurrency_goes_with_a_whole_vcpu(gcp_env, tmp_path):
    body = AGENT.replace("memory: 1024", "memory: 2048").replace("region: us-central1",
                                                                 "region: us-central1\n        request_concurrency: 20")
    deploy(write_agent(tmp_path, body))
    service = gcp_env.function(FUNCTION)["serviceConfig"]
    assert (service["maxInstanceRequestConcurrency"], service["availableCpu"], service["availableMemory"]) \
        == (20, "1", "2Gi")


def test_private_agent_has_no_public_invoker_until_it_becomes_public(gcp_env, tmp_path):
    agent = write_agent(tmp_path, AGENT + "    public: false\n")
    deploy(agent)
    assert f"POST {P}/services/support-bot:setIamPolicy" not in calls(gcp_env)
    assert invokers(gcp_env) == []
    # someone else's binding on the service is kept through every change
    gcp_env.state.services[SERVICE]["bindings"] = [{"role": gcp.INVOKER, "members": ["user:ops@example.com"]}]
    gcp_env.clear_requests()
    write_agent(tmp_path)
    assert deploy(agent).apis == ["getIamPolicy + setIamPolicy"]
    assert calls(gcp_env) == [f"POST {P}/services/support-bot:setIamPolicy"]
    assert sorted(invokers(gcp_env)) == ["allUsers", "user:ops@example.com"]
    sent = json.loads(last(gcp_env, "POST", ":setIamPolicy").body)["policy"]
    assert base64.b64decode(sent["etag"]) == b"etag-1"  # the etag read travels back
    write_agent(tmp_path, AGENT + "    public: false\n")
    result = deploy(agent)
    assert [r.action for r in result.plan.resources if r.operations] == ["delete"]
    assert invokers(gcp_env) == ["user:ops@example.com"]


def _converge(fake, agent, n: int) -> None:
    fake.fail_after(n)
    with pytest.raises(DeployError, match="injected interruption"):
        deploy(agent)
    fake.fail_after(None)
    deploy(agent)
    fake.clear_requests()
    assert not deploy(agent).plan.has_changes and calls(fake) == []


def test_interrupted_update_converges_for_every_n(gcp_env, tmp_path):
    agent = write_agent(tmp_path, AGENT + "    public: false\n")
    changed = AGENT.replace("helpful", "terse").replace("max: 10", "max: 30")
    for n in range(3):  # upload (2 requests), PATCH, setIamPolicy
        gcp_env.reset()
        write_agent(tmp_path, AGENT + "    public: false\n")
        deploy(agent)
        write_agent(tmp_path, changed)
        _converge(gcp_env, agent, n)
        function = gcp_env.function(FUNCTION)
        assert function["serviceConfig"]["maxInstanceCount"] == 30 and invokers(gcp_env) == ["allUsers"]


class Killed(Exception):
    pass


def test_killed_while_the_operation_runs_is_finished_by_the_next_deploy(gcp_env, tmp_path):
    agent = write_agent(tmp_path)

    def killed(seconds: float) -> None:
        raise Killed("the process died while waiting on the operation")
    with pytest.raises(Killed):
        deploy(agent, sleep=killed)
    assert gcp_env.function(FUNCTION)["state"] == 3  # DEPLOYING: nobody polled
    gcp_env.clear_requests()
    result = deploy(agent)  # reads the function, waits for the operation, then only grants access
    assert result.apis == ["getIamPolicy + setIamPolicy"]
    assert calls(gcp_env) == [f"POST {P}/services/support-bot:setIamPolicy"]


def test_failed_build_is_reported_and_the_next_deploy_sends_the_source_again(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    gcp_env.fail_build("Build failed: could not find a version that satisfies openai")
    with pytest.raises(DeployError, match="creating support-bot failed: Build failed: could not find"):
        deploy(agent)
    assert gcp_env.function(FUNCTION)["state"] == 2  # FAILED, labelled with the content it did not build
    gcp_env.clear_requests()
    result = deploy(agent)
    assert result.apis == ["generateUploadUrl + PUT", "UpdateFunction (PATCH)", "getIamPolicy + setIamPolicy"]
    assert "state: FAILED -> redeployed" in result.text
    assert last(gcp_env, "PATCH").query["updateMask"] == ["buildConfig.source"]
    assert gcp_env.function(FUNCTION)["state"] == 1 and invokers(gcp_env) == ["allUsers"]
    gcp_env.clear_requests()
    assert not deploy(agent).plan.has_changes and calls(gcp_env) == []


def test_create_conflict_is_a_clear_error(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    deployer = make_deployer(agent)
    deployer.prepare()
    plan = deployer.plan(deployer.snapshot())
    deploy(agent)  # another deploy got there first
    with pytest.raises(DeployError, match="created meanwhile"), deployer.errors():
        deployer.apply(plan.plan)


def test_429_and_503_are_retried_honouring_retry_after(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    gcp_env.fail_next(429, 2, retry_after="7")
    gcp_env.fail_next(503, 1)
    result = deploy(agent)
    assert result.sleeps[:3] == [7.0, 7.0, 2.0]  # Retry-After twice, then exponential backoff
    assert calls(gcp_env) == CLEAN_DEPLOY
    statuses = [r.path for r in gcp_env.requests[:4]]
    assert statuses[0] == statuses[3] == f"{P}/functions/support-bot"  # the same read, tried four times


def test_error_after_the_last_try_is_clear(gcp_env, tmp_path):
    gcp_env.fail_next(503, ATTEMPTS)
    with pytest.raises(DeployError) as caught:
        deploy(write_agent(tmp_path))
    message = str(caught.value)
    assert f"after {ATTEMPTS} tries" in message and "HTTP 503" in message and "\n" not in message
    assert calls(gcp_env) == []


def _everything_sent(fake) -> str:
    return "\n".join(f"{r.method} {r.path} {r.query} {r.headers} {r.text}" for r in fake.requests)


def test_secret_from_secret_manager_never_travels(gcp_env, tmp_path):
    body = AGENT + ("    secrets:\n      OPENAI_API_KEY:\n        gcp: projects/my-project-123/secrets/openai-key\n"
                    "      TOOL_TOKEN:\n        gcp: projects/other-proj/secrets/tool/versions/3\n")
    agent = write_agent(tmp_path, body)
    result = deploy(agent)
    assert FAKE_KEY not in _everything_sent(gcp_env)
    assert FAKE_KEY not in result.text + json.dumps(result.outputs)
    assert all(FAKE_KEY.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    service = gcp_env.function(FUNCTION)["serviceConfig"]
    assert set(service["environmentVariables"]) == {gcp.VERSION_ENV}  # the key is not among them
    assert service["secretEnvironmentVariables"] == [
        {"key": "OPENAI_API_KEY", "projectId": PROJECT, "secret": "openai-key", "version": "latest"},
        {"key": "TOOL_TOKEN", "projectId": "other-proj", "secret": "tool", "version": "3"}]
    assert "secretAccessor" in result.text
    gcp_env.clear_requests()
    assert not deploy(agent).plan.has_changes and calls(gcp_env) == []


def test_injected_secret_only_reaches_the_function_body(gcp_env, tmp_path, monkeypatch):
    agent = write_agent(tmp_path)
    result = deploy(agent)
    carrying = [f"{r.method} {r.path}" for r in gcp_env.requests if FAKE_KEY in r.text]
    assert carrying == [f"POST {P}/functions"]  # the user chose injection from the environment
    assert all(FAKE_KEY not in f"{r.query} {r.headers}" for r in gcp_env.requests)
    assert FAKE_KEY not in result.text + json.dumps(result.outputs)
    assert "(value hidden)" in result.text
    # a new value: shown hidden, sent once more in the PATCH; not set here: the deployed value is kept
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY + "-2")
    rotated = deploy(agent)
    assert "environment OPENAI_API_KEY: (value hidden) -> (new value hidden)" in rotated.text
    assert last(gcp_env, "PATCH").query["updateMask"] == ["serviceConfig.environmentVariables"]
    monkeypatch.delenv("OPENAI_API_KEY")
    gcp_env.clear_requests()
    kept = deploy(agent)
    assert not kept.plan.has_changes and "keeps its current value" in kept.text and calls(gcp_env) == []


def test_a_secret_not_set_here_keeps_its_deployed_value_when_another_changes(gcp_env, tmp_path, monkeypatch):
    agent = write_agent(tmp_path, AGENT + "    secrets:\n      EXTRA_TOKEN: {}\n")
    monkeypatch.setenv("EXTRA_TOKEN", "extra-value-1")
    deploy(agent)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("EXTRA_TOKEN", "extra-value-2")
    result = deploy(agent)
    assert "environment EXTRA_TOKEN: (value hidden) -> (new value hidden)" in result.text
    assert "OPENAI_API_KEY is not set in this environment" in result.text
    env = dict(gcp_env.function(FUNCTION)["serviceConfig"]["environmentVariables"])
    env.pop(gcp.VERSION_ENV)
    assert env == {"EXTRA_TOKEN": "extra-value-2", "OPENAI_API_KEY": FAKE_KEY}  # read back from the function, kept


def test_cloud_error_messages_are_scrubbed(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    gcp_env.fail_next(400, 1, message=f"invalid environment value {FAKE_KEY}")  # an error echoing the value
    with pytest.raises(DeployError) as caught:
        deploy(agent)
    assert FAKE_KEY not in str(caught.value) and "***" in str(caught.value)


def test_access_token_goes_to_the_api_but_not_to_the_signed_upload(gcp_env, tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.test-token")
    deploy(write_agent(tmp_path))
    for request in gcp_env.requests:
        auth = {k.lower(): v for k, v in request.headers.items()}.get("authorization")
        if request.path.startswith("/upload/"):
            assert auth is None
        else:
            assert auth == "Bearer ya29.test-token"


def test_region_and_project_are_required(gcp_env, tmp_path, monkeypatch):
    body = AGENT.replace("        project: my-project-123\n", "")
    with pytest.raises(DeployError, match="no Google Cloud project"):
        make_deployer(write_agent(tmp_path, body))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project-1")
    assert make_deployer(write_agent(tmp_path, body)).project == "env-project-1"
    with pytest.raises(DeployError, match="no Google Cloud region"):
        make_deployer(write_agent(tmp_path, AGENT.replace("        region: us-central1\n", "")))


def test_info_reports_the_deployed_function(gcp_env, tmp_path):
    agent = write_agent(tmp_path)
    deployer = make_deployer(agent)
    assert deployer.info()["deployed"] is False
    deploy(agent)
    info = make_deployer(agent).info()
    assert info["deployed"] is True and info["target"] == "gcp" and info["url"].startswith("https://")
    assert info["details"]["state"] == "ACTIVE" and "python312" in info["details"]["settings"]


def test_fake_answers_the_real_client_like_the_api(gcp_env):
    """The fake's contract as seen by the SDK: 404 NotFound, 409 Conflict on create, operations."""
    from google.api_core import exceptions

    client = functions_v2.FunctionServiceClient(transport="rest", client_options={"api_endpoint": gcp_env.url},
                                                credentials=AnonymousCredentials())
    with pytest.raises(exceptions.NotFound):
        client.get_function(name=FUNCTION)
    with pytest.raises(exceptions.BadRequest):  # no uploaded source
        client.create_function(request={"parent": FUNCTION.rsplit("/functions/", 1)[0], "function_id": "support-bot",
                                        "function": {"build_config": {"runtime": "python312", "entry_point": "x"}}})
    gcp_env.put_function(FUNCTION, {"buildConfig": {"runtime": "python312", "entryPoint": "x"}})
    with pytest.raises(exceptions.Conflict):
        client.create_function(request={"parent": FUNCTION.rsplit("/functions/", 1)[0], "function_id": "support-bot",
                                        "function": {"build_config": {"runtime": "python312", "entry_point": "x"}}})
    operation = client.delete_function(name=FUNCTION)
    assert not operation.operation.done
    polled = client.get_operation(request={"name": operation.operation.name})
    polled = client.get_operation(request={"name": operation.operation.name})
    assert polled.done
    with pytest.raises(exceptions.NotFound):
        client.get_function(name=FUNCTION)


def test_without_any_google_credentials_the_error_says_how_to_sign_in(monkeypatch, tmp_path):
    from framework.errors import DeployError
    from framework.platforms.gcp import api as gcp_api

    for name in ("GOOGLE_OAUTH_ACCESS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "GCP_FUNCTIONS_ENDPOINT",
                 "CLOUDSDK_CONFIG", "GCE_METADATA_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud application-default credentials here
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # the metadata server is not reachable either
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    with pytest.raises(DeployError, match="no Google Cloud credentials found"):
        with gcp_api.translate_errors():
            gcp_api.credentials({})


@pytest.mark.parametrize(("base", "authorized"), [("http://127.0.0.1:8085", False),
                                                  ("https://logging.googleapis.com", True)])
def test_a_rest_session_carries_the_credentials_except_to_a_plain_http_fake(base, authorized):
    """Api.session_for: what Logging, Firestore's admin API and Cloud Scheduler are called with."""
    from google.auth.transport.requests import AuthorizedSession

    from framework.platforms.gcp.api import Api

    api = Api({"GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.test-token"})
    session = api.session_for(base)
    assert isinstance(session, AuthorizedSession) is authorized
    assert session is api.http or session.credentials is api.credentials
    assert api.credentials.token == "ya29.test-token" and api.credentials is api.credentials  # found once
