"""The assignee confirms a mail from an address not on file as his answer (signed link).

Why a confirmation and not a guess: a salesperson answering from her phone's
private address and an attacker using a leaked reply address look the same
to us.  The assignee's mailbox is the one thing the attacker does not have,
so the notice (:mod:`.relay_notices`) goes there with a one-use signed link;
clicking it runs the stored mail through the staff path, which counts it
and relays it (every part) to the customer.  No alias is remembered: users
have no column for second addresses, and silently trusting an address
forever is what this confirmation exists to avoid.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import OPEN_STATUSES, Customer, Lead, User
from mailgate.protocol import phrase
from mailgate.protocol_log import log
from mailgate.signed_links import LinkClaims

from .relay_notices import stored_view
from .tracking import ReplyOutcome, single_sender, staff_reply


class ConfirmError(ValueError):
    """The link cannot confirm anything (mail gone, another lead's): shown to the user."""


def parse_token_id(token_id: str) -> tuple[bool, int]:
    """``r812-…`` -> (relay, 812); ValueError for anything else."""
    head, dash, _ = token_id.partition("-")
    if not dash or len(head) < 2 or head[0] not in "rc" or not head[1:].isdigit():
        raise ValueError(f"not a confirmation token id: {token_id!r}")
    return head[0] == "r", int(head[1:])


def confirm_reply(
    session: Session, dealer: DealerConfig, claims: LinkClaims, user: User, now: datetime
) -> ReplyOutcome:
    """Count (and relay) the stored mail the link names as ``user``'s answer.

    The signed claims say which mail and lead; the mail must still belong to
    that lead (the pipeline recorded it there) and the lead be open.  Runs
    in the caller's transaction, which also records the link's use.
    """
    try:
        relay, inbound_id = parse_token_id(claims.token_id)
    except ValueError as exc:
        raise ConfirmError("invalid") from exc
    found = stored_view(session, inbound_id)
    lead = session.get(Lead, claims.lead_id)
    if found is None or lead is None or found[0].lead_id != lead.id:
        raise ConfirmError("gone")
    if lead.status not in OPEN_STATUSES:
        raise ConfirmError("gone")
    _row, view = found
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    outcome = staff_reply(session, dealer, view, lead, user, customer, inbound_id, now, relay=relay)
    sender = single_sender(view) or "?"
    what = phrase("reply_confirmed", sender=sender, user=user.email)
    log(session, lead.id, actor=user.email, action="reply_confirmed", what=what, at=now)
    return outcome
