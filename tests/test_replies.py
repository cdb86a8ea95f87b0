"""Reply tracking: the salesperson answers from a mail client, the customer answers back."""

from __future__ import annotations

import smtplib
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import RelaySettings, Settings, SmtpSettings
from mailgate.dealer_settings import import_settings
from mailgate.escalation.replies import (
    find_target,
    notification_reply_to,
    own_words,
    token_matches,
    tracking_address,
    with_tag,
    without_tag,
)
from mailgate.ingest.smtp import IntakeHandler, SmtpThread
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, Lead, OutboxMail, ProtocolEntry
from mailgate.outbound.send import send_pass
from mailgate.worker import process_pending

from .conftest import DEALER_TOML, free_port
from .mails import LEAD_ADDRESS, inquiry
from .test_sender import Sink

DEALERS = frozenset({"leads@autohaus.example"})


# --- pure ---------------------------------------------------------------------


def test_tracking_address_round_trip() -> None:
    address = tracking_address("leads@autohaus.example", 42, "Ab-c_9")
    assert address == "leads+42-Ab-c_9@autohaus.example"
    target = find_target(
        ["x@y.example", address.upper().replace("AB-C_9", "Ab-c_9")], None, DEALERS
    )
    assert target is not None and (target.lead_id, target.token, target.via) == (
        42,
        "Ab-c_9",
        "address",
    )


@pytest.mark.parametrize(
    ("recipients", "subject", "expected"),
    [
        (["leads@autohaus.example"], "AW: [Lead 7] Neue Anfrage", (7, None, "subject")),
        (["leads+7-tok@other.example"], None, None),  # not our mailbox
        (["leads+x-tok@autohaus.example"], None, None),  # no lead id
        (["leads+7@autohaus.example"], None, None),  # no token
        (["leads@autohaus.example"], "Anfrage zu Lead 7", None),
    ],
)
def test_find_target(recipients: list[str], subject: str | None, expected: tuple | None) -> None:
    target = find_target(recipients, subject, DEALERS)
    assert (None if target is None else (target.lead_id, target.token, target.via)) == expected


def test_token_compare_and_subject_tags() -> None:
    assert token_matches("abc", "abc") and not token_matches("abd", "abc")
    assert not token_matches(None, "abc") and not token_matches("", "")
    assert without_tag("AW: [Lead 12] Ihre Anfrage") == "AW: Ihre Anfrage"
    assert with_tag("Re: Frage", 12) == "[Lead 12] Re: Frage"
    assert with_tag("Re: [Lead 12] Frage", 12) == "Re: [Lead 12] Frage"


def test_own_words_drop_every_kind_of_quote() -> None:
    for quote_start in (
        "-----Ursprüngliche Nachricht-----",
        "Von: Autohaus <leads+1-x@autohaus.example>",
        "Am 27.11.2026 um 16:00 schrieb Autohaus <leads@autohaus.example>:",
        "On Fri, Nov 27, 2026 at 4:00 PM Autohaus wrote:",
        "> Zum Lead: https://leads.autohaus.example/leads/1",
        "________________________________",
    ):
        text = f"Guten Tag Frau Muster,\n\ngerne morgen um 10 Uhr.\n\n{quote_start}\ngeheim"
        assert own_words(text) == "Guten Tag Frau Muster,\n\ngerne morgen um 10 Uhr."


# --- through the pipeline -------------------------------------------------------


def dealer_with(factory: sessionmaker[Session], extra: str = "") -> None:
    with db.session_scope(factory) as session:
        import_settings(session, DEALER_TOML.replace("[distribution]", extra + "\n[distribution]"))


def ingest(factory: sessionmaker[Session], raw: bytes) -> InboundMail:
    stored = store_raw(factory, raw, channel="smtp", envelope_to=[LEAD_ADDRESS])
    process_pending(factory, Settings())
    with factory() as session:
        row = session.get(InboundMail, stored.id)
        assert row is not None
        return row


def reply(
    sender: str, to: str, subject: str, body: str, headers: dict[str, str] | None = None
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<reply-{abs(hash((sender, to, subject, body)))}@client.example>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def first_lead(factory: sessionmaker[Session]) -> Lead:
    ingest(factory, inquiry(1, name="Erika Musterfrau", email="erika@kunden.example"))
    with factory() as session:
        lead = session.scalars(select(Lead)).one()
        session.expunge(lead)
        return lead


STAFF_ANSWER = (
    "Guten Tag Frau Musterfrau,\n\nder Golf ist verfügbar, Probefahrt gern am Montag.\n\n"
    "Anna Schmidt\n\n-----Ursprüngliche Nachricht-----\nVon: Autohaus Beispiel\n"
    "Zum Lead: https://leads.autohaus.example/leads/1\nEskalation an Ihre Führungskraft ...\n"
)


def outbox(factory: sessionmaker[Session], purpose: str) -> list[OutboxMail]:
    with factory() as session:
        return list(session.scalars(select(OutboxMail).where(OutboxMail.purpose == purpose)))


def test_staff_answer_counts_and_is_relayed_without_internals(
    dealer: sessionmaker[Session],
) -> None:
    lead = first_lead(dealer)
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    row = ingest(
        dealer,
        reply(
            "Anna Schmidt <anna@autohaus.example>",
            address,
            f"AW: [Lead {lead.id}] Anfrage",
            STAFF_ANSWER,
        ),
    )
    assert row.status == "processed" and row.lead_id == lead.id
    with dealer() as session:
        after = session.get(Lead, lead.id)
        assert after is not None
        assert after.first_response_at is not None and after.status == "contacted"
        assert after.next_due_at is None
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
    [relay] = outbox(dealer, "relay_to_customer")
    assert relay.recipients == ["erika@kunden.example"]
    msg = message_from_bytes(relay.raw, policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert "Probefahrt gern am Montag" in text and "Ist das Fahrzeug noch verfügbar" in text
    assert "Zum Lead" not in text and "Eskalation" not in text and "leads/1" not in text
    assert "Ursprüngliche" not in text
    # the original inquiry's subject, never the mail answered (here tagged "[Lead 1] Anfrage")
    assert msg["Subject"] == "AW: Neue Anfrage über das Kontaktformular #1"
    assert msg["Auto-Submitted"] is None  # a human answer, relayed
    assert address in msg["Reply-To"] and "Anna Schmidt" in msg["From"]


def test_customer_answer_goes_back_to_the_assignee(dealer: sessionmaker[Session]) -> None:
    lead = first_lead(dealer)
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    row = ingest(
        dealer, reply("Erika <erika@kunden.example>", address, "Re: AW: Anfrage", "Montag passt!")
    )
    assert row.status == "processed" and row.lead_id == lead.id
    [relay] = outbox(dealer, "relay_to_assignee")
    assert relay.recipients == ["anna@autohaus.example"]
    msg = message_from_bytes(relay.raw, policy=policy.default)
    # Reply-To: the tracking address with the assignee's own token (issue 17)
    from mailgate.escalation.authenticity import assignee_token

    assert lead.assignee_id is not None
    bound = tracking_address(
        LEAD_ADDRESS, lead.id, assignee_token(lead.reply_token, lead.assignee_id)
    )
    assert f"[Lead {lead.id}]" in msg["Subject"] and bound in msg["Reply-To"]
    assert "Montag passt!" in msg.get_body(("plain",)).get_content()
    with dealer() as session:
        actions = session.scalars(
            select(ProtocolEntry.action).where(ProtocolEntry.lead_id == lead.id)
        )
        assert "customer_replied" in list(actions)
        assert session.get(Lead, lead.id).first_response_at is None  # not the salesperson's answer


@pytest.mark.parametrize("case", ["stranger", "wrong_token", "auto_reply", "auth_failed"])
def test_spoofed_and_automatic_replies_are_never_counted(
    dealer: sessionmaker[Session], case: str
) -> None:
    dealer_with(dealer, 'trusted_authserv_ids = ["mx.autohaus.example"]')
    lead = first_lead(dealer)
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    sender, headers = "Anna Schmidt <anna@autohaus.example>", {}
    if case == "stranger":
        sender = "Mallory <mallory@evil.example>"
    elif case == "wrong_token":
        address = tracking_address(LEAD_ADDRESS, lead.id, "guessed-token")
    elif case == "auto_reply":
        headers = {"Auto-Submitted": "auto-replied"}
    else:
        headers = {
            "Authentication-Results": "mx.autohaus.example; spf=fail smtp.mailfrom=evil.example"
        }
    row = ingest(dealer, reply(sender, address, f"AW: [Lead {lead.id}]", "Erledigt.", headers))
    if case == "stranger":  # a valid token from an address not on file: to the assignee, marked
        assert row.status == "processed" and "not on file" in (row.status_reason or "")
        assert [r.recipients for r in outbox(dealer, "relay_notice")] == [[
            "anna@autohaus.example"
        ]]  # fmt: skip
    else:
        expected = "discarded" if case == "auto_reply" else "quarantined"
        assert row.status == expected, row.status_reason
    with dealer() as session:
        assert session.get(Lead, lead.id).first_response_at is None
    assert outbox(dealer, "relay_to_customer") == []


def test_subject_tag_is_a_possible_answer_for_staff_and_an_inquiry_for_strangers(
    dealer: sessionmaker[Session],
) -> None:
    """Issue 17 item 3: a tag without the token never counts; from staff it is a note."""
    lead = first_lead(dealer)
    row = ingest(
        dealer,
        reply("anna@autohaus.example", LEAD_ADDRESS, f"AW: [Lead {lead.id}] Anfrage", "Erledigt."),
    )
    assert row.status == "processed" and row.lead_id == lead.id
    with dealer() as session:
        assert session.get(Lead, lead.id).first_response_at is None
    assert outbox(dealer, "relay_to_customer") == []
    stranger = inquiry(2, name="Paul Neu", email="paul@kunden.example").replace(
        b"Subject: Neue Anfrage", f"Subject: [Lead {lead.id}] Neue Anfrage".encode()
    )
    row = ingest(dealer, stranger)
    assert row.status == "processed" and row.lead_id != lead.id  # an ordinary new lead


def test_relay_rate_cap_stops_ping_pong(dealer: sessionmaker[Session]) -> None:
    lead = first_lead(dealer)
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    statuses = [
        ingest(dealer, reply("erika@kunden.example", address, f"Re {n}", f"Antwort {n}")).status
        for n in range(22)
    ]
    assert statuses[:20] == ["processed"] * 20 and statuses[20:] == ["quarantined"] * 2
    assert len(outbox(dealer, "relay_to_assignee")) == 20


def test_direct_answer_with_the_mailbox_in_copy_is_a_possible_answer(
    dealer: sessionmaker[Session],
) -> None:
    """Issue 17 item 3: no token, so not counted; the assignee confirms it by a link."""
    lead = first_lead(dealer)
    row = ingest(
        dealer,
        reply(
            "Anna Schmidt <anna@autohaus.example>",
            "Erika Musterfrau <erika@kunden.example>",
            "Ihr Golf",
            "Guten Tag, anbei das Angebot.",
            {"Cc": LEAD_ADDRESS},
        ),
    )
    assert row.status == "processed" and row.lead_id == lead.id
    with dealer() as session:
        assert session.get(Lead, lead.id).first_response_at is None
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
    assert outbox(dealer, "relay_to_customer") == []  # the customer already has it
    assert [r.recipients for r in outbox(dealer, "relay_notice")] == [["anna@autohaus.example"]]


def test_notification_reply_to_by_mode() -> None:
    relay = notification_reply_to("relay", LEAD_ADDRESS, 5, "tok", "Erika", "erika@kunden.example")
    assert relay == [("Erika", "leads+5-tok@autohaus.example")]
    cc = notification_reply_to("cc", LEAD_ADDRESS, 5, "tok", "Erika", "erika@kunden.example")
    assert cc == [
        ("Erika", "erika@kunden.example"),
        ("Lead-Tracking", "leads+5-tok@autohaus.example"),
    ]


def test_relay_round_trip_over_real_smtp(dealer: sessionmaker[Session]) -> None:
    """Customer inquiry and salesperson answer arrive over SMTP; the relay leaves over SMTP."""
    sink = Sink()
    relay_port = free_port()
    relay = Controller(sink, hostname="127.0.0.1", port=relay_port)
    relay.start()
    smtp_settings = SmtpSettings(port=0)
    listener = SmtpThread(IntakeHandler(dealer, smtp_settings), smtp_settings).start()
    try:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.sendmail(
                "form@kunden.example", [LEAD_ADDRESS], inquiry(1, email="erika@kunden.example")
            )
        process_pending(dealer, Settings())
        with dealer() as session:
            lead = session.scalars(select(Lead)).one()
        address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.sendmail(
                "anna@autohaus.example",
                [address],
                reply(
                    "anna@autohaus.example", address, f"AW: [Lead {lead.id}] Anfrage", STAFF_ANSWER
                ),
            )
        process_pending(dealer, Settings())
        settings = replace(
            Settings(), relay=RelaySettings(host="127.0.0.1", port=relay_port, timeout=5)
        )
        send_pass(dealer, settings)
    finally:
        listener.stop()
        relay.stop()
    to_customer = [raw for _, rcpts, raw in sink.received if rcpts == ["erika@kunden.example"]]
    assert len(to_customer) == 1
    assert b"Probefahrt gern am Montag" in to_customer[0] and b"leads/1" not in to_customer[0]
