"""Distribution's side of the pipeline's ``notify`` stage, kept out of pipeline.py.

What happens after distribution decided: a pool lead's notices, and attaching
a known customer's new mail to his open lead - unless the mail carries its own
source lead number (then it is a lead of its own, linked to the open one).
Runs in the stage's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import OPEN_STATUSES, Lead, LeadFollowup, User
from mailgate.protocol import Phrase, phrase
from mailgate.protocol_log import log

from . import notices
from .customers import CustomerMatch
from .service import local_day, users_of


def notify_pool(
    session: Session,
    dealer: DealerConfig,
    *,
    lead: Mapping[str, Any],
    lead_id: int,
    customer: Mapping[str, Any],
    pool_user_id: int,
    now: datetime,
) -> list[tuple[str, Phrase]]:
    """No notification for a pool lead unless ``pool_notice`` is on (reference product);
    then every present user who may take leads hears of it."""
    if not dealer.document["distribution"]["pool_notice"]:
        return []
    users, candidates = users_of(session)
    day = local_day(now, dealer)
    present = {
        c.id for c in candidates if c.active and c.can_be_assigned and c.absence_on(day) is None
    }
    recipients = [u for u in users if u.id in present and u.id != pool_user_id]
    sent = notices.enqueue_pool_notice(
        session, dealer, lead=lead, lead_id=lead_id, customer=customer, recipients=recipients
    )
    return [("notified", phrase("pool_notice_queued", count=sent))]


def separate_source_lead(
    session: Session,
    match: CustomerMatch | None,
    lead: dict[str, Any],
    now: datetime,
    pool_user: str = "",
) -> list[tuple[str, Phrase]]:
    """A mail with its own source lead number is its own lead, never a follow-up mail.

    Seed 003 (Nissan): "In beiden Fällen wird eine Rückmeldung an Nissan mit dem
    aktuellen Bearbeitungsstatus übermittelt" - every OEM lead gets its own
    status feedback, so a second OEM lead of a customer with an open lead must
    not vanish into that lead as an attached mail.  It becomes a lead of its
    own (``lead["linked_lead_id"]``), goes to the open lead's salesperson as a
    known customer's inquiry does, and both protocols say so.  A mail naming
    the number of one of the customer's open leads *is* about that lead: it is
    attached to that one.  Changes ``match`` and ``lead`` in place.
    """
    reference = lead.get("source_ref")
    if match is None or match.open_lead_id is None or not reference:
        return []
    same = session.scalar(
        select(Lead.id)
        .where(
            Lead.customer_id == match.customer["id"],
            Lead.source == lead["source"],
            Lead.source_ref == reference,
            Lead.status.in_(OPEN_STATUSES),
        )
        .order_by(Lead.id.desc())
        .limit(1)
    )
    if same is not None:
        match.open_lead_id = same  # the same OEM lead again: a follow-up of that lead
        return []
    open_id = match.open_lead_id
    owner = session.execute(
        select(User.email).join(Lead, Lead.assignee_id == User.id).where(Lead.id == open_id)
    ).scalar()
    match.open_lead_id = None
    if owner and owner.lower() != pool_user.lower():  # a pool lead's twin waits in the pool
        match.owner = owner
    lead["linked_lead_id"] = open_id
    back = phrase("oem_lead_link_back", source=lead["source"], reference=reference)
    log(session, open_id, actor="system", action="linked_lead", what=back, at=now)
    linked = phrase("oem_lead_linked", source=lead["source"], reference=reference, lead=open_id)
    return [("linked_lead", linked)]


def attach_followup(
    session: Session,
    dealer: DealerConfig,
    *,
    lead_id: int,
    inbound_id: int,
    dedupe_key: str,
    received_at: datetime,
    mail: Mapping[str, Any],
    customer: Mapping[str, Any],
    now: datetime,
) -> list[tuple[str, Phrase]]:
    """The customer's open lead takes the new mail; its owner is told.

    Returns the protocol entries for the lead.  The unique ``dedupe_key`` of
    :class:`LeadFollowup` keeps a redelivered mail from being attached twice,
    its ``fingerprint`` a re-encoded copy (:mod:`mailgate.duplicates`); a mail
    without message text is attached without telling anyone (an empty
    "new message" mail helps nobody).
    """
    session.execute(
        insert(LeadFollowup).values(
            lead_id=lead_id,
            inbound_id=inbound_id,
            dedupe_key=dedupe_key,
            received_at=received_at,
            subject=mail.get("subject"),
            message=mail.get("message"),
            fingerprint=mail.get("fingerprint"),
        )
    )
    session.execute(
        update(Lead)
        .where(Lead.id == lead_id)
        .values(last_activity_at=now)
        .execution_options(synchronize_session=False)
    )
    entries = [("follow-up", phrase("followup_attached", inbound=inbound_id))]
    row = session.execute(select(Lead.__table__).where(Lead.__table__.c.id == lead_id)).first()
    assignee = session.get(User, row.assignee_id) if row and row.assignee_id else None
    if not (mail.get("message") or "").strip():
        # no "new message" mail without a message (issue 17): the mail is on the lead
        entries.append(("follow-up", phrase("followup_no_text")))
    elif row is not None and assignee is not None:
        followup = {"subject": mail.get("subject") or "", "message": mail.get("message") or ""}
        notices.enqueue_assignment(
            session,
            dealer,
            key=f"followup:{inbound_id}",
            lead=dict(row._mapping),
            lead_id=lead_id,
            customer=customer,
            user=assignee,
            template="followup",
            extra={"followup": followup},
        )
        entries.append(("notified", phrase("followup_notice_queued", user=assignee.email)))
    return entries
