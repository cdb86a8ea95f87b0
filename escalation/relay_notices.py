"""Telling a person about every mail to a reply address that is not simply relayed.

Issue 17, item 4: nothing may vanish.  A mail the relay does not pass on —
a possible answer (no token), a message from an address not on file, one
that is too large, one kept aside (quarantined) — leaves a note on the lead
where there is a lead to trust, and a German (or English) mail to the
person who can act: the assignee, else the unassigned-inquiry / admin
address.  Where the mail may be a salesperson's own answer from an address
we do not know, the notice carries a signed link (:mod:`mailgate.signed_links`,
action ``confirm_reply``) that relays and counts it after the assignee
confirmed it (:func:`confirm_reply`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import InboundMail, Lead, User, UserRole, utcnow
from mailgate.outbound.compose import Attachment
from mailgate.outbound.outbox import enqueue_template
from mailgate.parsers.message import MailView
from mailgate.signed_links import link_secret, link_url, new_claims, sign

from .quotes import reply_text
from .relay_parts import max_relay_bytes, relay_parts

BODY_LIMIT = 20_000  # characters of the message shown in a notice


@dataclass(frozen=True)
class Notice:
    """What a notice says: ``kind`` and ``why`` select the wording in ``relay_notice``."""

    kind: str  # unknown_sender | possible_answer | too_large | kept_aside
    why: str = ""  # cc | tag | previous | not_allowed | auth | sender | loop | token
    check: str = ""  # the failed check for why == "auth"
    size_mb: str = ""
    limit_mb: str = ""


def recipient_for(session: Session, dealer: DealerConfig, lead: Lead | None) -> list[User | str]:
    """Who hears about it: the lead's active assignee, else the admin side.

    The admin side is the unassigned-inquiry address (which falls back to
    the admin address), else every active admin user: someone always does.
    """
    if lead is not None and lead.assignee_id is not None:
        assignee = session.get(User, lead.assignee_id)
        if assignee is not None and assignee.active:
            return [assignee]
    if dealer.unassigned_notice_to:
        return [dealer.unassigned_notice_to]
    admins = session.scalars(
        select(User).where(User.role == UserRole.ADMIN, User.active).order_by(User.id)
    )
    return list(admins)


def confirm_link(
    session: Session, dealer: DealerConfig, user: User, lead_id: int, inbound_id: int, relay: bool
) -> str:
    """A signed one-use link for ``user`` that confirms mail ``inbound_id`` as his answer.

    The mail's id rides in the token id (``r812-…`` relay and count, ``c812-…``
    count only), which the signature covers, so nobody can point it elsewhere.
    """
    if not dealer.base_url:
        return ""
    token_id = f"{'r' if relay else 'c'}{inbound_id}-{secrets.token_urlsafe(9)}"
    claims = new_claims(user.id, lead_id, "confirm_reply", utcnow(), token_id)
    return link_url(dealer.base_url, sign(link_secret(session), claims))


def send_notice(
    session: Session,
    dealer: DealerConfig,
    view: MailView | None,
    notice: Notice,
    *,
    lead: Lead | None,
    inbound_id: int,
    sender: str,
    confirm: bool | None = None,
    with_message: bool = True,
) -> int:
    """Mail ``notice`` to whoever :func:`recipient_for` names; returns how many were queued.

    ``confirm``: None no link; True a link that relays and counts; False one
    that only counts (the customer already has the mail).  ``with_message``:
    the message's text and its files travel with the notice, so the person
    told has the whole mail (an unknown sender's message *is* delivered this
    way).  Idempotent per (inbound mail, recipient).
    """
    queued = 0
    body = ""
    files: tuple[Attachment, ...] = ()
    if view is not None and with_message:
        body = (reply_text(view) or view.text or "").strip()[:BODY_LIMIT]
        parts = relay_parts(view, cut_quote=False)
        if parts.size(body) <= max_relay_bytes(dealer):
            files = parts.attachments
        elif parts.attachments:  # the mail itself is kept; the notice stays deliverable
            body += f"\n\n[{len(parts.attachments)} Anhang/Anhänge: zu groß zum Weitergeben]"
    subject = (view.subject if view is not None else "") or ""
    for who in recipient_for(session, dealer, lead):
        user = who if isinstance(who, User) else None
        address = user.email if user is not None else str(who)
        url = ""
        if confirm is not None and user is not None and lead is not None:
            url = confirm_link(session, dealer, user, lead.id, inbound_id, relay=confirm)
        context: dict[str, Any] = {
            "notice": {
                "kind": notice.kind,
                "why": notice.why,
                "check": notice.check,
                "lead_id": lead.id if lead is not None else "",
                "inbound_id": inbound_id,
                "sender": sender,
                "subject": subject,
                "body": body,
                "link": url,
                "confirm_relays": bool(confirm),
                "size_mb": notice.size_mb,
                "limit_mb": notice.limit_mb,
            }
        }
        key = f"relay_notice:{inbound_id}:{address.lower()}"[:255]
        language = (user.language if user is not None else None) or dealer.language
        done = enqueue_template(
            session,
            dealer,
            key=key,
            purpose="relay_notice",
            template="relay_notice",
            language=language,
            context=context,
            to=[(user.name if user is not None else "", address)],
            lead_id=lead.id if lead is not None else None,
            attachments=list(files),
        )
        queued += int(done)
    return queued


def notify_too_large_sender(
    session: Session,
    dealer: DealerConfig,
    *,
    to: tuple[str, str],
    recipient: str,
    subject: str,
    size: int,
    limit: int,
    inbound_id: int,
    lead_id: int,
    language: str,
) -> None:
    """The sender of a too-large message learns it did not go through (never silence)."""
    enqueue_template(
        session,
        dealer,
        key=f"relay_too_large:{inbound_id}",
        purpose="relay_too_large",
        template="relay_too_large",
        language=language,
        context={
            "subject": subject or "–",
            "recipient": recipient,
            "size_mb": f"{size / (1024 * 1024):.1f}",
            "limit_mb": str(limit // (1024 * 1024)),
        },
        to=[to],
        lead_id=lead_id,
    )


def stored_view(session: Session, inbound_id: int) -> tuple[InboundMail, MailView] | None:
    """A stored inbound mail and its parsed view, for a confirmation days later."""
    from mailgate.parsers.message import load

    row = session.get(InboundMail, inbound_id)
    if row is None or row.raw_record is None:
        return None
    return row, load(bytes(row.raw_record.raw))
