"""`plan --format markdown`: the plans of a run as a pull request shows them (job summary, PR comment).

The golden file golden/plan.md is the whole output for a realistic run (two agents, one of them in two
stages, four platforms, one target failing) and is compared byte for byte. After an intended change of
the output, regenerate it, then read its diff before committing:

    UPDATE_GOLDEN=1 python -m pytest tests/deploy/test_plan_markdown.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from framework.deploy.plan import (
    CREATE,
    DELETE,
    UNCHANGED,
    UPDATE,
    Change,
    Operation,
    Plan,
    PlanSection,
    Resource,
    format_markdown,
)
from framework.platforms.aws import planner as aws
from framework.platforms.aws.target import PYTHON_HANDLER
from framework.platforms.gcp import planner as gcp
from framework.platforms.vercel.planner import PROMPT_LABEL

GOLDEN = Path(__file__).parent / "golden" / "plan.md"
ACCOUNT = "123456789012"

AWS_DEV = aws.Desired(
    name="support-bot-dev", region="us-east-1", package_type="Zip", runtime="python3.12", handler=PYTHON_HANDLER,
    architecture="arm64", timeout=300, memory=1024, reserved=10, provisioned=0, auth_type="NONE",
    invoke_mode="RESPONSE_STREAM", content="c" * 64, code_sha256="zipsha256base64=",
    secret_env={"OPENAI_API_KEY": "digest:1"})
GCP_DEV = gcp.Desired(
    name="support-bot-dev", project="acme-dev", region="europe-west1", runtime="python312", timeout=300,
    memory="1Gi", cpu=None, min_instances=0, max_instances=10, request_concurrency=1, public=True,
    content="d" * 64, prompt="You are Acme's support bot.\nAnswer in two sentences at most.\nNever promise refunds.")
GCP_DEPLOYED_PROMPT = "You are Acme's support bot.\nAnswer briefly.\nNever promise refunds."


def gcp_deployed() -> gcp.Snapshot:
    """GCP_DEV deployed before its prompt changed (content "c…", the old prompt read back)."""
    name = GCP_DEV.function_name
    function = gcp.FunctionState(
        name=name, state="ACTIVE", labels={gcp.LABEL_AGENT: GCP_DEV.name, gcp.LABEL_CONTENT: "c" * 63},
        runtime=GCP_DEV.runtime, entry_point=gcp.ENTRY_POINT, source={"bucket": "b", "object": "o"},
        timeout=GCP_DEV.timeout, memory=GCP_DEV.memory, cpu="0.5833", min_instances=0, max_instances=10,
        request_concurrency=1, ingress=1, all_traffic=True, url="https://support-bot-dev.example",
        service="projects/acme-dev/locations/europe-west1/services/support-bot-dev", revision="support-bot-dev-1")
    return gcp.Snapshot("acme-dev", "europe-west1", function=function, public=True,
                        deployed_prompt=GCP_DEPLOYED_PROMPT)


def aws_prod() -> Plan:
    """A prod Lambda whose memory and key change; its URL stays."""
    function = Resource("lambda function", "support-bot-prod", UPDATE, (
        Change("memory", 1024, 2048), Change("environment OPENAI_API_KEY", "(value hidden)", "(new value hidden)")),
        (Operation("lambda.update_function_configuration", {"FunctionName": "support-bot-prod", "MemorySize": 2048,
                   "Environment": {"Variables": {"OPENAI_API_KEY": {"$secret": "OPENAI_API_KEY"}}}},
                   "UpdateFunctionConfiguration"),))
    version = Resource("version + alias", "support-bot-prod:live", UPDATE, (Change("version", "7", "(new)"),),
                       (Operation("lambda.publish_version", {}, "PublishVersion"),))
    url = Resource("function url", "support-bot-prod", UNCHANGED, detail="https://abc.lambda-url.us-east-1.on.aws/")
    title = f"support-bot-prod on AWS Lambda (region us-east-1, account {ACCOUNT})"
    return Plan("aws", title, (function, version, url), ("SLACK_TOKEN is not set here: the deployed value is kept",))


def vercel_billing() -> Plan:
    """A new Vercel deployment: the prompt is known only by its digest there."""
    deployment = Resource("production deployment", "billing-bot", UPDATE, (
        Change("content", "0123456789ab", "ba9876543210"), Change("files changed", None, ["agent.json"]),
        Change(PROMPT_LABEL, "sha256:111111111111", "sha256:222222222222")),
        (Operation("vercel.create_deployment", {}, "POST /v13/deployments (+ missing files)"),))
    return Plan("vercel", "billing-bot on Vercel (project billing-bot, team acme)", (deployment,))


def azure_billing() -> Plan:
    site = Resource("function app", "billing-bot", UNCHANGED, detail="billing-bot.azurewebsites.net")
    return Plan("azure", "billing-bot on Azure Functions Flex Consumption (resource group agents, westeurope)", (site,))


def sections() -> list[PlanSection]:
    return [
        PlanSection("support-bot", "dev", aws.plan_deploy(AWS_DEV, aws.Snapshot(account=ACCOUNT)).plan, None),
        PlanSection("support-bot", "dev", gcp.plan_deploy(GCP_DEV, gcp_deployed()).plan, None),
        PlanSection("support-bot", "prod", aws_prod(), None),
        PlanSection("support-bot", "prod", None,
                    "gcp: permission denied reading projects/acme-prod/locations/europe-west1/functions/"
                    "support-bot-prod: grant the deploying account roles/cloudfunctions.viewer"),
        PlanSection("billing-bot", None, vercel_billing(), None),
        PlanSection("billing-bot", None, azure_billing(), None),
    ]


def test_a_run_of_several_agents_stages_and_platforms_matches_the_golden_file():
    text = format_markdown(sections()) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def one(resource: Resource, *notes: str) -> str:
    return format_markdown([PlanSection("bot", None, Plan("aws", "bot on AWS Lambda", (resource,), notes), None)])


def test_the_first_line_is_the_marker_the_ci_job_finds_its_comment_by():
    assert one(Resource("role", "r", CREATE)).splitlines()[0] == "<!-- agenthost-plan -->"


@pytest.mark.parametrize(("agent", "stage", "heading"), [
    ("support-bot", "prod", "### support-bot · prod"),
    ("support-bot", None, "### support-bot"),
])
def test_a_heading_per_agent_and_stage(agent, stage, heading):
    plan = Plan("aws", "t", (Resource("role", "r", CREATE),))
    assert heading in format_markdown([PlanSection(agent, stage, plan, None)]).splitlines()


def test_targets_of_one_agent_and_stage_share_its_heading():
    plan = Plan("aws", "t", (Resource("role", "r", CREATE),))
    text = format_markdown([PlanSection("bot", "dev", plan, None), PlanSection("bot", "dev", plan, None)])
    assert text.count("### bot · dev") == 1 and text.count("**t**") == 2


@pytest.mark.parametrize(("actions", "errors", "summary"), [
    ((CREATE, CREATE, UPDATE, UNCHANGED), 0, "**2 to create, 1 to update, 0 to delete** across 1 target"),
    ((DELETE,), 1, "**0 to create, 0 to update, 1 to delete** across 2 targets; **1 failed to plan**"),
    ((UNCHANGED,), 0, "**No changes** across 1 target"),
])
def test_the_summary_line_counts_every_target(actions, errors, summary):
    plan = Plan("aws", "t", tuple(Resource("role", f"r{i}", action) for i, action in enumerate(actions)))
    failed = [PlanSection("bot", "prod", None, "aws: boom")] * errors
    assert format_markdown([PlanSection("bot", "dev", plan, None), *failed]).splitlines()[1] == summary


@pytest.mark.parametrize(("action", "change", "row"), [
    (CREATE, Change("memory", None, 1024), "| ➕ create | lambda function | `bot` | memory: `1024` |"),
    (UPDATE, Change("memory", 1024, 2048), "| 🔄 update | lambda function | `bot` | memory: `1024` → `2048` |"),
    (DELETE, Change("with", "its versions", None), "| 🗑️ delete | lambda function | `bot` | with: `its versions` |"),
    (UPDATE, Change("secrets readable", "some", None),
     "| 🔄 update | lambda function | `bot` | secrets readable: `some` → `(none)` |"),
    (UPDATE, Change("policies", None, ["A", "B"]),
     '| 🔄 update | lambda function | `bot` | policies: `(none)` → `["A", "B"]` |'),
])
def test_a_row_per_resource_with_its_changing_fields(action, change, row):
    assert row in one(Resource("lambda function", "bot", action, (change,))).splitlines()


def test_fields_are_joined_in_one_cell_and_unchanged_resources_show_their_detail():
    changed = Resource("lambda function", "bot", UPDATE, (Change("memory", 1, 2), Change("timeout", 3, 4)))
    plan = Plan("aws", "t", (changed, Resource("function url", "bot", UNCHANGED, detail="https://u")))
    lines = format_markdown([PlanSection("bot", None, plan, None)]).splitlines()
    assert "| 🔄 update | lambda function | `bot` | memory: `1` → `2`<br>timeout: `3` → `4` |" in lines
    assert "| ⚪ unchanged | function url | `bot` | https://u |" in lines


# Every value comes from agent.yaml or a cloud: shown as itself, it never ends a cell or a row, nor
# becomes markup, HTML or a link with another text. Text cells escape; values are code spans (in which
# GitHub adds no link, mention or emoji). Checked against cmark-gfm, GitHub's renderer.
@pytest.mark.parametrize(("value", "as_text", "as_code"), [
    ("a|b", r"a\|b", r"`a\|b`"),
    (r"a\|b", r"a\\\|b", r"`a\\|b`"),
    ("end\\", r"end\\", "`end\\`"),
    ("x`y", r"x\`y", "``x`y``"),
    ("`edge`", r"\`edge\`", "`` `edge` ``"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;", "`<img src=x onerror=alert(1)>`"),
    ("a & b &amp;", "a &amp; b &amp;amp;", "`a & b &amp;`"),
    ("[docs](https://evil.example)", r"\[docs\](https://evil.example)", "`[docs](https://evil.example)`"),
    ("**bold** _it_ ~~no~~ $x$", r"\*\*bold\*\* \_it\_ \~\~no\~\~ \$x\$", "`**bold** _it_ ~~no~~ $x$`"),
    ("two\nlines\r\nthree", "two<br>lines<br>three", "`two`<br>`lines`<br>`three`"),
    ("# title", r"\# title", "`# title`"),
])
def test_values_cannot_break_the_table_or_add_markup(value, as_text, as_code):
    lines = one(Resource(value, value, UPDATE, (Change(value, value, "x"),)), value).splitlines()
    assert f"| 🔄 update | {as_text} | {as_code} | {as_text}: {as_code} → `x` |" in lines
    assert f"- **Note:** {as_text}" in lines


@pytest.mark.parametrize("value", ["a|b|c", "a\\|b", "x\\", "`|`", "|\n|", "<td>", "a\r|b"])
def test_a_row_keeps_its_four_cells_whatever_the_values(value):
    row = next(line for line in one(Resource(value, value, UPDATE, (Change(value, value, value),))).splitlines()
               if line.startswith("| 🔄"))
    # cmark-gfm ends a cell at each "|" not right after a backslash (a backslash before it always escapes it)
    assert len(re.findall(r"(?<!\\)\|", row)) == 5


def test_a_plan_without_changes_says_so_instead_of_a_table():
    text = one(Resource("lambda function", "bot", UNCHANGED, detail="code abc"), "kept SLACK_TOKEN")
    assert "No changes: what is deployed matches agent.yaml." in text
    assert "| Action" not in text and "- **Note:** kept SLACK\\_TOKEN" in text


def test_a_target_that_failed_shows_its_error_verbatim_in_a_block():
    error = "gcp: bad `x` | ```\n</details> <b>"
    lines = format_markdown([PlanSection("bot", "prod", None, error)]).splitlines()
    at = lines.index("⚠️ **Plan failed:**")
    assert lines[at + 2:at + 6] == ["````text", "gcp: bad `x` | ```", "</details> <b>", "````"]


def test_a_prompt_change_is_a_collapsed_diff_block():
    prompt = Change("prompt", "Be helpful.\nUse ``` fences.", "Be terse.\nUse ``` fences.", text=True)
    lines = one(Resource("cloud function", "bot", UPDATE, (prompt,))).splitlines()
    assert "| 🔄 update | cloud function | `bot` | prompt: changed, diff below |" in lines
    at = lines.index("<details><summary>prompt diff: cloud function bot</summary>")
    assert lines[at + 1:at + 11] == ["", "````diff", "--- deployed", "+++ agent.yaml", "@@ -1,2 +1,2 @@",
                                     "-Be helpful.", "+Be terse.", " Use ``` fences.", "````", ""]
    assert lines[at + 11] == "</details>"


def test_no_secret_value_is_shown():
    # Operation arguments hold placeholders; Markdown never shows arguments (a planner's mistake stays out too)
    key = Operation("lambda.update_function_configuration",
                    {"Environment": {"Variables": {"OPENAI_API_KEY": {"$secret": "OPENAI_API_KEY"}}},
                     "Token": "sk-live-0123456789"}, "UpdateFunctionConfiguration")
    resource = Resource("lambda function", "bot", UPDATE, (Change("environment SLACK_TOKEN", "(kept)", "(kept)"),
                                                           Change("environment OPENAI_API_KEY", "(value hidden)",
                                                                  "(new value hidden)")), (key,))
    text = one(resource)
    assert "environment SLACK\\_TOKEN: `(kept)` → `(kept)`" in text and "`(new value hidden)`" in text
    assert "sk-live" not in text and "$secret" not in text
