"""The salesperson's first look at a lead: a protocol line and the source's "opened" feedback.

Seed 000: the source hears the lead is being worked on when the seller first
opens it.  That is a write on a GET, so it is kept apart and kept harmless: only
the assignee's own first look counts, it commits on its own before the page is
drawn, and a busy database skips it (the next look records it) instead of
failing the page the salesperson asked for.
"""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from mailgate.escalation.feedback import report_opened
from mailgate.models import Lead, utcnow

from ..access import me
from ..busy import is_busy
from ..context import db


def note_first_look(lead: Lead) -> None:
    """Record the assignee's first opening of ``lead`` (nothing for anyone else, or later)."""
    user = me()
    if lead.assignee_id != user.id:
        return
    session = db()
    try:
        if report_opened(session, lead.id, actor_id=user.id, now=utcnow()):
            session.commit()
    except OperationalError as exc:
        if not is_busy(exc):
            raise
        session.rollback()
