"""Issue 17 item 4 (RELIABILITY.md G.6 R7): nothing sent to a reply address disappears.

A customer writing from his work account and a salesperson from her phone's private
address both reach the assignee, marked "von einer nicht hinterlegten Adresse"; the
salesperson's answer relays and counts once the assignee confirms it (signed link);
every mail kept aside (quarantined) is told to the assignee or the admin side in German.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.escalation.authenticity import assignee_token
from mailgate.escalation.replies import tracking_address
from mailgate.escalation.tracking import RELAY_CAP_PER_HOUR
from mailgate.models import Lead, ProtocolEntry, User

from .conversation_helpers import (
    BASE_URL,
    DEALER_WITH_LINKS,
    JPEG,
    PDF,
    attachments_of,
    body,
    ingest,
    mail_with_parts,
    rows,
    sent_mail,
    setup_dealer,
)
from .mails import LEAD_ADDRESS, inquiry
from .webui_helpers import csrf_token, ensure_user, logged_in, web_app

ANNA = "anna@autohaus.example"
CUSTOMER = "erika@kunden.example"
TRUSTED = "mx.autohaus.example"
LINK = re.compile(re.escape(BASE_URL) + r"(/m/[A-Za-z0-9_.\-]+)")


def _setup(factory: sessionmaker[Session]) -> Lead:
    toml = DEALER_WITH_LINKS.replace(
        "[distribution]", f'trusted_authserv_ids = ["{TRUSTED}"]\n[distribution]'
    )
    setup_dealer(factory, toml)
    ingest(factory, inquiry(1, name="Erika Musterfrau", email=CUSTOMER))
    with factory() as session:
        lead = session.scalars(select(Lead)).one()
        session.expunge(lead)
    return lead


def _actions(factory: sessionmaker[Session], lead_id: int) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(ProtocolEntry.action)
                .where(ProtocolEntry.lead_id == lead_id)
                .order_by(ProtocolEntry.id)
            )
        )


def _answered(factory: sessionmaker[Session], lead_id: int) -> bool:
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return lead.first_response_at is not None


def test_the_customer_from_his_work_address_reaches_the_assignee_marked(
    dealer: sessionmaker[Session],
) -> None:
    lead = _setup(dealer)
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    raw = mail_with_parts(
        sender="Erika Musterfrau <e.musterfrau@firma.example>",
        to=address,
        subject="AW: Ihr Angebot",
        text="Ich nehme den 320d!",
        files=[("zulassung.jpg", JPEG, "image/jpeg")],
    )
    row = ingest(dealer, raw)
    assert row.status == "processed" and row.lead_id == lead.id, row.status_reason
    [notice] = rows(dealer, "relay_notice")
    assert notice.recipients == [ANNA]
    mail = sent_mail(dealer, notice.id)
    text = body(mail, "plain")
    assert "nicht hinterlegten Adresse" in str(mail["Subject"]) + text
    assert "e.musterfrau@firma.example" in text and "Ich nehme den 320d!" in text
    assert attachments_of(mail) == {"zulassung.jpg": JPEG}  # the whole message, files too
    assert not _answered(dealer, lead.id) and rows(dealer, "relay_to_customer") == []
    assert _actions(dealer, lead.id)[-1] == "unknown_sender"
    # it is in the lead's conversation, in German
    ensure_user(dealer, ANNA, name="Anna Schmidt")  # a password to log in with
    ensure_user(dealer, "ida@autohaus.example", "admin", name="Ida Admin")  # set up
    page = logged_in(web_app(dealer), ANNA).get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "nicht hinterlegten Adresse" in page and "e.musterfrau@firma.example" in page


def test_a_salesperson_from_her_private_address_counts_after_she_confirms(
    dealer: sessionmaker[Session],
) -> None:
    lead = _setup(dealer)
    assert lead.assignee_id is not None
    address = tracking_address(
        LEAD_ADDRESS, lead.id, assignee_token(lead.reply_token, lead.assignee_id)
    )
    raw = mail_with_parts(
        sender="Anna <anna.schmidt.privat@mail.example>",
        to=address,
        subject="AW: [Lead 1] Neue Anfrage",
        text="Guten Tag Frau Musterfrau, anbei das Angebot. Anna Schmidt",
        files=[("angebot.pdf", PDF, "application/pdf")],
    )
    assert ingest(dealer, raw).status == "processed"
    assert not _answered(dealer, lead.id) and rows(dealer, "relay_to_customer") == []
    [notice] = rows(dealer, "relay_notice")
    [path] = LINK.findall(body(sent_mail(dealer, notice.id), "plain"))
    client = web_app(dealer).test_client()
    done = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert done.status_code == 200 and "Bestätigt" in done.get_data(as_text=True)
    assert _answered(dealer, lead.id)
    [relay_row] = rows(dealer, "relay_to_customer")
    relayed = sent_mail(dealer, relay_row.id)
    assert relay_row.recipients == [CUSTOMER]
    assert attachments_of(relayed) == {"angebot.pdf": PDF}
    assert "anbei das Angebot" in body(relayed, "plain")
    assert "privat" not in str(relayed["From"]) and "[Lead" not in str(relayed["Subject"])
    assert _actions(dealer, lead.id)[-3:] == ["answered", "relayed", "reply_confirmed"]


def _kept_aside_notice(factory: sessionmaker[Session]) -> tuple[list[str], str]:
    notices = rows(factory, "relay_notice")
    assert notices, "nobody was told"
    mail = sent_mail(factory, notices[-1].id)
    return notices[-1].recipients, body(mail, "plain")


def test_every_quarantine_of_a_reply_address_mail_tells_someone_why(
    dealer: sessionmaker[Session],
) -> None:
    lead = _setup(dealer)
    good = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    cases = [  # (mail, who is told, German reason)
        (
            mail_with_parts(
                sender=f"Anna <{ANNA}>",
                to=good,
                subject="AW: x",
                text="Hallo.",
                headers={"Authentication-Results": f"{TRUSTED}; spf=fail smtp.mailfrom=x"},
            ),
            [ANNA],
            "Absenderprüfung unseres Mailservers ist fehlgeschlagen (spf=fail)",
        ),  # fmt: skip
        (
            mail_with_parts(sender=f"{ANNA}, x@evil.example", to=good, subject="x", text="y"),
            [ANNA],
            "keinen oder mehrere Absender",
        ),
        (
            mail_with_parts(
                sender=f"Anna <{ANNA}>",
                to=tracking_address(LEAD_ADDRESS, lead.id, "guessed"),
                subject="AW: x",
                text="Hallo.",
            ),
            ["zentrale@autohaus.example"],  # a wrong token proves nothing about the lead
            "Antwortadresse ist falsch oder veraltet",
        ),
    ]
    for raw, told, reason in cases:
        row = ingest(dealer, raw)
        assert row.status == "quarantined", row.status_reason
        recipients, text = _kept_aside_notice(dealer)
        assert recipients == told and reason in text, (recipients, text)
        assert "zurückgehalten" in text and f"Nr. {row.id}" in text
    actions = _actions(dealer, lead.id)
    assert actions.count("reply_kept_aside") == 2  # noted where the token was the lead's


def test_an_auto_reply_to_a_reply_address_tells_nobody(dealer: sessionmaker[Session]) -> None:
    """R3: no mail is generated in response to auto-replies (loops start that way)."""
    lead = _setup(dealer)
    good = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    raw = mail_with_parts(
        sender=f"Anna <{ANNA}>", to=good, subject="Abwesend", text="Bin weg.",
        headers={"X-Auto-Response-Suppress": "All"},
    )  # fmt: skip
    assert ingest(dealer, raw).status == "quarantined"
    assert rows(dealer, "relay_notice") == []


def test_the_relay_cap_is_told_once_per_mail_and_never_to_the_responders(
    dealer: sessionmaker[Session],
) -> None:
    lead = _setup(dealer)
    good = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    for n in range(RELAY_CAP_PER_HOUR + 2):
        ingest(dealer, mail_with_parts(sender=CUSTOMER, to=good, subject=f"Re: {n}", text=f"{n}"))
    notices = rows(dealer, "relay_notice")
    assert len(notices) == 2 and all(n.recipients == [ANNA] for n in notices)
    assert "Mail-Schleife" in body(sent_mail(dealer, notices[-1].id), "plain")


def test_without_an_active_assignee_the_admin_side_hears(dealer: sessionmaker[Session]) -> None:
    lead = _setup(dealer)
    otto = ensure_user(dealer, "otto@autohaus.example", name="Otto Weg")
    with db.session_scope(dealer) as session:
        session.execute(update(Lead).where(Lead.id == lead.id).values(assignee_id=otto))
        session.execute(update(User).where(User.id == otto).values(active=False))
    good = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    ingest(dealer, mail_with_parts(sender=CUSTOMER, to=good, subject="Re: Golf", text="Und?"))
    ingest(dealer, mail_with_parts(sender="x@firma.example", to=good, subject="Re", text="Hi"))
    told = [n.recipients for n in rows(dealer, "relay_notice")]
    assert told == [["zentrale@autohaus.example"], ["zentrale@autohaus.example"]]


def test_a_hostile_unknown_sender_cannot_inject_headers_into_the_notice(
    dealer: sessionmaker[Session],
) -> None:
    lead = _setup(dealer)
    good = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    raw = (
        f"From: =?utf-8?q?Evil=0D=0ABcc=3A_victim=40x=2Eexample?= <evil@x.example>\r\n"
        f"To: {good}\r\nSubject: =?utf-8?q?Hi=0D=0ABcc=3A_victim=40x=2Eexample?=\r\n"
        "Message-ID: <evil-1@x.example>\r\n\r\n" + "A" * 300_000 + "\r\n"
    ).encode()
    row = ingest(dealer, raw)
    assert row.status == "processed", row.status_reason
    [notice] = rows(dealer, "relay_notice")
    head = (notice.raw or b"").split(b"\r\n\r\n", 1)[0]
    assert b"victim" not in head.replace(b"\r\n ", b" ").split(b"Subject:")[0]
    assert b"\r\nBcc:" not in head
    assert len(body(sent_mail(dealer, notice.id), "plain")) < 25_000  # the text is capped


def test_an_unknown_senders_oversized_files_stay_in_mailgate_and_the_notice_says_so(
    dealer: sessionmaker[Session],
) -> None:
    toml = DEALER_WITH_LINKS.replace(
        'language = "de"\n', 'language = "de"\nmax_relay_size_mb = 1\n'
    )
    setup_dealer(dealer, toml)
    ingest(dealer, inquiry(1, name="Erika Musterfrau", email=CUSTOMER))
    with dealer() as session:
        lead = session.scalars(select(Lead)).one()
    good = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    big = bytes(range(256)) * 5000
    raw = mail_with_parts(
        sender="x@firma.example", to=good, subject="Video", text="Das Video.",
        files=[("video.mp4", big, "video/mp4")],
    )  # fmt: skip
    assert ingest(dealer, raw).status == "processed"
    [notice] = rows(dealer, "relay_notice")
    mail = sent_mail(dealer, notice.id)
    assert attachments_of(mail) == {} and "zu groß zum Weitergeben" in body(mail, "plain")
