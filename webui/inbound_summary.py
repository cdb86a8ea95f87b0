"""Subject and sender of received mails for the inbox list, read from the start of each mail.

The list must not load fifty whole messages (a mail may be 25 MB), and the inbox
table has no subject column; so the database hands over only the first
:data:`HEAD_BYTES` of each raw mail, and only the header section of that is parsed.
Headers are decoded (RFC 2047 words, 8-bit bytes, any charset) by the parser's own
functions and folded to one line; the template escapes them like any other text, so
a ``<script>`` in a subject is shown, never run.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.models import InboundRaw
from mailgate.parsers.message import clean_line, safe_addresses, safe_header

HEAD_BYTES = 16 * 1024  # the header section of any ordinary mail fits; a longer one: "–"
_HEADER_END = re.compile(rb"\r?\n\r?\n")
SHOWN = 200  # characters of a subject or name in the list


@dataclass(frozen=True)
class Summary:
    subject: str  # "" when the mail has none (or its head is not readable)
    sender_name: str
    sender_address: str


EMPTY = Summary("", "", "")


def summarise(head: bytes) -> Summary:
    """Subject and From of a mail's first bytes; never raises on content."""
    end = _HEADER_END.search(head)
    if end is None and len(head) >= HEAD_BYTES:
        return EMPTY  # the header section is longer than what was read
    section = head[: end.start()] if end else head
    try:
        msg = email.message_from_bytes(section + b"\r\n\r\n", policy=policy.default)
        subject = clean_line(safe_header(msg, "Subject", []), SHOWN) or ""
        senders = safe_addresses(msg, "From", [])
    except Exception:  # noqa: BLE001 - a hostile head shows as "no subject", never a 500
        return EMPTY
    name, address = senders[0] if senders else ("", "")
    return Summary(subject, clean_line(name, SHOWN) or "", address)


def summaries(session: Session, ids: Iterable[int]) -> dict[int, Summary]:
    """Subject and sender of each listed mail, from the first bytes of its raw message."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(InboundRaw.inbound_id, func.substr(InboundRaw.raw, 1, HEAD_BYTES)).where(
            InboundRaw.inbound_id.in_(wanted)
        )
    )
    return {inbound_id: summarise(bytes(head or b"")) for inbound_id, head in rows}


__all__ = ["EMPTY", "HEAD_BYTES", "Summary", "summaries", "summarise"]
