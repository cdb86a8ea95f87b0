"""Read a bounce: which of our mails did not arrive, for whom, and why.

Pure: takes the loaded :class:`~mailgate.parsers.message.MailView` of a mail
that :mod:`mailgate.parsers.nonlead` already called a bounce, returns a
:class:`BounceReport` (or None when nothing in it names an original mail).
:mod:`mailgate.relay_bounces` then matches the report to an outbox row.

Shapes read, because MTAs disagree on what a bounce looks like:

- RFC 3464 ``multipart/report; report-type=delivery-status`` (Postfix,
  Sendmail, Exchange/Microsoft 365, Gmail): per-recipient ``Action`` /
  ``Status`` / ``Diagnostic-Code`` blocks, the original in a ``message/rfc822``
  or ``text/rfc822-headers`` part;
- plain-text bounces that quote the original's headers below a marker (Exim,
  qmail, old Postfix, Exchange's legacy NDR): recipients from
  ``X-Failed-Recipients`` or the ``<address>:`` lines, the reason from the
  first line carrying an SMTP reply code.

The original is found by its Message-ID only: it is random (128 bits, see
:func:`mailgate.outbound.compose.new_message_id`), so a bounce naming one of
ours is about that mail; a bounce that does not quote it (some do not) cannot
be told from a forgery and changes nothing.  A *delay* notice ("will keep
trying") is not a failure.  Every value read from the bounce is bounded: it is
outside input written by whoever sent it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr

from mailgate.parsers.message import MailView, decode_part, leaf_parts

MAX_MESSAGE_IDS = 5  # a real bounce quotes one original; more is noise or an attack
MAX_RECIPIENTS = 20
DIAGNOSTIC_CHARS = 300
_SCAN_CHARS = 100_000  # of a text part, for quoted headers: bounded work on hostile input

_MESSAGE_ID = re.compile(r"(?im)^[ \t>]*message-id:[ \t]*(<[^<>\s]{1,250}>)")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_LINE = re.compile(r"\b[45]\d\d[ -]|\b[45]\.\d{1,3}\.\d{1,3}\b|#\s*[45]\d\d\b")
_ANGLE_ADDRESS = re.compile(r"(?m)^\s*<([^<>@\s]{1,64}@[^<>\s]{1,255})>:?\s*$")
_BARE_ADDRESS = re.compile(
    r"(?m)^\s{0,8}([^<>@\s:]{1,64}@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,63})\s*$"
)
# where a plain-text bounce starts quoting the original mail
_ORIGINAL_MARKERS = re.compile(
    r"(?im)^\s*(?:-+\s*this is a copy of the message|-+\s*below this line is a copy"
    r"|-+\s*original message|original message headers|-+\s*the header of the original"
    r"|-+\s*a copy of the original|-+ ?kopie der nachricht|-+ ?urspr(?:ü|ue)ngliche nachricht)"
)
# a warning that delivery is still being tried: not a failure (Exim, Postfix, Sendmail, qmail)
_DELAY = re.compile(
    r"(?i)has not yet been delivered|will (?:continue to |keep )?(?:try|retry)"
    r"|this is a warning message only|delivery (?:has been )?delayed|still being retried"
    r"|do not need to resend|noch nicht zugestellt|wird weiterhin versucht"
)


@dataclass(frozen=True)
class Recipient:
    """One recipient's outcome as the bounce states it."""

    address: str  # lower-case; the Final-Recipient (or the failed address of a text bounce)
    original: str  # Original-Recipient when given (a forwarding target bounced), else ""
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # enhanced status code "5.1.1", or ""
    diagnostic: str  # the remote server's words, one line, bounded

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def reason(self) -> str:
        """``5.1.1 550 5.1.1 <x>: user unknown``: status code and diagnostic, trimmed."""
        return trim(" ".join(part for part in (self.status, self.diagnostic) if part))


@dataclass(frozen=True)
class BounceReport:
    """What a bounce says: the originals it quotes and each recipient's outcome."""

    message_ids: tuple[str, ...]
    recipients: tuple[Recipient, ...]
    shape: str  # "rfc3464" or "text"

    def failures(self) -> tuple[Recipient, ...]:
        return tuple(r for r in self.recipients if r.failed)


def trim(text: str, limit: int = DIAGNOSTIC_CHARS) -> str:
    """One line, control characters gone, cut at ``limit`` with an ellipsis."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def read_bounce(view: MailView) -> BounceReport | None:
    """The report of a bounce, or None if it names no original Message-ID."""
    parts = list(leaf_parts(view.message))
    status_parts = [p for p in parts if p.get_content_type() in _STATUS_TYPES]
    ids = _original_ids(parts, view.text)
    if not ids:
        return None
    if status_parts:
        recipients = _status_recipients(status_parts)
        if recipients:
            return BounceReport(ids, recipients, "rfc3464")
    return BounceReport(ids, _text_recipients(view), "text")


_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")


# --- the original's Message-ID -------------------------------------------------------


def _original_ids(parts: list[Message], text: str) -> tuple[str, ...]:
    """Message-IDs of the returned original: attached mail, headers part, quoted text."""
    found: list[str] = []
    for part in parts:
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                found += _ids_in(_header_text(inner))
        elif ctype in ("text/rfc822-headers", "text/global-headers"):
            found += _ids_in(decode_part(part, [])[:_SCAN_CHARS])
        elif ctype == "text/plain":
            found += _ids_in(_quoted_original(decode_part(part, [])))
    found += _ids_in(_quoted_original(text))  # the view's text: HTML-only NDRs as text
    unique = tuple(dict.fromkeys(found))
    return unique[:MAX_MESSAGE_IDS]


def _header_text(msg: Message) -> str:
    value = msg.get("Message-ID")
    return f"Message-ID: {value}" if value else ""


def _quoted_original(text: str) -> str:
    """The part of a text bounce after its "copy of the message" marker (else all of it)."""
    text = text[:_SCAN_CHARS]
    marker = _ORIGINAL_MARKERS.search(text)
    return text[marker.end() :] if marker else text


def _ids_in(text: str) -> list[str]:
    return [match.group(1) for match in _MESSAGE_ID.finditer(text)]


# --- recipients ------------------------------------------------------------------------


def _status_recipients(parts: list[Message]) -> tuple[Recipient, ...]:
    """The per-recipient blocks of RFC 3464 ``message/delivery-status`` parts."""
    found: list[Recipient] = []
    for part in parts:
        for block in _blocks(part):
            final = _address_field(block.get("Final-Recipient"))
            if not final:
                continue
            action = str(block.get("Action") or "").strip().lower()[:16]
            status_match = _STATUS.search(str(block.get("Status") or ""))
            diagnostic = str(block.get("Diagnostic-Code") or "")
            _, _, words = diagnostic.partition(";")
            found.append(
                Recipient(
                    address=final,
                    original=_address_field(block.get("Original-Recipient")),
                    action=action,
                    status=status_match.group(1) if status_match else "",
                    diagnostic=trim(words or diagnostic),
                )
            )
            if len(found) >= MAX_RECIPIENTS:
                return tuple(found)
    return tuple(found)


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part (the stdlib parses them, or we do)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = decode_part(part, [])[:_SCAN_CHARS]
    parser = HeaderParser()
    return [parser.parsestr(chunk) for chunk in re.split(r"\r?\n[ \t]*\r?\n", text) if chunk]


def _address_field(value: object) -> str:
    """``rfc822; kunde@kunden.example`` -> ``kunde@kunden.example`` (lower-case, bounded)."""
    text = str(value or "").strip()
    _, semicolon, address = text.partition(";")
    address = (address if semicolon else text).strip()
    _, parsed = parseaddr(address[:400])
    return (parsed or address).strip("<> ").lower()[:320] if "@" in address else ""


def _text_recipients(view: MailView) -> tuple[Recipient, ...]:
    """Failed recipients of a plain-text bounce (Exim, qmail, legacy NDRs)."""
    text = view.text[:_SCAN_CHARS]
    marker = _ORIGINAL_MARKERS.search(text)
    explanation = text[: marker.start()] if marker else text
    action = (
        "delayed" if _DELAY.search(explanation) or _DELAY.search(view.subject or "") else "failed"
    )
    addresses = [
        a.strip().lower() for a in (view.header("X-Failed-Recipients") or "").split(",") if "@" in a
    ]
    addresses += [m.group(1).lower() for m in _ANGLE_ADDRESS.finditer(explanation)]
    addresses += [m.group(1).lower() for m in _BARE_ADDRESS.finditer(explanation)]
    status_match = _STATUS.search(explanation)
    diagnostic = _diagnostic(explanation)
    return tuple(
        Recipient(
            address=address[:320],
            original="",
            action=action,
            status=status_match.group(1) if status_match else "",
            diagnostic=diagnostic,
        )
        for address in list(dict.fromkeys(addresses))[:MAX_RECIPIENTS]
    ) or (Recipient("", "", action, status_match.group(1) if status_match else "", diagnostic),)


def _diagnostic(explanation: str) -> str:
    """The remote server's answer: the first line with an SMTP code, and the one after it."""
    lines = [line.strip() for line in explanation.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if _SMTP_LINE.search(line):
            return trim(" ".join(lines[index : index + 2]))
    return trim(" ".join(lines[-3:]))
