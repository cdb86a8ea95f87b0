"""Creating the leads of an import, one row at a time (the I/O half of :mod:`.lead_import`).

Each row becomes a lead through :func:`.manual.create_manual_lead`, so an
imported lead is distributed, timed and announced exactly like one typed in by
hand.  The duplicate decision of seed 004 (update the customer / keep him as he
is / create a new one) is made once for the whole file, for rows whose contact
data (e-mail, phone, or name and address) identify a known customer; a merely
similar name is never a match.  A row that carries the source's own id is
imported once: the same file uploaded twice, or an upload retried after a
lost answer, creates nothing new (:func:`.manual.import_key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import Lead

from .actions import ActionError
from .manual import CustomerChoice, ManualLead, create_manual_lead, import_key, possible_duplicates

DUPLICATE_POLICIES = ("update", "keep", "new")
IDENTIFYING = ("e-mail", "phone", "name and address")


@dataclass(frozen=True)
class RowOutcome:
    """What became of one row: ``created``, ``exists`` (imported before) or ``refused``."""

    result: str
    lead_id: int | None = None
    customer: str = ""  # "new", "kept" or "updated": what happened to the customer
    detail: str = ""


def import_lead(
    session: Session,
    dealer: DealerConfig,
    lead: ManualLead,
    *,
    duplicates: str,
    actor: str,
    now: datetime,
) -> RowOutcome:
    """Create one imported lead in the caller's transaction (the caller commits per row,
    so a large file never holds the database's write lock for long)."""
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates is one of {', '.join(DUPLICATE_POLICIES)}")
    if lead.external_id:
        known = session.scalar(
            select(Lead.id).where(Lead.dedupe_key == import_key(lead.origin, lead.external_id))
        )
        if known is not None:
            return RowOutcome("exists", known)
    choice = _choice(session, dealer, lead, duplicates)
    try:
        with session.begin_nested():
            lead_id = create_manual_lead(session, dealer, lead, choice, actor=actor, now=now)
    except ActionError as exc:
        return RowOutcome("refused", detail=str(exc))
    done = {"new": "new", "keep": "kept", "update": "updated"}[choice.action]
    return RowOutcome("created", lead_id, done)


def _choice(
    session: Session, dealer: DealerConfig, lead: ManualLead, duplicates: str
) -> CustomerChoice:
    """The file's duplicate decision, applied to this row's identifying matches."""
    if duplicates == "new":
        return CustomerChoice("new")
    candidates = possible_duplicates(session, lead.customer, dealer.country or "DE")
    found = [d for d in candidates if d.how in IDENTIFYING]
    if not found:
        return CustomerChoice("new")
    customer_id = int(found[0].customer["id"])
    if duplicates == "keep":
        return CustomerChoice("keep", customer_id)
    given = frozenset(name for name, value in lead.customer.items() if value)
    return CustomerChoice("update", customer_id, given)
