"""The frame in a real browser: the header fits desktop widths, the phone menu works by keyboard,
and the overdue badge is refreshed in place by htmx (Chromium via Playwright)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from mailgate.db import session_scope
from mailgate.models import Lead, utcnow

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .test_browser_tour import ADMIN, seed_tour

# Right edge of the header's widest item beyond the viewport (px), and its height.
HEADER = """() => {
  const header = document.querySelector('header.app-header');
  const items = Array.from(header.querySelectorAll('a, button')).filter(el => el.checkVisibility());
  const right = Math.max(...items.map(el => el.getBoundingClientRect().right));
  return {over: right - document.documentElement.clientWidth,
          height: header.getBoundingClientRect().height};
}"""


def _make_overdue(live: LiveWeb) -> None:
    past = utcnow() - timedelta(hours=2)
    with session_scope(live.factory) as session:
        session.execute(update(Lead).values(soon_at=past, overdue_at=past))


def test_the_header_fits_desktop_widths(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)
    log_in(page, live_web.url, ADMIN)
    for width in (1200, 1280, 1366, 1920):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_web.url + "/leads")
        header = page.evaluate(HEADER)
        assert header["over"] <= 0, (width, header)
        assert header["height"] < 120, (width, header)  # two rows at most, never three
        assert page.get_by_role("link", name="Ada Admin").is_visible()
        assert page.get_by_role("button", name="Menü öffnen").is_hidden()


def test_the_phone_menu_opens_and_closes_by_keyboard(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)
    log_in(page, live_web.url, ADMIN)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_web.url + "/leads")
    menu = page.get_by_role("link", name="Berichte")
    assert menu.is_hidden()  # folded away: not a Tab stop either
    toggler = page.get_by_role("button", name="Menü öffnen")
    toggler.focus()
    page.keyboard.press("Enter")
    menu.wait_for(state="visible")
    page.wait_for_function("() => document.activeElement?.closest('#main-menu') !== null")
    page.keyboard.press("Tab")  # focus stays in the open menu
    assert page.evaluate("!!document.activeElement.closest('#main-menu')")
    screenshot(page, "frame-phone-menu")
    page.keyboard.press("Escape")
    menu.wait_for(state="hidden")
    assert page.evaluate("document.activeElement === document.querySelector('.navbar-toggler')")
    assert (
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        <= 1
    )


def test_the_overdue_badge_is_refreshed_in_place(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)
    log_in(page, live_web.url, ADMIN)
    page.goto(live_web.url + "/account")
    badge = page.locator("#nav-overdue a")
    assert badge.count() == 0
    live = page.locator("#nav-overdue")
    assert live.get_attribute("hx-trigger") == "every 30s"
    _make_overdue(live_web)
    # what the 30 s poll does, now: the same request, swapped into the same place
    page.evaluate("htmx.ajax('GET', '/live/overdue', {target: '#nav-overdue', swap: 'innerHTML'})")
    badge.wait_for(state="visible")
    assert badge.text_content() == "1 überfällige Anfrage"  # the number and its words
    badge.click()
    page.wait_for_url("**/leads?due=overdue")
    assert page.get_by_role("link", name="Fritz Fröhlich").is_visible()
