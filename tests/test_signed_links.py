"""Signed action links: signing is pure; the pages refuse every bad link; GET never acts;
a mail made by the pipeline carries a link that works once."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import load_dealer_config
from mailgate.escalation.calendar import WorkingCalendar
from mailgate.escalation.scheduler import tick
from mailgate.models import Lead, OutboxMail, ProtocolEntry, User, utcnow
from mailgate.outbound.outbox import materialise
from mailgate.signed_links import (
    LinkClaims,
    LinkError,
    link_secret,
    new_claims,
    sign,
    verify,
)
from mailgate.webui.signed import next_working_morning

from .distribution_helpers import form_mail, ingest, setup, team_toml
from .webui_helpers import csrf_token, ensure_user, logged_in, web_app

SECRET = "a-test-secret-of-some-length"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LINK = re.compile(r"https://leads\.autohaus\.example(/m/[A-Za-z0-9_.\-]+)")
BERLIN = ZoneInfo("Europe/Berlin")
POOL_USER = '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'


# --- pure -----------------------------------------------------------------------------------


def test_sign_and_verify_round_trip() -> None:
    claims = new_claims(7, 42, "contacted", NOW, token_id="abc")
    assert claims.expires_at == NOW + timedelta(hours=72)
    assert verify(SECRET, sign(SECRET, claims), NOW + timedelta(hours=71)) == claims


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "invalid"),  # signature
        (lambda t: "x" + t, "invalid"),  # payload
        (lambda t: "", "invalid"),
        (lambda t: "not-a-token", "invalid"),
    ],
)
def test_tampered_tokens_are_refused(mangle, reason: str) -> None:  # type: ignore[no-untyped-def]
    token = sign(SECRET, new_claims(7, 42, "contacted", NOW, token_id="abc"))
    with pytest.raises(LinkError) as caught:
        verify(SECRET, mangle(token), NOW)
    assert caught.value.reason == reason


def test_another_key_or_an_expired_link_is_refused() -> None:
    token = sign(SECRET, new_claims(7, 42, "take", NOW, token_id="abc"))
    with pytest.raises(LinkError, match="invalid"):
        verify("another-secret-entirely", token, NOW)
    with pytest.raises(LinkError, match="expired"):
        verify(SECRET, token, NOW + timedelta(hours=72))


def test_a_changed_lead_id_breaks_the_signature() -> None:
    import base64

    token = sign(SECRET, LinkClaims(7, 42, "take", NOW + timedelta(hours=1), "abc"))
    payload, _, mac = token.partition(".")
    text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert text.split(":")[:3] == ["7", "42", "take"]
    forged = base64.urlsafe_b64encode(text.replace(":42:", ":43:").encode()).decode().rstrip("=")
    with pytest.raises(LinkError, match="invalid"):
        verify(SECRET, f"{forged}.{mac}", NOW)
    with pytest.raises(LinkError, match="invalid"):
        verify(SECRET, f"{payload}.{mac[:-1]}", NOW)


def test_resubmit_tomorrow_is_the_next_working_morning() -> None:
    hours = {d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    cal = WorkingCalendar.from_settings(hours, timezone="Europe/Berlin", country="DE")
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=BERLIN)
    assert next_working_morning(cal, friday) == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    christmas_eve = datetime(2026, 12, 23, 15, 0, tzinfo=BERLIN)  # Wed; 25/26 are holidays
    assert next_working_morning(cal, christmas_eve) == datetime(2026, 12, 24, 9, tzinfo=BERLIN)
    late = {**hours, "mon": ["10:00-18:00"]}
    cal = WorkingCalendar.from_settings(late, timezone="Europe/Berlin", country="DE")
    assert next_working_morning(cal, friday) == datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)


# --- through the pipeline and the web pages --------------------------------------------------


@pytest.fixture
def team(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    setup(factory, team_toml())
    for key in ("anna", "ben", "carl", "chef", "ada"):
        ensure_user(factory, f"{key}@autohaus.example", _role(factory, key))
    return factory


def _role(factory: sessionmaker[Session], key: str) -> str:
    with factory() as session:
        return session.scalar(select(User.role).where(User.email == f"{key}@autohaus.example"))


def mail_text(row: OutboxMail, factory: sessionmaker[Session]) -> str:
    raw = row.raw
    if raw is None:
        with factory() as session:
            raw = materialise(load_dealer_config(session), row).raw
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return message.get_body(("plain",)).get_content()


def links_of(factory: sessionmaker[Session], purpose: str) -> tuple[OutboxMail, list[str]]:
    with factory() as session:
        row = session.scalars(
            select(OutboxMail).where(OutboxMail.purpose == purpose).order_by(OutboxMail.id)
        ).first()
    assert row is not None, f"no {purpose} mail"
    return row, LINK.findall(mail_text(row, factory))


def lead_of(factory: sessionmaker[Session]) -> Lead:
    with factory() as session:
        lead = session.scalars(select(Lead)).one()
        session.expunge(lead)
        return lead


def test_notification_link_confirms_on_get_and_acts_once_on_post(
    team: sessionmaker[Session],
) -> None:
    ingest(team, form_mail(1))
    row, links = links_of(team, "notification")
    assert len(links) == 2, "contacted and resubmit links in the notification"
    contacted = links[0]
    lead = lead_of(team)
    app = web_app(team)
    client = app.test_client()  # not logged in: the link identifies the user
    page = client.get(contacted)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Ich habe den Kunden kontaktiert" in html
    assert "Erst wenn Sie auf die Schaltfläche drücken" in html
    client.get(contacted)  # scanners open links twice: still nothing happens
    assert lead_of(team).first_response_at is None and lead_of(team).status == lead.status
    token = csrf_token(client, contacted)
    done = client.post(contacted, data={"csrf_token": token})
    assert done.status_code == 200 and "Vermerkt" in done.get_data(as_text=True)
    after = lead_of(team)
    assert after.status == "contacted" and after.first_response_at is not None
    with team() as session:
        entry = session.scalars(
            select(ProtocolEntry).where(
                ProtocolEntry.lead_id == lead.id, ProtocolEntry.action == "contact"
            )
        ).one()
        assert entry.actor == row.recipients[0]
    again = client.post(contacted, data={"csrf_token": token})
    assert again.status_code == 410 and "schon benutzt" in again.get_data(as_text=True)
    assert client.get(contacted).status_code == 410


def test_post_without_csrf_token_does_nothing(team: sessionmaker[Session]) -> None:
    ingest(team, form_mail(1))
    _row, links = links_of(team, "notification")
    client = web_app(team).test_client()
    client.get(links[0])
    assert client.post(links[0]).status_code == 400
    assert lead_of(team).first_response_at is None


def test_tampered_expired_and_other_users_links_show_a_clear_page(
    team: sessionmaker[Session],
) -> None:
    ingest(team, form_mail(1))
    _row, links = links_of(team, "notification")
    app = web_app(team)
    client = app.test_client()
    tampered = client.get(links[0][:-3] + "xyz")
    assert tampered.status_code == 400 and "ungültig" in tampered.get_data(as_text=True)
    lead = lead_of(team)
    with team() as session:
        secret = link_secret(session)
        session.commit()
    old = new_claims(lead.assignee_id, lead.id, "contacted", utcnow() - timedelta(hours=73))
    expired = client.get(f"/m/{sign(secret, old)}")
    assert expired.status_code == 410 and "abgelaufen" in expired.get_data(as_text=True)
    # someone else is logged in on this browser: refused, not silently acted as the other
    with team() as session:
        owner = session.get(User, lead.assignee_id).email
    other = next(f"{k}@autohaus.example" for k in ("anna", "ben") if not owner.startswith(k))
    stranger = logged_in(app, other)
    refused = stranger.get(links[0])
    assert refused.status_code == 403 and "anderen Benutzer" in refused.get_data(as_text=True)
    token = csrf_token(stranger, "/account")
    assert stranger.post(links[0], data={"csrf_token": token}).status_code == 403
    assert lead_of(team).first_response_at is None
    # a link for a lead reassigned since: nothing to do for the old owner
    with db.session_scope(team) as session:
        other_id = session.scalar(select(User.id).where(User.email == other))
        session.execute(update(Lead).where(Lead.id == lead.id).values(assignee_id=other_id))
    moved = app.test_client().get(links[0])
    assert moved.status_code == 409 and "nicht mehr zugewiesen" in moved.get_data(as_text=True)


def test_resubmit_link_sets_the_next_working_morning(team: sessionmaker[Session]) -> None:
    ingest(team, form_mail(1))
    _row, links = links_of(team, "notification")
    client = web_app(team).test_client()
    resubmit = links[1]
    assert "Morgen wieder vorlegen" in client.get(resubmit).get_data(as_text=True)
    done = client.post(resubmit, data={"csrf_token": csrf_token(client, resubmit)})
    assert done.status_code == 200
    lead = lead_of(team)
    with team() as session:
        calendar = load_dealer_config(session).calendar
    local = lead.overdue_at.astimezone(BERLIN)
    assert local > utcnow() and lead.overdue_at == next_working_morning(calendar, utcnow())


def test_pool_notice_link_takes_the_lead(factory: sessionmaker[Session]) -> None:
    nobody = {k: "receives_leads = false" for k in ("anna", "ben", "carl")}
    pool = 'mode = "pool"\npool_user = "pool@autohaus.example"\npool_notice = true'
    setup(factory, team_toml(pool, nobody, POOL_USER))
    ingest(factory, form_mail(1))
    with factory() as session:
        mail = session.scalars(select(OutboxMail).where(OutboxMail.purpose == "pool_notice")).all()
    ben = next(m for m in mail if m.recipients == ["ben@autohaus.example"])
    (take,) = LINK.findall(mail_text(ben, factory))
    client = web_app(factory).test_client()
    assert "Diese Anfrage übernehmen" in client.get(take).get_data(as_text=True)
    assert lead_of(factory).assignee_id != _id(factory, "ben")  # GET did not take it
    done = client.post(take, data={"csrf_token": csrf_token(client, take)})
    assert done.status_code == 200 and "gehört jetzt Ihnen" in done.get_data(as_text=True)
    assert lead_of(factory).assignee_id == _id(factory, "ben")
    carl = next(m for m in mail if m.recipients == ["carl@autohaus.example"])
    (late,) = LINK.findall(mail_text(carl, factory))
    other = web_app(factory).test_client()
    taken = other.get(late)  # taken by Ben already: nothing to do
    assert taken.status_code == 409 and "bereits" in taken.get_data(as_text=True)


def _id(factory: sessionmaker[Session], key: str) -> int:
    with factory() as session:
        return session.scalar(select(User.id).where(User.email == f"{key}@autohaus.example"))


def test_reminder_from_the_scheduler_carries_working_links(team: sessionmaker[Session]) -> None:
    ingest(team, form_mail(1))
    lead = lead_of(team)
    tick(team, now=lead.soon_at + timedelta(seconds=1))
    row, links = links_of(team, "reminder")
    assert row.raw is None and len(links) == 2  # rendered by the sender, links in the context
    client = web_app(team).test_client()
    done = client.post(links[0], data={"csrf_token": csrf_token(client, links[0])})
    assert done.status_code == 200 and lead_of(team).first_response_at is not None


def test_without_a_base_url_mails_carry_no_links(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml().replace('base_url = "https://leads.autohaus.example"\n', ""))
    ingest(factory, form_mail(1))
    row, links = links_of(factory, "notification")
    assert links == [] and "/m/" not in mail_text(row, factory)


def test_links_for_a_closed_lead_or_a_deactivated_user_do_nothing(
    team: sessionmaker[Session],
) -> None:
    ingest(team, form_mail(1))
    _row, links = links_of(team, "notification")
    lead = lead_of(team)
    client = web_app(team).test_client()
    token = csrf_token(client, links[0])
    with db.session_scope(team) as session:
        session.execute(update(User).where(User.id == lead.assignee_id).values(active=False))
    inactive = client.post(links[0], data={"csrf_token": token})
    assert inactive.status_code == 403 and "nicht mehr aktiv" in inactive.get_data(as_text=True)
    with db.session_scope(team) as session:
        session.execute(update(User).where(User.id == lead.assignee_id).values(active=True))
        session.execute(update(Lead).where(Lead.id == lead.id).values(status="closed"))
    closed = client.post(links[0], data={"csrf_token": token})
    assert closed.status_code == 409 and "abgeschlossen" in closed.get_data(as_text=True)
    assert lead_of(team).first_response_at is None


def test_an_english_user_gets_english_links_and_pages(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml(users={k: 'language = "en"' for k in ("anna", "ben", "carl")}))
    ingest(factory, form_mail(1))
    row, links = links_of(factory, "notification")
    text = mail_text(row, factory)
    assert "I contacted the customer: https://" in text and "Resubmit tomorrow: https://" in text
    ensure_user(factory, "ada@autohaus.example", "admin")  # an admin exists: no setup page
    ensure_user(factory, row.recipients[0], "salesperson", language="en")
    app = web_app(factory)
    client = logged_in(app, row.recipients[0])  # logged in as the right user: fine too
    assert "Please confirm." in client.get(links[0]).get_data(as_text=True)


def test_take_link_respects_oldest_only(factory: sessionmaker[Session]) -> None:
    nobody = {k: "receives_leads = false" for k in ("anna", "ben", "carl")}
    pool = (
        'mode = "pool"\npool_user = "pool@autohaus.example"\npool_notice = true\n'
        "pool_oldest_only = true"
    )
    setup(factory, team_toml(pool, nobody, POOL_USER))
    ingest(factory, form_mail(1))
    ingest(factory, form_mail(2))
    with factory() as session:
        mails = session.scalars(
            select(OutboxMail)
            .where(OutboxMail.purpose == "pool_notice")
            .where(OutboxMail.idempotency_key.like("%:" + str(_id(factory, "ben"))))
            .order_by(OutboxMail.lead_id)
        ).all()
    first, second = (LINK.findall(mail_text(m, factory))[0] for m in mails)
    client = web_app(factory).test_client()
    refused = client.get(second)
    assert refused.status_code == 409 and "älteste Anfrage" in refused.get_data(as_text=True)
    assert client.get(first).status_code == 200
