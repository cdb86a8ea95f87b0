"""Status feedback to a lead's source (seeds 000, 003): OEM lead systems expect to hear back.

Per source (a glob on ``lead.source``, from ``[[feedback]]`` in the dealer
settings) an address receives a short templated mail on every status change of
a lead and on its close: the OEM's own lead number, the new status, the
completion reason and its outcome.  The mail goes through the outbox, so it is
retried and never lost; its idempotency key is the protocol line of the change,
so a retried transaction never sends it twice.  Pure selection, I/O at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.completion import reason_by_code
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.models import Customer, Lead, Webhook
from mailgate.outbound.outbox import enqueue_template
from mailgate.webhooks.emit import emit, emit_to

log = logging.getLogger(__name__)


def channel_for(channels: list[Mapping[str, Any]], source: str) -> Mapping[str, Any] | None:
    """The first enabled ``[[feedback]]`` entry whose pattern matches ``source``."""
    for channel in channels:
        if channel.get("enabled", True) and fnmatchcase(source.lower(), channel["source"].lower()):
            return channel
    return None


def report_status(
    session: Session, lead_id: int, *, entry_id: int, dealer: DealerConfig | None = None
) -> bool:
    """Queue the feedback mail for the lead's current status; returns whether one was queued.

    Call after the change, in its transaction, with the id of the protocol line
    that records it (the idempotency key).  No feedback channel: nothing at all.
    """
    lead = session.get(Lead, lead_id)
    if lead is None:
        return False
    change = {"status": lead.status, "close_reason": lead.close_reason}
    emit(session, "lead.status_changed", lead_id, change, key=str(entry_id))  # integrations
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
            "status": lead.status,
            "received_at": lead.received_at.astimezone(dealer.timezone).strftime("%d.%m.%Y %H:%M"),
        },
        "close": {
            "reason": (reason.label if reason else lead.close_reason) or "",
            "outcome": reason.outcome if reason else "",
        },
        "customer": {"name": (customer.name if customer else "") or ""},
        "dealer_name": dealer.name,
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


def latest_entry(session: Session, lead_id: int) -> int:
    """The newest protocol line of the lead (the change just recorded)."""
    from mailgate.models import ProtocolEntry

    found = session.scalar(
        select(ProtocolEntry.id)
        .where(ProtocolEntry.lead_id == lead_id)
        .order_by(ProtocolEntry.id.desc())
        .limit(1)
    )
    return int(found or 0)
