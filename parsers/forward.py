"""Forwarded leads: parse the quoted original, never the forwarding employee.

Dealers forward leads from Outlook, Gmail or Apple Mail to the lead mailbox
(FORMATS.md 1.2).  The outer mail then comes *from an employee*, its subject
gains ``WG:``/``Fwd:`` and the employee's note and signature sit above the
real lead.  :func:`unwrap_forward` returns a :class:`MailView` of the original
(From/Reply-To/Subject from the quoted header block, the text below it, or an
attached ``message/rfc822``), so that the registry can pick the parser of the
original's source.  It runs in ``parse_view`` before ``pick``.
"""

from __future__ import annotations

import re
from email.message import Message

from .context import DEFAULT_CONTEXT, ParseContext
from .fields import EMAIL_PATTERN, is_dealer_address
from .gate import gated
from .message import MailView, clean_line, clean_text, remove_banners, strip_subject_tags, view_of
from .nonlead import non_lead_reason

MAX_FORWARD_DEPTH = 3

_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:(?:wg|fwd?|fw|tr|doorst|wtr|rv|enc)\s*:|\[fwd?:)", re.IGNORECASE
)
# A separator line that only a forward writes (replies use "Am … schrieb …").
_EXPLICIT_SEPARATOR = gated(
    r"(?im)^[ \t>]*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|doorgestuurd bericht"
    r"|message transf[ée]r[ée]|mensaje reenviado)\s*-{2,}"
    r"|begin forwarded message\s*:|anfang der weitergeleiteten nachricht\s*:"
    r"|d[ée]but du message r[ée]exp[ée]di[ée]\s*:|begin doorgestuurd bericht\s*:)[ \t]*$",
    (
        "--",
        "begin forwarded message",
        "anfang der weitergeleiteten",
        "but du message r",
        "begin doorgestuurd",
    ),
)
# Outlook's separator, used for replies as well as forwards.
_OUTLOOK_SEPARATOR = gated(
    r"(?im)^[ \t>]*(?:-{2,}\s*(?:urspr[üu]ngliche nachricht|original message|originalnachricht"
    r"|oorspronkelijk bericht|message d.origine|original-nachricht)\s*-{2,}|_{10,})[ \t]*$",
    ("--", "_" * 10),
)
_HEADER_KEYS = {
    "from": "from",
    "von": "from",
    "van": "from",
    "de": "from",
    "absender": "from",
    "sent": "date",
    "date": "date",
    "gesendet": "date",
    "datum": "date",
    "verzonden": "date",
    "envoyé": "date",
    "envoye": "date",
    "to": "to",
    "an": "to",
    "aan": "to",
    "à": "to",
    "a": "to",
    "cc": "cc",
    "kopie": "cc",
    "subject": "subject",
    "betreff": "subject",
    "onderwerp": "subject",
    "objet": "subject",
    "reply-to": "reply_to",
    "antwort an": "reply_to",
    "antwoord aan": "reply_to",
    "répondre à": "reply_to",
}
_HEADER_LINE = re.compile(r"^[ \t>*]*([A-Za-zÀ-ÿ -]{1,20}?)\s*:\s*(.*)$")
# A bare header block without separator line (Outlook HTML forwards after `<hr>`).
_BLOCK_START = re.compile(r"(?im)^[ \t>*]*(?:from|von|van|de)\s*:\s*\S.*$")


def unwrap_forward(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> MailView:
    """The original mail if ``view`` is a forward, else ``view`` itself.

    A mail counts as a forward when its subject has a forward prefix, when it
    carries a separator only forwards write ("Forwarded message", "Begin
    forwarded message"), or when it was sent by the dealer (an address in
    ``ctx.dealer_addresses`` or at the dealer's domain) and quotes another mail.
    A customer's *reply* (``AW:``/``RE:`` with "-----Original Message-----")
    is left alone: there the sender is the customer.
    """
    current = view
    for _ in range(MAX_FORWARD_DEPTH):
        inner = _unwrap_once(current, ctx)
        if inner is None:
            break
        current = inner
    return current


def _unwrap_once(view: MailView, ctx: ParseContext) -> MailView | None:
    if view.message.get_content_type() == "multipart/report":
        return None
    if non_lead_reason(view, None):
        return None  # a bounce quotes the mail it returns: that is no forward to follow
    by_dealer = any(is_dealer_address(a, ctx.dealer_addresses) for _, a in view.from_addresses)
    forward_subject = bool(_FORWARD_SUBJECT.match(view.subject or ""))
    attached = _attached_message(view.message)
    if attached is not None and (forward_subject or by_dealer or len(view.text.strip()) < 400):
        inner = view_of(attached, [])
        inner.warnings[:0] = view.warnings + [_note(view, "attached")]
        return inner
    text = view.text
    explicit = _EXPLICIT_SEPARATOR.search(text)
    outlook = _OUTLOOK_SEPARATOR.search(text)
    separator = min(
        (m for m in (explicit, outlook) if m is not None), key=lambda m: m.start(), default=None
    )
    if separator is None:
        if not (forward_subject or by_dealer):
            return None
        block = _BLOCK_START.search(text)
        start = block.start() if block else None
    else:
        if separator is outlook and not (forward_subject or by_dealer):
            return None
        start = separator.end()
    if start is None:
        return None
    headers, body = _header_block(text[start:])
    if not headers.get("from"):
        return None
    if separator is None and not ("date" in headers or "to" in headers):
        return None  # "Von: name <mail>" alone is a form field (Contact Form 7), not a header
    original = _address(headers["from"])
    if not by_dealer and original and is_dealer_address(original[1], ctx.dealer_addresses):
        return None  # a customer forwarding the dealer's own offer back: the customer wrote
    outer = {a.lower() for _, a in view.from_addresses}
    if not by_dealer and original and original[1].lower() in outer:
        return None  # a customer forwarding their own earlier mail: both parts are theirs
    return _inner_view(view, headers, body)


def _note(view: MailView, how: str) -> str:
    who = view.from_addresses[0][1] if view.from_addresses else "unknown sender"
    return f"forwarded by {who}: parsed from the {how} original"


def _attached_message(msg: Message) -> Message | None:
    """The first ``message/rfc822`` part of a multipart mail (a forward as attachment)."""
    if not msg.is_multipart():
        return None
    for part in msg.get_payload():  # type: ignore[union-attr]
        if not isinstance(part, Message):
            continue
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif part.is_multipart() and part.get_content_maintype() == "multipart":
            found = _attached_message(part)
            if found is not None:
                return found
    return None


def _header_block(text: str) -> tuple[dict[str, str], str]:
    """Quoted ``Von:/Gesendet:/An:/Betreff:`` lines and the body below them."""
    lines = text.lstrip("\n").split("\n")
    quoted = sum(1 for line in lines[:40] if line.startswith(">"))
    if quoted and quoted >= min(len(lines), 40) // 2:
        lines = [re.sub(r"^> ?", "", line) for line in lines]
    headers: dict[str, str] = {}
    index = 0
    last_key: str | None = None
    while index < len(lines) and index < 40:
        line = lines[index]
        if not line.strip():
            if headers:
                index += 1
                break
            index += 1
            continue
        match = _HEADER_LINE.match(line)
        key = _HEADER_KEYS.get(match.group(1).strip().lower()) if match else None
        if key is None:
            if last_key in ("to", "cc") and headers:
                index += 1  # a wrapped recipient list
                continue
            if headers:
                break
            return {}, text
        if match is not None and key not in headers:
            headers[key] = match.group(2).strip()
        last_key = key
        index += 1
    return headers, "\n".join(lines[index:])


def _address(value: str) -> tuple[str, str] | None:
    """``Name <a@b>``, ``Name [mailto:a@b]``, ``"Name" a@b`` or ``a@b`` as (name, address)."""
    match = EMAIL_PATTERN.search(value)
    if not match:
        return None
    address = match.group(0)
    name = value[: match.start()]
    name = re.sub(r"[<\[(]\s*(?:mailto:)?\s*$", "", name).strip().strip('"').strip()
    if name.endswith("'") and name.startswith("'"):
        name = name[1:-1]
    local, _, domain = address.rpartition("@")
    return clean_line(name) or "", f"{local}@{domain.lower()}"


def _inner_view(outer: MailView, headers: dict[str, str], body: str) -> MailView:
    msg = Message()
    from_pair = _address(headers["from"])
    reply_pair = _address(headers.get("reply_to", ""))
    subject = strip_subject_tags(clean_line(headers.get("subject")))
    for name, value in (
        ("From", headers.get("from")),
        ("Reply-To", headers.get("reply_to")),
        ("Subject", subject),
        ("Date", headers.get("date")),
        ("To", headers.get("to")),
    ):
        text = clean_line(value)
        if text:
            msg[name] = text
    msg.set_payload(body)
    warnings = list(outer.warnings) + [_note(outer, "quoted")]
    if from_pair is None:
        warnings.append("the forwarded original names its sender without an address")
    return MailView(
        message=msg,
        subject=subject,
        from_addresses=[from_pair] if from_pair else [],
        reply_to=[reply_pair] if reply_pair else [],
        text=remove_banners(clean_text(body)).strip("\n"),
        html=None,
        warnings=warnings,
    )
