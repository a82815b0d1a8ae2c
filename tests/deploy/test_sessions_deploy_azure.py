"""The sessions table on Azure, against the fake ARM: created once in the storage account, recorded
in the app's settings as ours, a no-change deploy with 0 mutating calls, destroy deleting only the
table it created; the role assignment is a plan note (the framework creates none)."""

from __future__ import annotations

import json

import pytest

from framework.errors import DeployError
from framework.platforms.azure import planner as azure
from tests.deploy import azure_fixtures
from tests.deploy.azure_fixtures import ACCOUNT, AGENT, GROUP, PREMIUM, SESSIONS, SUB, run, write_agent

azure_server = azure_fixtures.azure_server  # the session's fake server, and a clean one per test
azure_env = azure_fixtures.azure_env

TABLE = f"{ACCOUNT}/supportbotsessions"
SCOPE = (f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}/"
         "tableServices/default/tables/supportbotsessions")


def test_first_deploy_creates_the_table_once_and_says_which_role_to_add(azure_env, tmp_path):
    agent = write_agent(tmp_path, SESSIONS)
    planned = run("plan", agent)
    assert f"+ create    storage table {TABLE}" in planned.stdout
    assert ("note: the app's managed identity needs the role Storage Table Data Contributor "
            "(0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3) on the table: az role assignment create --assignee "
            f"$(az functionapp identity show -g {GROUP} -n support-bot --query principalId -o tsv) --role "
            f"\"Storage Table Data Contributor\" --scope {SCOPE}") in planned.stdout
    assert "Azure Table Storage has no TTL" in planned.stdout
    azure_env.clear()
    assert run("deploy", agent).code == 0
    assert azure_env.mutating[0] == "PUT serverfarms/support-bot-plan"
    assert azure_env.mutating.count(f"PUT storageAccounts/{ACCOUNT}/tableServices/default/tables/"
                                    "supportbotsessions") == 1
    assert azure_env.table_names() == [TABLE]
    settings = azure_env.settings[(SUB.lower(), GROUP.lower(), "support-bot")]
    assert settings[azure.SETTING_TABLE] == TABLE
    assert not any("roleAssignments" in call for call in azure_env.mutating)

    azure_env.clear()
    again = run("deploy", agent)
    assert azure_env.mutating == [] and "No changes" in again.stdout
    assert f"= unchanged storage table {TABLE} (in {ACCOUNT})" in again.stdout

    destroyed = run("destroy", agent)
    assert f"- delete    storage table {TABLE}" in destroyed.stdout
    assert azure_env.table_names() == []


def test_an_agent_without_sessions_makes_no_storage_call(azure_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    run("destroy", agent)
    assert not any("microsoft.storage" in r.path.lower() for r in azure_env.requests)


def test_a_table_it_did_not_create_is_used_and_left(azure_env, tmp_path):
    azure_env.put_table(SUB, GROUP, ACCOUNT, "supportbotsessions")
    agent = write_agent(tmp_path, SESSIONS)
    deployed = run("deploy", agent)
    assert not any("tables" in call for call in azure_env.mutating)
    assert f"note: storage table {TABLE} exists and was not created by this framework" in deployed.stdout
    settings = azure_env.settings[(SUB.lower(), GROUP.lower(), "support-bot")]
    assert azure.SETTING_TABLE not in settings
    destroyed = run("destroy", agent)
    assert f"note: left alone: storage table {TABLE}" in destroyed.stdout
    assert azure_env.table_names() == [TABLE]


def test_sessions_turned_on_later_create_the_table_and_record_it(azure_env, tmp_path):
    agent = write_agent(tmp_path)
    run("deploy", agent)
    write_agent(tmp_path, SESSIONS)
    azure_env.clear()
    planned = json.loads(run("plan", agent, fmt="json").stdout)
    settings = [r for r in planned["resources"] if r["kind"] == "app settings"][0]
    assert azure.SETTING_TABLE in [c["field"] for c in settings["changes"]]
    run("deploy", agent)
    assert azure_env.table_names() == [TABLE]
    run("destroy", agent)
    assert azure_env.table_names() == []


def test_the_account_setting_names_another_account(azure_env, tmp_path):
    azure_env.add_storage_account(SUB, GROUP, "sessionsacct")
    agent = write_agent(tmp_path, AGENT + "        sessions:\n          account: sessionsacct\n")
    run("deploy", agent)
    assert azure_env.table_names() == ["sessionsacct/supportbotsessions"]


def test_premium_without_an_account_is_a_clear_error(azure_env, tmp_path):
    agent = write_agent(tmp_path, PREMIUM + "    sessions:\n      ttl_hours: 24\n")
    with pytest.raises(DeployError, match="needs a storage account: set `account:` under targets.azure.sessions"):
        run("plan", agent)
