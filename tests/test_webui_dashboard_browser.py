"""The supervisor overview in Chromium: desktop and phone width, a click on a number,
the htmx swap of the figures block, and axe-core (0 serious or critical findings)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .test_webui_dashboard import ANNA, CHEF, Seeded, seed_team

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SERIOUS = """async () => (await axe.run(document, {runOnly: {type: 'tag',
  values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})).violations
  .filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id)"""
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def seeded_web(live_web: LiveWeb) -> Iterator[tuple[LiveWeb, Seeded]]:  # noqa: F811
    yield live_web, seed_team(live_web.factory)


def test_overview_reads_well_on_desktop_and_phone_and_links_to_the_list(
    page: Any,  # noqa: F811
    seeded_web: tuple[LiveWeb, Seeded],
) -> None:
    web, seeded = seeded_web
    log_in(page, web.url, CHEF)
    assert page.url.endswith("/overview/")  # a supervisor lands on the overview
    page.set_viewport_size({"width": 1366, "height": 900})
    assert page.locator("h1").inner_text() == "Übersicht"
    row = page.locator("#team-table tbody tr", has_text="Anna Schmidt")
    assert row.locator("td").nth(1).inner_text().strip().startswith("1")  # overdue
    assert page.evaluate(SIDEWAYS) <= 1
    screenshot(page, "overview-desktop")
    row.locator("td").nth(1).get_by_role("link").click()
    page.wait_for_url("**/leads?*due=overdue*")
    assert page.locator(f'a[href="/leads/{seeded.ids["a1-overdue"]}"]').count() >= 1
    page.go_back()
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(SIDEWAYS) <= 1
    assert page.locator("#team-table").is_visible()
    screenshot(page, "overview-phone")


def test_the_figures_block_swaps_and_keeps_polling(
    page: Any,  # noqa: F811
    seeded_web: tuple[LiveWeb, Seeded],
) -> None:
    web, seeded = seeded_web
    log_in(page, web.url, CHEF)
    focused = f"n-overdue-{seeded.users[ANNA]}"
    page.focus(f"#{focused}")  # a keyboard user on a number keeps the focus through a swap
    page.evaluate(
        "() => htmx.ajax('GET', '/overview/live', {target: '#overview-live', swap: 'outerHTML'})"
    )
    page.wait_for_function("() => document.querySelectorAll('#overview-live').length === 1")
    block = page.locator("#overview-live")
    assert block.get_attribute("hx-get") == "/overview/live"
    assert block.get_attribute("hx-swap") == "outerHTML"
    assert page.locator("#team-table").count() == 1  # swapped, not nested
    assert page.evaluate("() => document.activeElement.id") == focused


def test_overview_has_no_serious_accessibility_findings(
    browser: Any,  # noqa: F811
    seeded_web: tuple[LiveWeb, Seeded],
) -> None:
    web, _seeded = seeded_web
    context = browser.new_context(locale="de-DE", bypass_csp=True)
    try:
        tab = context.new_page()
        log_in(tab, web.url, CHEF)
        for width, height in ((1366, 900), (390, 844)):
            tab.set_viewport_size({"width": width, "height": height})
            tab.goto(web.url + "/overview/")
            tab.add_script_tag(path=str(AXE))
            assert tab.evaluate(SERIOUS) == [], width
    finally:
        context.close()
