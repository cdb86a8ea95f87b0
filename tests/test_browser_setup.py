"""Set-up in the browser (issue 21 item 2) in Chromium: the pages pass axe-core at desktop and
phone width (0 serious/critical), and a newcomer fills the general page with the keyboard
and the time-zone search field.  The same axe run as tests/test_browser_axe.py."""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.dealer_settings import load_dealer_config
from mailgate.models import User
from mailgate.webui import create_app
from mailgate.webui.accounts import invitations
from mailgate.webui.server import WebThread

from .browser import LiveWeb, browser, log_in, page  # noqa: F401
from .test_browser_axe import _audit, axe_page  # noqa: F401
from .webui_helpers import ensure_user

ADMIN = "ada@autohaus.example"


def _serve(factory: sessionmaker[Session]) -> tuple[WebThread, Flask]:
    app = create_app(factory, Settings())
    return WebThread(app, "127.0.0.1", 0).start(), app


def test_setup_pages_pass_axe(axe_page: Any, dealer: sessionmaker[Session]) -> None:  # noqa: F811
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin")
    ensure_user(dealer, "neu@autohaus.example", "salesperson", name="Neu", password=None)
    web, app = _serve(dealer)
    try:
        base = f"http://127.0.0.1:{web.server.effective_port}"
        requests.get(base + "/login", timeout=10)  # the app reads its secret on first use
        with dealer() as session:
            invited = session.scalar(select(User).where(User.email == "neu@autohaus.example"))
            assert invited is not None
            token = invitations.make_token(str(app.secret_key), invited)
        failures = _audit(axe_page, base, [f"/invite/{token}"], "public")
        log_in(axe_page, base, ADMIN)
        pages = ["/setup/checklist", "/setup/invite", "/settings/", "/system/", "/system/doctor"]
        failures |= _audit(axe_page, base, pages, "admin")
    finally:
        web.stop()
    assert not failures, failures


def test_general_page_with_the_keyboard_and_the_zone_search(
    page: Any,  # noqa: F811
    factory: sessionmaker[Session],
) -> None:
    ensure_user(factory, ADMIN, "admin", name="Ada Admin", receives_leads=False)
    web, _ = _serve(factory)
    try:
        base = f"http://127.0.0.1:{web.server.effective_port}"
        log_in(page, base, ADMIN)
        page.goto(base + "/setup/checklist")
        assert page.get_by_role("heading", name="Einrichtungs-Checkliste").is_visible()
        page.get_by_role("link", name="Unter Einstellungen → Allgemein eintragen").first.click()
        page.get_by_label("Name des Autohauses").fill("Autohaus Tastatur")
        page.get_by_label("Lead-Adressen").fill("anfragen@tastatur.example")
        zone = page.get_by_label("Zeitzone")
        zone.fill("")
        zone.type("Europe/Vie")
        assert page.locator("#timezone-options option[value='Europe/Vienna']").count() == 1
        zone.fill("Europe/Vienna")
        with page.expect_navigation():
            page.get_by_role("button", name="Speichern").press("Enter")  # the keyboard saves
        assert "Gespeichert" in page.content(), page.content()[-3000:]
        base_url_value = page.get_by_label("Webadresse (Basis-URL)").input_value()
    finally:
        web.stop()
    with factory() as session:
        dealer = load_dealer_config(session)
    assert dealer.name == "Autohaus Tastatur"
    assert dealer.addresses == ("anfragen@tastatur.example",)
    assert dealer.timezone.key == "Europe/Vienna"
    assert dealer.base_url == base_url_value == "http://127.0.0.1:8025"  # the suggestion
