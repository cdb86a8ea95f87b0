"""Issue 17 item 1: the relay keeps everything — attachments, inline images, the HTML
alternative — both ways, up to the dealer's size limit, threaded for the customer; and
nothing of ours (links, the quoted notification, our own attachments) goes with it."""

from __future__ import annotations

from email.message import Message

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.escalation.authenticity import assignee_token
from mailgate.escalation.replies import tracking_address
from mailgate.escalation.tracking import RELAY_CAP_PER_HOUR
from mailgate.models import Lead, OutboxMail, ProtocolEntry
from mailgate.outbound.compose import Attachment, build_message
from mailgate.outbound.hygiene import has_action_link
from mailgate.outbound.outbox import enqueue_template

from .conversation_helpers import (
    BASE_URL,
    DEALER_WITH_LINKS,
    JPEG,
    PDF,
    PNG,
    attachments_of,
    body,
    ingest,
    mail_with_parts,
    rows,
    sent_mail,
    setup_dealer,
)
from .mails import LEAD_ADDRESS, inquiry

CUSTOMER = "erika@kunden.example"
ANNA = "Anna Schmidt <anna@autohaus.example>"


def _lead(factory: sessionmaker[Session], toml: str = DEALER_WITH_LINKS) -> Lead:
    setup_dealer(factory, toml)
    ingest(factory, inquiry(1, name="Erika Musterfrau", email=CUSTOMER))
    with factory() as session:
        lead = session.scalars(select(Lead)).one()
        session.expunge(lead)
    return lead


def _notification(factory: sessionmaker[Session]) -> Message:
    [row] = rows(factory, "notification")
    return sent_mail(factory, row.id)


def _staff_answer(notification: Message, **parts: object) -> bytes:
    """Anna answers the notification from her client: her words, then the quoted notification."""
    quoted_text = "\n".join(f"> {line}" for line in body(notification, "plain").splitlines())
    own_html = (
        "<div>Guten Tag Frau Musterfrau,</div><div>anbei das Angebot.</div>"
        '<img src="cid:logo@anna">'
    )
    html = (
        f'<html><body>{own_html}<blockquote type="cite">{body(notification, "html")}'
        "</blockquote></body></html>"
    )
    return mail_with_parts(
        sender=ANNA,
        to=str(notification["Reply-To"]),
        subject=f"AW: {notification['Subject']}",
        text=f"Guten Tag Frau Musterfrau,\nanbei das Angebot.\n\n{quoted_text}\n",
        html=html,
        **parts,  # type: ignore[arg-type]
    )


def test_jpeg_in_and_pdf_out_arrive_byte_identical_threaded_and_clean(
    dealer: sessionmaker[Session],
) -> None:
    lead = _lead(dealer)
    lead_address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    # the customer writes first, with photos (from a relayed mail's Reply-To: the lead token)
    customer_mail = mail_with_parts(
        sender=f"Erika Musterfrau <{CUSTOMER}>",
        to=lead_address,
        subject="Fotos von meinem Golf",
        text="Hier die Fotos für die Inzahlungnahme.",
        html='<p>Hier die Fotos.</p><img src="cid:front@erika">',
        inline=[("front.png", PNG, "image/png", "front@erika")],
        files=[("golf.jpg", JPEG, "image/jpeg")],
        message_id="<erika-1@kunden.example>",
    )
    row = ingest(dealer, customer_mail)
    assert row.status == "processed", row.status_reason
    [to_anna_row] = rows(dealer, "relay_to_assignee")
    to_anna = sent_mail(dealer, to_anna_row.id)
    assert attachments_of(to_anna) == {"golf.jpg": JPEG, "front.png": PNG}
    assert "Hier die Fotos." in body(to_anna, "html")
    # Anna's answer to it goes back with her own token (bound to lead and assignee)
    assert lead.assignee_id is not None
    bound = tracking_address(
        LEAD_ADDRESS, lead.id, assignee_token(lead.reply_token, lead.assignee_id)
    )
    assert bound in str(to_anna["Reply-To"])

    # Anna answers the notification with a PDF offer and a logo in her HTML signature
    raw = _staff_answer(
        _notification(dealer),
        files=[("angebot.pdf", PDF, "application/pdf")],
        inline=[("logo.png", PNG, "image/png", "logo@anna")],
    )
    row = ingest(dealer, raw)
    assert row.status == "processed" and (row.status_reason or "").startswith("answered")
    [relay_row] = rows(dealer, "relay_to_customer")
    relayed = sent_mail(dealer, relay_row.id)
    assert attachments_of(relayed) == {"angebot.pdf": PDF, "logo.png": PNG}
    # the inline image travels with the HTML that names it (multipart/related, its Content-ID)
    related = [p for p in relayed.walk() if p.get_content_type() == "multipart/related"]
    assert related and any(
        p.get("Content-ID") == "<logo@anna>" for p in related[0].walk() if not p.is_multipart()
    )
    html = body(relayed, "html")
    assert "anbei das Angebot" in html and 'src="cid:logo@anna"' in html
    for text in (html, body(relayed, "plain"), str(relayed["Subject"])):
        assert not has_action_link(text, BASE_URL) and BASE_URL not in text
        assert "kontaktiert" not in text and "[Lead" not in text
    # threading: the customer's own message id, as his client knows it
    assert relayed["In-Reply-To"] == "<erika-1@kunden.example>"
    assert "<erika-1@kunden.example>" in str(relayed["References"])


def test_a_second_answer_threads_on_the_first_relayed_one(dealer: sessionmaker[Session]) -> None:
    _lead(dealer)
    notification = _notification(dealer)
    for n in (1, 2):
        raw = _staff_answer(notification, message_id=f"<anna-{n}@autohaus.example>")
        assert ingest(dealer, raw).status == "processed"
    first, second = (sent_mail(dealer, r.id) for r in rows(dealer, "relay_to_customer"))
    assert str(first["Message-ID"]) in str(second["References"])


def test_over_the_size_limit_the_sender_is_told_and_the_lead_noted(
    dealer: sessionmaker[Session],
) -> None:
    toml = DEALER_WITH_LINKS.replace(
        'language = "de"\n', 'language = "de"\nmax_relay_size_mb = 1\n'
    )
    lead = _lead(dealer, toml)
    big = bytes(range(256)) * 5000  # 1.28 MB
    row = ingest(
        dealer, _staff_answer(_notification(dealer), files=[("fotos.zip", big, "application/zip")])
    )
    assert row.status == "processed"
    assert rows(dealer, "relay_to_customer") == []
    [notice] = rows(dealer, "relay_too_large")
    assert notice.recipients == ["anna@autohaus.example"]
    text = body(sent_mail(dealer, notice.id), "plain")
    assert "nicht an Erika Musterfrau weitergegeben" in text and "höchstens 1 MB" in text
    with dealer() as session:
        assert session.get(Lead, lead.id).first_response_at is None  # type: ignore[union-attr]
        actions = session.scalars(
            select(ProtocolEntry.action).where(ProtocolEntry.lead_id == lead.id)
        ).all()
    assert "relay_refused" in actions and "answered" not in actions
    # the customer's too-large mail: he is told, in the dealer's words
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    customer_mail = mail_with_parts(
        sender=CUSTOMER, to=address, subject="Video", text="Hier das Video.",
        files=[("video.mp4", big, "video/mp4")],
    )  # fmt: skip
    assert ingest(dealer, customer_mail).status == "processed"
    assert rows(dealer, "relay_to_assignee") == []
    told = [r.recipients for r in rows(dealer, "relay_too_large")]
    assert told == [["anna@autohaus.example"], [CUSTOMER]]


def test_our_own_attachments_and_forwarded_staff_mails_do_not_reach_the_customer(
    dealer: sessionmaker[Session],
) -> None:
    lead = _lead(dealer)
    internal = b"%PDF-1.4 Inzahlungnahme intern " + bytes(range(256))
    with db.session_scope(dealer) as session:
        from mailgate.dealer_settings import load_dealer_config

        enqueue_template(
            session, load_dealer_config(session), key="trade_in_cc:test", purpose="trade_in_cc",
            template="relay", language="de", context={"subject": "intern", "body": "intern"},
            to=[("", "gutachter@autohaus.example")], lead_id=lead.id,
            attachments=[Attachment("inzahlungnahme-1.pdf", internal, "application/pdf")],
        )  # fmt: skip
    notification = _notification(dealer)
    with dealer() as session:
        note_raw = session.scalar(
            select(OutboxMail.raw).where(OutboxMail.purpose == "notification")
        )
    forwarded = note_raw or notification.as_bytes()
    raw = _staff_answer(
        notification,
        files=[
            ("angebot.pdf", PDF, "application/pdf"),
            ("kopie.pdf", internal, "application/pdf"),  # our trade-in PDF, kept attached
        ],
    )
    # and the notification itself forwarded as an attachment
    from email import message_from_bytes, policy

    msg = message_from_bytes(raw, policy=policy.default)
    msg.add_attachment(message_from_bytes(forwarded, policy=policy.default))  # type: ignore[union-attr]
    assert ingest(dealer, msg.as_bytes(policy=policy.SMTP)).status == "processed"
    [relay_row] = rows(dealer, "relay_to_customer")
    relayed = sent_mail(dealer, relay_row.id)
    assert set(attachments_of(relayed)) == {"angebot.pdf"}
    assert b"X-Mailgate-Origin" not in (relay_row.raw or b"").split(b"\r\n\r\n", 1)[1]


def test_hostile_parts_are_relayed_safely_or_left_out(dealer: sessionmaker[Session]) -> None:
    """Content-IDs and file names with line breaks, broken base64, a fake multipart: no
    header is injected, nothing crashes, the good parts still arrive."""
    lead = _lead(dealer)
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    boundary = "b0undary"
    raw = (
        f"From: {CUSTOMER}\r\nTo: {address}\r\nSubject: Fotos\r\nMessage-ID: <h-1@k.example>\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHier.\r\n"
        f"--{boundary}\r\nContent-Type: image/png\r\n"
        "Content-ID: <x@y>\r\n Bcc: victim@evil.example\r\n"
        'Content-Disposition: inline; filename="a\\r\\nBcc: victim@evil.example.png"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="kaputt.pdf"\r\n\r\n!!!not base64***\r\n'
        f"--{boundary}\r\nContent-Type: multipart/alternative\r\n\r\nno boundary here\r\n"
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename*=utf-8''%E2%80%AEfdp.exe\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    row = ingest(dealer, raw)
    assert row.status == "processed", row.status_reason
    [relay_row] = rows(dealer, "relay_to_assignee")
    relayed_raw = relay_row.raw or b""
    head = relayed_raw.split(b"\r\n\r\n", 1)[0]
    assert b"victim" not in head and b"Bcc" not in head
    relayed = sent_mail(dealer, relay_row.id)
    for part in relayed.walk():
        assert "victim" not in str(part.get("Bcc", ""))
        cid = part.get("Content-ID")
        assert cid is None or ("\n" not in cid and " " not in cid)
    assert len(attachments_of(relayed)) >= 2


def test_build_message_puts_inline_images_beside_the_html() -> None:
    raw = build_message(
        from_name="A", from_address="leads@autohaus.example", to=[("", "k@kunden.example")],
        subject="s", text="t", html='<img src="cid:c1@x">', message_id="<m@x>",
        attachments=[
            Attachment("c.png", PNG, "image/png", content_id="<c1@x>"),
            Attachment("evil.png", PNG, "image/png", content_id="a b\r\nBcc: x@y"),
            Attachment("o.pdf", PDF, "application/pdf"),
        ],
    )  # fmt: skip
    from email import message_from_bytes, policy

    msg = message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    inline = [p for p in related.walk() if p.get_content_type() == "image/png"]
    assert [p["Content-ID"] for p in inline] == ["<c1@x>"]
    assert attachments_of(msg) == {"c.png": PNG, "evil.png": PNG, "o.pdf": PDF}
    assert b"Bcc" not in raw


def test_relay_cap_constant_is_what_the_e2e_stays_below() -> None:
    assert RELAY_CAP_PER_HOUR >= 20


def test_the_size_limit_setting_refuses_what_makes_no_sense(dealer: sessionmaker[Session]) -> None:
    import pytest

    from mailgate.dealer_settings import SettingsError, import_settings

    for bad, words in (
        ("0", "between 1 and 50"),
        ("51", "between 1 and 50"),
        ("-3", "between 1 and 50"),
        ('"20"', "whole number"),
        ("true", "whole number"),
        ("2.5", "whole number"),
    ):
        toml = DEALER_WITH_LINKS.replace(
            'language = "de"\n', f'language = "de"\nmax_relay_size_mb = {bad}\n'
        )
        with pytest.raises(SettingsError, match=words), db.session_scope(dealer) as session:
            import_settings(session, toml)
