"""Logging in, out and switching language in a real browser (Chromium via Playwright)."""

from __future__ import annotations

from typing import Any

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .webui_helpers import ensure_user, setup_token


def test_login_language_switch_and_logout(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    ensure_user(live_web.factory, "admin@autohaus.example", "admin", name="Ada Admin")
    page.goto(live_web.url + "/")
    assert page.url.endswith("/login")
    # A wrong password: an error message, still on the login page.
    page.get_by_label("E-Mail-Adresse").fill("admin@autohaus.example")
    page.get_by_label("Passwort").fill("falsch-falsch-1")
    page.get_by_role("button", name="Anmelden").click()
    assert page.get_by_role("alert").inner_text() == "E-Mail-Adresse oder Passwort ist falsch."
    # English before login, then German again once logged in (the user's own language).
    page.get_by_role("button", name="English").click()
    assert page.get_by_role("heading", name="Log in").is_visible()
    page.get_by_role("button", name="Deutsch").click()
    log_in(page, live_web.url, "admin@autohaus.example")
    assert page.get_by_role("navigation", name="Hauptnavigation").is_visible()
    assert page.get_by_role("link", name="Ada Admin").is_visible()
    screenshot(page, "home-after-login")
    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_url("**/login")
    page.goto(live_web.url + "/leads")
    assert "/login" in page.url


def test_first_start_setup_page_in_the_browser(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    page.goto(live_web.url + "/")
    assert page.url.endswith("/setup")  # refused without the link the service printed
    assert page.get_by_role("heading", name="mailgate einrichten").is_visible()
    assert "Einrichtungslink fehlt, ist ungültig" in page.content()
    page.goto(live_web.url + "/setup?token=" + setup_token(live_web.factory))
    page.get_by_label("Ihr Name").fill("Ada Admin")
    page.get_by_label("E-Mail-Adresse").fill("ada@autohaus.example")
    page.get_by_label("Neues Passwort").fill("Sicheres-Passwort-1")
    page.get_by_label("Passwort wiederholen").fill("Sicheres-Passwort-1")
    page.get_by_role("button", name="Administratorkonto anlegen").click()
    welcome = page.get_by_role("status").filter(has_text="Willkommen")  # besides other notes
    assert welcome.inner_text() == "Willkommen! Ihr Administratorkonto ist eingerichtet."
    screenshot(page, "setup-done")
