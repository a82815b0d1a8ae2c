"""Deploy, plan and destroy on Azure Functions against a local fake ARM + Kudu server
(tests/fakes/azure_server.py), through the real azure-mgmt-web client and real HTTP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from framework.cli import main
from framework.errors import DeployError
from framework.platforms.azure import planner as azure
from tests.deploy import azure_fixtures
from tests.deploy.azure_fixtures import AGENT, CLEAN_DEPLOY, GROUP, PREMIUM, STORAGE, SUB, TOKEN, run, write_agent
from tests.deploy.helpers import FAKE_KEY, outputs_of_every_command

azure_server = azure_fixtures.azure_server  # the session's fake server, and a clean one per test
azure_env = azure_fixtures.azure_env


def key(name: str = "support-bot") -> tuple[str, str, str]:
    return (SUB.lower(), GROUP.lower(), name.lower())


def settings(fake, name: str = "support-bot") -> dict[str, str]:
    return fake.settings[key(name)]


def test_first_deploy_creates_what_the_readme_promises(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    result = run("deploy", agent, fmt="json")
    assert result.code == 0
    assert fake.mutating == CLEAN_DEPLOY
    outputs = json.loads(result.stdout)
    assert outputs["target"] == "azure" and outputs["changed"] is True
    assert outputs["url"] == "https://support-bot.azurewebsites.net/api/agent"
    assert outputs["summary"].startswith("support-bot (Flex Consumption) in westeurope")

    plan = fake.plans[key("support-bot-plan")]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["tags"] == {azure.TAG_AGENT: "support-bot"}
    site = fake.sites[key()]
    assert site["tags"] == {azure.TAG_AGENT: "support-bot"} and site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "SystemAssigned"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["scaleAndConcurrency"] == {"maximumInstanceCount": 10, "instanceMemoryMB": 2048, "alwaysReady": []}
    assert config["deployment"]["storage"]["value"] == STORAGE
    values = settings(fake)
    assert values["OPENAI_API_KEY"] == FAKE_KEY  # copied from the deploying environment
    assert values[azure.SETTING_PACKAGE] == outputs["package_sha256"]
    assert "agent.json=" in values[azure.SETTING_FILES]
    assert values["AzureWebJobsStorage__accountName"] == "agentsdeploy"  # the host's storage, identity-based
    assert not set(values) & {"FUNCTIONS_WORKER_RUNTIME", "WEBSITE_RUN_FROM_PACKAGE"}  # refused on Flex

    publish = [r for r in fake.requests if r.path.endswith("/api/publish")]
    assert len(publish) == 1 and publish[0].query["RemoteBuild"] == ["true"]
    assert publish[0].headers["content-type"] == "application/zip"
    assert publish[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert fake.deployments["support-bot"][-1]["status"] == 4
    shipped = zipfile.ZipFile(io.BytesIO(fake.packages["support-bot"]))
    assert sorted(shipped.namelist()) == ["agent.json", "agent_runtime.py", "function_app.py", "host.json",
                                          "requirements.txt"]
    assert "helpful support" in json.loads(shipped.read("agent.json"))["system_prompt"]
    # every ARM call carried the api-version and the token
    assert all("api-version" in r.query for r in fake.requests if not r.path.startswith("/scm/"))
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in fake.requests)


def test_second_deploy_makes_no_mutating_call(azure_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    azure_env.clear()
    result = run("deploy", agent)
    assert azure_env.mutating == []
    assert "No changes" in result.stdout and "Up to date: support-bot" in result.stdout
    assert run("plan", agent).code == 0 and azure_env.mutating == []


def test_prompt_change_publishes_and_records_nothing_else(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    run("deploy", agent)
    settings(fake)["USER_SETTING"] = "kept"  # the user's own setting, added in the portal
    write_agent(tmp_path, AGENT.replace("helpful support", "terse support"))
    planned = run("plan", agent)
    assert planned.code == 2
    assert "file agent.json (prompt, model, settings): " in planned.stdout and "package sha256:" in planned.stdout
    assert "function_app.py" not in planned.stdout
    apis = [op["kind"] for r in json.loads(run("plan", agent, fmt="json").stdout)["resources"]
            for op in r["operations"]]
    assert apis == ["blob.put", "kudu.publish", "appsettings.merge"]  # the package kept first (issue 14)
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == ["POST kudu /api/publish", "PUT sites/support-bot/config/appsettings"]
    assert "terse support" in json.loads(fake.deployed_file("support-bot", "agent.json"))["system_prompt"]
    assert settings(fake)["USER_SETTING"] == "kept"


def test_concurrency_change_touches_only_the_site(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    run("deploy", agent)
    write_agent(tmp_path, AGENT.replace("max: 10", "max: 40").replace("warm: 0", "warm: 2"))
    result = run("plan", agent)
    assert "max instances: 10 -> 40" in result.stdout and "always ready: 0 -> 2" in result.stdout
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == ["PATCH sites/support-bot"]
    scale = fake.sites[key()]["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == 40 and scale["alwaysReady"] == [{"name": "http", "instanceCount": 2}]
    assert fake.deployments["support-bot"][-1]["id"] == fake.deployments["support-bot"][0]["id"]  # not republished


def test_premium_plan_uses_zipdeploy_and_elastic_settings(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path, PREMIUM)
    outputs = json.loads(run("deploy", agent, fmt="json").stdout)
    assert fake.mutating == ["PUT serverfarms/support-bot-plan", "PUT sites/support-bot", "POST kudu /api/zipdeploy",
                             "PUT sites/support-bot/config/appsettings"]
    assert outputs["plan"] == "Elastic Premium EP1"
    plan = fake.plans[key("support-bot-plan")]
    assert plan["sku"] == {"name": "EP1", "tier": "ElasticPremium", "family": "EP"} and plan["kind"] == "elastic"
    assert plan["properties"]["maximumElasticWorkerCount"] == 10
    assert fake.web[key()] == {"linuxFxVersion": "Python|3.11", "minimumElasticInstanceCount": 1,
                               "functionAppScaleLimit": 10}
    values = settings(fake)
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python" and values["SCM_DO_BUILD_DURING_DEPLOYMENT"] == "true"
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == []
    write_agent(tmp_path, PREMIUM.replace("max: 10", "max: 20").replace("warm: 0", "warm: 3"))
    run("deploy", agent)
    assert fake.mutating == ["PUT serverfarms/support-bot-plan", "PATCH sites/support-bot/config/web"]
    assert fake.web[key()]["minimumElasticInstanceCount"] == 3
    assert fake.plans[key("support-bot-plan")]["properties"]["maximumElasticWorkerCount"] == 20


def test_an_unfinished_deployment_is_waited_for(azure_env, tmp_path):
    """A deployment still running (e.g. left by a killed deploy): the next publish gets 409, waits, retries."""
    fake = azure_env
    agent = write_agent(tmp_path)
    fake.kill_after(3)  # the publish is accepted, the record is not written
    with pytest.raises(DeployError):
        run("deploy", agent, poll_interval=0)
    fake.kill_after(None)
    fake.deployments["support-bot"].append({**fake.deployments["support-bot"][-1], "id": "stuck", "status": 0,
                                            "complete": False})
    assert run("deploy", agent).code == 0
    publishes = [r for r in fake.requests if r.path.endswith("/api/publish")]
    assert fake.deployments["support-bot"][-1]["status"] == 4
    assert len(publishes) == 3  # the first deploy's, then 409 while "stuck" runs, then accepted


def test_throttling_and_unavailability_are_retried(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    fake.fail(429, count=2, retry_after="0", match=lambda method, path: method == "PUT" and "/sites/" in path)
    fake.fail(503, count=2, retry_after="0", match=lambda method, path: path.endswith("/api/publish"))
    fake.fail(503, count=1, match=lambda method, path: path.endswith("/appsettings/list"))
    assert run("deploy", agent).code == 0
    puts = [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/sites/support-bot")]
    publishes = [r for r in fake.requests if r.path.endswith("/api/publish")]
    assert len(puts) == 3 and len(publishes) == 3
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == []


def test_a_clear_error_after_the_last_try(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    fake.fail(503, count=50, retry_after="0")
    with pytest.raises(DeployError, match=r"Azure refused GET serverfarms/support-bot-plan: 503 .*after retries"):
        run("deploy", agent)
    assert len(fake.requests) == 5  # 1 + 4 retries
    fake.reset()
    fake.add_resource_group(SUB, GROUP)
    run("deploy", agent)
    fake.fail(503, count=50, retry_after="0", match=lambda method, path: "/scm/" in path)
    write_agent(tmp_path, AGENT.replace("helpful", "kind"))
    with pytest.raises(DeployError, match="Kudu refused the package \\(503\\)"):
        run("deploy", agent)


def test_failed_build_is_reported_and_a_rerun_publishes_again(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    fake.fail_next_deployment()
    with pytest.raises(DeployError, match=r"deployment of support-bot failed \(Kudu status 3.*/log"):
        run("deploy", agent)
    assert azure.SETTING_PACKAGE not in settings(fake)
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == CLEAN_DEPLOY[2:]


def test_a_foreign_app_with_our_name_is_never_touched(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    scope = f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Web"
    fake.put_plan(SUB, GROUP, "theirs", {"location": "westeurope", "sku": {"name": "EP1", "tier": "ElasticPremium"}})
    fake.put_site(SUB, GROUP, "support-bot", {"location": "westeurope", "tags": {"team": "x"},
                                              "properties": {"serverFarmId": f"{scope}/serverfarms/theirs"}})
    with pytest.raises(DeployError, match="not created by this framework"):
        run("deploy", agent)
    assert fake.mutating == []
    result = run("destroy", agent)
    assert "left alone: function app support-bot" in result.stdout and fake.mutating == []
    info = json.loads(run("info", agent, fmt="json").stdout)
    assert info == [{"target": "azure", "deployed": False,
                     "note": "a function app named support-bot exists but is not ours"}]


def test_secret_values_reach_only_the_settings_they_were_chosen_for(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    assert main(["build", "-f", str(agent), "-o", str(tmp_path / "generated")]) == 0
    texts = outputs_of_every_command(run, agent, AGENT)
    carrying = {f"{r.method} {r.path.rsplit('/providers/Microsoft.Web/', 1)[-1]}"
                for r in fake.requests if FAKE_KEY.encode() in r.body}
    # environment injection, as agent.yaml chose: the create and the settings merge, nothing else
    assert carrying == {"PUT sites/support-bot", "PUT sites/support-bot/config/appsettings"}
    texts += [json.dumps(fake.sites[key()]), json.dumps(fake.plans[key("support-bot-plan")])]
    texts.append(fake.packages["support-bot"].decode("latin-1"))
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    assert texts and not [t for t in texts if FAKE_KEY in t]


def test_key_vault_reference_keeps_the_value_out_of_every_request(azure_env, tmp_path):
    fake = azure_env
    uri = "https://agents-kv.vault.azure.net/secrets/openai-key/"
    agent = write_agent(tmp_path, AGENT + f"    secrets:\n      OPENAI_API_KEY: {{azure: '{uri}'}}\n")
    result = run("deploy", agent)
    assert "Key Vault Secrets User" in result.stdout
    assert settings(fake)["OPENAI_API_KEY"] == f"@Microsoft.KeyVault(SecretUri={uri})"
    assert not [r for r in fake.requests if FAKE_KEY.encode() in r.body]
    fake.clear()
    run("deploy", agent)
    assert fake.mutating == []


def test_cloud_error_messages_are_scrubbed(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path)
    fake.fail(400, match=lambda method, path: method == "PUT" and path.endswith("/sites/support-bot"),
              message=f"invalid app setting OPENAI_API_KEY={FAKE_KEY}")
    with pytest.raises(DeployError) as caught:
        run("deploy", agent)
    assert "invalid app setting" in str(caught.value) and FAKE_KEY not in str(caught.value)


def test_private_agent_prints_how_to_get_the_key_never_the_key(azure_env, tmp_path):
    fake = azure_env
    agent = write_agent(tmp_path, AGENT + "    public: false\n")
    outputs = json.loads(run("deploy", agent, fmt="json").stdout)
    assert outputs["auth"] == "function" and "az functionapp function keys list" in outputs["key"]
    secret = fake.keys[key()]
    text = run("deploy", agent).stdout
    assert "needs the function key" in text and "az functionapp function keys list -g agents-rg" in text
    info = run("info", agent)
    assert "function key: present" in info.stdout
    assert secret not in json.dumps(outputs) + text + info.stdout + run("info", agent, fmt="json").stdout


def test_clear_errors_for_settings_azure_needs(azure_env, tmp_path, monkeypatch):
    agent = write_agent(tmp_path, AGENT.replace("storage:", "plan: consumption\n        storage:"))
    with pytest.raises(DeployError, match="use `plan: flex`"):
        run("plan", agent)
    write_agent(tmp_path, AGENT.replace(f"        storage: {STORAGE}\n", ""))
    with pytest.raises(DeployError, match="set `storage: https://ACCOUNT.blob.core.windows.net/CONTAINER`"):
        run("plan", agent)
    write_agent(tmp_path, AGENT.replace(f"resource_group: {GROUP}", "resource_group: missing-rg"))
    with pytest.raises(DeployError, match="resource group missing-rg does not exist"):
        run("plan", agent)
    write_agent(tmp_path, AGENT.replace(f"        subscription: {SUB}\n", ""))
    with pytest.raises(DeployError, match="no Azure subscription"):
        run("plan", agent)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    assert run("plan", agent).code == 2
    monkeypatch.setenv("AZURE_ACCESS_TOKEN", "wrong-token")
    with pytest.raises(DeployError, match="did not accept the credentials.*az login"):
        run("plan", agent)
