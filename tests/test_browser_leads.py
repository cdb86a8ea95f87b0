"""The lead list and the pool in a real browser (Chromium via Playwright, both databases).

The first lead arrives over the real SMTP listener and is processed by the
worker, so the list shows what production would show.
"""

from __future__ import annotations

import smtplib
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings, SmtpSettings
from mailgate.db import session_scope
from mailgate.dealer_settings import import_settings
from mailgate.ingest.smtp import IntakeHandler, SmtpThread
from mailgate.ingest.store import store_raw
from mailgate.models import Lead, utcnow
from mailgate.worker import process_pending

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .conftest import DEALER_TOML
from .mails import LEAD_ADDRESS, inquiry
from .webui_helpers import ensure_user

CHEF = "chef@autohaus.example"
GREEN, RED, GREY = "rgb(46, 125, 50)", "rgb(183, 28, 28)", "rgb(95, 99, 104)"


def send_over_smtp(factory: sessionmaker[Session], *mails: bytes) -> None:
    """Deliver through the real SMTP listener, then let the worker make the leads."""
    settings = SmtpSettings(port=0)
    thread = SmtpThread(IntakeHandler(factory, settings), settings).start()
    try:
        with smtplib.SMTP("127.0.0.1", thread.port, timeout=10) as smtp:
            for raw in mails:
                smtp.sendmail("form@autohaus-web.example", [LEAD_ADDRESS], raw)
    finally:
        thread.stop()
    report = process_pending(factory, Settings())
    assert report.statuses == {"processed": len(mails)}, report.statuses


def lead_of(factory: sessionmaker[Session], name_part: str) -> int:
    from mailgate.models import Customer

    with factory() as session:
        found = session.scalar(
            select(Lead.id).join(Customer).where(Customer.name.contains(name_part))
        )
    assert found is not None
    return found


def background(locator: Any) -> str:
    return str(locator.evaluate("e => getComputedStyle(e).backgroundColor"))


def test_list_colour_search_bulk_reassign_and_phone_layout(
    page: Any,  # noqa: F811
    live_web: LiveWeb,  # noqa: F811
) -> None:
    factory = live_web.factory
    ensure_user(factory, "admin@autohaus.example", "admin", receives_leads=False)
    ensure_user(factory, CHEF, "supervisor", name="Carl Chef")
    ensure_user(
        factory,
        "bert@autohaus.example",
        "salesperson",
        name="Bert Berger",
        supervisor_email=CHEF,
        receives_leads=False,  # both mails go to Anna; Bert only by reassignment
    )
    send_over_smtp(
        factory,
        inquiry(1, name="Fritz Fröhlich", phone="0170 5550101"),
        inquiry(2, name="Olga Obermeier"),
    )
    olga = lead_of(factory, "Obermeier")
    now = utcnow()
    with factory.begin() as session:
        session.execute(
            update(Lead)
            .where(Lead.id == olga)
            .values(soon_at=now - timedelta(hours=2), overdue_at=now - timedelta(hours=1))
        )
    fritz = lead_of(factory, "Fröhlich")
    log_in(page, live_web.url, CHEF)
    page.goto(live_web.url + "/leads")
    row = page.get_by_role("row").filter(has_text="Fritz Fröhlich")
    badge = row.locator(".due")
    assert badge.inner_text() == "ok" and background(badge) == GREEN
    overdue = page.get_by_role("row").filter(has_text="Olga Obermeier").locator(".due")
    assert overdue.inner_text() == "überfällig" and background(overdue) == RED
    assert row.get_by_role("cell", name="Anna Schmidt").is_visible()
    screenshot(page, "lead-list")
    # search by the phone number in another notation
    page.get_by_role("searchbox", name="Suche").fill("+49 170 5550101")
    page.get_by_role("button", name="Anwenden").click()
    page.wait_for_url("**q=*")
    assert page.locator("tbody tr").count() == 1
    assert page.get_by_role("link", name="Fritz Fröhlich").is_visible()
    # bulk reassign the found lead to Bert
    page.get_by_label(f"Anfrage {fritz} auswählen").check()
    page.get_by_label("Neu zuweisen an").select_option(label="Bert Berger")
    page.get_by_role("button", name="Neu zuweisen", exact=True).click()
    assert page.get_by_role("status").inner_text() == "1 Anfrage an Bert Berger neu zugewiesen."
    assert "q=" in page.url  # back on the same search
    assert (
        page.get_by_role("row")
        .filter(has_text="Fritz Fröhlich")
        .get_by_role("cell", name="Bert Berger")
        .is_visible()
    )
    with factory() as session:
        lead = session.get(Lead, fritz)
        assert lead is not None and lead.assignee is not None
        assert lead.assignee.email == "bert@autohaus.example"
    # on a phone the table becomes cards, the colour stays
    page.goto(live_web.url + "/leads")
    page.set_viewport_size({"width": 375, "height": 800})
    first_row = page.locator("tbody tr").first
    assert first_row.evaluate("e => getComputedStyle(e).display") == "block"
    assert page.locator("thead").evaluate("e => e.getBoundingClientRect().width") <= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # the filter folds away behind one button and opens in place; on a wide screen it shows
    search = page.get_by_role("searchbox", name="Suche")
    assert not search.is_visible()
    toggle = page.get_by_role("button", name="Filter")
    assert toggle.get_attribute("aria-expanded") == "false"
    screenshot(page, "lead-list-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert search.is_visible() and not toggle.is_visible()
    page.set_viewport_size({"width": 375, "height": 800})
    toggle.click()
    search.wait_for()
    assert toggle.get_attribute("aria-expanded") == "true"


POOL_TOML = (
    DEALER_TOML.replace(
        '[distribution]\nfallback_user = "anna@autohaus.example"',
        '[distribution]\nfallback_user = "anna@autohaus.example"\nmode = "pool"\n'
        'pool_user = "pool@autohaus.example"\npool_oldest_only = true',
    )
    + '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'
)


def test_take_a_lead_from_the_pool(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    factory = live_web.factory
    with session_scope(factory) as session:
        import_settings(session, POOL_TOML)
    ensure_user(factory, "admin@autohaus.example", "admin", receives_leads=False)
    ensure_user(
        factory, "anna@autohaus.example", "salesperson", name="Anna Schmidt", receives_leads=False
    )  # every new lead goes to the pool
    for n, name in ((1, "Paula Pool"), (2, "Quentin Später")):
        store_raw(factory, inquiry(n, name=name), channel="smtp", envelope_to=[LEAD_ADDRESS])
        process_pending(factory, Settings())
    paula = lead_of(factory, "Paula")
    log_in(page, live_web.url, "anna@autohaus.example")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role("link", name="Pool").click()
    page.wait_for_url("**/pool")
    later = page.get_by_role("row").filter(has_text="Quentin Später")
    assert later.get_by_role("button", name="Übernehmen").is_disabled()
    assert later.get_by_text("nur die älteste").is_visible()
    screenshot(page, "pool")
    page.get_by_role("button", name="Anfrage von Paula Pool übernehmen").click()
    page.wait_for_url(f"**/leads/{paula}")
    # the flash (the lead page has a second live region: the answer form's file notes)
    assert page.get_by_role("status").first.inner_text() == f"Anfrage {paula} gehört jetzt Ihnen."
    page.goto(live_web.url + "/pool")
    assert page.get_by_role("button", name="Anfrage von Quentin Später übernehmen").is_enabled()


def test_a_new_lead_shows_up_without_a_reload(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    """Issue 21 item 7: the list polls every 30 s and offers the new lead; ticks survive the
    poll; a click swaps the table in place (no navigation).  My day swaps its agenda itself.
    The browser's clock is driven by Playwright: the real timer fires, 30 s pass in no time."""
    factory = live_web.factory
    ensure_user(factory, "admin@autohaus.example", "admin", receives_leads=False)
    ensure_user(factory, CHEF, "supervisor", name="Carl Chef")
    ensure_user(factory, "anna@autohaus.example", "salesperson", name="Anna Schmidt")
    send_over_smtp(factory, inquiry(1, name="Fritz Fröhlich"))
    fritz = lead_of(factory, "Fröhlich")
    page.clock.install()
    log_in(page, live_web.url, CHEF)
    page.goto(live_web.url + "/leads")
    page.evaluate("window.sameDocument = true")
    page.get_by_label(f"Anfrage {fritz} auswählen").check()
    send_over_smtp(factory, inquiry(2, name="Nora Neu"))
    page.clock.fast_forward(31_000)
    notice = page.get_by_role("status").filter(has_text="1 neue Anfrage")
    notice.wait_for()
    assert page.get_by_label(f"Anfrage {fritz} auswählen").is_checked()  # the poll left it
    assert page.get_by_role("link", name="Nora Neu").count() == 0  # not until asked
    screenshot(page, "lead-list-new-lead-notice")
    notice.get_by_role("link", name="Anzeigen").click()
    page.get_by_role("link", name="Nora Neu").wait_for()
    assert page.evaluate("window.sameDocument") is True  # swapped in place, no reload
    assert page.locator("#lead-count").inner_text() == "(2)"
    assert page.locator("#lead-news").inner_text() == ""
    # My day: Anna's overdue lead appears in her agenda by itself
    anna = page.context.browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    try:
        tab = anna.new_page()
        tab.clock.install()
        log_in(tab, live_web.url, "anna@autohaus.example")
        tab.goto(live_web.url + "/my-day")
        tab.evaluate("window.sameDocument = true")
        assert tab.locator("#overdue").get_by_role("link", name="Olga Obermeier").count() == 0
        send_over_smtp(factory, inquiry(3, name="Olga Obermeier"))
        now = utcnow()
        with factory.begin() as session:
            session.execute(
                update(Lead)
                .where(Lead.id == lead_of(factory, "Obermeier"))
                .values(soon_at=now - timedelta(hours=2), overdue_at=now - timedelta(hours=1))
            )
        tab.clock.fast_forward(31_000)
        tab.locator("#overdue").get_by_role("link", name="Olga Obermeier").wait_for()
        assert tab.evaluate("window.sameDocument") is True
        screenshot(tab, "my-day-live")
    finally:
        anna.close()
