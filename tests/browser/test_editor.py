"""The editor's page in Chromium, against a real `agenthost edit` (one server for the module): form and YAML in
sync both ways, the validator's messages at their field and line, Save, Try it, the token, keyboard, axe-core."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import field, open_page, wait_until, yaml_text
from tests.conftest import JS_DIR

pytestmark = pytest.mark.slow

AZURE_TIMEOUT = "    timeout: 230\n"  # the sample's line under targets.azure
AZURE_COMMENT = "    # Azure must answer an HTTP request within 230 seconds.\n"


def type_into(element, text: str) -> None:
    """Select what the field holds and type `text` over it, as a user does."""
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(text)


def type_over_in_yaml(driver, old: str, new: str) -> None:
    """Select `old` in the YAML view (its first occurrence) and type `new` over it."""
    selected = driver.execute_script("""
        const area = document.getElementById('yaml-text'); const at = area.value.indexOf(arguments[0]);
        area.focus(); area.setSelectionRange(at, at + arguments[0].length);
        return [at, document.activeElement === area, area.selectionStart, area.selectionEnd];""", old)
    assert selected[:2] == [selected[2], True] and selected[0] >= 0, f"{old!r} not selected in the YAML: {selected}"
    # keys to what has focus: an element's send_keys puts the caret at the end when the window lacks focus
    ActionChains(driver).send_keys(new).perform()


def line_of(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1


def findings(driver) -> list[str]:
    """The problems listed under the YAML, read at once (the list is redrawn on every answer)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#findings .finding')].map((item) => item.innerText)")


def test_the_page_shows_the_form_and_the_yaml(page, editor):
    assert yaml_text(page) == editor.agent.read_text()
    assert field(page, "name").get_attribute("value") == "support-bot"
    assert field(page, "targets.azure.timeout").get_attribute("value") == "230"
    assert "timeout (seconds)" in page.find_element("css selector", '[data-schemapath="root.timeout"]').text
    assert page.find_element("id", "save").is_enabled()


def test_the_prompt_changed_in_the_form_shows_in_the_yaml_with_the_comments_kept(page):
    type_into(page.find_element("css selector", '[data-schemapath="root.prompt"] textarea'),
              "You answer questions about invoices.")
    wait_until(page, lambda d: "prompt: You answer questions about invoices." in yaml_text(d)
               or "  You answer questions about invoices." in yaml_text(d), "the prompt in the YAML")
    text = yaml_text(page)
    assert "Example Corp" not in text
    assert "# What the agent is told before every user message" in text and AZURE_COMMENT in text


def test_a_prompt_read_from_a_file_shows_the_files_name_in_the_form(page):
    prompt = yaml_text(page).split("prompt: |\n", 1)[1].split("\n\n", 1)[0]
    prompt = f"prompt: |\n{prompt}\n"
    type_over_in_yaml(page, prompt, "prompt: {file: prompts/system.txt}\n")
    wait_until(page, lambda d: d.find_elements("css selector", '[data-schemapath="root.prompt.file"] input'),
               "the prompt file's field")
    assert field(page, "prompt.file").get_attribute("value") == "prompts/system.txt"


def test_a_timeout_changed_in_the_form_shows_in_the_yaml(page):
    type_into(field(page, "timeout"), "120")
    wait_until(page, lambda d: "\ntimeout: 120\n" in yaml_text(d), "the timeout in the YAML")
    assert AZURE_TIMEOUT in yaml_text(page)


HOLD_ANSWER = """
    const path = arguments[0]; const real = window.fetch; window.held = [];
    window.fetch = (url, init) => real(url, init).then((answer) => String(url).endsWith(path) && !window.held.length
        ? new Promise((resolve) => window.held.push(() => resolve(answer))) : answer);"""  # the first answer only


@pytest.mark.parametrize(("path", "edit_before"), [
    ("/api/form", lambda page: type_into(field(page, "timeout"), "150")),
    ("/api/text", lambda page: type_over_in_yaml(page, "\ntimeout: 300\n", "\ntimeout: 240\n")),
], ids=["a form change", "an earlier YAML edit"])
def test_what_is_typed_in_the_yaml_while_an_answer_is_under_way_is_kept(page, path, edit_before):
    page.execute_script(HOLD_ANSWER, path)
    edit_before(page)
    wait_until(page, lambda d: d.execute_script("return window.held.length") == 1, f"the {path} request")
    type_over_in_yaml(page, "name: support-bot\n", "name: billing-bot\n")
    page.execute_script("window.held[0]()")  # answered while the typing's debounce runs
    wait_until(page, lambda d: field(d, "name").get_attribute("value") == "billing-bot", "the name in the form")
    assert "name: billing-bot\n" in yaml_text(page)


TOOLS = """tools:
  - name: lookup_order
    description: Look up an order by its number.
    parameters:
      type: object
      properties:
        order_id: {type: string, description: The order number}
      required: [order_id]
    http:
      url: https://api.example.com/orders/{order_id}
  - mcp:
      url: http://127.0.0.1:9000/mcp

"""


def test_tools_show_as_a_list_with_each_arguments_type_and_description(page):
    type_over_in_yaml(page, "\ntargets:\n", "\n" + TOOLS + "targets:\n")
    argument = "tools.0.parameters.properties.order_id"
    wait_until(page, lambda d: d.find_elements("css selector", f'[data-schemapath="root.{argument}.type"] select'),
               "the tool's argument in the form")
    assert field(page, "tools.0.name").get_attribute("value") == "lookup_order"
    assert field(page, f"{argument}.type").get_attribute("value") == "string"
    assert field(page, f"{argument}.description").get_attribute("value") == "The order number"
    assert field(page, "tools.0.parameters.required.0").get_attribute("value") == "order_id"
    assert field(page, "tools.1.mcp.url").get_attribute("value") == "http://127.0.0.1:9000/mcp"


def test_an_arguments_description_changed_in_the_form_shows_in_the_yaml(page):
    type_over_in_yaml(page, "\ntargets:\n", "\n" + TOOLS + "targets:\n")
    description = "tools.0.parameters.properties.order_id.description"
    wait_until(page, lambda d: d.find_elements("css selector", f'[data-schemapath="root.{description}"] input'),
               "the argument's description in the form")
    type_into(field(page, description), "The order number, digits only")
    wait_until(page, lambda d: "The order number, digits only" in yaml_text(d), "the description in the YAML")
    text = yaml_text(page)
    assert "url: http://127.0.0.1:9000/mcp" in text and AZURE_COMMENT in text and findings(page) == []


def toggle_platform(driver, name: str) -> None:
    """Tick or untick a platform in the targets section's "Add or remove fields" list."""
    box = driver.find_element("id", f"root.targets-{name}")
    if not box.is_displayed():
        driver.find_element("css selector", '[data-schemapath="root.targets"] .json-editor-btn-edit_properties').click()
        box = driver.find_element("id", f"root.targets-{name}")
    box.click()


def test_a_platform_is_removed_and_added_again_with_its_sections_button(page):
    toggle_platform(page, "vercel")
    wait_until(page, lambda d: "\n  vercel:" not in yaml_text(d), "vercel gone from the YAML")
    assert "\n  azure:\n" in yaml_text(page)
    assert [o.text for o in page.find_elements("css selector", "#chat-target option")] == ["aws", "gcp", "azure"]
    toggle_platform(page, "vercel")
    wait_until(page, lambda d: "\n  vercel:" in yaml_text(d), "vercel back in the YAML")


def test_azures_limit_typed_in_the_yaml_shows_at_the_field_and_its_line_and_turns_save_off(page):
    line = line_of(yaml_text(page), AZURE_TIMEOUT)
    type_over_in_yaml(page, "timeout: 230", "timeout: 900")
    at_field = wait_until(page, lambda d: d.execute_script("""
        const note = document.querySelector('[data-schemapath="root.targets.azure.timeout"] .field-finding.error');
        return note && note.innerText;"""), "the field's message")
    assert "230" in at_field
    assert field(page, "targets.azure.timeout").get_attribute("value") == "900"
    assert any(item.startswith(f"{line}:") and at_field in item for item in findings(page)), findings(page)
    save = page.find_element("id", "save")
    assert not save.is_enabled()
    assert "1 problem to fix first" in page.find_element("id", "save-reason").text


def test_clicking_a_problem_selects_its_line_in_the_yaml(page):
    type_over_in_yaml(page, "timeout: 230", "timeout: 900")
    wait_until(page, lambda d: findings(d), "a problem listed")
    page.find_element("css selector", "#findings .finding").click()
    selected = page.execute_script(
        "const a = document.getElementById('yaml-text'); return a.value.slice(a.selectionStart, a.selectionEnd)")
    assert selected == AZURE_TIMEOUT.replace("230", "900").rstrip("\n")


def test_fixing_the_yaml_clears_the_problem_and_turns_save_on(page):
    type_over_in_yaml(page, "timeout: 230", "timeout: 900")
    wait_until(page, lambda d: findings(d), "a problem listed")
    type_over_in_yaml(page, "timeout: 900", "timeout: 200")
    wait_until(page, lambda d: not findings(d) and d.find_element("id", "save").is_enabled(), "Save on again")
    assert not page.find_elements("css selector", ".field-finding")
    assert field(page, "targets.azure.timeout").get_attribute("value") == "200"


def test_save_writes_the_file_with_its_comments_builds_and_lists_the_changed_files(page, editor):
    type_into(field(page, "max_tokens"), "2048")
    wait_until(page, lambda d: "\nmax_tokens: 2048\n" in yaml_text(d), "max_tokens in the YAML")
    page.find_element("id", "save").click()
    wait_until(page, lambda d: d.find_elements("css selector", "#saved p"), "the save's report")
    saved = editor.agent.read_text()
    assert saved == yaml_text(page)
    assert "\nmax_tokens: 2048\n" in saved and AZURE_COMMENT in saved and saved.startswith("# yaml-language-server")
    changed = [item.text for item in page.find_elements("css selector", "#changed li")]
    assert changed and all(name.startswith("generated/") for name in changed), changed
    result = subprocess.run([sys.executable, "-m", "framework", "validate", "-f", str(editor.agent)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_try_it_streams_the_answer_of_the_fake_model_with_its_tokens(page):
    page.execute_script("""
        window.answerChanges = 0;
        new MutationObserver(() => { window.answerChanges += 1; })
          .observe(document.getElementById('chat-answer'), {childList: true, characterData: true, subtree: true});""")
    page.find_element("css selector", "#chat-target option[value='gcp']").click()
    type_into(page.find_element("id", "chat-message"), "Hello [[delay:0.05]] there")
    page.find_element("id", "chat-send").click()
    wait_until(page, lambda d: "Tokens" in d.find_element("id", "chat-stats").text, "the answer's tokens")
    assert page.find_element("id", "chat-answer").text.startswith("echo: Hello")
    assert page.execute_script("return window.answerChanges") > 1  # it arrived in parts
    assert "Steps: 1" in page.find_element("id", "chat-stats").text


@pytest.mark.parametrize(("headers", "why"), [
    ({}, "no token header"),
    ({"X-Agenthost-Token": "0" * 48}, "a wrong token"),
])
def test_the_pages_own_fetch_without_the_token_is_refused(page, headers, why):
    status = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/state', {headers: arguments[0]}).then((r) => done(r.status), (e) => done(String(e)));""",
                                       headers)
    assert status == 403, why


@pytest.mark.parametrize(("path", "headers", "why"), [
    ("/", {}, "the page without the token in the address nor the cookie"),
    ("/?token=" + "0" * 48, {}, "the page with a wrong token"),
    ("/api/state", {"Cookie": "agenthost_editor_{port}={token}"}, "the API with the cookie but no token header"),
    ("/api/state", {"Cookie": "agenthost_editor_{port}={token}", "X-Agenthost-Token": "{token}",
                    "Host": "attacker.example:80"}, "another host name (DNS rebinding)"),
    ("/api/state", {"Cookie": "agenthost_editor_{port}={token}", "X-Agenthost-Token": "{token}",
                    "Origin": "http://attacker.example"}, "another site's page"),
])
def test_plain_http_without_the_token_is_refused(editor, path, headers, why):
    request = urllib.request.Request(editor.base + path, headers={
        key: value.format(token=editor.token, port=editor.port) for key, value in headers.items()})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403, why


def test_keyboard_tab_reaches_every_field_of_the_form(page):
    fields = page.execute_script("""
        return [...document.querySelectorAll('#form :is(input, textarea, select, button)')]
          .filter((e) => e.offsetParent !== null && !e.disabled).map((e) => e.id || e.name || e.textContent);""")
    reached = set()
    page.find_element("tag name", "body").click()
    for _ in range(len(fields) * 3 + 20):
        page.switch_to.active_element.send_keys(Keys.TAB)
        reached.add(page.execute_script(
            "const e = document.activeElement; return e.closest('#form') ? (e.id || e.name || e.textContent) : null"))
    assert set(fields) <= reached, sorted(set(fields) - reached)


def test_keyboard_enter_on_save_saves(page, editor):
    type_into(field(page, "memory"), "512")
    wait_until(page, lambda d: "\nmemory: 512\n" in yaml_text(d), "memory in the YAML")
    page.execute_script("document.getElementById('save').focus()")
    page.switch_to.active_element.send_keys(Keys.ENTER)
    wait_until(page, lambda d: d.find_elements("css selector", "#saved p"), "the save's report")
    assert "\nmemory: 512\n" in editor.agent.read_text()


@pytest.mark.parametrize("state", ["loaded", "with a problem", "with tools"])
def test_axe_core_finds_nothing_serious(browser, editor, state):
    page = open_page(browser, editor)
    if state == "with a problem":
        type_over_in_yaml(page, "timeout: 230", "timeout: 900")
        wait_until(page, lambda d: findings(d), "a problem listed")
    if state == "with tools":
        type_over_in_yaml(page, "\ntargets:\n", "\n" + TOOLS + "targets:\n")
        wait_until(page, lambda d: d.find_elements("css selector", '[data-schemapath="root.tools.1.mcp"]'), "the tools")
    page.execute_script((JS_DIR / "node_modules" / "axe-core" / "axe.min.js").read_text())
    result = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document).then((r) => done(r.violations), (e) => done(String(e)));""")
    serious = [{"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
               for v in result if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)
