"""Every page of the web UI in a real browser: it loads, has a heading, labels on every input,
no script error, and fits a phone screen without sideways scrolling.

The feature tests (test_browser_*.py) drive the workflows; this tour makes sure no page is
left out of the browser tests, including those no workflow test happens to open.
"""

from __future__ import annotations

import tomllib
from typing import Any

from sqlalchemy import select

from mailgate.base_url import set_base_url
from mailgate.db import session_scope
from mailgate.dealer_settings import apply_document, export_settings
from mailgate.models import InboundMail, Lead, OutboxMail, User, Webhook
from mailgate.webhooks.admin import create_webhook
from mailgate.webui.accounts.reset import make_token
from mailgate.webui.api.tokens import create_token
from mailgate.webui.security import SESSION_SECRET, stored_secret

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .mails import inquiry
from .test_webui import ingest
from .webui_helpers import ensure_user

ADMIN = "ada@autohaus.example"

UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 160))"""
PUBLIC_PAGES = ("/login", "/password/forgot")
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


MAILBOX = {"name": "filiale-nord", "host": "imap.autohaus.example", "username": "leads"}


def seed_tour(live: LiveWeb) -> None:
    """The tour's data: an admin (sees every page), one lead from a real inquiry mail, one
    IMAP mailbox (never polled here: the page shows its settings and status), and the
    base URL (without it the password-reset page says it is not set up)."""
    ensure_user(live.factory, ADMIN, "admin", name="Ada Admin")
    ingest(live.factory, inquiry(1, name="Fritz Fröhlich"))
    with session_scope(live.factory) as session:
        document = tomllib.loads(export_settings(session))
        apply_document(session, {**document, "imap": [{**MAILBOX, "password": "Geheim-1"}]})
        create_webhook(session, "https://crm.autohaus.example/mailgate/hooks", ["lead.created"])
        create_token(session, "DMS", ["read"])
        set_base_url(session, live.url)  # reset mails (and the reset page) need the base URL


def reset_page(live: LiveWeb) -> str:
    """The page a password-reset link opens (a genuine, fresh token for the admin)."""
    secret = stored_secret(live.factory, SESSION_SECRET)
    with live.factory() as session:
        admin = session.scalar(select(User).where(User.email == ADMIN))
        assert admin is not None
        return f"/password/reset/{make_token(secret, admin)}"


def tour_pages(live: LiveWeb) -> list[str]:
    """Every page an admin can open once :func:`seed_tour` ran (shared with the keyboard test)."""
    with live.factory() as session:
        lead_id = session.scalar(select(Lead.id).limit(1))
        inbound_id = session.scalar(select(InboundMail.id).limit(1))
        outbox_id = session.scalar(select(OutboxMail.id).limit(1))
        user_id = session.scalar(select(User.id).where(User.email == ADMIN))
        hook_id = session.scalar(select(Webhook.id).limit(1))
    assert lead_id and inbound_id and outbox_id and user_id and hook_id
    return [
        "/leads",
        "/leads/new",
        "/pool",
        "/my-day",
        "/overview/",
        f"/leads/{lead_id}",
        f"/leads/{lead_id}/edit",
        "/inbound",
        f"/inbound/{inbound_id}",
        "/reports",
        "/outbox",
        f"/outbox/{outbox_id}",
        "/settings/",
        "/settings/hours",
        "/settings/holidays",
        "/settings/escalation",
        "/settings/distribution",
        "/settings/users",
        f"/settings/users/{user_id}",
        "/settings/users/new",
        "/settings/mailboxes",
        "/settings/mailboxes/new",
        f"/settings/mailboxes/{MAILBOX['name']}",
        "/settings/reasons",
        "/settings/feedback",
        "/settings/templates",
        "/settings/templates/de/notification",
        "/settings/integrations",
        f"/settings/integrations/webhooks/{hook_id}",
        "/settings/transfer",
        "/account",
    ]


def _check(page: Any, url: str) -> None:  # noqa: F811
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    assert page.locator("h1").count() == 1, f"{url}: one h1 expected"
    assert page.evaluate(UNLABELLED) == [], f"{url}: inputs without a label"


def test_every_page_loads_labelled_and_fits_a_phone(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)
    log_in(page, live_web.url, ADMIN)
    paths = tour_pages(live_web)
    for path in paths:
        _check(page, live_web.url + path)
        name = path.strip("/").replace("/", "-") or "home"
        if not any(ch.isdigit() for ch in name):
            screenshot(page, f"tour-{name}")
    page.set_viewport_size({"width": 375, "height": 800})
    too_wide = {}
    for path in paths:
        page.goto(live_web.url + path)
        overflow = page.evaluate(SIDEWAYS)
        if overflow > 1:
            too_wide[path] = overflow
    assert not too_wide, f"pages wider than a phone (px of sideways scrolling): {too_wide}"


def test_pages_before_login(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    ensure_user(live_web.factory, ADMIN, "admin", name="Ada Admin")
    with session_scope(live_web.factory) as session:
        set_base_url(session, live_web.url)  # reset mails need the base URL
    for path in (*PUBLIC_PAGES, reset_page(live_web)):
        _check(page, live_web.url + path)
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate(SIDEWAYS) <= 1, "the reset page is wider than a phone"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_web.url + PUBLIC_PAGES[-1])
    page.get_by_label("E-Mail-Adresse").fill(ADMIN)
    page.get_by_role("button", name="Link senden").click()
    assert "Link zum Festlegen eines neuen Passworts" in page.get_by_role("status").inner_text()
