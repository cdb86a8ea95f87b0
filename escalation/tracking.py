"""Reply tracking, the I/O part: a mail to a lead's tracking address is handled here.

Only a mail carrying the lead's secret token (the tracking address) can
count or be relayed; the token says who may have written it
(:mod:`.authenticity`: bound to the lead and its assignee), the From says
who claims to have.  The threat model is ``THREATS.md`` next to this module.

- **staff** (an active user who may act on the lead, with the lead's or his
  own token): the answer counts as the lead's response (``first_response_at``,
  status *contacted*, the ladder stops) and, in ``reply_mode = "relay"`` (in
  ``cc`` mode when the customer is not among its own recipients), is relayed
  to the customer from the dealer's lead address with the salesperson's name,
  every attachment and the HTML alternative included (:mod:`.relay_parts`);
  only the salesperson's own words travel (:mod:`.quotes`), never our
  notification's links, tokens or escalation texts, under the conversation's
  subject (:mod:`.subjects`), threaded on the customer's own messages;
- **the lead's customer**: recorded on the lead and relayed to the assignee
  with all its parts, Reply-To the tracking address again;
- **anyone else with a valid token**: the message goes to the assignee marked
  "von einer nicht hinterlegten Adresse" and joins the conversation, not
  counted; a link in that mail confirms it as the salesperson's own answer
  (written from a private address), which then relays and counts;
- **without the token** (subject tag, lead mailbox in Cc, a previous
  assignee's token, a user who may not act on the lead): a *possible answer*
  note on the lead and a notice to the assignee; no status change, no relay.

A mail kept aside (quarantined: failed sender check of the trusted MX, no
single sender, a relay loop, a wrong token) is never silent either: see
:func:`notify_kept_aside`.  A per-lead relay cap stops ping-pong between two
auto-responders that slipped past the auto-reply checks; a message above the
dealer's ``max_relay_size_mb`` is not relayed, its sender is told why.
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
from mailgate.outbound.outbox import enqueue_composed
from mailgate.parsers.message import MailView
from mailgate.protocol import Phrase, english, phrase
from mailgate.protocol_log import log
from mailgate.webhooks.emit import emit

from . import phrases as _phrases  # noqa: F401 - registers the relay's protocol wordings
from .authenticity import TokenKind, assignee_token, check_token, may_act
from .feedback import report_status
from .quotes import reply_text
from .relay_notices import Notice, notify_too_large_sender, send_notice
from .relay_parts import (
    RelayParts,
    compose_relay,
    customer_thread,
    max_relay_bytes,
    own_attachment_hashes,
    quoted_html,
    relay_parts,
)
from .replies import ReplyTarget, quote, tracking_address, with_tag, without_tag
from .subjects import customer_subject

RELAY_CAP_PER_HOUR = 20
RELAY_PURPOSES = ("relay_to_customer", "relay_to_assignee")


class ReplyRejected(Exception):
    """The mail looks like a reply but may not be counted or relayed; keep it for a human.

    ``why`` (token, auth, sender, automatic, loop) selects the German reason
    of the notice; ``lead_id`` is set only when the mail carried that lead's
    valid token, so only then is the lead's assignee told (a wrong token
    proves nothing about which lead, and an attacker must not be able to
    mail any salesperson by writing ``leads+7-x@…``).
    """

    def __init__(
        self,
        detail: str,
        *,
        why: str = "token",
        check: str = "",
        lead_id: int | None = None,
        sender: str = "",
    ) -> None:
        super().__init__(detail)
        self.why = why
        self.check = check
        self.lead_id = lead_id
        self.sender = sender


@dataclass(frozen=True)
class ReplyOutcome:
    lead_id: int
    action: str  # answered, customer_replied, possible_answer, unknown_sender, too_large
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


def _active_user(session: Session, address: str) -> User | None:
    if not address:
        return None
    return session.scalar(select(User).where(func.lower(User.email) == address, User.active))


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
    """Record and relay one reply; raises :class:`ReplyRejected` for a mail to keep aside.

    A mail found by its subject tag alone raises it too when the sender is
    neither staff nor the lead's customer (anyone may write ``[Lead 12]``:
    the pipeline then treats it as an ordinary inquiry).
    """
    lead = session.get(Lead, target.lead_id)
    sender = single_sender(view)
    if lead is None:
        raise ReplyRejected(f"reply to unknown lead {target.lead_id}", sender=sender)
    automatic = automatic_signal(view)
    if target.via != "address":
        if automatic:  # an out-of-office quoting a subject tag is nobody's answer
            raise ReplyRejected(f"automatic mail with lead {lead.id}'s tag ({automatic})")
        return _tag_only(session, dealer, view, lead, sender, inbound_id, now)
    token = check_token(session, lead, target.token)
    if token.kind is TokenKind.NONE:
        raise ReplyRejected(
            f"tracking address of lead {lead.id} with a wrong token", why="token", sender=sender
        )
    if automatic:
        raise ReplyRejected(
            f"automatic mail to lead {lead.id} ({automatic}): not a reply",
            why="automatic",
            lead_id=lead.id,
            sender=sender,
        )
    if not sender:
        raise ReplyRejected(
            f"mail to lead {lead.id}'s tracking address without a single sender address",
            why="sender",
            lead_id=lead.id,
        )
    if auth_failure:
        raise ReplyRejected(
            f"reply from {sender} failed {auth_failure}: not counted, not relayed",
            why="auth",
            check=auth_failure,
            lead_id=lead.id,
            sender=sender,
        )
    staff = _active_user(session, sender)
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    if staff is not None:
        if token.kind is TokenKind.PREVIOUS:
            previous = session.get(User, token.bound_user_id) if token.bound_user_id else None
            what = phrase(
                "possible_answer_previous",
                sender=sender,
                user=previous.email if previous is not None else "?",
            )
            return _possible_answer(
                session, dealer, view, lead, sender, inbound_id, now, what, "previous"
            )
        if not may_act(session, dealer, staff, lead):
            what = phrase("possible_answer_not_allowed", sender=sender)
            return _possible_answer(
                session, dealer, view, lead, sender, inbound_id, now, what, "not_allowed"
            )
        return staff_reply(session, dealer, view, lead, staff, customer, inbound_id, now)
    if customer is not None and customer.email and sender == customer.email.lower():
        return _customer_reply(session, dealer, view, lead, customer, inbound_id, now)
    return _unknown_sender(session, dealer, view, lead, sender, inbound_id, now)


def _tag_only(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    lead: Lead,
    sender: str,
    inbound_id: int,
    now: datetime,
) -> ReplyOutcome:
    """``[Lead n]`` in the subject, no token: a possible answer if staff or the customer wrote.

    The From is not proof of anything here, so nothing counts and nothing is
    relayed; the assignee gets the message with a confirmation link when it
    claims to be a colleague's (only the real assignee receives that link).
    """
    staff = _active_user(session, sender)
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    is_customer = bool(customer and customer.email and sender == customer.email.lower())
    if staff is None and not is_customer:
        raise ReplyRejected(
            f"subject tag of lead {lead.id} from {sender or 'nobody'}, "
            "who is neither staff nor the lead's customer",
            sender=sender,
        )
    what = phrase("possible_answer_tag", sender=sender)
    return _possible_answer(
        session, dealer, view, lead, sender, inbound_id, now, what, "tag", staff is not None
    )


def _possible_answer(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    lead: Lead,
    sender: str,
    inbound_id: int,
    now: datetime,
    what: Phrase,
    why: str,
    confirmable: bool = True,
    relays: bool = True,
) -> ReplyOutcome:
    """A note on the lead and a notice to the assignee; no status change, no relay."""
    log(session, lead.id, actor=sender or "unknown", action="possible_answer", what=what, at=now)
    send_notice(
        session,
        dealer,
        view,
        Notice("possible_answer", why=why),
        lead=lead,
        inbound_id=inbound_id,
        sender=sender,
        confirm=relays if confirmable else None,
    )
    return ReplyOutcome(lead.id, "possible_answer", english([what]))


def handle_direct_answer(
    session: Session,
    view: MailView,
    recipients: list[str],
    dealer: DealerConfig,
    *,
    now: datetime,
    auth_failure: str | None = None,
    find_staff: Callable[[str], User | None] | None = None,
    inbound_id: int | None = None,
) -> ReplyOutcome | None:
    """A colleague's From, the customer of one of his open leads in To, the lead mailbox in Cc.

    Nothing in such a mail proves who wrote it (no token: anyone can put a
    salesperson's address in From and ours in Cc), so it is a *possible
    answer*: a note on the lead and a notice to its assignee with a link that
    counts it once he confirms it was his; no status change, nothing relayed
    (the customer already has it).  None if the mail is not that shape.
    ``find_staff`` (active user by lower-case address) spares the worker a
    query per mail: it already holds the users.
    """
    sender = single_sender(view)
    if not sender or automatic_signal(view):
        return None
    if find_staff is not None:
        staff = find_staff(sender)
    else:
        staff = _active_user(session, sender)
    if staff is None:
        return None
    others = {r.lower() for r in recipients} - set(dealer.addresses) - {sender}
    if not others:
        return None
    lead = session.scalars(
        select(Lead)
        .join(Customer, Customer.id == Lead.customer_id)
        .where(
            Customer.email.in_(others),  # stored lower-case; the index is used
            Lead.assignee_id == staff.id,
            Lead.status.in_(OPEN_STATUSES),
        )
        .order_by(Lead.received_at.desc())
        .limit(1)
    ).first()
    if lead is None:
        return None
    customer = session.get(Customer, lead.customer_id)
    to = (customer.email or "") if customer is not None else ""
    what = phrase("possible_answer_cc", sender=sender, to=to)
    session.execute(update(Lead).where(Lead.id == lead.id).values(last_activity_at=now))
    return _possible_answer(
        session,
        dealer,
        view,
        lead,
        sender,
        inbound_id or 0,
        now,
        what,
        "cc",
        confirmable=inbound_id is not None and not auth_failure,
        relays=False,
    )


def staff_reply(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    lead: Lead,
    staff: User,
    customer: Customer | None,
    inbound_id: int,
    now: datetime,
    *,
    relay: bool = True,
) -> ReplyOutcome:
    """Count ``view`` as ``staff``'s answer and relay it with every part to the customer.

    Also the confirmation of an answer from an address not on file
    (:func:`.relay_notices.confirm_reply`) ends here.  A message above the
    size limit counts as nothing: the customer did not get it, the sender is told.
    """
    parts: RelayParts | None = None
    needs = relay and customer is not None and bool(customer.email)
    if needs and customer is not None and customer.email:
        needs = _needs_relay(dealer, view, customer.email)
    text = ""
    if needs:
        text = reply_text(view)
        parts = relay_parts(view, cut_quote=True, withhold=own_attachment_hashes(session, lead.id))
        limit = max_relay_bytes(dealer)
        if parts.size(text) > limit:
            return _too_large(
                session, dealer, view, lead, (staff.name, staff.email), parts.size(text), limit,
                inbound_id, now, staff.language or dealer.language,
                recipient=(customer.name if customer is not None else "") or "den Kunden",
            )  # fmt: skip
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
    if needs and parts is not None and customer is not None and customer.email:
        _check_cap(session, lead.id, now)
        relay_answer(
            session, dealer, lead, staff, customer, text=text, parts=parts,
            key=f"relay_to_customer:{inbound_id}", now=now,
        )  # fmt: skip
    return ReplyOutcome(lead.id, "answered", english([what]))


def relay_answer(
    session: Session,
    dealer: DealerConfig,
    lead: Lead,
    staff: User,
    customer: Customer,
    *,
    text: str,
    parts: RelayParts,
    key: str,
    now: datetime,
) -> None:
    """Queue ``staff``'s answer to the customer: the lead address, his name, threaded.

    Public for the lead page's answer form: it builds ``text`` and ``parts``
    (:class:`.relay_parts.RelayParts` with the uploaded files) and calls this,
    so an answer from the web leaves exactly like one from a mail client.
    """
    assert customer.email
    body = text
    html = parts.html
    if lead.message:
        body += f"\n\n{quote(lead.message)}"
        if html is not None:
            html += quoted_html(lead.message)
    conversation = {"source": lead.source, "subject": lead.subject, "vehicle": lead.vehicle}
    in_reply_to, references = customer_thread(session, lead, customer.email)
    mail = compose_relay(
        dealer,
        key=key,
        purpose="relay_to_customer",  # so the last filter strips every mailgate link
        language=dealer.language,
        # the conversation's subject, never the staff mail's the salesperson answered
        subject=customer_subject(conversation, dealer.name, dealer.language),
        text=body,
        html=html,
        to=[(customer.name or "", customer.email)],
        reply_to=[(staff.name, _tracking(dealer, lead))],
        from_name=f"{staff.name or staff.email} ({dealer.from_name})",
        attachments=parts.attachments,
        in_reply_to=in_reply_to,
        references=references,
    )
    enqueue_composed(session, mail, key=key, purpose="relay_to_customer", lead_id=lead.id)
    relayed = phrase("relayed_to", to=customer.email)
    log(session, lead.id, actor="system", action="relayed", what=relayed, at=now)


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
    if assignee is None or not assignee.active:
        send_notice(
            session, dealer, view, Notice("no_assignee"),
            lead=lead, inbound_id=inbound_id, sender=customer.email or "",
        )  # fmt: skip
        return ReplyOutcome(lead.id, "customer_replied", english([what]))
    parts = relay_parts(view, cut_quote=False)
    text = view.text.strip()
    limit = max_relay_bytes(dealer)
    if parts.size(text) > limit:
        _too_large(
            session, dealer, view, lead, (customer.name or "", customer.email or ""),
            parts.size(text), limit, inbound_id, now, dealer.language,
            recipient=assignee.name or dealer.name,
        )  # fmt: skip
        return ReplyOutcome(lead.id, "customer_replied", english([what]))
    _check_cap(session, lead.id, now)
    mail = compose_relay(
        dealer,
        key=f"relay_to_assignee:{inbound_id}",
        purpose="relay_to_assignee",
        language=assignee.language or dealer.language,
        subject=with_tag(view.subject, lead.id),
        text=text,
        html=parts.html,
        to=[(assignee.name, assignee.email)],
        # the assignee's own token: his answer to the relayed mail is bound to him
        reply_to=[(customer.name or "", _tracking(dealer, lead, assignee.id))],
        from_name=f"{customer.name or customer.email} ({dealer.from_name})",
        attachments=parts.attachments,
    )
    enqueue_composed(
        session,
        mail,
        key=f"relay_to_assignee:{inbound_id}",
        purpose="relay_to_assignee",
        lead_id=lead.id,
    )
    return ReplyOutcome(lead.id, "customer_replied", english([what]))


def _unknown_sender(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    lead: Lead,
    sender: str,
    inbound_id: int,
    now: datetime,
) -> ReplyOutcome:
    """A valid token from an address not on file: the message goes to the assignee, marked.

    It may be the customer writing from his work account or the salesperson
    from her phone's private address; the assignee sees it (text and files)
    with a link that confirms it as the dealership's own answer.
    """
    session.execute(update(Lead).where(Lead.id == lead.id).values(last_activity_at=now))
    told = send_notice(
        session,
        dealer,
        view,
        Notice("unknown_sender"),
        lead=lead,
        inbound_id=inbound_id,
        sender=sender,
        confirm=True,
    )
    assignee = session.get(User, lead.assignee_id) if lead.assignee_id else None
    who = assignee.email if assignee is not None and assignee.active else dealer.name
    what = phrase("unknown_sender", sender=sender, user=who)
    log(session, lead.id, actor=sender, action="unknown_sender", what=what, at=now)
    detail = english([what]) + ("" if told else " (nobody to tell)")
    return ReplyOutcome(lead.id, "unknown_sender", detail)


def _too_large(
    session: Session,
    dealer: DealerConfig,
    view: MailView,
    lead: Lead,
    sender: tuple[str, str],
    size: int,
    limit: int,
    inbound_id: int,
    now: datetime,
    language: str,
    *,
    recipient: str,
) -> ReplyOutcome:
    """Not relayed: the sender is told (in his language), the lead gets a note."""
    size_mb, limit_mb = f"{size / (1024 * 1024):.1f}", str(limit // (1024 * 1024))
    notify_too_large_sender(
        session, dealer, to=sender, recipient=recipient, subject=without_tag(view.subject),
        size=size, limit=limit, inbound_id=inbound_id, lead_id=lead.id, language=language,
    )  # fmt: skip
    what = phrase("relay_too_large", sender=sender[1], size_mb=size_mb, limit_mb=limit_mb)
    log(session, lead.id, actor="system", action="relay_refused", what=what, at=now)
    return ReplyOutcome(lead.id, "too_large", english([what]))


def notify_kept_aside(
    session: Session,
    dealer: DealerConfig,
    view: MailView | None,
    rejected: ReplyRejected,
    *,
    inbound_id: int,
    now: datetime,
) -> None:
    """Tell someone about a quarantined mail to a tracking address, the reason in words.

    With the lead's valid token the assignee hears (and the lead gets a note);
    without it the admin side.  Automatic mail (out-of-office) tells nobody:
    answering auto-replies with mail is how loops start (RELIABILITY G.6 R3).
    """
    if rejected.why == "automatic":
        return
    lead = session.get(Lead, rejected.lead_id) if rejected.lead_id is not None else None
    recipients = send_notice(
        session,
        dealer,
        view,
        Notice("kept_aside", why=rejected.why, check=rejected.check),
        lead=lead,
        inbound_id=inbound_id,
        sender=rejected.sender,
        with_message=False,
    )
    if lead is not None:
        why = {
            "auth": phrase("why_auth", check=rejected.check),
            "sender": phrase("why_sender"),
            "loop": phrase("why_loop"),
        }.get(rejected.why, phrase("why_token"))
        assignee = session.get(User, lead.assignee_id) if lead.assignee_id else None
        told = assignee.email if assignee is not None and recipients else "admin"
        what = phrase("reply_kept_aside", sender=rejected.sender or "?", why=[why], user=told)
        log(session, lead.id, actor="system", action="reply_kept_aside", what=what, at=now)


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
            f"lead {lead_id}: {recent} relays in the last hour; stopped to break a mail loop",
            why="loop",
            lead_id=lead_id,
        )


def _tracking(dealer: DealerConfig, lead: Lead, user_id: int | None = None) -> str:
    """The lead's reply address; with ``user_id`` the one bound to that user."""
    token = lead.reply_token if user_id is None else assignee_token(lead.reply_token, user_id)
    return tracking_address(dealer.sender_address, lead.id, token)
