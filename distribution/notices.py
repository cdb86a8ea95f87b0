"""The mails distribution sends, enqueued in the caller's transaction.

Assignment notification, pool notice, follow-up notice, reassignment /
forwarding notice and the trade-in CC with its PDF.  Every mail has an
idempotency key, so running a stage twice never mails twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.escalation.replies import notification_reply_to
from mailgate.labels import kind_label, source_label
from mailgate.models import User, utcnow
from mailgate.outbound.compose import Attachment
from mailgate.outbound.outbox import DeferredMail, enqueue_template
from mailgate.signed_links import action_links, link_secret

from .customers import customer_context
from .tradein_pdf import trade_in_pdf

VEHICLE_REFERENCE = ("make", "model", "vin", "listing_id", "stock_number")


def local_time(value: datetime, dealer: DealerConfig) -> str:
    return value.astimezone(dealer.timezone).strftime("%d.%m.%Y %H:%M")


def lead_url(dealer: DealerConfig, lead_id: int) -> str:
    base_url = dealer.base_url.rstrip("/")
    return f"{base_url}/leads/{lead_id}" if base_url else ""


def lead_context(
    lead: Mapping[str, Any], lead_id: int, dealer: DealerConfig, language: str | None = None
) -> dict[str, Any]:
    """What a staff mail shows of a lead; codes also as words ("Probefahrt", "AutoScout24")."""
    language = language or dealer.language
    return {
        "id": lead_id,
        "source": lead["source"],
        "kind": lead["kind"],
        "source_label": source_label(lead["source"], language),
        "kind_label": kind_label(lead["kind"], language),
        "subject": lead.get("subject") or "",
        "message": lead.get("message") or "",
        "received_at": local_time(lead["received_at"], dealer),
        "vehicle": dict(lead.get("vehicle") or {}),
        "url": lead_url(dealer, lead_id),
    }


def _reply_to(
    dealer: DealerConfig,
    lead: Mapping[str, Any],
    lead_id: int,
    customer: Mapping[str, Any],
    user_id: int | None = None,
) -> list[tuple[str, str]]:
    """The lead's tracking address (per ``reply_mode``), so the answer is seen and counted.

    Without a reply token (a lead from before tracking), the customer directly.
    """
    email = customer.get("email")
    token = lead.get("reply_token")
    if token:
        return notification_reply_to(
            dealer.reply_mode,
            dealer.sender_address,
            lead_id,
            token,
            customer.get("name"),
            email,
            user_id=user_id,  # the token bound to the lead and this user (escalation/authenticity)
        )
    return [(customer.get("name") or "", email)] if email else []


def reaches_customer(lead: Mapping[str, Any], customer: Mapping[str, Any]) -> bool:
    """Whether "just reply to this mail" is true: a tracking address and a customer to relay to."""
    return bool(lead.get("reply_token") and customer.get("email"))


def mail_actions(
    session: Session, dealer: DealerConfig, user: User, lead_id: int, actions: tuple[str, ...]
) -> dict[str, str]:
    """Signed action links for the mail (none without a base URL), valid from its send time."""
    if not dealer.base_url:
        return {}
    valid_from = dealer.calendar.next_open(utcnow())
    return action_links(
        link_secret(session),
        dealer.base_url,
        user_id=user.id,
        lead_id=lead_id,
        actions=actions,
        valid_from=valid_from,
    )


def enqueue_assignment(
    session: Session,
    dealer: DealerConfig,
    *,
    key: str,
    lead: Mapping[str, Any],
    lead_id: int,
    customer: Mapping[str, Any],
    user: User,
    template: str = "notification",
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """Tell a user a lead is his (new, taken, reassigned, forwarded, follow-up).

    Staff mails leave only while the dealership is open: one decided at night
    waits in the outbox until the next opening time.
    """
    language = user.language or dealer.language
    reply_to = _reply_to(dealer, lead, lead_id, customer, user.id)
    return enqueue_template(
        session,
        dealer,
        key=key,
        purpose=template,
        template=template,
        language=language,
        context={
            "lead": lead_context(lead, lead_id, dealer, language),
            "customer": customer_context(customer),
            "assignee": {"name": user.name, "email": user.email},
            "actions": mail_actions(session, dealer, user, lead_id, ("contacted", "resubmit")),
            "reply_reaches_customer": reaches_customer(lead, customer),
            **(extra or {}),
        },
        to=[(user.name, user.email)],
        reply_to=reply_to,
        lead_id=lead_id,
        send_after=dealer.calendar.send_time(utcnow()),
    )


def assignment_mail(
    dealer: DealerConfig,
    *,
    lead: Mapping[str, Any],
    lead_id: int,
    customer: Mapping[str, Any],
    user: User,
    send_after: datetime,
    actions: Mapping[str, str] | None = None,
) -> DeferredMail:
    """A new lead's notification to its assignee, rendered later by the sender.

    Why deferred: rendering three templates and building the MIME message in
    the worker's write transaction cost about as much as the rest of a lead;
    the sender renders right before sending, with the same Message-ID and the
    same result (see :func:`mailgate.outbound.outbox.enqueue_deferred`).
    """
    language = user.language or dealer.language
    return DeferredMail(
        key=f"notification:{lead_id}:{user.id}",
        purpose="notification",
        template="notification",
        language=language,
        context={
            "lead": lead_context(lead, lead_id, dealer, language),
            "customer": customer_context(customer),
            "assignee": {"name": user.name, "email": user.email},
            "actions": dict(actions or {}),
            "reply_reaches_customer": reaches_customer(lead, customer),
        },
        to=[(user.name, user.email)],
        reply_to=_reply_to(dealer, lead, lead_id, customer, user.id),
        lead_id=lead_id,
        send_after=send_after,
    )


def enqueue_pool_notice(
    session: Session,
    dealer: DealerConfig,
    *,
    lead: Mapping[str, Any],
    lead_id: int,
    customer: Mapping[str, Any],
    recipients: Sequence[User],
) -> int:
    """One mail per user who may take the lead from the pool (if configured)."""
    sent = 0
    token, email = lead.get("reply_token"), customer.get("email")
    # the tracking address alone (as on reminders): answers come to us and are relayed
    # under the conversation's subject, never the pool notice's straight to the customer
    reply_to = (
        notification_reply_to(
            "relay", dealer.sender_address, lead_id, token, customer.get("name"), email
        )
        if token and email
        else []
    )
    for user in recipients:
        language = user.language or dealer.language
        sent += enqueue_template(
            session,
            dealer,
            key=f"pool_notice:{lead_id}:{user.id}",
            purpose="pool_notice",
            template="pool_notice",
            language=language,
            context={
                "lead": lead_context(lead, lead_id, dealer, language),
                "customer": customer_context(customer),
                "assignee": {"name": user.name, "email": user.email},
                "actions": mail_actions(session, dealer, user, lead_id, ("take",)),
                "reply_reaches_customer": reaches_customer(lead, customer),
            },
            to=[(user.name, user.email)],
            # answering the pool notice reaches the customer too (and counts as the answer)
            reply_to=reply_to,
            lead_id=lead_id,
            # seed 002: info mails to staff leave only within the opening hours
            send_after=dealer.calendar.send_time(utcnow()),
        )
    return sent


def needs_trade_in_cc(lead: Mapping[str, Any]) -> bool:
    """Trade-in requests without a vehicle reference (the customer only sells)."""
    vehicle = lead.get("vehicle") or {}
    return lead.get("kind") == "trade_in" and not any(vehicle.get(k) for k in VEHICLE_REFERENCE)


def enqueue_trade_in_cc(
    session: Session,
    dealer: DealerConfig,
    *,
    to: str,
    lead: Mapping[str, Any],
    lead_id: int,
    customer: Mapping[str, Any],
) -> bool:
    """Forward the core data as a PDF; the full lead is only in mailgate, so it links there."""
    context = {
        "lead": lead_context(lead, lead_id, dealer),
        "customer": customer_context(customer),
        "trade_in": {k: v for k, v in (lead.get("trade_in") or {}).items() if v not in (None, "")},
    }
    pdf = trade_in_pdf(context, dealer.language, dealer.name)
    return enqueue_template(
        session,
        dealer,
        key=f"trade_in_cc:{lead_id}",
        purpose="trade_in_cc",
        template="trade_in_forward",
        language=dealer.language,
        context=context,
        to=[("", to)],
        reply_to=_reply_to(dealer, lead, lead_id, customer),
        attachments=[Attachment(f"inzahlungnahme-{lead_id}.pdf", pdf, "application/pdf")],
        lead_id=lead_id,
    )
