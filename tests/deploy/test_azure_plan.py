"""The Azure planner is a pure function of (desired state, snapshot): tested without any server."""

from __future__ import annotations

import dataclasses
import json

import pytest

from framework.deploy.plan import format_json, format_text
from framework.deploy.secrets import digest
from framework.errors import DeployError
from framework.platforms.azure import planner as azure

SUB = "11111111-2222-3333-4444-555555555555"
STORAGE = "https://acct.blob.core.windows.net/pkg"
FILES = "agent.json=aaaaaaaaaaaa,function_app.py=bbbbbbbbbbbb"
DESIRED = azure.Desired(
    name="bot", app="bot", subscription=SUB, resource_group="rg", region="westeurope", plan_kind="flex",
    python="3.11", memory=2048, sku="FC1", max_instances=10, warm=0, public=True, package_sha256="a" * 64,
    files=FILES, storage=STORAGE, secret_env={"OPENAI_API_KEY": digest("sk-1")})
PREMIUM = dataclasses.replace(DESIRED, plan_kind="premium", sku="EP1", storage=None,
                              settings=dict(azure.PREMIUM_SETTINGS))


def deployed(desired: azure.Desired = DESIRED) -> azure.Snapshot:
    """The snapshot of a clean deploy of `desired`."""
    tags = {azure.TAG_AGENT: desired.name}
    plan = azure.PlanState(id=desired.plan_id, sku=desired.sku, tier="FlexConsumption" if desired.sku == "FC1"
                           else "ElasticPremium", max_elastic=None if desired.sku == "FC1" else desired.max_instances,
                           sites=1, tags=tags)
    if desired.plan_kind == "flex":
        fields = dict(python=desired.python, memory=desired.memory, max_instances=desired.max_instances,
                      always_ready=desired.warm, storage=desired.storage,
                      storage_auth={"type": "SystemAssignedIdentity"})
    else:
        fields = dict(linux_fx=f"Python|{desired.python}", min_elastic=max(1, desired.warm),
                      scale_limit=desired.max_instances)
    site = azure.SiteState(id=f"{desired.scope}/sites/{desired.app}", tags=tags, server_farm_id=desired.plan_id,
                           host=f"{desired.app}.azurewebsites.net", **fields)
    owned = sorted(set(desired.settings) | set(desired.secret_env))
    values = {**desired.settings, azure.SETTING_PACKAGE: desired.package_sha256, azure.SETTING_FILES: desired.files,
              azure.SETTING_OWNED: ",".join(owned)}
    settings = {name: digest(value) for name, value in values.items()}
    settings.update({name: d for name, d in desired.secret_env.items() if d})
    markers = {k: values[k] for k in (azure.SETTING_PACKAGE, azure.SETTING_FILES, azure.SETTING_OWNED)}
    return azure.Snapshot(plan=plan, site=site, settings=settings, markers=markers)


def kinds(desired: azure.Desired, snap: azure.Snapshot) -> list[str]:
    return [op.kind for op in azure.plan_deploy(desired, snap).plan.operations]


def test_first_deploy_creates_plan_site_code_and_records_the_package():
    result = azure.plan_deploy(DESIRED, azure.Snapshot())
    assert [op.kind for op in result.plan.operations] == ["serverfarm.put", "site.put", "kudu.publish",
                                                          "appsettings.merge"]
    plan_body = result.plan.operations[0].args["body"]
    assert plan_body["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan_body["tags"] == {
        azure.TAG_AGENT: "bot"}
    site = result.plan.operations[1].args["body"]
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["scaleAndConcurrency"] == {"maximumInstanceCount": 10, "instanceMemoryMB": 2048, "alwaysReady": []}
    assert config["deployment"]["storage"] == {"type": "blobContainer", "value": STORAGE,
                                               "authentication": {"type": "SystemAssignedIdentity"}}
    settings = {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}
    # the secret travels as a placeholder that only the executor resolves
    assert settings == {"OPENAI_API_KEY": {"$secret": "OPENAI_API_KEY"}, azure.SETTING_OWNED: "OPENAI_API_KEY"}
    merge = result.plan.operations[3].args
    assert merge["set"] == {azure.SETTING_PACKAGE: "a" * 64, azure.SETTING_FILES: FILES} and merge["remove"] == []
    assert result.missing_secrets == ()
    assert "sk-1" not in format_json(result.plan) + format_text(result.plan)


def test_clean_deploy_is_unchanged():
    for desired in (DESIRED, PREMIUM):
        result = azure.plan_deploy(desired, deployed(desired))
        assert result.plan.operations == [] and not result.plan.has_changes
        assert "No changes" in format_text(result.plan)


def test_prompt_change_publishes_and_records_only():
    new = dataclasses.replace(DESIRED, package_sha256="b" * 64,
                              files="agent.json=cccccccccccc,function_app.py=bbbbbbbbbbbb")
    plan = azure.plan_deploy(new, deployed()).plan
    assert [op.kind for op in plan.operations] == ["kudu.publish", "appsettings.merge"]
    text = format_text(plan)
    assert "package sha256: aaaaaaaaaaaa -> bbbbbbbbbbbb" in text
    assert "file agent.json (prompt, model, settings): aaaaaaaaaaaa -> cccccccccccc" in text
    assert "function_app.py" not in text
    assert plan.operations[1].args["set"] == {azure.SETTING_PACKAGE: "b" * 64, azure.SETTING_FILES: new.files}


def test_concurrency_change_flex_patches_the_site_only():
    new = dataclasses.replace(DESIRED, max_instances=40, warm=2)
    plan = azure.plan_deploy(new, deployed()).plan
    assert [op.kind for op in plan.operations] == ["site.patch"]
    scale = plan.operations[0].args["body"]["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == 40 and scale["alwaysReady"] == [{"name": "http", "instanceCount": 2}]
    assert "max instances: 10 -> 40" in format_text(plan) and "always ready: 0 -> 2" in format_text(plan)


def test_concurrency_change_premium_updates_plan_burst_and_site_config():
    new = dataclasses.replace(PREMIUM, max_instances=20, warm=3)
    plan = azure.plan_deploy(new, deployed(PREMIUM)).plan
    assert [op.kind for op in plan.operations] == ["serverfarm.put", "site.config"]
    assert plan.operations[0].args["body"]["properties"]["maximumElasticWorkerCount"] == 20
    assert plan.operations[1].args["body"]["properties"] == {
        "linuxFxVersion": "Python|3.11", "minimumElasticInstanceCount": 3, "functionAppScaleLimit": 20}


def test_memory_change_premium_changes_sku():
    plan = azure.plan_deploy(dataclasses.replace(PREMIUM, sku="EP2"), deployed(PREMIUM)).plan
    assert [op.kind for op in plan.operations] == ["serverfarm.put"]
    assert "sku: EP1 -> EP2" in format_text(plan)


def test_switching_between_flex_and_premium_is_refused():
    with pytest.raises(DeployError, match="cannot move a function app"):
        azure.plan_deploy(dataclasses.replace(PREMIUM, app="bot"), deployed())


def test_secret_change_and_removal_only_touch_settings():
    snap = deployed()
    new = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": digest("sk-2")})
    plan = azure.plan_deploy(new, snap).plan
    assert [op.kind for op in plan.operations] == ["appsettings.merge"]
    assert plan.operations[0].args == {"app": "bot", "set": {"OPENAI_API_KEY": {"$secret": "OPENAI_API_KEY"}},
                                       "remove": []}
    assert "(value hidden) -> (new value hidden)" in format_text(plan)
    both = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": digest("sk-1"), "OTHER": digest("o")})
    removed = azure.plan_deploy(DESIRED, deployed(both)).plan
    assert removed.operations[0].args["remove"] == ["OTHER"]
    assert removed.operations[0].args["set"] == {azure.SETTING_OWNED: "OPENAI_API_KEY"}


def test_secret_not_set_here_is_kept_or_missing():
    unset = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": None})
    kept = azure.plan_deploy(unset, deployed())
    assert kept.plan.operations == [] and kept.missing_secrets == ()
    assert "keeps its current value" in format_text(kept.plan)
    first = azure.plan_deploy(unset, azure.Snapshot())
    assert first.missing_secrets == ("OPENAI_API_KEY",)


def test_key_vault_reference_is_a_plain_setting():
    ref = azure.key_vault_reference("https://kv.vault.azure.net/secrets/openai/")
    new = dataclasses.replace(DESIRED, secret_env={}, settings={"OPENAI_API_KEY": ref})
    settings = {s["name"]: s["value"] for s in azure.plan_deploy(new, azure.Snapshot()).plan.operations[1]
                .args["body"]["properties"]["siteConfig"]["appSettings"]}
    assert settings["OPENAI_API_KEY"] == "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/openai/)"
    assert azure.plan_deploy(new, deployed(new)).plan.operations == []


def test_foreign_resources_are_refused():
    snap = deployed()
    foreign_site = dataclasses.replace(snap, site=dataclasses.replace(snap.site, tags={}))
    with pytest.raises(DeployError, match="lacks the tag agent-framework:agent=bot"):
        azure.plan_deploy(DESIRED, foreign_site)
    foreign_plan = dataclasses.replace(snap, plan=dataclasses.replace(snap.plan, tags={"owner": "me"}))
    with pytest.raises(DeployError, match="App Service plan bot-plan"):
        azure.plan_deploy(DESIRED, foreign_plan)


def test_destroy_deletes_ours_and_leaves_the_rest():
    plan = azure.plan_destroy("bot", "bot", "rg", deployed())
    assert [op.kind for op in plan.operations] == ["site.delete", "serverfarm.delete"]
    snap = deployed()
    foreign = dataclasses.replace(snap, site=dataclasses.replace(snap.site, tags={}),
                                  plan=dataclasses.replace(snap.plan, tags={}))
    left = azure.plan_destroy("bot", "bot", "rg", foreign)
    assert left.operations == [] and len(left.notes) == 2 and "left alone: function app bot" in left.notes[0]
    shared = dataclasses.replace(snap, plan=dataclasses.replace(snap.plan, sites=2))
    assert [op.kind for op in azure.plan_destroy("bot", "bot", "rg", shared).operations] == ["site.delete"]
    assert azure.plan_destroy("bot", "bot", "rg", azure.Snapshot()).resources == ()


def test_plan_is_json_serialisable():
    data = json.loads(format_json(azure.plan_deploy(DESIRED, azure.Snapshot()).plan))
    assert data["target"] == "azure" and data["counts"]["create"] == 4


def test_deployment_storage_uses_a_connection_string_when_agent_yaml_lists_one():
    new = dataclasses.replace(DESIRED, secret_env={**DESIRED.secret_env, azure.STORAGE_CONNECTION: digest("c")})
    body = azure.plan_deploy(new, azure.Snapshot()).plan.operations[1].args["body"]
    assert body["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"] == {
        "type": "StorageAccountConnectionString", "storageAccountConnectionStringName": azure.STORAGE_CONNECTION}


def test_a_python_version_answered_in_another_case_is_not_a_change():
    snap = deployed(PREMIUM)
    shouting = dataclasses.replace(snap.site, linux_fx="PYTHON|3.11")
    assert not azure.plan_deploy(PREMIUM, dataclasses.replace(snap, site=shouting)).plan.has_changes
