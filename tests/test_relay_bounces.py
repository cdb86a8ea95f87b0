"""Issue 17 item 6: a bounce of a mail relayed to a customer reaches the conversation.

Real bounce shapes (``tests/fixtures/mails/bounces/``: RFC 3464 from Postfix, an
Exchange NDR, Exim, qmail and a legacy Sendmail bounce with the original
attached) go through the same path as every mail — stored raw, then the
worker's pipeline — after a real relay: an inquiry, the salesperson's answer
to the notification's tracking address, the relay to the customer.  The
fixtures quote the relayed mail's Message-ID as ``ORIGINAL_ID``; each test
puts in the id the relay really got.
"""

from __future__ import annotations

import secrets
import smtplib
from datetime import timedelta
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.bounces import read_bounce
from mailgate.config import Settings, SmtpSettings
from mailgate.dealer_settings import load_dealer_config
from mailgate.escalation.actions import log_contact
from mailgate.escalation.scheduler import tick
from mailgate.ingest.smtp import IntakeHandler, SmtpThread
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, Lead, OutboxMail, ProtocolEntry, User, utcnow
from mailgate.outbound.answer import ANSWER_PURPOSE, Draft, send_answer
from mailgate.parsers.message import load
from mailgate.worker import process_pending

from .conversation_helpers import (
    BASE_URL,
    DEALER_WITH_LINKS,
    body,
    ingest,
    reply_mail,
    rows,
    sent_mail,
    setup_dealer,
)
from .mails import LEAD_ADDRESS, inquiry
from .webui_helpers import ensure_user, logged_in, web_app

BOUNCES = Path(__file__).parent / "fixtures" / "mails" / "bounces"
ORIGINAL_ID = b"<5b2e9f0c41d84a7fa3c6e1d27b9a0f48@autohaus.example>"
SHAPES = {  # fixture -> the status code its reason must carry
    "rfc3464-postfix-headers.eml": "5.1.1",
    "exchange-ndr.eml": "5.1.10",
    "exim-plain.eml": "5.2.1",
    "qmail-plain.eml": "5.1.1",
    "sendmail-legacy-rfc822.eml": "5.2.2",
}
ANSWER = "Guten Tag, die Probefahrt ist am Montag möglich.\nAnna Schmidt"


def _relayed(factory: sessionmaker[Session], n: int = 1, answers: int = 1) -> list[OutboxMail]:
    """Inquiry ``n`` (customer kunde<n>@kunden.example), answered ``answers`` times (relayed)."""
    inbound = ingest(factory, inquiry(n))
    assert inbound.lead_id is not None, inbound.status_reason
    notification = [r for r in rows(factory, "notification") if r.lead_id == inbound.lead_id][0]
    mail = sent_mail(factory, notification.id)
    for k in range(answers):
        raw = reply_mail(
            sender="anna@autohaus.example",
            to=str(mail["Reply-To"]),
            subject=f"AW: {mail['Subject']}",
            own=ANSWER,
            original=mail,
            fmt="gt",
            message_id=f"<answer-{n}-{k}-{secrets.token_hex(4)}@client.example>",
        )
        answered = ingest(factory, raw)
        assert answered.status == "processed", answered.status_reason
    relays = [r for r in rows(factory, "relay_to_customer") if r.lead_id == inbound.lead_id]
    assert len(relays) == answers and relays[0].recipients == [f"kunde{n}@kunden.example"]
    return relays


def _bounce(name: str, relay: OutboxMail, n: int = 1) -> bytes:
    raw = (BOUNCES / name).read_bytes().replace(ORIGINAL_ID, relay.message_id.encode())
    return raw.replace(b"kunde1@kunden.example", f"kunde{n}@kunden.example".encode())


def _deliver(factory: sessionmaker[Session], raw: bytes) -> InboundMail:
    """Store a bounce as the listener does (null envelope sender) and run the worker."""
    stored = store_raw(factory, raw, channel="smtp", envelope_from="", envelope_to=[LEAD_ADDRESS])
    process_pending(factory, Settings())
    with factory() as session:
        row = session.get(InboundMail, stored.id)
        assert row is not None
        return row


def _lead(factory: sessionmaker[Session], lead_id: int) -> Lead:
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return lead


def _outbox(factory: sessionmaker[Session], row_id: int) -> OutboxMail:
    with factory() as session:
        row = session.get(OutboxMail, row_id)
        assert row is not None
        return row


def _actions(factory: sessionmaker[Session], lead_id: int) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(ProtocolEntry.action)
                .where(ProtocolEntry.lead_id == lead_id)
                .order_by(ProtocolEntry.id)
            )
        )


def _state(factory: sessionmaker[Session], lead_id: int) -> tuple[object, ...]:
    """What a bounce may change: the lead's answer and clock, its mails, their bounce marks."""
    lead = _lead(factory, lead_id)
    with factory() as session:
        mails = session.execute(
            select(OutboxMail.id, OutboxMail.bounced_at).order_by(OutboxMail.id)
        ).all()
    return (
        lead.status,
        lead.first_response_at,
        lead.next_due_at,
        lead.escalation_stage,
        tuple(mails),
        len(_actions(factory, lead_id)),
    )


def _hostile_variants(relay: OutboxMail) -> dict[str, bytes]:
    """Bounces that must change nothing for the relayed answer."""
    standard = (BOUNCES / "rfc3464-postfix-headers.eml").read_bytes()
    real_id = relay.message_id.encode()
    delivered_to_customer = standard.replace(ORIGINAL_ID, real_id).replace(
        b"Final-Recipient: rfc822; kunde1@kunden.example\nOriginal-Recipient: "
        b"rfc822;kunde1@kunden.example\nAction: failed",
        b"Final-Recipient: rfc822; kunde1@kunden.example\nAction: delivered\nStatus: 2.0.0\n\n"
        b"Final-Recipient: rfc822; kollege@partner.example\nAction: failed",
    )
    assert b"kollege@partner.example" in delivered_to_customer
    delayed = standard.replace(ORIGINAL_ID, real_id).replace(
        b"Action: failed\nStatus: 5.1.1", b"Action: delayed\nStatus: 4.4.1"
    )
    assert b"Action: delayed" in delayed
    return {
        "random id": standard.replace(ORIGINAL_ID, f"<{secrets.token_hex(16)}@x.example>".encode()),
        "another installation's id": standard.replace(
            ORIGINAL_ID, f"<{secrets.token_hex(16)}@autohaus.example>".encode()
        ),
        "no original quoted": standard.replace(ORIGINAL_ID, b"").replace(b"Message-ID: \n", b""),
        "delayed, not failed": delayed,
        "the customer's copy delivered, a colleague's failed": delivered_to_customer,
        "exim delay warning": (BOUNCES / "exim-plain.eml")
        .read_bytes()
        .replace(ORIGINAL_ID, real_id)
        .replace(
            b"could not be delivered to one or more of its\nrecipients. This is a permanent error.",
            b"has not yet been delivered to one or more of its\nrecipients after more than 24 "
            b"hours on the queue. No action is required on your part; delivery will continue "
            b"to be tried.",
        ),
    }


def test_every_bounce_shape_marks_the_answer_undelivered_and_hostile_ones_change_nothing(
    dealer: sessionmaker[Session],
) -> None:
    setup_dealer(dealer)
    recognised = 0
    for n, (name, status) in enumerate(SHAPES.items(), start=1):
        (relay,) = _relayed(dealer, n)
        assert _lead(dealer, relay.lead_id).first_response_at is not None
        inbound = _deliver(dealer, _bounce(name, relay, n))
        assert inbound.status == "processed", (name, inbound.status_reason)
        assert inbound.lead_id == relay.lead_id
        marked = _outbox(dealer, relay.id)
        assert marked.bounced_at is not None, name
        assert marked.bounce_reason and status in marked.bounce_reason, marked.bounce_reason
        lead = _lead(dealer, relay.lead_id)
        # the only answer bounced: unanswered again, the ladder runs afresh from now
        assert lead.first_response_at is None and lead.status == "assigned"
        assert lead.escalation_stage == 0 and lead.next_due_at is not None
        assert lead.next_due_at > utcnow() - timedelta(minutes=5)
        assert "undelivered" in _actions(dealer, lead.id)
        (notice,) = [r for r in rows(dealer, "relay_bounce") if r.lead_id == lead.id]
        assert notice.recipients == ["anna@autohaus.example"]
        mail = sent_mail(dealer, notice.id)
        text = body(mail, "plain")
        assert "konnte nicht zugestellt werden" in text and status in text, text
        assert f"{BASE_URL}/leads/{lead.id}" in text
        assert "gilt wieder als unbeantwortet" in text
        recognised += 1

    hostile_total = changed = 0
    (relay,) = _relayed(dealer, 50)
    for what, raw in _hostile_variants(relay).items():
        before = _state(dealer, relay.lead_id)
        inbound = _deliver(dealer, raw.replace(b"kunde1@kunden.example", b"kunde50@kunden.example"))
        hostile_total += 1
        if _state(dealer, relay.lead_id) != before:
            changed += 1
            pytest.fail(f"{what}: the lead or its mails changed ({inbound.status_reason})")
        assert inbound.status in ("discarded", "processed"), (what, inbound.status)
    assert not rows(dealer, "relay_bounce")[len(SHAPES) :]
    print(
        f"FIGURE C6 bounces of relayed answers recognised {recognised}/{len(SHAPES)} shapes "
        f"(RFC 3464 Postfix, Exchange NDR, Exim, qmail, Sendmail legacy); "
        f"hostile or non-failure bounces that changed anything {changed}/{hostile_total}"
    )


def test_a_huge_diagnostic_is_trimmed_and_the_mail_still_processed(
    sqlite_dealer: sessionmaker[Session],
) -> None:
    setup_dealer(sqlite_dealer)
    (relay,) = _relayed(sqlite_dealer)
    noise = b"\n    " + b"A" * 70 + b" "
    raw = _bounce("rfc3464-postfix-headers.eml", relay).replace(
        b"virtual mailbox table\n\n--4Qx", b"virtual mailbox table" + noise * 3000 + b"\n\n--4Qx"
    )
    assert len(raw) > 200_000
    inbound = _deliver(sqlite_dealer, raw)
    assert inbound.status == "processed", inbound.status_reason
    reason = _outbox(sqlite_dealer, relay.id).bounce_reason or ""
    assert reason.startswith("5.1.1 550 5.1.1") and len(reason) <= 500
    with sqlite_dealer() as session:
        details = session.scalars(
            select(ProtocolEntry.detail).where(ProtocolEntry.action == "undelivered")
        ).all()
    assert details and all(len(d) < 1000 for d in details)


def test_a_second_answer_that_arrived_keeps_the_lead_answered(
    dealer: sessionmaker[Session],
) -> None:
    setup_dealer(dealer)
    first, second = _relayed(dealer, answers=2)
    answered_at = _lead(dealer, first.lead_id).first_response_at
    inbound = _deliver(dealer, _bounce("exchange-ndr.eml", first))
    assert inbound.status == "processed", inbound.status_reason
    assert _outbox(dealer, first.id).bounced_at is not None
    assert _outbox(dealer, second.id).bounced_at is None
    lead = _lead(dealer, first.lead_id)
    assert lead.status == "contacted" and lead.first_response_at == answered_at
    (notice,) = rows(dealer, "relay_bounce")
    assert "bleibt beantwortet" in body(sent_mail(dealer, notice.id), "plain")
    # the second bounces too: now nothing reached the customer
    _deliver(dealer, _bounce("qmail-plain.eml", second))
    lead = _lead(dealer, first.lead_id)
    assert lead.status == "assigned" and lead.first_response_at is None


def test_the_same_bounce_twice_is_recorded_once(sqlite_dealer: sessionmaker[Session]) -> None:
    setup_dealer(sqlite_dealer)
    (relay,) = _relayed(sqlite_dealer)
    raw = _bounce("exim-plain.eml", relay)
    _deliver(sqlite_dealer, raw)
    again = _deliver(sqlite_dealer, raw.replace(b"E1vQ9aB-000Kx2-7T", b"E1vQ9aB-000Kx2-7U"))
    assert again.status == "processed" and "already recorded" in (again.status_reason or "")
    assert len(rows(sqlite_dealer, "relay_bounce")) == 1
    assert _actions(sqlite_dealer, relay.lead_id).count("undelivered") == 1


def test_a_bounced_lead_escalates_again(sqlite_dealer: sessionmaker[Session]) -> None:
    """After the take-back the scheduler treats the lead as unanswered: the reminder follows."""
    setup_dealer(sqlite_dealer)
    (relay,) = _relayed(sqlite_dealer)
    _deliver(sqlite_dealer, _bounce("rfc3464-postfix-headers.eml", relay))
    lead = _lead(sqlite_dealer, relay.lead_id)
    assert lead.next_due_at is not None and lead.overdue_at is not None
    with sqlite_dealer() as session:
        calendar = load_dealer_config(session).calendar
    tick(sqlite_dealer, now=calendar.next_open(lead.overdue_at + timedelta(minutes=1)))
    purposes = [r.purpose for r in rows(sqlite_dealer, "stage1") if r.lead_id == lead.id]
    assert purposes == ["stage1"]
    assert _lead(sqlite_dealer, lead.id).escalation_stage == 2


def test_a_bounce_of_a_staff_mail_is_discarded_with_a_reason_naming_it(
    sqlite_dealer: sessionmaker[Session],
) -> None:
    setup_dealer(sqlite_dealer)
    ingest(sqlite_dealer, inquiry(1))
    (notification,) = rows(sqlite_dealer, "notification")
    raw = (BOUNCES / "rfc3464-postfix-headers.eml").read_bytes()
    raw = raw.replace(ORIGINAL_ID, notification.message_id.encode()).replace(
        b"kunde1@kunden.example", b"anna@autohaus.example"
    )
    inbound = _deliver(sqlite_dealer, raw)
    assert inbound.status == "discarded"
    assert "bounce of a staff mail" in (inbound.status_reason or "")
    assert "notification" in (inbound.status_reason or "")
    assert rows(sqlite_dealer, "relay_bounce") == []


def test_a_bounce_through_the_real_smtp_listener(sqlite_dealer: sessionmaker[Session]) -> None:
    """End to end: the bounce arrives over SMTP with a null sender, as MTAs send it."""
    setup_dealer(sqlite_dealer)
    (relay,) = _relayed(sqlite_dealer)
    settings = SmtpSettings(port=0)
    thread = SmtpThread(IntakeHandler(sqlite_dealer, settings), settings).start()
    try:
        with smtplib.SMTP("127.0.0.1", thread.port, timeout=10) as smtp:
            smtp.ehlo("mx.kunden.example")
            assert smtp.docmd("MAIL FROM:<>")[0] == 250
            assert smtp.docmd(f"RCPT TO:<{LEAD_ADDRESS}>")[0] == 250
            raw = _bounce("exim-plain.eml", relay).replace(b"\n", b"\r\n")  # as on the wire
            reply = smtp.data(raw)
            assert reply[0] == 250, reply
    finally:
        thread.stop()
    process_pending(sqlite_dealer, Settings())
    assert _outbox(sqlite_dealer, relay.id).bounced_at is not None
    assert _lead(sqlite_dealer, relay.lead_id).first_response_at is None
    (notice,) = rows(sqlite_dealer, "relay_bounce")
    mail: Message = sent_mail(sqlite_dealer, notice.id)
    assert "Nicht zugestellt" in str(mail["Subject"])
    assert "5.2.1" in body(mail, "html")


def test_a_bounce_of_the_acknowledgement_changes_nothing(
    sqlite_dealer: sessionmaker[Session],
) -> None:
    """The automatic acknowledgement is no answer: its bounce is discarded, with a reason."""
    setup_dealer(
        sqlite_dealer,
        DEALER_WITH_LINKS.replace("[distribution]", 'acknowledge_sources = ["*"]\n[distribution]'),
    )
    inbound = ingest(sqlite_dealer, inquiry(1))
    (ack,) = rows(sqlite_dealer, "acknowledgement")
    before = _state(sqlite_dealer, inbound.lead_id)
    bounced = _deliver(
        sqlite_dealer,
        (BOUNCES / "qmail-plain.eml").read_bytes().replace(ORIGINAL_ID, ack.message_id.encode()),
    )
    assert bounced.status == "discarded"
    assert "automatic mail to the customer" in (bounced.status_reason or "")
    assert "acknowledgement" in (bounced.status_reason or "")
    assert _state(sqlite_dealer, inbound.lead_id) == before


def _answer_on_lead_page(factory: sessionmaker[Session], lead_id: int) -> OutboxMail:
    """The salesperson answers with the lead page's form (mailgate.outbound.answer)."""
    with db.session_scope(factory) as session:
        dealer = load_dealer_config(session)
        staff = session.scalar(select(User).where(User.email == "anna@autohaus.example"))
        assert staff is not None
        draft = Draft(subject="", body=ANSWER, key=secrets.token_urlsafe(16))
        assert send_answer(session, dealer, lead_id, staff, draft, utcnow())
    (row,) = [r for r in rows(factory, ANSWER_PURPOSE) if r.lead_id == lead_id]
    return row


def test_a_bounced_lead_page_answer_is_taken_back_but_not_a_phone_call(
    sqlite_dealer: sessionmaker[Session],
) -> None:
    setup_dealer(sqlite_dealer)
    first = ingest(sqlite_dealer, inquiry(1))
    answer = _answer_on_lead_page(sqlite_dealer, first.lead_id)
    assert _lead(sqlite_dealer, first.lead_id).status == "contacted"
    _deliver(sqlite_dealer, _bounce("exchange-ndr.eml", answer))
    lead = _lead(sqlite_dealer, first.lead_id)
    assert lead.status == "assigned" and lead.first_response_at is None
    # a lead answered on the page *and* by phone: the call reached him, the lead stays answered
    second = ingest(sqlite_dealer, inquiry(2))
    answer = _answer_on_lead_page(sqlite_dealer, second.lead_id)
    with db.session_scope(sqlite_dealer) as session:
        log_contact(session, second.lead_id, "anna@autohaus.example", utcnow(), "phone")
    _deliver(sqlite_dealer, _bounce("exchange-ndr.eml", answer, 2))
    assert _outbox(sqlite_dealer, answer.id).bounced_at is not None
    assert _lead(sqlite_dealer, second.lead_id).status == "contacted"


def test_the_lead_page_shows_the_undelivered_answer_in_german(
    sqlite_dealer: sessionmaker[Session],
) -> None:
    setup_dealer(sqlite_dealer)
    (relay,) = _relayed(sqlite_dealer)
    _deliver(sqlite_dealer, _bounce("rfc3464-postfix-headers.eml", relay))
    ensure_user(sqlite_dealer, "ada@autohaus.example", "admin")  # set up: no first-admin page
    ensure_user(sqlite_dealer, "anna@autohaus.example", "salesperson")
    client = logged_in(web_app(sqlite_dealer), "anna@autohaus.example")
    page = client.get(f"/leads/{relay.lead_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Mail nicht zugestellt" in html
    assert "Recipient address rejected: User unknown" in html  # the reason, as the server said
    assert "keine Antwort hat den Kunden erreicht" in html


MANGLED_BOUNCES = sorted(BOUNCES.glob("*.eml"))


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(MANGLED_BOUNCES) - 1),
    cuts=st.lists(
        st.tuples(st.integers(min_value=0, max_value=4000), st.binary(max_size=40)), max_size=8
    ),
)
def test_a_mangled_bounce_is_read_without_an_exception(index: int, cuts: list) -> None:
    """Outside input: whatever a bounce's bytes are, reading it yields a bounded report or None."""
    raw = bytearray(MANGLED_BOUNCES[index].read_bytes())
    for position, junk in cuts:
        position %= len(raw)
        raw[position : position + len(junk)] = junk
    report = read_bounce(load(bytes(raw)))
    if report is not None:
        assert 0 < len(report.message_ids) <= 5 and len(report.recipients) <= 20
        assert all(len(r.diagnostic) <= 300 and len(r.address) <= 320 for r in report.recipients)
