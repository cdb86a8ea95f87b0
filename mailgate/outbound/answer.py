"""An answer written on the lead page: composed, queued for the customer, counted.

Why a module of its own (not the relay in :mod:`mailgate.escalation.tracking`):
the relay turns a salesperson's *mail* into the customer's mail; here the
salesperson typed the text into mailgate, so nothing has to be cut out of it.
The result must look exactly like a relayed answer to the customer, though:

- **From** the dealer's lead address under the salesperson's name
  ("Anna Schmidt (Autohaus Beispiel)"), **Reply-To** the lead's tracking
  address, so the customer's answer comes back into the conversation;
- **threaded**: In-Reply-To the customer's latest message, References the
  conversation's Message-IDs (:func:`thread_ids`), so it sits under his
  inquiry in his mail client;
- composed by :func:`~mailgate.outbound.outbox.compose_template` with the
  ``relay`` template and the purpose :data:`ANSWER_PURPOSE`, one of
  :data:`~mailgate.outbound.hygiene.CUSTOMER_PURPOSES`: the last link filter
  removes every mailgate link from it, pasted or not;
- queued under the caller's idempotency key, so a double submit sends once;
- counted as the answer with the same domain function as a logged contact
  (:func:`mailgate.escalation.actions.log_contact`): first response, status
  *contacted*, the ladder stops, the protocol and the webhook say so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import Customer, InboundMail, Lead, LeadFollowup, OutboxMail, User
from mailgate.outbound.compose import Attachment
from mailgate.outbound.hygiene import CUSTOMER_PURPOSES
from mailgate.outbound.outbox import compose_template, enqueue_composed

ANSWER_PURPOSE = "answer_from_lead_page"
CHANNEL = "lead_page"  # the contact channel the protocol shows for it
MAX_REFERENCES = 20  # the newest ids only: some servers refuse huge References headers
_MESSAGE_ID = re.compile(r"^<[^<>\s\x00-\x1f\x7f]{1,250}>$")
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

assert ANSWER_PURPOSE in CUSTOMER_PURPOSES, "answers must pass the customer link filter"


class AnswerError(ValueError):
    """The answer cannot be sent (no customer address, no text, a bad key)."""


@dataclass(frozen=True)
class Draft:
    """What the salesperson wrote: subject, text, files; ``key`` is the form's one-time key."""

    subject: str
    body: str
    attachments: Sequence[Attachment] = ()
    key: str = ""


def answer_key(lead_id: int, form_key: str) -> str:
    """The outbox idempotency key; ValueError for a form key that is not ours."""
    if not _KEY.match(form_key or ""):
        raise AnswerError("the form's one-time key is missing or malformed")
    return f"{ANSWER_PURPOSE}:{lead_id}:{form_key}"


def already_sent(session: Session, lead_id: int, form_key: str) -> bool:
    return (
        session.scalar(
            select(OutboxMail.id).where(OutboxMail.idempotency_key == answer_key(lead_id, form_key))
        )
        is not None
    )


def thread_ids(session: Session, lead: Lead) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) for an answer on ``lead``.

    The customer's messages: the inquiry, his follow-ups and his replies to
    the tracking address (inbound mails of the lead not sent by staff), plus
    the answers already sent to him; oldest first.  In-Reply-To is his newest
    message.  Ids that are not a plain ``<…>`` token are left out: they were
    written by whoever sent the mail.
    """
    followups = select(LeadFollowup.inbound_id).where(LeadFollowup.lead_id == lead.id)
    staff = select(func.lower(User.email))
    inbound = session.execute(
        select(InboundMail.received_at, InboundMail.message_id, InboundMail.envelope_from)
        .where(
            or_(
                InboundMail.id == lead.inbound_id,
                InboundMail.id.in_(followups),
                InboundMail.lead_id == lead.id,
            ),
            InboundMail.message_id.is_not(None),
            or_(
                InboundMail.envelope_from.is_(None),
                func.lower(InboundMail.envelope_from).not_in(staff),
            ),
        )
        .order_by(InboundMail.received_at)
    ).all()
    outbound = session.execute(
        select(OutboxMail.created_at, OutboxMail.message_id)
        .where(OutboxMail.lead_id == lead.id, OutboxMail.purpose.in_(CUSTOMER_PURPOSES))
        .order_by(OutboxMail.created_at)
    ).all()
    theirs = [row.message_id for row in inbound if _MESSAGE_ID.match(row.message_id or "")]
    timeline = sorted(
        [(row.received_at, row.message_id) for row in inbound]
        + [(row.created_at, row.message_id) for row in outbound],
        key=lambda pair: pair[0],
    )
    references = list(dict.fromkeys(m for _, m in timeline if _MESSAGE_ID.match(m or "")))
    return (theirs[-1] if theirs else None), references[-MAX_REFERENCES:]


def tracking_reply_to(dealer: DealerConfig, lead: Lead) -> str:
    """The lead's tracking address (``leads+42-<token>@…``): the customer's answer comes back."""
    from mailgate.escalation.replies import tracking_address

    return tracking_address(dealer.sender_address, lead.id, lead.reply_token)


def send_answer(
    session: Session,
    dealer: DealerConfig,
    lead_id: int,
    staff: User,
    draft: Draft,
    now: datetime,
) -> bool:
    """Queue the answer and count it; False when this form's answer was queued already.

    Runs in the caller's transaction and does not commit.  Raises
    :class:`AnswerError` (nothing to send, no address) and the lead actions'
    ``ActionError`` (closed, handed over); the caller rolls back on either.
    """
    from mailgate.escalation.actions import log_contact

    lead = session.get(Lead, lead_id)
    if lead is None:
        raise AnswerError(f"no lead {lead_id}")
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    if customer is None or not customer.email:
        raise AnswerError("the customer has no e-mail address")
    if not draft.body.strip():
        raise AnswerError("the answer has no text")
    key = answer_key(lead_id, draft.key)
    in_reply_to, references = thread_ids(session, lead)
    mail = compose_template(
        dealer,
        key=key,
        template="relay",
        language=dealer.language,
        context={"subject": draft.subject.strip() or (lead.subject or ""), "body": draft.body},
        to=[(customer.name or "", customer.email)],
        reply_to=[(staff.name or staff.email, tracking_reply_to(dealer, lead))],
        attachments=draft.attachments,
        in_reply_to=in_reply_to,
        references=references,
        from_name=f"{staff.name or staff.email} ({dealer.from_name})",
        automatic=False,  # a person wrote it (RFC 3834): auto-replies may answer it
        purpose=ANSWER_PURPOSE,
    )
    if not enqueue_composed(session, mail, key=key, purpose=ANSWER_PURPOSE, lead_id=lead_id):
        return False
    log_contact(session, lead_id, staff.email, now, channel=CHANNEL)
    return True
