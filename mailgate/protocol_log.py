"""Writing protocol lines: the one place service functions insert into ``protocol_entry``.

The wording lives in :mod:`mailgate.protocol` (pure); this module only adds
the row, so every writer stores phrases and the English ``detail`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.orm import Session

from mailgate.models import ProtocolEntry
from mailgate.protocol import Phrase, row

_INSERT = insert(ProtocolEntry.__table__).returning(ProtocolEntry.__table__.c.id)


def log(
    session: Session,
    lead_id: int,
    *,
    actor: str,
    action: str,
    what: Phrase | Sequence[Phrase],
    at: datetime,
    tz: ZoneInfo | None = None,
) -> int:
    """Add one line to a lead's protocol in the caller's transaction; returns its id."""
    phrases = [what] if isinstance(what, Phrase) else list(what)
    values = row(lead_id, at, actor, action, phrases, tz)
    return int(session.execute(_INSERT, values).scalar_one())
