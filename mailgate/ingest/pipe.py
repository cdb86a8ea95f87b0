"""Pipe intake (``mailgate ingest``): for an MTA's pipe transport or a script.

Exit codes follow sysexits(3), which Postfix and Exim understand: 0 stored,
75 (EX_TEMPFAIL) when storing failed and the MTA should retry, 65 (EX_DATAERR)
for input that is not a mail at all, so the MTA bounces it instead of retrying
forever.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from mailgate.ingest.store import StoredMail, store_raw

log = logging.getLogger("mailgate.ingest")

EX_OK = 0
EX_DATAERR = 65
EX_TEMPFAIL = 75
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:", re.MULTILINE)  # RFC 5322 field name + colon


class UnusableInput(ValueError):
    """The bytes cannot be a mail (empty, no header, over the size cap)."""


@dataclass(frozen=True)
class PipeResult:
    code: int
    message: str
    stored: StoredMail | None = None


def check_usable(raw: bytes, max_size: int) -> None:
    if not raw.strip():
        raise UnusableInput("empty input")
    if len(raw) > max_size:
        raise UnusableInput(f"message is {len(raw)} bytes, larger than the cap of {max_size}")
    first_line = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if first_line.startswith(b"From ") and b"\n" in raw:  # mbox separator line from an MDA
        first_line = raw.lstrip(b"\r\n").split(b"\n", 2)[1]
    if not _HEADER_LINE.match(first_line):
        raise UnusableInput("input does not start with a mail header")


def ingest_bytes(
    factory: sessionmaker[Session],
    raw: bytes,
    *,
    max_size: int,
    envelope_from: str | None = None,
    envelope_to: tuple[str, ...] = (),
) -> PipeResult:
    """Store one mail from a pipe; never raises, returns the exit code to use."""
    try:
        check_usable(raw, max_size)
    except UnusableInput as exc:
        return PipeResult(EX_DATAERR, f"unusable input: {exc}")
    try:
        stored = store_raw(
            factory, raw, channel="pipe", envelope_from=envelope_from, envelope_to=envelope_to
        )
    except Exception as exc:  # noqa: BLE001 - the MTA keeps the mail and retries
        log.exception("pipe intake could not store the mail")
        return PipeResult(EX_TEMPFAIL, f"temporary failure: {type(exc).__name__}")
    return PipeResult(EX_OK, f"stored as inbound {stored.id}", stored)
