"""A headless Chromium for tests that look at a page as an operator does: Debian's ``chromium`` and
``chromium-driver`` (compose/install.sh installs both), driven by Selenium, with no browser download.

Missing in CI (``CI=true``), it fails the test; elsewhere it skips it with what to install.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing(what: str) -> None:
    message = f"{what}; install it with `make install` (apt-get install chromium chromium-driver; pip selenium)"
    if _in_ci():
        pytest.fail(f"the Flower page test must run in CI: {message}", pytrace=False)
    pytest.skip(message)


def require_chromium() -> tuple[str, str]:
    """The browser and its driver; fails (CI) or skips the test when either, or Selenium, is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("selenium is not installed")
    binary = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver_path = shutil.which(DRIVER)
    if binary is None or driver_path is None:
        _missing(f"no {'chromium' if binary is None else DRIVER} on PATH")
    return str(binary), str(driver_path)


@contextmanager
def chromium(profile: Path, user: str | None = None, password: str | None = None) -> Iterator[Any]:
    """A headless Chromium that sends ``user``'s basic-auth credentials with every request."""
    binary, driver_path = require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never fetch a browser or a driver
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_page_load_timeout(60)
        if user is not None and password is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
        yield driver
    finally:
        driver.quit()


# Every row of the page's tables, read in one go (the pages redraw their tables as they refresh):
# the row's id, the worker a Workers row links to, and the text of each cell.
_ROWS = """return Array.from(document.querySelectorAll('table tbody tr')).map(r => ({
    id: r.id, worker: (r.querySelector('a.worker-name-link') || {}).title || '',
    cells: Array.from(r.cells).map(c => c.innerText.trim())}));"""


def table_rows(driver: Any) -> list[dict[str, Any]]:
    return list(driver.execute_script(_ROWS))


def page_text(driver: Any) -> str:
    return str(driver.find_element("tag name", "body").text)


def wait_for_page(driver: Any, url: str, holds: Callable[[Any], bool], what: str, timeout: float = 120) -> None:
    """Open ``url`` again and again until ``holds(driver)``; fail naming ``what``, with the page's text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        driver.get(url)
        time.sleep(1)  # let the page's own scripts fill it in
        if holds(driver):
            return
        time.sleep(2)
    _fail(driver, f"{url}: not within {timeout} s: {what}")


def wait_until(driver: Any, holds: Callable[[Any], bool], what: str, timeout: float = 60) -> None:
    """Wait, on the page as it is, until ``holds(driver)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if holds(driver):
            return
        time.sleep(0.5)
    _fail(driver, f"{driver.current_url}: not within {timeout} s: {what}")


def _fail(driver: Any, message: str) -> None:
    raise AssertionError(f"{message}\npage text:\n{page_text(driver)}\npage source:\n{driver.page_source[-6000:]}")
