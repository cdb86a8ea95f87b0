"""Browser tests: Playwright driving Debian's Chromium against the real WSGI server.

Never downloads a browser: it launches ``/usr/bin/chromium`` (or
``MAILGATE_CHROMIUM``).  Without Chromium or Playwright the browser tests skip,
except under ``MAILGATE_REQUIRE_SERVICES=1`` (CI), where that is a failure.
Screenshots go to ``test-artifacts/screenshots/`` (or ``MAILGATE_ARTIFACTS``).

Use in a test module::

    from .browser import browser, live_web, page, screenshot  # noqa: F401 (fixtures)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.webui import create_app
from mailgate.webui.server import WebThread

from .conftest import require_service
from .webui_helpers import PASSWORD

CHROMIUM = os.environ.get("MAILGATE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("MAILGATE_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")
)


_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for the whole session.

    Every test module imports this fixture, so pytest holds one definition per
    module; a second ``sync_playwright()`` inside the first one's loop fails, so
    later modules get the browser the first one started.
    """
    if "browser" in _SHARED:
        yield _SHARED["browser"]
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("Playwright", "the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        require_service("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless"], headless=True
        )
        _SHARED["browser"] = chromium
        try:
            yield chromium
        finally:
            _SHARED.clear()
            chromium.close()


@dataclass
class LiveWeb:
    url: str
    factory: sessionmaker[Session]


@pytest.fixture
def live_web(dealer: sessionmaker[Session]) -> Iterator[LiveWeb]:
    """The web UI served by waitress on a free port, on the test's database."""
    web = WebThread(create_app(dealer, Settings()), "127.0.0.1", 0).start()
    try:
        yield LiveWeb(f"http://127.0.0.1:{web.server.effective_port}", dealer)
    finally:
        web.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies) that fails the test on a page's JS error."""
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def log_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(lambda url: "/login" not in url)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; returns its path."""
    target = ARTIFACTS / "screenshots" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target
