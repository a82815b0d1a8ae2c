"""The Google Cloud Functions planner is a pure function of (desired state, snapshot): no server here."""

from __future__ import annotations

import dataclasses

import pytest

from framework.deploy.plan import format_json, format_text
from framework.deploy.secrets import digest
from framework.errors import DeployError
from framework.platforms.gcp import planner as gcp

DESIRED = gcp.Desired(
    name="bot", project="proj-123", region="us-central1", runtime="python312", timeout=300, memory="1Gi", cpu=None,
    min_instances=0, max_instances=10, request_concurrency=1, public=True, content="c" * 64,
    prompt="Be helpful.\nBe brief.", prompt_digest="d" * 64, secret_env={"OPENAI_API_KEY": "digest:1"})
NAME = "projects/proj-123/locations/us-central1/functions/bot"
SERVICE = "projects/proj-123/locations/us-central1/services/bot"


def deployed(desired: gcp.Desired = DESIRED, **changes) -> gcp.Snapshot:
    """The snapshot of a clean deploy of `desired` (with `changes` to the function)."""
    function = gcp.FunctionState(
        name=NAME, state="ACTIVE", labels={gcp.LABEL_AGENT: "bot", gcp.LABEL_CONTENT: desired.content[:63]},
        runtime=desired.runtime, entry_point=gcp.ENTRY_POINT, source={"bucket": "b", "object": "o"},
        timeout=desired.timeout, memory=desired.memory, cpu="0.5833", min_instances=desired.min_instances,
        max_instances=desired.max_instances, request_concurrency=desired.request_concurrency, ingress=1,
        all_traffic=True, environment={"OPENAI_API_KEY": "digest:1", gcp.VERSION_ENV: digest(desired.version_note)},
        url="https://u", service=SERVICE,
        revision="bot-00001-abc")
    return gcp.Snapshot("proj-123", "us-central1", function=dataclasses.replace(function, **changes), public=True)


def apis(desired: gcp.Desired, snap: gcp.Snapshot) -> list[str]:
    return [op.api for op in gcp.plan_deploy(desired, snap).plan.operations]


def only_update(desired: gcp.Desired, snap: gcp.Snapshot) -> dict:
    ops = gcp.plan_deploy(desired, snap).plan.operations
    assert [op.kind for op in ops] == ["gcp.update_function"]
    return dict(ops[0].args)


@pytest.mark.parametrize(("mb", "units"), [(128, "128Mi"), (1024, "1Gi"), (1536, "1536Mi"), (32768, "32Gi")])
def test_memory_units(mb, units):
    assert gcp.memory_units(mb) == units
    assert gcp.memory_mib(units) == mb


def test_memory_parsing_accepts_every_api_unit():
    assert gcp.memory_mib("256M") == pytest.approx(244.14, 0.01)
    assert gcp.memory_mib("1G") == pytest.approx(953.67, 0.01)
    assert gcp.memory_mib("") is None


@pytest.mark.parametrize(("mb", "requests", "cpu"), [
    (1024, 1, None), (2048, 20, "1"), (4096, 1, None), (4096, 8, None), (6144, 1, "2"), (8192, 1, "2"),
    (16384, 1, "4"), (24576, 1, "8"), (32768, 1, "8")])
def test_cpu_is_set_only_when_memory_or_concurrency_needs_it(mb, requests, cpu):
    assert gcp.required_cpu(mb, requests) == cpu


def test_secret_references():
    assert gcp.parse_secret("projects/p-1/secrets/key") == ("p-1", "key", "latest")
    assert gcp.parse_secret("projects/p-1/secrets/key/versions/4") == ("p-1", "key", "4")


def test_location_comes_from_agent_yaml_or_the_environment():
    assert gcp.resolve_location({"project": "a-project", "region": "europe-west1"}, {}) == ("a-project", "europe-west1")
    assert gcp.resolve_location({"region": "r"}, {"CLOUDSDK_CORE_PROJECT": "from-gcloud"}) == ("from-gcloud", "r")
    with pytest.raises(DeployError, match="region"):
        gcp.resolve_location({"project": "p"}, {})


def test_new_function_is_uploaded_created_and_made_public():
    plan = gcp.plan_deploy(DESIRED, gcp.Snapshot("proj-123", "us-central1")).plan
    assert [op.kind for op in plan.operations] == ["gcp.upload_source", "gcp.create_function", "gcp.set_invoker"]
    create = dict(plan.operations[1].args)
    function = create["function"]
    assert create["function_id"] == "bot" and create["parent"] == "projects/proj-123/locations/us-central1"
    assert function["buildConfig"] == {"runtime": "python312", "entryPoint": "agent_handler",
                                       "source": {"storageSource": {"$output": "storage_source"}}}
    assert function["serviceConfig"]["environmentVariables"] == {"OPENAI_API_KEY": {"$secret": "OPENAI_API_KEY"},
                                                                 gcp.VERSION_ENV: DESIRED.version_note}
    assert function["labels"] == {gcp.LABEL_AGENT: "bot", gcp.LABEL_CONTENT: "c" * 63}
    assert all(len(v) <= 63 for v in function["labels"].values())
    assert plan.operations[2].args == {"service": {"$output": "service"}, "public": True}
    text = format_text(plan)
    assert "environment OPENAI_API_KEY: (value hidden)" in text and "3 to create" in text


def test_a_clean_deploy_plans_nothing():
    plan = gcp.plan_deploy(DESIRED, deployed()).plan
    assert not plan.has_changes and plan.operations == []
    assert "No changes" in format_text(plan)


def test_prompt_change_uploads_and_shows_a_diff():
    desired = dataclasses.replace(DESIRED, content="d" * 64, prompt="Be terse.\nBe brief.")
    snap = dataclasses.replace(deployed(), deployed_prompt=DESIRED.prompt)
    plan = gcp.plan_deploy(desired, snap).plan
    assert apis(desired, snap) == ["generateUploadUrl + PUT", "UpdateFunction (PATCH)"]
    update = dict(plan.operations[1].args)
    # the new code's revision carries its own digests (VERSION_ENV), so the environment goes with it
    assert update["update_mask"] == ["build_config.source", "service_config.environment_variables", "labels"]
    assert update["function"]["serviceConfig"]["environmentVariables"][gcp.VERSION_ENV] == desired.version_note
    assert update["function"]["buildConfig"] == {"source": {"storageSource": {"$output": "storage_source"}}}
    text = format_text(plan)
    assert "-Be helpful." in text and "+Be terse." in text and "code (content sha256): cccccccccccc -> dddddddddddd" \
        in text
    assert '"prompt"' in format_json(plan)


def test_prompt_diff_falls_back_to_the_hash_when_the_source_is_unreadable():
    desired = dataclasses.replace(DESIRED, content="d" * 64)
    text = format_text(gcp.plan_deploy(desired, deployed()).plan)
    assert "code (content sha256): cccccccccccc -> dddddddddddd" in text and "prompt" not in text


def test_concurrency_change_patches_two_fields():
    desired = dataclasses.replace(DESIRED, min_instances=1, max_instances=50)
    update = only_update(desired, deployed())
    assert update["update_mask"] == ["service_config.min_instance_count", "service_config.max_instance_count"]
    assert update["function"] == {"name": NAME, "serviceConfig": {"minInstanceCount": 1, "maxInstanceCount": 50}}


def test_memory_compares_by_size_not_spelling():
    assert not gcp.plan_deploy(DESIRED, deployed(memory="1024Mi")).plan.has_changes


def test_smaller_memory_resets_a_cpu_we_had_set():
    update = only_update(DESIRED, deployed(memory="8Gi", cpu="2"))
    assert update["update_mask"] == ["service_config.available_memory", "service_config.available_cpu"]
    assert update["function"]["serviceConfig"] == {"availableMemory": "1Gi"}


def test_big_memory_sets_cpu():
    desired = dataclasses.replace(DESIRED, memory="16Gi", cpu="4")
    update = only_update(desired, deployed())
    assert update["function"]["serviceConfig"] == {"availableMemory": "16Gi", "availableCpu": "4"}


def test_labels_added_by_hand_are_kept():
    snap = deployed(labels={gcp.LABEL_AGENT: "bot", gcp.LABEL_CONTENT: "c" * 63, "team": "support"})
    assert not gcp.plan_deploy(DESIRED, snap).plan.has_changes
    desired = dataclasses.replace(DESIRED, content="e" * 64)
    update = dict(gcp.plan_deploy(desired, snap).plan.operations[1].args)
    assert update["function"]["labels"]["team"] == "support"


def test_failed_function_gets_its_source_again():
    plan = gcp.plan_deploy(DESIRED, deployed(state="FAILED")).plan
    assert [op.kind for op in plan.operations] == ["gcp.upload_source", "gcp.update_function"]
    assert "state: FAILED -> redeployed" in format_text(plan)


def test_secret_reference_replaces_the_injected_variable():
    desired = dataclasses.replace(DESIRED, secret_env={}, secret_refs={"OPENAI_API_KEY": ("proj-123", "k", "latest")})
    update = only_update(desired, deployed())
    assert update["update_mask"] == ["service_config.environment_variables",
                                     "service_config.secret_environment_variables"]
    assert update["function"]["serviceConfig"] == {
        "environmentVariables": {gcp.VERSION_ENV: DESIRED.version_note},
        "secretEnvironmentVariables": [{"key": "OPENAI_API_KEY", "projectId": "proj-123", "secret": "k",
                                        "version": "latest"}]}
    assert "roles/secretmanager.secretAccessor on projects/proj-123/secrets/k" in format_text(
        gcp.plan_deploy(desired, deployed()).plan)


def test_a_revision_from_before_the_version_note_gets_it_as_its_only_change():
    old = deployed()
    function = dataclasses.replace(old.function, environment={"OPENAI_API_KEY": "digest:1"})
    old = dataclasses.replace(old, function=function)
    plan = gcp.plan_deploy(DESIRED, old).plan
    assert only_update(DESIRED, old)["update_mask"] == ["service_config.environment_variables"]
    assert [(c.field, c.new) for r in plan.resources for c in r.changes] == [
        ("version note (for history)", "cccccccccccc")]


def test_secret_not_set_here_is_kept_or_missing():
    desired = dataclasses.replace(DESIRED, secret_env={"OPENAI_API_KEY": None})
    kept = gcp.plan_deploy(desired, deployed())
    assert not kept.plan.has_changes and kept.missing_secrets == ()
    missing = gcp.plan_deploy(desired, gcp.Snapshot("proj-123", "us-central1"))
    assert missing.missing_secrets == ("OPENAI_API_KEY",)


def test_public_access_follows_agent_yaml():
    private = dataclasses.replace(DESIRED, public=False)
    plan = gcp.plan_deploy(private, deployed()).plan
    assert [(r.action, op.args["public"]) for r in plan.resources for op in r.operations] == [("delete", False)]
    snap = dataclasses.replace(deployed(), public=False)
    assert not gcp.plan_deploy(private, snap).plan.has_changes
    assert [op.args for op in gcp.plan_deploy(DESIRED, snap).plan.operations] == [
        {"service": SERVICE, "public": True}]


def test_a_function_not_ours_is_refused_and_left_alone_by_destroy():
    foreign = deployed(labels={"team": "x"})
    with pytest.raises(DeployError, match="not created by this framework"):
        gcp.plan_deploy(DESIRED, foreign)
    plan = gcp.plan_destroy("bot", "proj-123", "us-central1", foreign)
    assert not plan.has_changes and plan.notes and "left alone" in plan.notes[0]


def test_destroy_deletes_only_the_function():
    plan = gcp.plan_destroy("bot", "proj-123", "us-central1", deployed())
    assert [(op.kind, dict(op.args)) for op in plan.operations] == [("gcp.delete_function", {"name": NAME})]
    assert not gcp.plan_destroy("bot", "proj-123", "us-central1", gcp.Snapshot("proj-123", "us-central1")).resources


def test_outputs_have_the_common_keys():
    out = gcp.outputs("bot", "proj-123", "us-central1", deployed())
    assert out["target"] == "gcp" and out["url"] == "https://u"
    assert out["summary"] == "bot revision bot-00001-abc in us-central1 (project proj-123)"


def test_a_variable_the_platform_adds_itself_is_not_a_change():
    from framework.platforms.gcp import planner as gcp_planner

    snap = deployed()
    function = dataclasses.replace(snap.function,
                                   environment={**snap.function.environment, "LOG_EXECUTION_ID": "true"})
    plan = gcp_planner.plan_deploy(DESIRED, dataclasses.replace(snap, function=function)).plan
    assert not plan.has_changes
