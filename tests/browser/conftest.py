"""The editor in a real browser: Debian's Chromium driven by Selenium through Debian's chromedriver (both
installed by `make test`; nothing is downloaded), one browser per test session, one `agenthost edit` server
per test module, each on a temp copy of the commented sample agent.yaml."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import API_KEY
from tests.editor import Editor, running_editor

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")
WAIT = 20  # seconds: a bound on the page's answers (the debounce is 300 ms), never a measured time


def chromium(profile: Path) -> WebDriver:
    """Headless Chromium; Selenium Manager stays offline (the driver and browser paths are given)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        raise RuntimeError(f"the browser tests need {' and '.join(missing)}: Debian's chromium and "
                           "chromium-driver (make test installs them)")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(WAIT)
    return driver


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Iterator[WebDriver]:
    driver = chromium(tmp_path_factory.mktemp("chromium"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def editor(tmp_path_factory, fake_model) -> Iterator[Editor]:
    """The editor with the model key set and the model at the fake model server (Try it answers)."""
    with running_editor(tmp_path_factory.mktemp("edit"), {"OPENAI_API_KEY": API_KEY,
                                                          "OPENAI_BASE_URL": fake_model.url}) as running:
        yield running


def wait_until(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> object:
    try:
        # the page re-renders its lists as answers come: an element read as it is replaced is read again
        return WebDriverWait(driver, WAIT, poll_frequency=0.05,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        raise AssertionError(f"never happened: {what}") from None


@pytest.fixture
def page(browser: WebDriver, editor: Editor) -> WebDriver:
    """The editor's page, freshly loaded from the printed URL, its form built."""
    return open_page(browser, editor)


def open_page(browser: WebDriver, editor: Editor) -> WebDriver:
    browser.get(editor.url)
    wait_until(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), "the form")
    return browser


def field(driver: WebDriver, path: str) -> WebElement:
    """The input of the form's field at a dotted path (json-editor's data-schemapath), e.g. targets.azure.timeout."""
    return driver.find_element("css selector", f'[data-schemapath="root.{path}"] :is(input, textarea, select)')


def yaml_text(driver: WebDriver) -> str:
    return driver.execute_script("return document.getElementById('yaml-text').value")
