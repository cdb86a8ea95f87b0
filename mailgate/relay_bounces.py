"""A bounce of a mail we sent to a customer: the conversation learns it did not arrive.

Before this, every bounce was discarded (``parsers/nonlead.py``) and a lead
whose only answer bounced still counted as answered: the customer never got
it, nobody knew, and the escalation had stopped.  Now a bounce whose quoted
original is one of our outbox mails to the lead's customer (the relayed
answer, the answer written on the lead page — any lead mail to the
customer's address except the automatic acknowledgement)

1. marks that outbox row undelivered (``bounced_at``, ``bounce_reason``: the
   status code and the remote server's words, trimmed) and says so in the
   lead's protocol, which the conversation shows;
2. takes back "answered" when that mail was the only answer: the lead is
   unanswered again and its escalation ladder starts afresh from now (the
   salesperson did answer; a full stage-1 window to reach the customer
   another way is fairer than an instant supervisor escalation for time the
   bounce took to come back);
3. tells the assignee by mail, with the reason and the lead's link.

Matching is by the stored, random Message-ID only (see :mod:`mailgate.bounces`):
a forged bounce naming an id we never sent, or another installation's,
finds nothing and the mail is discarded as before.  A bounce for a recipient
other than the customer (a Cc) changes nothing for the customer.  A bounce of
a staff mail (notification, reminder) cannot be shown on a conversation; it is
discarded with a reason naming the mail, so the admin sees it in the
inbound list (and the log) instead of nowhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate.bounces import BounceReport, Recipient, trim
from mailgate.dealer_settings import DealerConfig
from mailgate.distribution.notices import customer_context, lead_context, local_time
from mailgate.escalation.ladder import RESUBMISSION, initial_due_times
from mailgate.models import (
    Customer,
    Lead,
    LeadStatus,
    OutboxMail,
    OutboxStatus,
    ProtocolEntry,
    User,
)
from mailgate.outbound.answer import CHANNEL as LEAD_PAGE_CHANNEL
from mailgate.outbound.outbox import enqueue_template
from mailgate.protocol import english, phrase
from mailgate.protocol_log import log as protocol_log

log = logging.getLogger("mailgate.bounces")
# mails to the customer that are not an answer: their bounce keeps today's handling
NOT_ANSWERS = frozenset({"acknowledgement"})
# protocol actions that record a response other than a mail through the relay
_OTHER_RESPONSES = ("contact", "status")
REASON_CHARS = 500


@dataclass(frozen=True)
class BounceOutcome:
    """What a matched bounce did; ``detail`` becomes the inbound mail's outcome text."""

    lead_id: int
    detail: str


class StaffMailBounced(Exception):
    """The bounce is of a mail that is no answer (a staff mail, the acknowledgement):
    discarded with this reason, which names the mail."""


def record_bounce(
    session: Session,
    dealer: DealerConfig,
    report: BounceReport,
    *,
    inbound_id: int,
    now: datetime,
) -> BounceOutcome | None:
    """Apply a bounce to the customer mail it reports; None if it reports none of ours."""
    failures = report.failures()
    if not failures:
        return None  # a delay warning or a success notice: the mail may still arrive
    rows = session.scalars(
        select(OutboxMail).where(OutboxMail.message_id.in_(report.message_ids))
    ).all()
    for row in rows:
        lead = session.get(Lead, row.lead_id) if row.lead_id else None
        customer = session.get(Customer, lead.customer_id) if lead and lead.customer_id else None
        email = (customer.email or "").lower() if customer else ""
        recipients = [str(r).lower() for r in row.recipients or ()]
        if lead is None or not email or email not in recipients or row.purpose in NOT_ANSWERS:
            reason = _other_reason(row, failures, to_customer=email in recipients)
            log.warning("%s", reason)  # a staff address that bounces: the admin should know
            raise StaffMailBounced(reason)
        failed = _failed_for(report, recipients, email)
        if failed is None:
            return BounceOutcome(
                lead.id,
                f"bounce for lead {lead.id}: another recipient of mail {row.id} failed, "
                "not the customer; nothing changed",
            )
        return _apply(session, dealer, row, lead, customer, failed, inbound_id, now)
    return None


def _failed_for(report: BounceReport, recipients: list[str], customer: str) -> Recipient | None:
    """The failure that concerns the customer's copy, or None if his copy is not reported failed.

    A bounce names each recipient's outcome; the customer's own line decides
    (failed, or delivered while a Cc failed).  A forwarding address of the
    customer's names the forward target (``Final-Recipient``), perhaps with
    his address as ``Original-Recipient``: a failure for an address we did
    not send to is his when he was the mail's only recipient; so is a text
    bounce's failure that names nobody.
    """
    for line in report.recipients:
        if customer in (line.address, line.original):
            return line if line.failed else None
    failures = report.failures()
    named_ours = any(f.address in recipients or f.original in recipients for f in failures)
    if failures and not named_ours and recipients == [customer]:
        return failures[0]
    return None


def _apply(
    session: Session,
    dealer: DealerConfig,
    row: OutboxMail,
    lead: Lead,
    customer: Customer | None,
    failure: Recipient,
    inbound_id: int,
    now: datetime,
) -> BounceOutcome:
    reason = trim(failure.reason() or "no reason given", REASON_CHARS)
    if row.bounced_at is not None:
        return BounceOutcome(lead.id, f"bounce of mail {row.id} to lead {lead.id} already recorded")
    row.bounced_at, row.bounce_reason = now, reason
    to = failure.original or failure.address or (customer.email if customer else "") or ""
    what = [phrase("relay_undelivered", to=to, bounce=reason)]
    taken_back = _only_answer(session, lead, row) and _take_back(session, dealer, lead, now)
    if taken_back:
        what.append(phrase("answer_taken_back"))
    protocol_log(session, lead.id, actor="system", action="undelivered", what=what, at=now)
    assignee = session.get(User, lead.assignee_id) if lead.assignee_id else None
    if assignee is not None and assignee.active:
        _notify(session, dealer, row, lead, customer, assignee, reason, to, taken_back, now)
        queued = phrase("bounce_notice_queued", user=assignee.email)
        protocol_log(session, lead.id, actor="system", action="notified", what=queued, at=now)
    log.info("bounce of outbox mail %s (lead %s) recorded: %s", row.id, lead.id, reason)
    detail = english(what)
    return BounceOutcome(lead.id, f"bounce of mail {row.id} to lead {lead.id}: {detail}")


def _only_answer(session: Session, lead: Lead, bounced: OutboxMail) -> bool:
    """Whether the bounced mail was the lead's only answer on record.

    Other answers: another mail to the customer that has not bounced (and did
    not fail at our relay), a logged contact (not the one the lead page's
    answer form logs for its own mail) or a sales-ladder step, or more
    "answered" protocol lines than mails to the customer (an answer that went
    straight from the salesperson's mail client, seen in Cc or the Sent folder).
    """
    if lead.first_response_at is None or lead.status != LeadStatus.CONTACTED.value:
        return False
    email = (lead.customer.email or "").lower() if lead.customer else ""
    answers = 0
    for other in session.scalars(select(OutboxMail).where(OutboxMail.lead_id == lead.id)):
        recipients = [str(r).lower() for r in other.recipients or ()]
        if other.purpose in NOT_ANSWERS or email not in recipients:
            continue
        answers += 1
        delivered = other.bounced_at is None and other.status != OutboxStatus.DEAD.value
        if other.id != bounced.id and delivered:
            return False
    mail_answers = others = 0
    for action, params in session.execute(
        select(ProtocolEntry.action, ProtocolEntry.params).where(
            ProtocolEntry.lead_id == lead.id,
            ProtocolEntry.action.in_(("answered", *_OTHER_RESPONSES)),
        )
    ):
        if action == "answered" or _answered_on_lead_page(action, params):
            mail_answers += 1
        else:
            others += 1
    return others == 0 and mail_answers <= answers


def _answered_on_lead_page(action: str, params: object) -> bool:
    """The lead page's answer form logs its mail as a contact on channel ``lead_page``."""
    if action != "contact" or not isinstance(params, list) or not params:
        return False
    first = params[0]
    return isinstance(first, dict) and first.get("channel") == LEAD_PAGE_CHANNEL


def _take_back(session: Session, dealer: DealerConfig, lead: Lead, now: datetime) -> bool:
    """The lead is unanswered again; the first ladder restarts from now.

    The scheduler looks only at leads with ``first_response_at`` unset (or in
    a resubmission ladder) and a due ``next_due_at``, and moves them on from
    ``escalation_stage``: all three are set here, with fresh reminder, stage-1
    and stage-2 times.  A running resubmission (or junk's "never") keeps its
    own ladder.
    """
    values: dict[str, object] = {
        "first_response_at": None,
        "status": LeadStatus.ASSIGNED.value if lead.assignee_id else LeadStatus.NEW.value,
        "last_activity_at": now,
    }
    if lead.escalation_stage < RESUBMISSION:
        due = initial_due_times(
            dealer.calendar, dealer.escalation_times(lead.source, lead.kind), now
        )
        values |= {
            "soon_at": due.soon_at,
            "overdue_at": due.overdue_at,
            "stage2_at": due.stage2_at,
            "next_due_at": due.next_due_at,
            "escalation_stage": 0,
        }
    session.execute(update(Lead).where(Lead.id == lead.id).values(**values))
    session.expire(lead)
    return True


def _notify(
    session: Session,
    dealer: DealerConfig,
    row: OutboxMail,
    lead: Lead,
    customer: Customer | None,
    assignee: User,
    reason: str,
    to: str,
    taken_back: bool,
    now: datetime,
) -> None:
    language = assignee.language or dealer.language
    values = {c.name: getattr(lead, c.name) for c in Lead.__table__.columns}
    people = (
        {"name": customer.name, "email": customer.email, "phone": customer.phone}
        if customer
        else {}
    )
    enqueue_template(
        session,
        dealer,
        key=f"relay_bounce:{row.id}",
        purpose="relay_bounce",
        template="relay_bounce",
        language=language,
        context={
            "lead": lead_context(values, lead.id, dealer, language),
            "customer": customer_context(people),
            "assignee": {"name": assignee.name, "email": assignee.email},
            "bounce": {
                "to": to,
                "reason": reason,
                "subject": row.subject or "",
                "sent_at": local_time(row.sent_at or row.created_at, dealer),
                "taken_back": taken_back,
                "due_at": local_time(lead.overdue_at, dealer)
                if taken_back and lead.overdue_at
                else "",
            },
        },
        to=[(assignee.name, assignee.email)],
        lead_id=lead.id,
        send_after=dealer.calendar.next_open(now),  # a staff mail: within working hours
    )


def _other_reason(row: OutboxMail, failures: tuple[Recipient, ...], *, to_customer: bool) -> str:
    """The discard reason for a bounce of a mail that is no answer (it names the mail)."""
    who = ", ".join(sorted({f.address for f in failures if f.address}))[:200] or "?"
    what = "an automatic mail to the customer" if to_customer else "a staff mail"
    return (
        f"bounce of {what} (outbox {row.id}, {row.purpose}) to {who}: "
        f"{trim(failures[0].reason() or 'no reason given', 200)}"
    )
