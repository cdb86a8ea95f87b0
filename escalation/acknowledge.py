"""The optional acknowledgement to the prospect: "thank you, we will answer shortly".

Off by default; the dealer lists the sources (glob patterns such as
``"website"`` or ``"oem:*"``) whose prospects get one.  Never sent to a
platform no-reply address or the dealer's own mailbox; mails that are
auto-submitted never become leads in the first place, so they are never
answered.  Reply-To is the lead's tracking address, so a prospect who answers
the acknowledgement reaches the assignee.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.outbound.outbox import DeferredMail, enqueue_deferred
from mailgate.parsers.fields import is_system_address

from .replies import tracking_address


def wants_acknowledgement(dealer: DealerConfig, source: str, email: str | None) -> bool:
    """Pure: does a prospect of ``source`` at ``email`` get an acknowledgement?"""
    patterns = dealer.document["dealer"].get("acknowledge_sources") or []
    if not email or "@" not in email or not patterns:
        return False
    if email.lower() in dealer.addresses or is_system_address(email):
        return False
    return any(fnmatch.fnmatchcase(source.lower(), p.lower()) for p in patterns)


def enqueue_acknowledgement(
    session: Session,
    dealer: DealerConfig,
    *,
    lead_id: int,
    reply_token: str,
    lead: dict[str, Any],
    customer: dict[str, Any],
) -> bool:
    """Queue the acknowledgement for a new lead if the settings want one; returns whether."""
    email = customer.get("email")
    if not wants_acknowledgement(dealer, lead.get("source") or "unknown", email):
        return False
    vehicle = lead.get("vehicle") or {}
    context = {
        "lead": {
            "id": lead_id,
            "subject": lead.get("subject") or "",
            "vehicle": {k: vehicle.get(k) for k in ("make", "model", "price")},
        },
        "customer": {"name": customer.get("name") or ""},
    }
    tracking = tracking_address(dealer.sender_address, lead_id, reply_token)
    mail = DeferredMail(
        key=f"acknowledgement:{lead_id}",
        purpose="acknowledgement",
        template="acknowledgement",
        language=dealer.language,
        context=context,
        to=[(customer.get("name") or "", str(email))],
        lead_id=lead_id,
        reply_to=[(dealer.from_name, tracking)],
    )
    return enqueue_deferred(session, dealer, [mail]) == 1
