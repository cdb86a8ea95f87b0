"""What the Sent-folder watcher reads of one sent mail, and when it counts: pure.

Only the header fields needed to decide are fetched (``Message-ID``,
``Date``, ``To``, ``Cc``, ``Bcc``); the body of a salesperson's private mail
is never read, let alone stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

HEADER_FIELDS = "MESSAGE-ID DATE TO CC BCC"
FETCH_ITEMS = [f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]", "INTERNALDATE"]


@dataclass(frozen=True)
class SentMail:
    """One mail of a Sent folder, reduced to what decides whether it answers a lead."""

    message_key: str  # sha256 of the Message-ID (or of the header block without one)
    message_id: str | None
    recipients: tuple[str, ...]  # lower-case addresses of To, Cc and Bcc
    sent_at: datetime  # UTC


def header_block(item: dict[bytes, object]) -> bytes:
    """The fetched header fields of a FETCH answer (servers spell the key differently)."""
    for key, value in item.items():
        if key.upper().startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""


def parse_sent(headers: bytes, internaldate: object, now: datetime) -> SentMail:
    """A :class:`SentMail` from the header fields and the server's INTERNALDATE.

    The time is the ``Date`` header (what the client stamped when sending);
    without a usable one, INTERNALDATE (when it was put in the folder); and
    never later than ``now``, so a client clock running ahead cannot date an
    answer into the future.
    """
    message = BytesHeaderParser(policy=compat32).parsebytes(headers)
    fields: list[str] = []
    for name in ("To", "Cc", "Bcc"):
        fields.extend(str(v) for v in message.get_all(name, []))
    recipients = tuple(
        dict.fromkeys(addr.strip().lower() for _name, addr in getaddresses(fields) if "@" in addr)
    )
    message_id = (message.get("Message-ID") or "").strip() or None
    key_source = message_id.encode() if message_id else headers + str(internaldate).encode()
    return SentMail(
        message_key=hashlib.sha256(key_source).hexdigest(),
        message_id=message_id[:255] if message_id else None,
        recipients=recipients,
        sent_at=min(_sent_time(message.get("Date"), internaldate) or now, now),
    )


def _sent_time(date_header: str | None, internaldate: object) -> datetime | None:
    if date_header:
        try:
            parsed = parsedate_to_datetime(str(date_header))
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    if isinstance(internaldate, datetime) and internaldate.tzinfo is not None:
        return internaldate.astimezone(UTC)
    return None


def reaches_intake(recipients: Iterable[str], dealer_addresses: Iterable[str]) -> bool:
    """Whether the mail also went to a lead address (plain or ``+`` tracking form).

    Such a mail arrives at the intake, which counts it as the answer already
    (reply tracking); counting it here too would write the answer twice.
    """
    ours = {a.lower() for a in dealer_addresses}
    for address in recipients:
        local, _, domain = address.lower().rpartition("@")
        if address.lower() in ours or f"{local.split('+', 1)[0]}@{domain}" in ours:
            return True
    return False
