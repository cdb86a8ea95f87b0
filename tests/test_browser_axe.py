"""The accessibility gate: axe-core on every page, as an admin, a supervisor and a salesperson
see it, at desktop and phone width; 0 serious or critical violations.

axe-core comes from the npm registry, vendored into ``tests/vendor/`` by ``assets/vendor.sh``
(never a CDN).  The pages' CSP forbids injected scripts, so this browser context alone
bypasses it; the product's own pages are the same bytes a user gets.  The tour also
writes a screenshot of every page at both widths to ``test-artifacts/screenshots/axe-*``,
the folder a reviewer opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.demo import seed_demo
from mailgate.models import Lead, User
from mailgate.webui import create_app
from mailgate.webui.server import WebThread

from .browser import ARTIFACTS, LiveWeb, browser, live_web, log_in  # noqa: F401
from .test_browser_tour import ADMIN, PUBLIC_PAGES, reset_page, seed_tour, tour_pages
from .webui_helpers import ensure_user

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
# WCAG 2.1 A and AA rules plus axe's best practices; only serious and critical ones fail.
RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
  });
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3)
      .map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
}"""
SALESPERSON = "lena.verkauf@demo.example"
SUPERVISOR = "viktor.leitung@demo.example"


@pytest.fixture
def axe_page(browser: Any) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(locale="de-DE", viewport=WIDTHS["desktop"], bypass_csp=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def _audit(tab: Any, base: str, paths: list[str], role: str) -> dict[str, Any]:
    """axe on each page at both widths; returns {page@width: violations}, writes screenshots."""
    failures: dict[str, Any] = {}
    for width, viewport in WIDTHS.items():
        tab.set_viewport_size(viewport)
        for path in paths:
            response = tab.goto(base + path)
            assert response is not None and response.status == 200, (path, response.status)
            tab.add_script_tag(path=str(AXE))
            violations = tab.evaluate(RUN_AXE)
            if violations:
                failures[f"{path} @ {width}"] = violations
            name = path.strip("/").replace("/", "-") or "home"
            target = ARTIFACTS / "screenshots" / f"axe-{role}-{width}-{name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(target), full_page=True)
    return failures


def test_every_admin_page_passes_axe(axe_page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)
    before_login = [*PUBLIC_PAGES, reset_page(live_web)]
    failures = _audit(axe_page, live_web.url, before_login, "public")
    log_in(axe_page, live_web.url, ADMIN)
    pages = ["/overview", "/system", *tour_pages(live_web)]
    failures |= _audit(axe_page, live_web.url, pages, "admin")
    assert not failures, failures


@pytest.fixture
def demo_web(factory: sessionmaker[Session]) -> Iterator[LiveWeb]:
    """The demo dealership (every due state, a pool, closed leads) served on a free port."""
    seed_demo(factory, Settings())
    web = WebThread(create_app(factory, Settings()), "127.0.0.1", 0).start()
    try:
        yield LiveWeb(f"http://127.0.0.1:{web.server.effective_port}", factory)
    finally:
        web.stop()


def test_the_demo_passes_axe_for_every_role(axe_page: Any, demo_web: LiveWeb) -> None:
    """Each role's own pages, with the demo's data in them."""
    with demo_web.factory() as session:
        lena = session.scalar(select(User).where(User.email == SALESPERSON))
        assert lena is not None
        own = session.scalar(select(Lead.id).where(Lead.assignee_id == lena.id).limit(1))
        any_lead = session.scalar(select(Lead.id).order_by(Lead.id).limit(1))
    for email, role, paths in (
        (SALESPERSON, "salesperson", ["/my-day", "/leads", "/pool", f"/leads/{own}"]),
        (SUPERVISOR, "supervisor", ["/overview", "/leads", "/reports", f"/leads/{any_lead}"]),
    ):
        ensure_user(demo_web.factory, email, role)  # the tests' password
        log_in(axe_page, demo_web.url, email)
        failures = _audit(axe_page, demo_web.url, paths, role)
        assert not failures, (role, failures)
        axe_page.context.clear_cookies()
