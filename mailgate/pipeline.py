"""The processing stages of one stored mail, as plain functions over a :class:`Job`.

Flow (ARCHITECTURE.md, step 2)::

    classify -> parse            (pure: no DB, run outside the write transaction)
    dedupe -> match_customer -> distribute -> schedule -> notify   (one transaction)

Stages never send anything: ``notify`` only enqueues outbox rows.  Control flow
uses exceptions that carry a reason: :class:`Discard` (bounces, auto-replies,
duplicates), :class:`Quarantine` (kept for a human: too big to parse, no lead in
it).  Anything else is a bug; the worker marks the mail ``failed`` with the
traceback and ``mailgate reprocess`` runs it again after a fix.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.utils import getaddresses
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mailgate.batch import BatchContext
from mailgate.bounces import BounceReport, read_bounce
from mailgate.dealer_settings import DealerConfig
from mailgate.distribution import notices
from mailgate.distribution.customers import CustomerMatch, lookup_keys
from mailgate.distribution.customers import match_customer as find_customer
from mailgate.distribution.intake import attach_followup, notify_pool, separate_source_lead
from mailgate.distribution.service import assign, lead_facts
from mailgate.duplicates import find_twin
from mailgate.escalation.acknowledge import enqueue_acknowledgement
from mailgate.escalation.handover import find_by_reference, hand_over
from mailgate.escalation.ladder import initial_due_times
from mailgate.escalation.replies import ReplyTarget, find_target
from mailgate.escalation.tracking import (
    ReplyRejected,
    handle_direct_answer,
    handle_reply,
    notify_kept_aside,
)
from mailgate.fingerprint import fingerprint
from mailgate.models import (
    InboundMail,
    Lead,
    LeadFollowup,
    LeadStatus,
    ProtocolEntry,
    User,
    utcnow,
)
from mailgate.outbound.compose import Attachment
from mailgate.outbound.outbox import enqueue_deferred, enqueue_template
from mailgate.parsers import ParsedLead, ShapeError, check_shape, parse_view
from mailgate.parsers.message import MailView, load
from mailgate.parsers.nonlead import non_lead_reason
from mailgate.parsers.signals import authentication_failed
from mailgate.protocol import Phrase, phrase
from mailgate.protocol import row as protocol_row
from mailgate.relay_bounces import StaffMailBounced, record_bounce
from mailgate.webhooks.emit import emit_new_lead


class Discard(Exception):
    """The mail is not an inquiry (bounce, auto-reply, duplicate, spam)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Quarantine(Exception):
    """The mail is kept for a human; optionally the unassigned-inquiry address is told."""

    def __init__(self, reason: str, *, notify_unassigned: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notify_unassigned = notify_unassigned


@dataclass
class Job:
    """Everything the stages know about one mail; each stage fills in its part."""

    inbound_id: int
    raw: bytes
    envelope_from: str | None
    received_at: datetime
    dealer: DealerConfig
    now: datetime
    session: Session | None = None
    view: MailView | None = None
    parsed: ParsedLead | None = None
    message_id: str | None = None
    dedupe_key: str | None = None
    lead: dict[str, Any] | None = None  # column values of the lead row, inserted by notify
    lead_id: int | None = None
    customer: dict[str, Any] | None = None  # the customer row's values, "id" included
    assignee: User | None = None
    protocol: list[tuple[str, Phrase]] = field(default_factory=list)  # (action, what)
    envelope_to: tuple[str, ...] = ()
    reply_target: ReplyTarget | None = None  # set by classify: the mail answers this lead
    mailbox: str | None = None
    match: CustomerMatch | None = None  # set by match_customer; open lead -> attach
    pool: bool = False  # distribute put the lead in the pool
    batch: BatchContext | None = None  # the worker's batch look-ups and buffered writes
    customer_keys: tuple[str | None, str | None, str | None] | None = None  # see parse()
    acknowledge: bool = True  # a lead typed in by hand tells the customer nothing
    bounce: BounceReport | None = None  # set by classify: a bounce naming an original mail
    discard_reason: str | None = None  # why classify would have discarded it (bounce)
    fingerprint: str | None = None  # set by parse: the decoded content (mailgate.fingerprint)
    reply_rejected: ReplyRejected | None = None  # a kept-aside reply: whom to tell, and why

    @property
    def db(self) -> Session:
        if self.session is None:
            raise RuntimeError("this stage needs a database session")
        return self.session

    def reset_db_state(self) -> None:
        """Forget what the database stages decided, to run them again (batch fallback).

        The dedupe key stays: it is computed from the mail alone, before them.
        """
        self.session = self.batch = None
        self.lead = self.lead_id = self.customer = None
        self.assignee = self.match = None
        self.protocol = []
        self.pool = False


Stage = Callable[[Job], None]


# --- pure stages -------------------------------------------------------------


def classify(job: Job) -> None:
    """Quarantine what is too big to parse; discard bounces, auto-replies, loops, spam."""
    try:
        check_shape(job.raw)
    except ShapeError as exc:
        raise Quarantine(f"not parsed: {exc}") from exc
    job.view = load(job.raw)
    reason = non_lead_reason(job.view, job.envelope_from)
    if reason:
        # a bounce naming an original mail may concern a customer's answer (relay_bounce)
        job.bounce = read_bounce(job.view) if reason.startswith("bounce") else None
        if job.bounce is None:
            raise Discard(reason)
        job.discard_reason = reason
        return
    job.reply_target = find_target(
        [*job.envelope_to, *_header_recipients(job.view)],
        job.view.subject,
        frozenset(job.dealer.addresses),
    )


def _header_recipients(view: MailView) -> list[str]:
    """To/Cc addresses: the envelope alone may name only the lead address (Bcc, forwards)."""
    found = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        value = view.header(name)
        if value:
            found += [address for _, address in getaddresses([value])]
    return found


def parse(job: Job) -> None:
    """Let the registry pick the parser (judged by ``track_reply``, which knows the staff)."""
    assert job.view is not None
    if job.bounce is not None:
        return  # never parsed: the original inside a bounce is no new inquiry
    job.parsed = parse_view(job.view, job.dealer.parse_context)
    job.fingerprint = fingerprint(job.view)
    # pure, and costly (phone numbers): computed here, where parsing runs in parallel
    job.customer_keys = lookup_keys(job.parsed.customer, job.dealer.country)


def _lead_or_reject(parsed: ParsedLead) -> None:
    """A parser's non-lead is discarded; a mail with no customer contact is quarantined."""
    if parsed.non_lead_reason and parsed.parser != "none":
        raise Discard(parsed.non_lead_reason)
    if not parsed.is_lead:
        why = "; ".join(parsed.warnings[-1:]) or "no lead data found"
        raise Quarantine(f"no lead could be made: {why}", notify_unassigned=True)


# --- database stages ---------------------------------------------------------


class Replied(Exception):
    """The mail answered a lead and was handled (recorded, relayed): no new lead."""

    def __init__(self, lead_id: int, detail: str) -> None:
        super().__init__(detail)
        self.lead_id = lead_id
        self.detail = detail


def relay_bounce(job: Job) -> None:
    """A bounce of a mail to a customer marks it undelivered on the lead (mailgate.relay_bounces).

    Any other bounce is discarded as before, a staff mail's with a reason naming it.
    """
    if job.bounce is None:
        return
    try:
        outcome = record_bounce(
            job.db, job.dealer, job.bounce, inbound_id=job.inbound_id, now=job.now
        )
    except StaffMailBounced as exc:
        raise Discard(str(exc)) from exc
    if outcome is None:
        raise Discard(job.discard_reason or "bounce")
    raise Replied(outcome.lead_id, outcome.detail)


def source_update(job: Job) -> None:
    """A source's notice about one of its leads (its call centre took it over): no new lead.

    Matched by the source's own lead number; a notice that fails the sender's
    authentication, or names a lead we do not have, is kept aside for a human.
    """
    parsed = job.parsed
    assert parsed is not None and job.view is not None
    if not (parsed.handed_over and parsed.source_ref):
        return
    if authentication_failed(job.view, job.dealer.parse_context.trusted_authserv_ids):
        raise Quarantine(f"call-centre notice for lead {parsed.source_ref} failed authentication")
    lead_id = find_by_reference(job.db, parsed.source, parsed.source_ref)
    if lead_id is None:
        raise Quarantine(f"call-centre notice for unknown lead {parsed.source_ref}")
    hand_over(job.db, lead_id, job.now, source=parsed.source, reference=parsed.source_ref)
    raise Replied(lead_id, f"{parsed.source} call centre took lead {parsed.source_ref} over")


def track_reply(job: Job) -> None:
    """A mail to a lead's tracking address (or with its subject tag) is a reply, not a lead.

    A rejected reply to a tracking address is quarantined (spoofed, wrong
    token, relay loop); one found only by its subject tag goes on as an
    ordinary inquiry, since anyone may write ``[Lead 12]`` into a subject.
    Only here, where staff are known, is a mail without customer data judged:
    a salesperson's direct answer to a customer has none and is no lead either.
    """
    assert job.view is not None and job.parsed is not None
    failure = authentication_failed(job.view, job.dealer.parse_context.trusted_authserv_ids)
    if job.reply_target is None:
        direct = handle_direct_answer(
            job.db,
            job.view,
            _header_recipients(job.view),
            job.dealer,
            now=job.now,
            auth_failure=failure,
            find_staff=job.batch.staff if job.batch is not None else None,
            inbound_id=job.inbound_id,
        )
        if direct is not None:
            raise Replied(direct.lead_id, direct.detail)
        _lead_or_reject(job.parsed)
        return
    try:
        outcome = handle_reply(
            job.db,
            job.dealer,
            job.view,
            job.reply_target,
            inbound_id=job.inbound_id,
            now=job.now,
            auth_failure=failure,
        )
    except ReplyRejected as exc:
        if job.reply_target.via == "address":
            job.reply_rejected = exc  # notify_unassigned tells the assignee or the admin side
            raise Quarantine(str(exc), notify_unassigned=True) from exc
        job.protocol.append(("note", phrase("tag_ignored", error=str(exc))))
        _lead_or_reject(job.parsed)
        return
    raise Replied(outcome.lead_id, outcome.detail)


def dedupe(job: Job) -> None:
    """A mail whose dedupe key already has a lead is discarded as a duplicate.

    The key is the Message-ID plus a hash of the body: transports add headers
    on top (Received, Delivered-To), so the same mail over SMTP and IMAP has
    different raw bytes but the same Message-ID and body.  The unique index on
    the key settles a race between two workers when ``notify`` inserts the lead.
    """
    assert job.parsed is not None
    job.dedupe_key = job.dedupe_key or dedupe_key(job.raw, job.message_id, job.view)
    if job.batch is not None:
        existing = job.batch.lead_key(job.dedupe_key)
    else:
        row = job.db.execute(
            select(Lead.id, Lead.inbound_id).where(Lead.dedupe_key == job.dedupe_key)
        ).first()
        existing = (row.id, row.inbound_id) if row is not None else None
    if existing is not None:
        lead_id, inbound_id = existing
        if inbound_id == job.inbound_id:
            raise AlreadyProcessed(lead_id)
        raise Discard(f"duplicate of lead {lead_id}")
    if job.batch is not None:
        twin = job.batch.twin(job.fingerprint, job.received_at)
    else:
        twin = find_twin(job.db, job.fingerprint, job.received_at)
    if twin is not None:
        if twin.inbound_id == job.inbound_id:
            raise AlreadyProcessed(twin.lead_id)
        raise Discard(twin.reason())
    parsed = job.parsed
    job.lead = {
        "inbound_id": job.inbound_id,
        "dedupe_key": job.dedupe_key,
        "source": parsed.source,
        "kind": parsed.kind,
        "parser": parsed.parser,
        "campaign": parsed.campaign,
        "source_ref": parsed.source_ref,
        "confidence": parsed.confidence,
        "subject": parsed.subject,
        "message": parsed.message,
        "vehicle": asdict(parsed.vehicle),
        "trade_in": asdict(parsed.trade_in) if parsed.trade_in else None,
        "warnings": list(parsed.warnings),
        "status": LeadStatus.NEW.value,
        "received_at": job.received_at,
        "created_at": job.now,
        "last_activity_at": job.now,
        "reply_token": secrets.token_urlsafe(16),  # 128 bits
        "fingerprint": job.fingerprint,
    }
    parsed_as = phrase("parsed", parser=parsed.parser, source=parsed.source, kind=parsed.kind)
    job.protocol.append(("received", parsed_as))


class AlreadyProcessed(Exception):
    """Reprocessing a mail that already has its lead: nothing to do."""

    def __init__(self, lead_id: int) -> None:
        super().__init__(f"already processed into lead {lead_id}")
        self.lead_id = lead_id


def match_customer(job: Job) -> None:
    """Find the known customer (exact keys) or create him; see distribution/customers.py.

    A mail of a customer with an open lead is attached to that lead (``notify``
    does it); an attached mail delivered twice is discarded here, as ``dedupe``
    does for leads.
    """
    assert job.parsed is not None and job.lead is not None and job.dedupe_key is not None
    if job.batch is not None:
        attached = job.batch.followup_key(job.dedupe_key)
    else:
        row = job.db.execute(
            select(LeadFollowup.lead_id, LeadFollowup.inbound_id).where(
                LeadFollowup.dedupe_key == job.dedupe_key
            )
        ).first()
        attached = (row.lead_id, row.inbound_id) if row is not None else None
    if attached is not None:
        lead_id, inbound_id = attached
        if inbound_id == job.inbound_id:
            raise AlreadyProcessed(lead_id)
        raise Discard(f"duplicate of a mail attached to lead {lead_id}")
    dist = job.dealer.document["distribution"]
    job.match = find_customer(
        job.db,
        job.parsed.customer,
        source=job.parsed.source,
        now=job.now,
        region=job.dealer.country,
        relay_domains=dist["relay_domains"],
        pool_user=dist["pool_user"],
        batch=job.batch,
        keys=job.customer_keys,
    )
    job.customer = job.match.customer
    job.lead["customer_id"] = job.customer["id"]
    job.protocol.extend(job.match.protocol())
    # a mail with its own OEM lead number is its own lead, linked to the open one (seed 003)
    job.protocol += separate_source_lead(
        job.db, job.match, job.lead, job.now, pool_user=dist["pool_user"]
    )


def distribute(job: Job) -> None:
    """Assign by the configured policy; the protocol says who and why (every hop)."""
    assert job.lead is not None
    if job.match is not None and job.match.open_lead_id is not None:
        return  # attached to the open lead in notify: no new lead, no assignment
    facts, note = lead_facts(job.dealer, job.lead, job.envelope_to, job.mailbox)
    job.lead["location"] = facts.location
    job.lead["category"] = facts.category
    if note:
        job.protocol.append(("routing", note))
    owner = job.match.owner if job.match is not None else None
    user, decision = assign(job.db, job.dealer, facts, now=job.now, owner=owner, batch=job.batch)
    job.assignee = user
    if user is None:
        job.protocol.append(("unassigned", phrase("not_assigned", reason=decision.steps)))
        return
    job.lead["assignee_id"] = user.id
    if decision.pool:
        job.pool = True
        job.protocol.append(("pool", phrase("to_pool", user=user.email, reason=decision.steps)))
        return
    job.lead["status"] = LeadStatus.ASSIGNED.value
    job.protocol.append(("assigned", phrase("assigned_to", user=user.email, reason=decision.steps)))


def schedule(job: Job) -> None:
    assert job.lead is not None
    times = initial_due_times(
        job.dealer.calendar,
        job.dealer.escalation_times(job.lead["source"], job.lead["kind"]),
        job.received_at,
    )
    job.lead.update(
        soon_at=times.soon_at,
        overdue_at=times.overdue_at,
        stage2_at=times.stage2_at,
        next_due_at=times.next_due_at,
        escalation_stage=0,
    )


def notify(job: Job) -> None:
    """Insert the lead with its protocol, and enqueue the assignee's notification.

    The lead is written here, once, with everything the earlier stages decided
    (plain INSERTs: the ORM's unit of work cost more than the rest of the stage).
    """
    assert job.lead is not None
    if job.match is not None and job.match.open_lead_id is not None:
        job.lead_id = job.match.open_lead_id
        job.protocol += attach_followup(
            job.db,
            job.dealer,
            lead_id=job.lead_id,
            inbound_id=job.inbound_id,
            dedupe_key=job.dedupe_key or "",
            received_at=job.received_at,
            mail=job.lead,
            customer=job.customer or {},
            now=job.now,
        )
        if job.batch is not None:
            job.batch.add_followup_key(job.dedupe_key or "", job.lead_id, job.inbound_id)
            job.batch.add_print(
                job.fingerprint, job.received_at, job.lead_id, job.inbound_id, attached=True
            )
        _write_protocol(job, job.lead_id)
        return
    lead = job.lead
    job.lead_id = job.db.execute(_LEAD_INSERT, lead).scalar_one()
    if job.batch is not None:
        job.batch.add_lead_key(lead["dedupe_key"], job.lead_id, job.inbound_id)
        job.batch.add_print(
            job.fingerprint, job.received_at, job.lead_id, job.inbound_id, attached=False
        )
    if job.pool and job.assignee is not None:
        job.protocol += notify_pool(
            job.db,
            job.dealer,
            lead=lead,
            lead_id=job.lead_id,
            customer=job.customer or {},
            pool_user_id=job.assignee.id,
            now=job.now,
        )
    elif job.assignee is not None:
        _enqueue_notification(job, job.lead_id, job.assignee)
        queued = phrase("notification_queued", user=job.assignee.email)
        job.protocol.append(("notified", queued))
    emit_new_lead(
        job.db, job.lead_id, None if job.pool or not job.assignee else job.assignee.id, job.now
    )
    trade_in_cc = job.dealer.document["distribution"]["trade_in_cc"]
    if trade_in_cc and notices.needs_trade_in_cc(lead):
        notices.enqueue_trade_in_cc(
            job.db,
            job.dealer,
            to=trade_in_cc,
            lead=lead,
            lead_id=job.lead_id,
            customer=job.customer or {},
        )
        job.protocol.append(("trade_in_cc", phrase("trade_in_cc_queued", to=trade_in_cc)))
    if job.acknowledge and enqueue_acknowledgement(
        job.db,
        job.dealer,
        lead_id=job.lead_id,
        reply_token=lead["reply_token"],
        lead=lead,
        customer=job.customer or {},
    ):
        job.protocol.append(("acknowledged", phrase("acknowledgement_queued")))
    _write_protocol(job, job.lead_id)


# Built once: a statement built per lead cost more to build than to run.
_LEAD_INSERT = insert(Lead.__table__).returning(Lead.__table__.c.id)
_PROTOCOL_INSERT = insert(ProtocolEntry.__table__)


def _write_protocol(job: Job, lead_id: int) -> None:
    tz = job.dealer.timezone
    rows = [
        protocol_row(lead_id, job.now, "system", action, [what], tz)
        for action, what in job.protocol
    ]
    if job.batch is not None:
        job.batch.add_protocol(rows)  # one INSERT for the batch, at its end
    elif rows:
        job.db.execute(_PROTOCOL_INSERT, rows)


NOTIFICATION_ACTIONS = ("contacted", "resubmit")  # signed links in a new lead's mail


def _enqueue_notification(job: Job, lead_id: int, assignee: User) -> None:
    """Queue the notification as template + context; the sender renders it."""
    mail = notices.assignment_mail(
        job.dealer,
        lead=job.lead or {},
        lead_id=lead_id,
        customer=job.customer or {},
        user=assignee,
        send_after=job.dealer.calendar.next_open(utcnow()),
        actions=notices.mail_actions(job.db, job.dealer, assignee, lead_id, NOTIFICATION_ACTIONS),
    )
    if job.batch is not None:
        job.batch.add_mail(mail)  # one INSERT for the batch, at its end
    else:
        enqueue_deferred(job.db, job.dealer, [mail])


def local_time(value: datetime, dealer: DealerConfig) -> str:
    return value.astimezone(dealer.timezone).strftime("%d.%m.%Y %H:%M")


def notify_unassigned(job: Job, reason: str) -> None:
    """Tell the unassigned-inquiry address about a mail no lead could be made from.

    A reply kept aside is told about by the relay instead (the assignee when
    the mail carried the lead's token, the reason in words).
    """
    if job.reply_rejected is not None:
        notify_kept_aside(
            job.db, job.dealer, job.view, job.reply_rejected, inbound_id=job.inbound_id, now=job.now
        )
        return
    to = job.dealer.unassigned_notice_to
    if not to:
        return
    sender = ", ".join(addr for _, addr in (job.view.from_addresses if job.view else []))
    enqueue_template(
        job.db,
        job.dealer,
        key=f"unassigned:{job.inbound_id}",
        purpose="unassigned",
        template="unassigned",
        language=job.dealer.language,
        context={
            "inbound": {
                "id": job.inbound_id,
                "subject": (job.view.subject if job.view else None) or "",
                "sender": sender or (job.envelope_from or ""),
                "received_at": local_time(job.received_at, job.dealer),
                "reason": reason,
            }
        },
        to=[("", to)],
        attachments=[Attachment("original.eml", job.raw, "application/octet-stream")],
        # seed 002: information mails to staff leave only within the opening hours
        send_after=job.dealer.calendar.send_time(utcnow()),
    )


PREPARE_STAGES: tuple[Stage, ...] = (classify, parse)
DB_STAGES: tuple[Stage, ...] = (
    relay_bounce,
    source_update,
    track_reply,
    dedupe,
    match_customer,
    distribute,
    schedule,
    notify,
)


# --- helpers -----------------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def dedupe_key(raw: bytes, message_id: str | None, view: MailView | None) -> str:
    """Message-ID (as stored at intake) + normalised body; From/Date/Subject without an ID."""
    match = _HEADER_END.search(raw)
    body = raw[match.end() :] if match else b""
    body = b"\n".join(line.rstrip() for line in body.replace(b"\r\n", b"\n").split(b"\n")).strip()
    digest = hashlib.sha256()
    if message_id:
        digest.update(b"mid:" + message_id.encode("utf-8", "replace"))
    else:
        for name in ("From", "Date", "Subject"):
            value = (view.header(name) if view else None) or ""
            digest.update(f"{name}:{value}\n".encode("utf-8", "replace"))
    digest.update(b"\nbody:" + body)
    return digest.hexdigest()


def load_job(inbound: InboundMail, dealer: DealerConfig, now: datetime) -> Job:
    return Job(
        inbound_id=inbound.id,
        raw=inbound.raw,
        message_id=inbound.message_id,
        envelope_from=inbound.envelope_from,
        envelope_to=tuple(inbound.envelope_to or ()),
        mailbox=inbound.mailbox,
        received_at=inbound.received_at,
        dealer=dealer,
        now=now,
    )
