"""What one write transaction of the worker reads once and writes at the end.

Why: per mail, the database stages used to issue about fourteen statements
(dedupe, follow-up dedupe, three customer look-ups, rotation read and move,
staff look-up, lead, outbox check and insert, protocol, outcome).  Building and
executing them cost more than parsing the mail.  A :class:`BatchContext` turns
the look-ups into one SELECT per kind for the whole batch and the protocol and
outbox rows into one multi-row INSERT each at the end.

Per-mail isolation stays: each mail's stages run in their own savepoint, and
whatever a mail adds to the context (a new lead's dedupe key, a created or
completed customer, protocol rows, queued mails, the rotation state after its
move) is *pending* until that savepoint is released; a rolled-back mail leaves
no trace here either.  If a batch-level step fails, the worker rolls the whole
transaction back and runs the batch again mail by mail without a context, so
the failure is attributed to the mail that causes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from mailgate.duplicates import DUPLICATE_WINDOW, Twin
from mailgate.models import (
    Customer,
    InboundMail,
    InboundStatus,
    Lead,
    LeadFollowup,
    ProtocolEntry,
    User,
)
from mailgate.outbound.outbox import DeferredMail

log = logging.getLogger("mailgate.worker")
_PROTOCOL_INSERT = insert(ProtocolEntry.__table__)


@dataclass
class _Changes:
    """Everything one mail adds; merged into the context when its savepoint is released."""

    lead_keys: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    followup_keys: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    protocol: list[dict[str, Any]] = field(default_factory=list)
    mails: list[DeferredMail] = field(default_factory=list)
    rotation: tuple[int, dict[str, int]] | None = None
    prints: list[tuple[str, bool, int, int | None, datetime]] = field(default_factory=list)


# fingerprint -> (lead id, inbound id, received at) of the leads (or follow-ups) with it, by id
_Prints = dict[str, list[tuple[int, int | None, datetime]]]


@dataclass
class BatchContext:
    """Look-up results for a batch of mails, plus the rows to write at its end."""

    users: Sequence[User]
    lead_keys: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    followup_keys: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    protocol: list[dict[str, Any]] = field(default_factory=list)
    mails: list[DeferredMail] = field(default_factory=list)
    rotation: tuple[int, dict[str, int]] | None = None  # (version, pointers) as last seen
    pending: _Changes = field(default_factory=_Changes)
    lead_prints: _Prints = field(default_factory=dict)  # content fingerprints (duplicates.py)
    followup_prints: _Prints = field(default_factory=dict)

    # --- reading -------------------------------------------------------------

    @classmethod
    def prefetch(
        cls,
        session: Session,
        users: Sequence[User],
        dedupe_keys: Iterable[str],
        customer_keys: Iterable[tuple[str | None, str | None, str | None]],
        fingerprints: Iterable[str] = (),
    ) -> BatchContext:
        """One SELECT for the batch's dedupe keys (leads, follow-ups) and one for customers.

        ``customer_keys`` are (e-mail, E.164 phone, name key) per mail: every
        customer row any of the per-mail exact look-ups could find.
        """
        context = cls(users=users)
        keys = sorted(set(dedupe_keys))
        if keys:
            for key, lead_id, inbound_id in session.execute(
                select(Lead.dedupe_key, Lead.id, Lead.inbound_id).where(Lead.dedupe_key.in_(keys))
            ):
                context.lead_keys[key] = (lead_id, inbound_id)
            for key, lead_id, inbound_id in session.execute(
                select(
                    LeadFollowup.dedupe_key, LeadFollowup.lead_id, LeadFollowup.inbound_id
                ).where(LeadFollowup.dedupe_key.in_(keys))
            ):
                context.followup_keys[key] = (lead_id, inbound_id)
        emails, phones, names = set(), set(), set()
        for email, phone, name in customer_keys:
            emails.update([email] if email else [])
            phones.update([phone] if phone else [])
            names.update([name] if name else [])
        table = Customer.__table__
        conditions = [
            column.in_(sorted(values))
            for column, values in (
                (table.c.email, emails),
                (table.c.phone_e164, phones),
                (table.c.match_name, names),
            )
            if values
        ]
        if conditions:
            for row in session.execute(select(table).where(or_(*conditions))):
                context.customers[row.id] = dict(row._mapping)
        context._prefetch_prints(session, sorted(set(fingerprints)))
        return context

    def _prefetch_prints(self, session: Session, prints: list[str]) -> None:
        """The leads and follow-ups with the batch's fingerprints: one SELECT each, not two a mail.

        Why: :func:`mailgate.duplicates.find_twin` ran two queries per mail,
        about a tenth of a mail's database stages.
        """
        if not prints:
            return
        for fp, lead_id, inbound_id, received_at in session.execute(
            select(Lead.fingerprint, Lead.id, Lead.inbound_id, Lead.received_at)
            .where(Lead.fingerprint.in_(prints))
            .order_by(Lead.id)
        ):
            self.lead_prints.setdefault(fp, []).append((lead_id, inbound_id, received_at))
        for fp, lead_id, inbound_id, received_at in session.execute(
            select(
                LeadFollowup.fingerprint,
                LeadFollowup.lead_id,
                LeadFollowup.inbound_id,
                LeadFollowup.received_at,
            )
            .where(LeadFollowup.fingerprint.in_(prints))
            .order_by(LeadFollowup.id)
        ):
            self.followup_prints.setdefault(fp, []).append((lead_id, inbound_id, received_at))

    def twin(self, fingerprint: str | None, received_at: datetime) -> Twin | None:
        """What :func:`mailgate.duplicates.find_twin` would find, from the prefetched rows."""
        if not fingerprint:
            return None
        low, high = received_at - DUPLICATE_WINDOW, received_at + DUPLICATE_WINDOW
        pending: dict[bool, _Prints] = {False: {}, True: {}}
        for fp, attached, lead_id, inbound_id, at in self.pending.prints:
            pending[attached].setdefault(fp, []).append((lead_id, inbound_id, at))
        for attached, known in ((False, self.lead_prints), (True, self.followup_prints)):
            rows = known.get(fingerprint, []) + pending[attached].get(fingerprint, [])
            for lead_id, inbound_id, at in rows:
                if low <= at <= high:
                    return Twin(lead_id, inbound_id, attached=attached)
        return None

    def staff(self, email: str) -> User | None:
        """The active user with this (lower-case) address, as the DB query would find."""
        return next((u for u in self.users if u.active and u.email == email), None)

    def lead_key(self, key: str) -> tuple[int, int | None] | None:
        return self.pending.lead_keys.get(key) or self.lead_keys.get(key)

    def followup_key(self, key: str) -> tuple[int, int | None] | None:
        return self.pending.followup_keys.get(key) or self.followup_keys.get(key)

    def first_customer(self, matches: Any) -> dict[str, Any] | None:
        """The lowest-id customer for which ``matches(row)`` holds (``ORDER BY id LIMIT 1``)."""
        rows = {**self.customers, **self.pending.customers}
        found = [row for cid, row in sorted(rows.items()) if matches(row)]
        return dict(found[0]) if found else None

    def rotation_state(self) -> tuple[int, dict[str, int]] | None:
        state = self.pending.rotation or self.rotation
        return (state[0], dict(state[1])) if state else None

    # --- a mail's additions (pending until its savepoint is released) ---------

    def add_lead_key(self, key: str, lead_id: int, inbound_id: int) -> None:
        self.pending.lead_keys[key] = (lead_id, inbound_id)

    def add_followup_key(self, key: str, lead_id: int, inbound_id: int) -> None:
        self.pending.followup_keys[key] = (lead_id, inbound_id)

    def add_print(
        self,
        fingerprint: str | None,
        received_at: datetime,
        lead_id: int,
        inbound_id: int,
        *,
        attached: bool,
    ) -> None:
        """A lead (or follow-up) written in this batch, for :meth:`twin` of the mails after it."""
        if fingerprint:
            self.pending.prints.append((fingerprint, attached, lead_id, inbound_id, received_at))

    def put_customer(self, values: Mapping[str, Any]) -> None:
        self.pending.customers[int(values["id"])] = dict(values)

    def add_protocol(self, rows: Iterable[dict[str, Any]]) -> None:
        self.pending.protocol.extend(rows)

    def add_mail(self, mail: DeferredMail) -> None:
        self.pending.mails.append(mail)

    def set_rotation(self, version: int, pointers: Mapping[str, int]) -> None:
        self.pending.rotation = (version, dict(pointers))

    def forget_rotation(self) -> None:
        """Another writer moved the rotation: read it from the database next time."""
        self.pending.rotation = None
        self.rotation = None

    def commit_mail(self) -> None:
        """The mail's savepoint was released: its additions are now part of the batch."""
        changes, self.pending = self.pending, _Changes()
        self.lead_keys.update(changes.lead_keys)
        self.followup_keys.update(changes.followup_keys)
        self.customers.update(changes.customers)
        self.protocol.extend(changes.protocol)
        self.mails.extend(changes.mails)
        if changes.rotation is not None:
            self.rotation = changes.rotation
        for fp, attached, lead_id, inbound_id, at in changes.prints:
            known = self.followup_prints if attached else self.lead_prints
            known.setdefault(fp, []).append((lead_id, inbound_id, at))

    def discard_mail(self) -> None:
        """The mail's savepoint was rolled back: so is everything it added here.

        A rotation move it made is pending too, so the state seen before the
        mail (what the database holds again) stays.
        """
        self.pending = _Changes()

    # --- writing ---------------------------------------------------------------

    def flush(self, session: Session, enqueue: Any) -> None:
        """Write the batch's protocol rows and queued mails (one INSERT each)."""
        if self.protocol:
            session.execute(_PROTOCOL_INSERT, self.protocol)
            self.protocol = []
        if self.mails:
            enqueue(session, self.mails)
            self.mails = []


class Savepoint:
    """A mail's savepoint as plain SQL on the driver's cursor, for the set-based path.

    Why: SQLAlchemy's nested transaction (``begin_nested``) cost more per mail
    than the mail's own statements, and even ``exec_driver_sql`` costs more
    than SQLite's own work for a savepoint.  The stages write with Core
    statements only; the session is flushed before the savepoint and after,
    and on a rollback its objects are expired, as ``begin_nested`` would do.
    """

    def __init__(self, session: Session) -> None:
        session.flush()
        self.session = session
        self.cursor = session.connection().connection.cursor()
        self.cursor.execute("SAVEPOINT mailgate_mail")

    def commit(self) -> None:
        self.session.flush()
        self.cursor.execute("RELEASE SAVEPOINT mailgate_mail")
        self.cursor.close()

    def rollback(self) -> None:
        for obj in list(self.session.new):
            self.session.expunge(obj)
        self.cursor.execute("ROLLBACK TO SAVEPOINT mailgate_mail")
        self.cursor.execute("RELEASE SAVEPOINT mailgate_mail")
        self.cursor.close()
        self.session.expire_all()


class MailOutcome(Protocol):
    """What :func:`record_outcomes` reads of an outcome (the worker's ``Outcome``)."""

    status: str
    reason: str | None
    trace: str | None
    lead_id: int | None
    parser: str | None


_INBOUND = InboundMail.__table__
# Built once, run for all outcomes of a transaction (executemany); the WHERE
# repeats the claim (compare-and-set) so a lost claim writes nothing.
_RECORD = (
    update(_INBOUND)
    .where(
        _INBOUND.c.id == bindparam("b_id"),
        _INBOUND.c.claimed_by == bindparam("b_me"),
        _INBOUND.c.status == InboundStatus.PROCESSING.value,
    )
    .values(
        status=bindparam("b_status"),
        status_reason=bindparam("b_reason"),
        traceback=bindparam("b_trace"),
        processed_at=bindparam("b_now"),
        lead_id=bindparam("b_lead"),
        parser=bindparam("b_parser"),
        claimed_by=None,
        lease_until=None,
    )
)


def record_outcomes(
    session: Session, outcomes: Sequence[tuple[int, MailOutcome]], me: str, now: datetime
) -> list[str]:
    """Write the outcomes whose claim still holds (compare-and-set); returns their statuses.

    The rows still claimed are selected first (locked on PostgreSQL) so the
    report counts exactly what was written, as a per-row UPDATE's rowcount did.
    """
    ids = [inbound_id for inbound_id, _ in outcomes]
    held_query = select(_INBOUND.c.id).where(
        _INBOUND.c.id.in_(ids),
        _INBOUND.c.claimed_by == me,
        _INBOUND.c.status == InboundStatus.PROCESSING.value,
    )
    if session.get_bind().dialect.name == "postgresql":
        held_query = held_query.with_for_update()
    held = set(session.scalars(held_query))
    rows, statuses = [], []
    for inbound_id, outcome in outcomes:
        if inbound_id not in held:
            log.warning(
                "lost the claim on inbound %s; another worker finished it",
                inbound_id,
                extra={"inbound_id": inbound_id},
            )
            continue
        if outcome.status == InboundStatus.FAILED:
            log.error(
                "inbound %s failed: %s",
                inbound_id,
                outcome.reason,
                extra={"inbound_id": inbound_id},
            )
        rows.append(
            {
                "b_id": inbound_id,
                "b_me": me,
                "b_status": str(outcome.status),
                # exception texts can quote mail content; PostgreSQL text refuses NUL
                "b_reason": (outcome.reason or "").replace("\x00", "")[:4000] or None,
                "b_trace": outcome.trace.replace("\x00", "") if outcome.trace else None,
                "b_now": now,
                "b_lead": outcome.lead_id,
                "b_parser": outcome.parser,
            }
        )
        statuses.append(str(outcome.status))
    if rows:
        session.execute(_RECORD, rows)
    return statuses
