"""Reply tracking, the I/O part: a mail to a lead's tracking address is handled here.

Three kinds of sender, decided on the envelope-independent From address:

- **staff** (an active user): the answer counts as the lead's response
  (``first_response_at``, status *contacted*, the ladder stops) and, in
  ``reply_mode = "relay"`` (in ``cc`` mode when the customer is not among its
  own recipients), is relayed to the customer from the dealer's lead
  address with the salesperson's name; only the salesperson's own words travel
  (:mod:`.quotes`), never our notification's links, tokens or escalation texts,
  under the conversation's subject (:mod:`.subjects`), never the staff mail's;
- **the lead's customer**: the answer is recorded on the lead and relayed to the
  assignee, Reply-To the tracking address again, so the conversation goes on;
- **anyone else**: quarantined, never counted, never relayed (spoofing).

A per-lead relay cap stops ping-pong between two auto-responders that slipped
past the auto-reply checks; a staff reply whose trusted DKIM/SPF check failed
is not counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import getaddresses

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import OPEN_STATUSES, Customer, Lead, LeadStatus, OutboxMail, User
from mailgate.outbound.outbox import compose_template, enqueue_composed
from mailgate.parsers.message import MailView
from mailgate.protocol import english, phrase
from mailgate.protocol_log import log
from mailgate.webhooks.emit import emit

from .feedback import report_status
from .quotes import reply_text
from .replies import (
    ReplyTarget,
    quote,
    token_matches,
    tracking_address,
    with_tag,
    without_tag,
)
from .subjects import customer_subject

RELAY_CAP_PER_HOUR = 20
RELAY_PURPOSES = ("relay_to_customer", "relay_to_assignee")


class ReplyRejected(Exception):
    """The mail looks like a reply but may not be counted or relayed; keep it for a human."""


@dataclass(frozen=True)
class ReplyOutcome:
    lead_id: int
    action: str  # "answered", "customer_replied"
    detail: str


_SUPPRESS = re.compile(r"\b(all|oof|autoreply)\b", re.IGNORECASE)


def single_sender(view: MailView) -> str:
    """The From address, lower-case, only if the header names exactly one address.

    A From that lists (or parses as) several addresses is a spoofing shape:
    ``anna@autohaus.example <mallory@evil.example>`` reads as two addresses with
    the dealer's first (CVE-2023-27043 family).  No mail client sends a reply
    like that, so such a mail is nobody's reply: "" (it is then kept aside).
    """
    if len(view.from_addresses) != 1:
        return ""
    return view.from_addresses[0][1].lower()


def automatic_signal(view: MailView) -> str | None:
    """Exchange's ``X-Auto-Response-Suppress`` (All/OOF/AutoReply) marks machine-sent mail
    (out-of-office and ticket systems send it next to, or instead of, ``Auto-Submitted``);
    the other auto-reply headers never get this far (parsers/nonlead.py discards them)."""
    value = view.header("X-Auto-Response-Suppress") or ""
    if _SUPPRESS.search(value):
        return f"X-Auto-Response-Suppress: {value.strip()[:60]}"
    return None


def handle_reply(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    target: ReplyTarget,
    *,
    inbound_id: int,
    now: datetime,
    auth_failure: str | None = None,
) -> ReplyOutcome:
    """Record and relay one reply; raises :class:`ReplyRejected` for a mail to keep aside."""
    lead = session.get(Lead, target.lead_id)
    if lead is None:
        raise ReplyRejected(f"reply to unknown lead {target.lead_id}")
    if target.via == "address" and not token_matches(target.token, lead.reply_token):
        raise ReplyRejected(f"tracking address of lead {lead.id} with a wrong token")
    automatic = automatic_signal(view)
    if automatic:
        raise ReplyRejected(f"automatic mail to lead {lead.id} ({automatic}): not a reply")
    sender = single_sender(view)
    staff = session.scalar(select(User).where(User.email == sender, User.active))
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    if staff is not None:
        if auth_failure:
            raise ReplyRejected(f"reply from {sender} failed {auth_failure}: not counted")
        return _staff_reply(session, dealer, view, lead, staff, customer, inbound_id, now)
    if customer is not None and customer.email and sender == customer.email.lower():
        return _customer_reply(session, dealer, view, lead, customer, inbound_id, now)
    raise ReplyRejected(
        f"mail to lead {lead.id}'s tracking address from {sender or 'nobody'}, "
        "who is neither staff nor the lead's customer"
    )


def handle_direct_answer(
    session: Session,
    view: MailView,
    recipients: list[str],
    dealer: DealerConfig,
    *,
    now: datetime,
    auth_failure: str | None = None,
    find_staff: Callable[[str], User | None] | None = None,
) -> ReplyOutcome | None:
    """A salesperson wrote to the customer directly, with the lead mailbox in Cc/Bcc.

    Recognised by the sender (an active user) and a recipient who is the
    customer of one of that user's open leads; counts as the response, nothing
    is relayed (the customer already has the mail).  None if it is not that.
    ``find_staff`` (active user by lower-case address) spares the worker a
    query per mail: it already holds the users.
    """
    sender = single_sender(view)
    if not sender or automatic_signal(view):
        return None
    if find_staff is not None:
        staff = find_staff(sender)
    else:
        staff = session.scalar(select(User).where(User.email == sender, User.active))
    if staff is None or auth_failure:
        return None
    others = {r.lower() for r in recipients} - set(dealer.addresses) - {sender}
    if not others:
        return None
    lead = session.scalars(
        select(Lead)
        .join(Customer, Customer.id == Lead.customer_id)
        .where(
            Customer.email.in_(others),
            Lead.assignee_id == staff.id,
            Lead.status.in_(OPEN_STATUSES),
        )
        .order_by(Lead.received_at.desc())
        .limit(1)
    ).first()
    if lead is None:
        return None
    values: dict[str, object] = {"last_activity_at": now}
    if lead.first_response_at is None:
        values |= {"first_response_at": now, "next_due_at": None}
        if lead.status in (LeadStatus.NEW, LeadStatus.ASSIGNED):
            values["status"] = LeadStatus.CONTACTED.value
    session.execute(update(Lead).where(Lead.id == lead.id).values(**values))
    what = phrase("answered_directly", user=staff.email)
    entry = log(session, lead.id, actor=staff.email, action="answered", what=what, at=now)
    if "status" in values:
        report_status(session, lead.id, entry_id=entry, dealer=dealer)
    if "first_response_at" in values:
        emit(session, "lead.answered", lead.id, {"by": staff.email, "how": "mail"}, key=f"{now}")
    return ReplyOutcome(lead.id, "answered", english([what]))


def _staff_reply(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    lead: Lead,
    staff: User,
    customer: Customer | None,
    inbound_id: int,
    now: datetime,
) -> ReplyOutcome:
    first = lead.first_response_at is None
    values: dict[str, object] = {"last_activity_at": now}
    if first:
        values |= {"first_response_at": now, "next_due_at": None}
        if lead.status in (LeadStatus.NEW, LeadStatus.ASSIGNED):
            values["status"] = LeadStatus.CONTACTED.value
    session.execute(update(Lead).where(Lead.id == lead.id).values(**values))
    what = phrase("answered_by_mail" if first else "answered_again", user=staff.email)
    entry = log(session, lead.id, actor=staff.email, action="answered", what=what, at=now)
    if "status" in values:
        report_status(session, lead.id, entry_id=entry, dealer=dealer)
    if first:
        emit(session, "lead.answered", lead.id, {"by": staff.email, "how": "mail"}, key=f"{now}")
    if customer is not None and customer.email and _needs_relay(dealer, view, customer.email):
        _check_cap(session, lead.id, now)
        body = reply_text(view)
        if lead.message:
            body += f"\n\n{quote(lead.message)}"
        conversation = {"source": lead.source, "subject": lead.subject, "vehicle": lead.vehicle}
        mail = compose_template(
            dealer,
            key=f"relay_to_customer:{inbound_id}",
            template="relay",
            language=dealer.language,
            # the conversation's subject, never the staff mail's the salesperson answered
            context={
                "subject": customer_subject(conversation, dealer.name, dealer.language),
                "body": body,
            },
            to=[(customer.name or "", customer.email)],
            reply_to=[(staff.name, _tracking(dealer, lead))],
            from_name=f"{staff.name or staff.email} ({dealer.from_name})",
            automatic=False,
            purpose="relay_to_customer",  # so the last filter strips every mailgate link
        )
        enqueue_composed(
            session,
            mail,
            key=f"relay_to_customer:{inbound_id}",
            purpose="relay_to_customer",
            lead_id=lead.id,
        )
        relayed = phrase("relayed_to", to=customer.email)
        log(session, lead.id, actor="system", action="relayed", what=relayed, at=now)
    return ReplyOutcome(lead.id, "answered", english([what]))


def _customer_reply(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    lead: Lead,
    customer: Customer,
    inbound_id: int,
    now: datetime,
) -> ReplyOutcome:
    session.execute(update(Lead).where(Lead.id == lead.id).values(last_activity_at=now))
    what = phrase(
        "customer_replied", customer=customer.email or "", subject=without_tag(view.subject)[:400]
    )
    actor = customer.email or "customer"
    log(session, lead.id, actor=actor, action="customer_replied", what=what, at=now)
    assignee = session.get(User, lead.assignee_id) if lead.assignee_id else None
    if assignee is not None and assignee.active:
        _check_cap(session, lead.id, now)
        mail = compose_template(
            dealer,
            key=f"relay_to_assignee:{inbound_id}",
            template="relay",
            language=assignee.language or dealer.language,
            context={"subject": with_tag(view.subject, lead.id), "body": view.text.strip()},
            to=[(assignee.name, assignee.email)],
            reply_to=[(customer.name or "", _tracking(dealer, lead))],
            from_name=f"{customer.name or customer.email} ({dealer.from_name})",
            automatic=False,
            purpose="relay_to_assignee",
        )
        enqueue_composed(
            session,
            mail,
            key=f"relay_to_assignee:{inbound_id}",
            purpose="relay_to_assignee",
            lead_id=lead.id,
        )
    return ReplyOutcome(lead.id, "customer_replied", english([what]))


def _needs_relay(dealer: DealerConfig, view: MailView, customer_email: str) -> bool:
    """Whether only the relay can bring this answer to the customer.

    ``relay`` mode: always.  ``cc`` mode: when the customer is not among the
    answer's own To/Cc — the salesperson answered a mail whose Reply-To is
    the tracking address alone (reminders, escalations, pool notices carry
    only that, so their internal subjects never go straight to a customer).
    """
    if dealer.reply_mode == "relay":
        return True
    direct = {
        address.lower()
        for name in ("To", "Cc")
        for _, address in getaddresses([view.header(name) or ""])
    }
    return customer_email.lower() not in direct


def _check_cap(session: Session, lead_id: int, now: datetime) -> None:
    recent = session.scalar(
        select(func.count())
        .select_from(OutboxMail)
        .where(
            OutboxMail.lead_id == lead_id,
            OutboxMail.purpose.in_(RELAY_PURPOSES),
            OutboxMail.created_at >= now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= RELAY_CAP_PER_HOUR:
        raise ReplyRejected(
            f"lead {lead_id}: {recent} relays in the last hour; stopped to break a mail loop"
        )


def _tracking(dealer: DealerConfig, lead: Lead) -> str:
    return tracking_address(dealer.sender_address, lead.id, lead.reply_token)
