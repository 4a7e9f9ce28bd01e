"""Headless Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Never ``playwright install``: the browser is the system package (``.ci/run`` installs it), and
the flags keep it from reaching the network on its own. :class:`ConsoleErrors` collects what a
page logs as an error and every uncaught exception, so a test can require that there were none.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


class ConsoleErrors:
    """Console errors and uncaught exceptions of the pages it is attached to."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page: Any) -> Any:
        """Listen to ``page``; returns it."""
        page.on("console", lambda message: message.type == "error" and self.errors.append(
            f"{page.url}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (fails the test when Debian's package is missing)."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium package is not installed (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``tests/artifacts/<name>.png`` (a CI artefact, not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
