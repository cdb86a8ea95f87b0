"""Helpers for the conversation tests: a dealership with a base URL, staff mails as sent,
replies as mail clients quote them (issue 17 items 2, 5, 10)."""

from __future__ import annotations

import html
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import import_settings, load_dealer_config
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, OutboxMail
from mailgate.outbound.outbox import materialise
from mailgate.worker import process_pending

from .conftest import DEALER_TOML
from .mails import LEAD_ADDRESS

BASE_URL = "https://leads.autohaus.example"
DEALER_WITH_LINKS = DEALER_TOML.replace(
    'language = "de"\n', f'language = "de"\nbase_url = "{BASE_URL}"\n'
)


def setup_dealer(factory: sessionmaker[Session], toml: str = DEALER_WITH_LINKS) -> None:
    with db.session_scope(factory) as session:
        import_settings(session, toml)


def ingest(factory: sessionmaker[Session], raw: bytes) -> InboundMail:
    """Store a mail to the lead address and process it, as the SMTP listener and worker do."""
    stored = store_raw(factory, raw, channel="smtp", envelope_to=[LEAD_ADDRESS])
    process_pending(factory, Settings())
    with factory() as session:
        row = session.get(InboundMail, stored.id)
        assert row is not None
        return row


def sent_mail(factory: sessionmaker[Session], row_id: int) -> Message:
    """An outbox row's mail as it leaves (deferred rows rendered the way the sender does)."""
    with factory() as session:
        row = session.get(OutboxMail, row_id)
        assert row is not None
        dealer = load_dealer_config(session)
        composed = materialise(dealer, row)
        raw = row.raw if composed is None else composed.raw
    assert raw is not None
    return message_from_bytes(raw, policy=policy.default)


def rows(factory: sessionmaker[Session], purpose: str) -> list[OutboxMail]:
    with factory() as session:
        return list(
            session.scalars(
                select(OutboxMail).where(OutboxMail.purpose == purpose).order_by(OutboxMail.id)
            )
        )


def body(msg: Message, kind: str) -> str:
    part = msg.get_body((kind,))
    return "" if part is None else part.get_content()  # type: ignore[union-attr]


def all_text(msg: Message) -> str:
    """Every decoded text part and the subject, for "is anything of ours in it" checks."""
    out = [str(msg["Subject"] or "")]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            out.append(part.get_content())  # type: ignore[union-attr]
    return "\n".join(out)


# --- replies as mail clients write them ----------------------------------------------------

TEXT_FORMATS = (
    "gt",
    "outlook_de",
    "outlook_en",
    "outlook_headers",
    "apple",
    "gmail_de",
    "gmail_en_wrapped",
    "thunderbird",
)
HTML_FORMATS = (
    "blockquote",
    "outlook_web",
    "outlook_desktop",
    "gmail_html",
    "apple_html",
    "thunderbird_html",
)


def quoted_text(fmt: str, original: str, sender: str, subject: str) -> str:
    """The quote a client puts under the answer, of ``original`` (a staff mail's text)."""
    gt = "\n".join(f"> {line}".rstrip() for line in original.splitlines())
    if fmt == "gt":
        return gt
    if fmt == "outlook_de":
        return (
            f"-----Ursprüngliche Nachricht-----\nVon: {sender}\n"
            f"Gesendet: Montag, 30. November 2026 09:00\nAn: Anna Schmidt\n"
            f"Betreff: {subject}\n\n{original}"
        )
    if fmt == "outlook_en":
        return (
            f"-----Original Message-----\nFrom: {sender}\nSent: Monday, November 30, 2026 9:00 AM"
            f"\nTo: Anna Schmidt\nSubject: {subject}\n\n{original}"
        )
    if fmt == "outlook_headers":  # Outlook rich text as plain: bold labels, no separator
        return (
            f"*Von:* {sender.split('<')[0].strip()}\n*Gesendet:* Montag, 30. November 2026 09:00"
            f"\n*An:* Anna Schmidt\n*Betreff:* {subject}\n\n{original}"
        )
    if fmt == "apple":
        return f"Am 30.11.2026 um 09:00 schrieb {sender}:\n\n{gt}"
    if fmt == "gmail_de":
        return f"Am Mo., 30. Nov. 2026 um 09:00 Uhr schrieb {sender}:\n\n{gt}"
    if fmt == "gmail_en_wrapped":  # Gmail wraps a long attribution line
        name, _, addr = sender.partition("<")
        return (
            f"On Mon, Nov 30, 2026 at 9:00 AM {name.strip()} <\n{addr.rstrip('>')}> wrote:\n\n{gt}"
        )
    if fmt == "thunderbird":
        return f"On 30.11.26 09:00, {sender} wrote:\n{gt}"
    raise ValueError(fmt)


def quoted_html(fmt: str, original_html: str, sender: str, subject: str) -> str:
    """An HTML reply's quote block around ``original_html`` (a staff mail's HTML body)."""
    who = html.escape(sender)
    if fmt == "blockquote":
        return f"<blockquote>{original_html}</blockquote>"
    if fmt == "outlook_web":  # the original follows the header div as a sibling, unquoted
        return (
            '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
            f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>Von:</b> {who}<br>'
            f"<b>Gesendet:</b> Montag, 30. November 2026 09:00<br><b>Betreff:</b> "
            f"{html.escape(subject)}</font><div>&nbsp;</div></div><div>{original_html}</div>"
        )
    if fmt == "outlook_desktop":
        return (
            '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
            f'<p class="MsoNormal"><b>From:</b> {who}<br><b>Sent:</b> Monday, November 30, 2026'
            f" 9:00 AM<br><b>Subject:</b> {html.escape(subject)}</p></div>{original_html}"
        )
    if fmt == "gmail_html":
        return (
            '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">Am Mo., 30. Nov. 2026 um'
            f" 09:00 Uhr schrieb {who}:<br></div>"
            '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">'
            f"{original_html}</blockquote></div>"
        )
    if fmt == "apple_html":
        return (
            f'<div><br><blockquote type="cite"><div>Am 30.11.2026 um 09:00 schrieb {who}:</div>'
            f'<br class="Apple-interchange-newline">{original_html}</blockquote></div>'
        )
    if fmt == "thunderbird_html":
        return (
            f'<div class="moz-cite-prefix">On 30.11.26 09:00, {who} wrote:<br></div>'
            f'<blockquote type="cite">{original_html}</blockquote>'
        )
    raise ValueError(fmt)


def reply_mail(
    *,
    sender: str,
    to: str,
    subject: str,
    own: str,
    original: Message,
    fmt: str,
    message_id: str,
    html_only: bool = False,
) -> bytes:
    """A reply to ``original`` (a staff mail) in quote format ``fmt``: text, HTML or both."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    their_from = str(original["From"])
    their_subject = str(original["Subject"])
    if fmt in TEXT_FORMATS:
        msg.set_content(
            f"{own}\n\n{quoted_text(fmt, body(original, 'plain'), their_from, their_subject)}\n"
        )
        return msg.as_bytes(policy=policy.SMTP)
    own_html = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in own.splitlines())
    document = (
        f"<html><body>{own_html}<br>"
        f"{quoted_html(fmt, body(original, 'html'), their_from, their_subject)}</body></html>"
    )
    if html_only:
        msg.set_content(document, subtype="html")
    else:
        # a short plain alternative as Outlook writes it: the quote flattened below the answer
        flat = body(original, "plain")
        plain = f"{own}\n\n________________________________\nVon: {their_from}\n{flat}"
        msg.set_content(plain)
        msg.add_alternative(document, subtype="html")
    return msg.as_bytes(policy=policy.SMTP)


# --- mails with every kind of part (issue 17 item 1) ---------------------------------------

# A small but real PDF and JPEG: byte-identical arrival is checked on decoded bytes, so the
# contents include every byte value (a transfer encoding that mangles one would show).
PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    + bytes(range(256)) * 40
    + b"\n%%EOF\n"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + (
    bytes(range(255, -1, -1)) * 60 + b"\xff\xd9"
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def mail_with_parts(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    files: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
    inline: list[tuple[str, bytes, str, str]] = (),  # type: ignore[assignment]  # name, data, type, cid
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    """A mail as a client sends it: text, optional HTML with inline images, attachments."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or f"<parts-{abs(hash((sender, to, subject, text)))}@c.example>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        html_part = msg.get_payload()[1]  # type: ignore[index]
        for name, data, mimetype, cid in inline:
            maintype, subtype = mimetype.split("/")
            html_part.add_related(data, maintype, subtype, cid=f"<{cid}>", filename=name)
    for name, data, mimetype in files:
        maintype, subtype = mimetype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=policy.SMTP)


def attachments_of(msg: Message) -> dict[str, bytes]:
    """Every non-body part's decoded bytes by file name (inline images included)."""
    found: dict[str, bytes] = {}
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name:
            data = part.get_payload(decode=True)
            found[name] = data if isinstance(data, bytes) else b""
    return found
