"""The first-run demo: its settings document, its sample mails, and seeding (both databases)."""

from __future__ import annotations

import email
import re
import tomllib
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.completion import reason_by_code
from mailgate.config import Settings
from mailgate.dealer_settings import SCHEMA, USER_KEYS, load_dealer_config, validate
from mailgate.demo import (
    DEMO_DEALER_NAME,
    DEMO_PASSWORD,
    DEMO_SETTINGS_TOML,
    LEAD_ADDRESS,
    DemoError,
    demo_mails,
    seed_demo,
)
from mailgate.distribution.actions import pool_leads
from mailgate.models import InboundMail, Lead, OutboxMail, User
from mailgate.webui.leads.due import state_of

from .webui_helpers import logged_in, web_app

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)  # a Monday morning
PLATFORM_DOMAINS = {"mobile.de", "autoscout24.de", "mail.kleinanzeigen.de"}
_DOMAIN = re.compile(rb"@([A-Za-z0-9.-]+)")


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def test_settings_document_is_complete_and_valid() -> None:
    document = tomllib.loads(DEMO_SETTINGS_TOML)
    for section, keys in SCHEMA.items():
        assert set(document[section]) == set(keys), f"[{section}] should spell out every key"
    assert all(set(user) <= set(USER_KEYS) for user in document["users"])
    clean = validate(document)
    assert clean["dealer"]["name"] == DEMO_DEALER_NAME
    assert clean["dealer"]["addresses"] == [LEAD_ADDRESS]
    assert clean["dealer"]["send_mails"] is False
    assert clean["hours"]["mon"] == ["08:00-12:00", "13:00-18:00"]
    assert clean["hours"]["sat"] == ["09:00-13:00"] and clean["hours"]["sun"] == []
    assert (clean["holidays"]["country"], clean["holidays"]["subdivision"]) == ("DE", "BY")
    roles = sorted(user["role"] for user in clean["users"])
    assert roles == ["admin", "salesperson", "salesperson", "salesperson", "supervisor"]
    by_email = {user["email"]: user for user in clean["users"]}
    assert by_email[clean["distribution"]["fallback_user"]]["role"] == "salesperson"


def test_demo_mails_are_varied_and_invented() -> None:
    mails = demo_mails(NOW)
    assert len(mails) == 13
    messages = [parsed(raw) for raw in mails]
    assert len({m["Message-ID"] for m in messages}) == 13
    for raw in mails:
        domains = {d.decode().lower().rstrip(".") for d in _DOMAIN.findall(raw)}
        # people and the dealership are invented (.example); the platforms' own sender
        # domains are real, as source detection checks them (a look-alike is no lead)
        assert all(d.endswith(".example") or d in PLATFORM_DOMAINS for d in domains), domains
    types = [m.get_content_type() for m in messages]
    assert "text/html" in types and "multipart/report" in types
    cp1252 = next(raw for raw in mails if b'charset="windows-1252"' in raw)
    assert b"quoted-printable" in cp1252 and b"=80" in cp1252 and b"=FC" in cp1252
    assert "Jürgen Weiß" in parsed(cp1252).get_content()
    assert sum(1 for m in messages if m["Auto-Submitted"] == "auto-replied") == 1
    mobile = messages[0]
    assert mobile["Reply-To"] and "jan.kowalski@kunden.example" in str(mobile["Reply-To"])
    assert demo_mails(NOW) == mails  # deterministic for a given clock


def test_seeding_makes_a_working_dealership(factory: sessionmaker[Session]) -> None:
    counts = seed_demo(factory, Settings(), now=NOW)
    assert counts == {"discarded": 2, "processed": 11}
    with factory() as session:
        config = load_dealer_config(session)
        assert config.name == DEMO_DEALER_NAME and config.send_mails is False
        assert session.scalar(select(func.count()).select_from(User)) == 5  # + the pool
        leads = session.scalars(select(Lead)).all()
        assert len(leads) == 11
        assert all(lead.assignee is not None for lead in leads)
        assert {"test_drive", "trade_in", "financing", "service", "inquiry"} <= {
            lead.kind for lead in leads
        }
        notified = session.scalars(
            select(OutboxMail.lead_id).where(OutboxMail.purpose == "notification")
        ).all()
        # pool leads wait without a mail (pool_notice is off); the taker is told in the UI
        in_pool = {
            lead.id for lead in leads if lead.assignee.email == "pool.werkstatt@demo.example"
        }
        assert len(in_pool) == 1
        assert set(notified) == {lead.id for lead in leads} - in_pool
        discarded = dict(
            session.execute(
                select(InboundMail.message_id, InboundMail.status_reason).where(
                    InboundMail.status == "discarded"
                )
            ).all()
        )
        assert set(discarded) == {
            "<demo-bounce@mx.demo.example>",
            "<demo-out-of-office@kunden.example>",
        }
        assert all(discarded.values()), "a discarded mail must say why"
        umlauts = session.scalar(select(Lead).where(Lead.message.like("%unfallfrei%")))
        assert umlauts is not None and "Fürth" in (umlauts.message or "")
        assert all(
            mail.channel == "demo" and mail.envelope_to == [LEAD_ADDRESS]
            for mail in session.scalars(select(InboundMail))
        )


def test_seeding_twice_adds_nothing(factory: sessionmaker[Session]) -> None:
    first = seed_demo(factory, Settings(), now=NOW)

    def totals() -> tuple[int, ...]:
        with factory() as session:
            return tuple(
                session.scalar(select(func.count()).select_from(model)) or 0
                for model in (InboundMail, Lead, OutboxMail, User)
            )

    before = totals()
    assert seed_demo(factory, Settings()) == first  # a later clock changes nothing either
    assert totals() == before


def test_refuses_a_real_dealerships_database(dealer: sessionmaker[Session]) -> None:
    with pytest.raises(DemoError, match="Autohaus Beispiel"):
        seed_demo(dealer, Settings(), now=NOW)
    with dealer() as session:
        assert session.scalar(select(func.count()).select_from(InboundMail)) == 0
        assert load_dealer_config(session).name == "Autohaus Beispiel"


def test_demo_users_can_log_in_to_the_web_ui(factory: sessionmaker[Session]) -> None:
    seed_demo(factory, Settings(), now=NOW)
    app = web_app(factory)
    admin = logged_in(app, "admin@demo.example", DEMO_PASSWORD)
    assert admin.get("/inbound").status_code == 200
    lena = logged_in(app, "lena.verkauf@demo.example", DEMO_PASSWORD)
    assert lena.get("/leads").status_code == 200
    assert lena.get("/inbound").status_code == 403


def test_the_demo_tells_the_story(factory: sessionmaker[Session]) -> None:
    """What the product is for, at a glance: every due state, every kind of source, a pool,
    a resubmission, a won and a lost lead, the supervisor's escalations to come."""
    seed_demo(factory, Settings(), now=NOW)
    with factory() as session:
        leads = session.scalars(select(Lead).order_by(Lead.received_at)).all()
        states = Counter(state_of(lead, NOW) for lead in leads)
        assert states["overdue"] >= 2 and states["soon"] >= 1 and states["ok"] >= 2, states
        assert states["closed"] == 2 and states["resubmission"] == 1, states
        sources = {lead.source for lead in leads}
        assert {"mobile.de", "autoscout24", "kleinanzeigen", "oem:volkswagen", "website"} <= sources
        assert "unknown" not in sources, "every demo inquiry is written as its sender sends it"
        outcomes = {
            reason.outcome
            for lead in leads
            if lead.close_reason and (reason := reason_by_code({}, lead.close_reason))
        }
        assert outcomes == {"won", "lost"}
        arrivals = [lead.received_at for lead in leads]
        assert max(arrivals) - min(arrivals) > timedelta(days=3), "spread over several days"
        assert len(set(arrivals)) == len(arrivals)
        config = load_dealer_config(session)
        pool = pool_leads(session, config, "lena.verkauf@demo.example")
        assert [lead.kind for lead in pool] == ["service"]
        contacted = [lead for lead in leads if lead.first_response_at is not None]
        assert len(contacted) >= 3 and all(
            lead.first_response_at > lead.received_at for lead in contacted
        )


def test_demo_links_follow_the_configured_web_port(factory: sessionmaker[Session]) -> None:
    settings = Settings()
    settings = replace(settings, web=replace(settings.web, host="0.0.0.0", port=8111))  # noqa: S104
    seed_demo(factory, settings, now=NOW)
    with factory() as session:
        assert load_dealer_config(session).base_url == "http://127.0.0.1:8111"
