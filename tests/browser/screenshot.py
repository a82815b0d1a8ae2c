"""Regenerates docs/editor.png, the README's picture of the editor: the sample agent with Azure's timeout
limit broken in the YAML view, so the message shows at its field and line. Run it by hand after changing the
page (`.venv/bin/python tests/browser/screenshot.py`) and commit the PNG; the test suite does not run it."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.browser.conftest import chromium, open_page, wait_until  # noqa: E402
from tests.browser.test_editor import findings, type_over_in_yaml  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.editor import start_editor, stop  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        editor = start_editor(Path(work) / "agent", {"OPENAI_API_KEY": None})
        driver = chromium(Path(work) / "profile")
        try:
            page = open_page(driver, editor)
            type_over_in_yaml(page, "timeout: 230", "timeout: 900")
            wait_until(page, findings, "the Azure message")
            page.execute_script("""
                document.querySelector('[data-schemapath="root.targets.azure.timeout"]').scrollIntoView();
                window.scrollBy(0, -420);
                const area = document.getElementById('yaml-text');
                area.scrollTop = area.scrollHeight; area.blur();""")
            page.save_screenshot(str(ROOT / "docs" / "editor.png"))
        finally:
            driver.quit()
            stop(editor.process)


if __name__ == "__main__":
    main()
