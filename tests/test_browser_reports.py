"""Reports and signed mail links in a real browser (Chromium via Playwright)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.models import Lead, utcnow
from mailgate.signed_links import link_secret, new_claims, sign

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .test_webui_reports import add_lead
from .webui_helpers import ensure_user

ADMIN, ANNA = "admin@autohaus.example", "anna@autohaus.example"


def test_reports_page_shows_charts_and_tables_and_changes_range(
    page: Any,  # noqa: F811
    live_web: LiveWeb,  # noqa: F811
) -> None:
    factory = live_web.factory
    ensure_user(factory, ADMIN, "admin", name="Ada Admin")
    ensure_user(factory, ANNA, "salesperson", name="Anna Schmidt")
    add_lead(factory, ANNA, 1, days_ago=3, answered_after_h=1, close_reason="sold")
    add_lead(factory, ANNA, 2, days_ago=4, answered_after_h=3, source="website")
    add_lead(factory, ANNA, 3, days_ago=200, answered_after_h=2)
    log_in(page, live_web.url, ADMIN)
    page.get_by_role("link", name="Berichte").click()
    page.wait_for_url("**/reports")
    charts = page.locator("svg[role=img]")
    assert charts.count() == 5  # sources, kinds, response, sales ladder, won/lost
    ladder = page.locator("#table-ladder tbody tr").last  # the totals: 2 received, 1 won
    assert [c.inner_text() for c in ladder.locator("td").all()] == ["2", "2", "0", "0", "0", "1"]
    assert charts.first.get_attribute("aria-labelledby") == "chart-sources-title chart-sources-desc"
    anna = page.locator("#table-response tbody tr").first
    assert anna.locator("th").inner_text() == "Anna Schmidt"
    assert [c.inner_text() for c in anna.locator("td").all()][:4] == ["2", "2", "2,0", "2,8"]
    # bar widths follow the table: p90 2.8 vs median 2.0
    bars = page.locator("#chart-response-title ~ rect[fill^='url']")
    widths = [float(b.get_attribute("width")) for b in bars.all()[:2]]
    assert widths[1] / widths[0] == pytest.approx(2.8 / 2.0, rel=0.01)
    axis = page.locator("#chart-sources-title ~ text[text-anchor='end']").evaluate_all(
        "texts => texts.map(t => t.textContent)"
    )
    assert len(axis) >= 5 and all("." not in text for text in axis)  # 0,5 not 0.5
    assert any("," in text for text in axis)
    screenshot(page, "reports")
    # a range that reaches back 300 days takes in the old lead too
    start = (utcnow() - timedelta(days=300)).date().isoformat()
    page.get_by_label("Von", exact=True).fill(start)
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_url(f"**/reports?start={start}*")
    first = page.locator("#table-response tbody tr td").first
    assert first.inner_text() == "3"
    # narrowing by type; the PDF link carries the range and every filter chosen
    page.get_by_label("Typ", exact=True).select_option(label="Anfrage")
    page.get_by_label("Quelle", exact=True).select_option("mobile.de")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_url("**/reports?*type=inquiry*")
    assert page.locator("#table-response tbody tr td").first.inner_text() == "2"  # not website
    href = page.get_by_role("link", name="Als PDF herunterladen").get_attribute("href")
    assert href is not None and href.startswith("/reports.pdf?")
    assert f"start={start}" in href and "type=inquiry" in href and "source=mobile.de" in href
    # on a phone the tables sit below the charts and stay readable
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.locator("#table-response").is_visible()
    screenshot(page, "reports-phone")


CUT_OFF = """() => [...document.querySelectorAll('.report-table')].filter(w =>
  w.getBoundingClientRect().right > innerWidth || w.scrollWidth > w.clientWidth
).map(w => w.querySelector('table').id)"""
SOURCES = ("mobile.de", "autoscout24", "kleinanzeigen", "website", "oem:nissan", "oem:volkswagen")


def test_report_tables_are_whole_at_1366_px(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    """The walk-through found the tables cut off beside their charts at 1366 px."""
    factory = live_web.factory
    ensure_user(factory, ADMIN, "admin", name="Ada Admin")
    ensure_user(factory, ANNA, "salesperson", name="Anna Schmidt")
    for n, source in enumerate((*SOURCES, "unknown"), start=1):
        add_lead(factory, ANNA, n, days_ago=n, answered_after_h=n, source=source)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_web.url, ADMIN)
    page.goto(live_web.url + "/reports")
    header = page.locator("#table-sources thead th").all_inner_texts()
    assert "Hersteller: Volkswagen" in header and "Unbekannt" in header
    assert page.evaluate(CUT_OFF) == []  # every column inside its frame, none scrolled away
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    screenshot(page, "reports-1366")


def test_signed_link_asks_first_then_acts_once(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    factory = live_web.factory
    ensure_user(factory, ANNA, "salesperson", name="Anna Schmidt")
    lead_id = add_lead(factory, ANNA, 1, days_ago=0.1, answered_after_h=None)
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        token = sign(
            link_secret(session), new_claims(lead.assignee_id, lead_id, "contacted", utcnow())
        )
        session.commit()
    page.goto(f"{live_web.url}/m/{token}")  # not logged in, as from a phone's mail app
    assert page.get_by_role("heading", name="Ich habe den Kunden kontaktiert").is_visible()
    with factory() as session:
        assert session.scalar(select(Lead.first_response_at).where(Lead.id == lead_id)) is None
    screenshot(page, "signed-confirm")
    page.get_by_role("button", name="Ich habe den Kunden kontaktiert").click()
    assert "Vermerkt" in page.get_by_role("status").inner_text()
    with factory() as session:
        assert session.scalar(select(Lead.first_response_at).where(Lead.id == lead_id))
    page.goto(f"{live_web.url}/m/{token}")
    assert "schon benutzt" in page.get_by_role("alert").inner_text()
