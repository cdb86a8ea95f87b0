"""Issue 17 items 1, 3, 4 end to end over real SMTP: mailgate's listener takes every mail,
the worker handles it, the sender delivers to a relay sink; the sink's bytes are checked.

One dealership conversation: the forged-From matrix first (nothing may count or reach the
customer), then the salesperson's PDF offer out, the customer's JPEG photos in, the
customer from his work address, the salesperson from her private address (confirmed by
the signed link in her mailbox).  Prints the issue's figure, computed from the sink.
"""

from __future__ import annotations

import re
import smtplib
from email import message_from_bytes, policy
from email.message import Message

from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings, SmtpSettings
from mailgate.escalation.authenticity import assignee_token
from mailgate.escalation.replies import tracking_address
from mailgate.ingest.smtp import IntakeHandler, SmtpThread
from mailgate.models import Lead
from mailgate.outbound.send import send_pass
from mailgate.worker import process_pending

from .conftest import free_port
from .conversation_helpers import (
    BASE_URL,
    DEALER_WITH_LINKS,
    JPEG,
    PDF,
    attachments_of,
    body,
    mail_with_parts,
    setup_dealer,
)
from .mails import LEAD_ADDRESS, inquiry
from .test_relay_authenticity import TRUSTED, _forged_cases
from .test_sender import Sink, settings_for
from .webui_helpers import csrf_token, web_app

ANNA = "anna@autohaus.example"
CUSTOMER = "erika@kunden.example"
LINK = re.compile(re.escape(BASE_URL) + r"(/m/[A-Za-z0-9_.\-]+)")
# words of our staff mails' subjects (the inquiry's own subject may say "Neue Anfrage")
INTERNAL = re.compile(r"\[Lead|Überfällig|Erinnerung|Eskalation|wartet seit|Wiedervorlage")


def _parse(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.default)


def test_conversation_over_real_smtp_keeps_everything_and_accepts_no_forgery(
    dealer: sessionmaker[Session],
) -> None:
    toml = DEALER_WITH_LINKS.replace(
        "[distribution]", f'trusted_authserv_ids = ["{TRUSTED}"]\n[distribution]'
    )
    setup_dealer(dealer, toml)
    sink = Sink()
    sink_port = free_port()
    relay = Controller(sink, hostname="127.0.0.1", port=sink_port)
    relay.start()
    smtp_settings = SmtpSettings(port=0)
    listener = SmtpThread(IntakeHandler(dealer, smtp_settings), smtp_settings).start()
    outbound = settings_for(sink_port)

    def deliver(raw: bytes, rcpt: str, mail_from: str = "client@mail.example") -> None:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
            client.sendmail(mail_from, [rcpt], raw)
        process_pending(dealer, Settings())
        send_pass(dealer, outbound)

    def received(since: int, rcpt: str) -> list[Message]:
        return [_parse(raw) for _, rcpts, raw in sink.received[since:] if rcpt in rcpts]

    try:
        deliver(inquiry(1, name="Erika Musterfrau", email=CUSTOMER), LEAD_ADDRESS)
        [notification] = received(0, ANNA)
        with dealer() as session:
            lead = session.scalars(select(Lead)).one()
            session.expunge(lead)
        assert lead.assignee_id is not None

        # 1. the forged-From matrix: nothing counts, nothing reaches the customer
        start = len(sink.received)
        forged = _forged_cases(lead)
        for _name, raw, _expected in forged:
            deliver(raw, LEAD_ADDRESS if b"[Lead" in raw or b"Cc:" in raw else _rcpt(raw))
        with dealer() as session:
            answered = session.get(Lead, lead.id).first_response_at is not None  # type: ignore[union-attr]
        forged_accepted = int(answered) + len(received(start, CUSTOMER))
        told = len(sink.received) - start  # every forged mail reached a person (a notice)

        # 2. the salesperson's PDF offer out, answering the notification from her client
        start = len(sink.received)
        answer = mail_with_parts(
            sender=f"Anna Schmidt <{ANNA}>",
            to=str(notification["Reply-To"]),
            subject=f"AW: {notification['Subject']}",
            text="Guten Tag Frau Musterfrau, anbei das Angebot.\n\n"
            + "\n".join(f"> {line}" for line in body(notification, "plain").splitlines()),
            files=[("angebot.pdf", PDF, "application/pdf")],
            message_id="<anna-1@autohaus.example>",
        )
        deliver(answer, _address(str(notification["Reply-To"])), ANNA)
        [to_customer] = received(start, CUSTOMER)
        assert attachments_of(to_customer) == {"angebot.pdf": PDF}

        # 3. the customer's photos in, answering the relayed mail
        start = len(sink.received)
        photos = mail_with_parts(
            sender=f"Erika Musterfrau <{CUSTOMER}>",
            to=str(to_customer["Reply-To"]),
            subject=f"Re: {to_customer['Subject']}",
            text="Hier die Fotos vom Golf.",
            files=[("golf.jpg", JPEG, "image/jpeg")],
            message_id="<erika-2@kunden.example>",
        )
        deliver(photos, _address(str(to_customer["Reply-To"])), CUSTOMER)
        [to_anna] = received(start, ANNA)
        assert attachments_of(to_anna) == {"golf.jpg": JPEG}

        # 4. the customer from his work address: to Anna, marked, not counted
        start = len(sink.received)
        work = mail_with_parts(
            sender="Erika Musterfrau <e.musterfrau@firma.example>",
            to=str(to_customer["Reply-To"]),
            subject="Re: Angebot",
            text="Ich nehme den Golf!",
            files=[("zulassung.jpg", JPEG, "image/jpeg")],
        )
        deliver(work, _address(str(to_customer["Reply-To"])), "e.musterfrau@firma.example")
        [marked] = received(start, ANNA)
        assert "nicht hinterlegten Adresse" in str(marked["Subject"])
        assert "Ich nehme den Golf!" in body(marked, "plain")
        assert attachments_of(marked) == {"zulassung.jpg": JPEG}

        # 5. Anna from her private phone address, with her own token: confirm, then it relays
        start = len(sink.received)
        private_to = tracking_address(
            LEAD_ADDRESS, lead.id, assignee_token(lead.reply_token, lead.assignee_id)
        )
        private = mail_with_parts(
            sender="Anna <anna.privat@mail.example>",
            to=private_to,
            subject="AW: Angebot",
            text="Übergabe am Freitag, Anna Schmidt",
            files=[("vertrag.pdf", PDF, "application/pdf")],
        )
        deliver(private, private_to, "anna.privat@mail.example")
        assert received(start, CUSTOMER) == []  # not before she confirms
        [ask] = received(start, ANNA)
        [path] = LINK.findall(body(ask, "plain"))
        client = web_app(dealer).test_client()
        assert client.post(path, data={"csrf_token": csrf_token(client, path)}).status_code == 200
        send_pass(dealer, outbound)
        [confirmed] = received(start, CUSTOMER)
        assert attachments_of(confirmed) == {"vertrag.pdf": PDF}
    finally:
        listener.stop()
        relay.stop()

    to_customers = [_parse(raw) for _, rcpts, raw in sink.received if CUSTOMER in rcpts]
    relays = [
        _parse(raw)
        for _, rcpts, raw in sink.received
        if CUSTOMER in rcpts or b"Fotos vom Golf" in raw or b"Ich nehme den Golf!" in raw
    ]
    sent = {  # every legitimate message and the text that proves it arrived
        "offer": b"anbei das Angebot",
        "photos": b"Hier die Fotos vom Golf",
        "work address": b"Ich nehme den Golf!",
        "private address": "Übergabe am Freitag".encode(),
    }
    lost = [
        name
        for name, marker in sent.items()
        if not any(marker in m.as_bytes() or marker.decode() in _text(m) for m in relays)
    ]
    staff_subject = str(notification["Subject"])
    internal = [
        str(m["Subject"])
        for m in to_customers
        if INTERNAL.search(str(m["Subject"])) or staff_subject in str(m["Subject"])
    ]
    attachments = sum(len(attachments_of(m)) for m in relays)
    print(
        f"FIGURE C1 relayed {len(relays)} messages with {attachments} attachments, "
        f"{len(lost)} lost, {len(internal)} internal subjects, {forged_accepted} forged accepted"
    )
    assert lost == [] and internal == [] and forged_accepted == 0
    assert told >= len(forged)  # none of the forged mails vanished without a word
    assert len(relays) == 4 and attachments == 4


def _text(msg: Message) -> str:
    return "\n".join(
        part.get_content() for part in msg.walk() if part.get_content_maintype() == "text"
    )


def _address(header: str) -> str:
    found = re.findall(r"[\w.+-]+@[\w.-]+", header)
    tracking = [a for a in found if "+" in a]
    return (tracking or found)[0]


def _rcpt(raw: bytes) -> str:
    """The To address of a forged mail (a tracking address)."""
    return _address(str(_parse(raw)["To"]))
