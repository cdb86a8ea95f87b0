"""Status feedback to a lead's source (seeds 000, 003): OEM lead systems expect to hear back.

Per source (a glob on ``lead.source``, from ``[[feedback]]`` in the dealer
settings) an address receives a short templated mail on every status change of
a lead and on its close: the OEM's own lead number, the dealer's number at that
source (``dealer_number``), the new status, the completion reason and its
outcome.  Seed 000's LeadIT hears "opened" when the salesperson first opens the
lead (:func:`report_opened`); a channel with ``customer_data = true`` gets the
customer's current data with the close, each field the dealer corrected by hand
marked, so the source can fix its own records.  The mail goes through the outbox, so it is
retried and never lost; its idempotency key is the protocol line of the change,
so a retried transaction never sends it twice.  Pure selection, I/O at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.completion import reason_by_code
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.models import Customer, Lead, ProtocolEntry, Webhook
from mailgate.outbound.outbox import enqueue_template
from mailgate.protocol import phrase, phrases_of
from mailgate.protocol_log import log as log_protocol
from mailgate.webhooks.emit import emit, emit_to

log = logging.getLogger(__name__)


def channel_for(channels: list[Mapping[str, Any]], source: str) -> Mapping[str, Any] | None:
    """The first enabled ``[[feedback]]`` entry whose pattern matches ``source``."""
    for channel in channels:
        if channel.get("enabled", True) and fnmatchcase(source.lower(), channel["source"].lower()):
            return channel
    return None


# The customer fields a source may hear back with the close, in the order of the mail.
CUSTOMER_DATA_FIELDS = (
    "salutation",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
)
OPENED = "opened"  # the feedback status of a lead its salesperson opened for the first time


def report_status(
    session: Session,
    lead_id: int,
    *,
    entry_id: int,
    dealer: DealerConfig | None = None,
    status: str | None = None,
) -> bool:
    """Queue the feedback mail for the lead's current status; returns whether one was queued.

    Call after the change, in its transaction, with the id of the protocol line
    that records it (the idempotency key).  No feedback channel: nothing at all.
    ``status`` names a feedback-only state (:data:`OPENED`) instead of the lead's.
    """
    lead = session.get(Lead, lead_id)
    if lead is None:
        return False
    change = {"status": status or lead.status, "close_reason": lead.close_reason}
    if status is None:  # integrations hear of real status changes only
        emit(session, "lead.status_changed", lead_id, change, key=str(entry_id))
    dealer = dealer or load_dealer_config(session)
    channel = channel_for(dealer.document.get("feedback", []), lead.source)
    if channel is None:
        return False
    if channel.get("webhook"):
        hook = session.scalar(select(Webhook.id).where(Webhook.name == channel["webhook"]))
        if hook is None:  # removed since the settings were saved: say so, lose nothing else
            log.error("feedback webhook %r of source %s is gone", channel["webhook"], lead.source)
            return False
        # the same key as the general event: a webhook that also subscribed gets it once
        return emit_to(session, hook, "lead.status_changed", lead_id, change, key=str(entry_id)) > 0
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    reason = reason_by_code(dealer.document, lead.close_reason) if lead.close_reason else None
    context = {
        "lead": {
            "id": lead.id,
            "source": lead.source,
            "source_ref": lead.source_ref or "",
            "campaign": lead.campaign or "",
            "status": change["status"],
            "received_at": lead.received_at.astimezone(dealer.timezone).strftime("%d.%m.%Y %H:%M"),
        },
        "close": {
            "reason": (reason.label if reason else lead.close_reason) or "",
            "outcome": reason.outcome if reason else "",
        },
        "customer": {"name": (customer.name if customer else "") or ""},
        # the close tells a source that keeps records what the customer's data is now
        "customer_data": _customer_data(session, lead, customer)
        if channel.get("customer_data") and change["status"] == "closed"
        else [],
        "dealer_name": dealer.name,
        "dealer_number": channel.get("dealer_number") or "",
    }
    return enqueue_template(
        session,
        dealer,
        key=f"source_feedback:{lead.id}:{entry_id}",
        purpose="source_feedback",
        template="source_feedback",
        language=channel.get("language") or dealer.language,
        context=context,
        to=[("", channel["to"])],
        lead_id=lead.id,
    )


def report_opened(session: Session, lead_id: int, *, actor_id: int, now: datetime) -> bool:
    """The lead's salesperson opened it for the first time: say so in the protocol and,
    where a channel exists, to the source (seed 000: LeadIT hears the "opened" status
    when the seller first opens the lead's task).  Returns whether this was the first time.

    Only the assignee's first look counts: a supervisor or admin browsing the list
    has not started to work on the lead.  The protocol line is the marker, so a
    second look (or a second process racing for the first) finds it and does nothing.
    """
    lead = session.get(Lead, lead_id)
    if lead is None or lead.assignee_id != actor_id or lead.status in ("closed", "deleted"):
        return False
    seen = session.scalar(
        select(ProtocolEntry.id)
        .where(ProtocolEntry.lead_id == lead_id, ProtocolEntry.action == OPENED)
        .limit(1)
    )
    if seen is not None:
        return False
    actor = lead.assignee.email if lead.assignee else "system"
    entry = log_protocol(
        session, lead_id, actor=actor, action=OPENED, what=phrase("lead_opened"), at=now
    )
    report_status(session, lead_id, entry_id=entry, status=OPENED)
    return True


def corrected_fields(session: Session, lead_id: int) -> set[str]:
    """The customer fields someone corrected by hand on this lead (protocol "edited" lines)."""
    rows = session.scalars(
        select(ProtocolEntry.params).where(
            ProtocolEntry.lead_id == lead_id, ProtocolEntry.action == "edited"
        )
    )
    return {
        str(item.params.get("field"))
        for params in rows
        for item in phrases_of(params) or ()
        if item.code == "customer_changed"
    }


def _customer_data(session: Session, lead: Lead, customer: Customer | None) -> list[dict[str, Any]]:
    """The customer's current data for the source, each hand-corrected field marked."""
    if customer is None:
        return []
    corrected = corrected_fields(session, lead.id)
    return [
        {"field": field, "value": value, "corrected": field in corrected}
        for field in CUSTOMER_DATA_FIELDS
        if (value := getattr(customer, field, None))
    ]


def latest_entry(session: Session, lead_id: int) -> int:
    """The newest protocol line of the lead (the change just recorded)."""
    found = session.scalar(
        select(ProtocolEntry.id)
        .where(ProtocolEntry.lead_id == lead_id)
        .order_by(ProtocolEntry.id.desc())
        .limit(1)
    )
    return int(found or 0)
