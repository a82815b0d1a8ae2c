"""Try it without the model key: the panel names the variable to set and offers no way to type a key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import open_page
from tests.editor import Editor, running_editor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def keyless(tmp_path_factory) -> Iterator[Editor]:
    with running_editor(tmp_path_factory.mktemp("edit-keyless"), {"OPENAI_API_KEY": None}) as running:
        yield running


def test_try_it_says_which_variable_to_set_and_asks_for_no_key(browser, keyless):
    page = open_page(browser, keyless)
    notice = page.find_element("id", "chat-key")
    assert notice.is_displayed()
    assert "OPENAI_API_KEY" in notice.text and "start the editor again" in notice.text
    assert not page.find_element("id", "chat-send").is_enabled()
    assert page.find_elements("css selector", "input[type=password]") == []
