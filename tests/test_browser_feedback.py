"""Status feedback in a real browser (Chromium via Playwright): a lead from a car maker's lead
system moves up the sales ladder and is closed; the admin sees the feedback mails to the OEM
in the outbox, in German."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailgate.models import Lead

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .distribution_helpers import ingest, setup, team_toml
from .webui_helpers import ensure_user

OPEL_LEAD = (
    Path(__file__).parent / "fixtures/mails/oem_opel/leadit-angebot-utf8-qp.eml"
).read_bytes()
FEEDBACK = '\n[[feedback]]\nsource = "oem:*"\nto = "leadit-status@opel-partner.example"\n'
ADA = "ada@autohaus.example"


def test_status_changes_reach_the_oem_through_the_outbox(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    setup(live_web.factory, team_toml(extra=FEEDBACK))
    ensure_user(live_web.factory, ADA, "admin", name="Ada Admin")
    ingest(live_web.factory, OPEL_LEAD)
    with live_web.factory() as session:
        lead_id = session.scalar(select(Lead.id))
    log_in(page, live_web.url, ADA)
    page.goto(f"{live_web.url}/leads/{lead_id}")
    page.locator("#action-status").click()
    stage = page.locator("#form-stage")
    stage.get_by_label("Neuer Status").select_option(label="Angebot")
    stage.get_by_role("button", name="Status setzen").click()
    page.locator("#action-close").click()
    close = page.locator("#form-close")
    close.get_by_label("Abschlussgrund").select_option(label="Fahrzeug verkauft")
    close.get_by_role("button", name="Anfrage abschließen").click()

    page.get_by_role("link", name="Postausgang").click()
    rows = page.locator("table tbody tr", has_text="leadit-status@opel-partner.example")
    assert rows.count() == 2  # the offer and the close, once each
    assert rows.first.get_by_text("Statusmeldung an die Quelle").is_visible()
    screenshot(page, "outbox-source-feedback")
    rows.last.get_by_role(
        "link", name=re.compile(r"^Statusmeldung")
    ).click()  # the older one: the offer (newest first)
    assert "Statusmeldung zu Lead 2718281: Angebot" in page.locator("dl").first.inner_text()
