"""The database schema, in SQLAlchemy 2.0 typed style.

One module for all tables so the Alembic migrations have one metadata to
compare against.  Enums are stored as plain strings (portable between SQLite and
PostgreSQL, readable in SQL); every idempotency key has a unique constraint so a
race can never create a second lead, mail or outbox row.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend.

    SQLite has no time zone type and hands back naive values; we store UTC and
    re-attach UTC on the way out so no naive datetime ever leaks into domain code.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    DISCARDED = "discarded"
    QUARANTINED = "quarantined"
    FAILED = "failed"


class LeadStatus(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    CONTACTED = "contacted"
    TEST_DRIVE = "test_drive"
    OFFER = "offer"
    CONTRACT = "contract"
    CLOSED = "closed"
    DELETED = "deleted"  # soft delete (bulk action): the lead and its history stay


# The sales ladder after the first contact, in order (seed 000: "new, contacts, test drive,
# offer, sales contract"); a lead climbs it by hand and is closed won or lost from any rung.
SALES_STAGES = (
    LeadStatus.CONTACTED.value,
    LeadStatus.TEST_DRIVE.value,
    LeadStatus.OFFER.value,
    LeadStatus.CONTRACT.value,
)
OPEN_STATUSES = (LeadStatus.NEW.value, LeadStatus.ASSIGNED.value, *SALES_STAGES)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    DEAD = "dead"


class UserRole(enum.StrEnum):
    SALESPERSON = "salesperson"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class InboundMail(Base):
    """One received message, byte for byte, plus what became of it."""

    __tablename__ = "inbound_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))  # smtp | pipe | imap | demo
    mailbox: Mapped[str | None] = mapped_column(String(255))  # IMAP account/folder
    envelope_from: Mapped[str | None] = mapped_column(String(998))
    envelope_to: Mapped[list[Any]] = mapped_column(default=list)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.RECEIVED)
    status_reason: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # claims of this mail on its own, after an interrupted attempt: counts towards "poison"
    solo_attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column()
    processed_at: Mapped[datetime | None] = mapped_column()
    parser: Mapped[str | None] = mapped_column(String(64))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", use_alter=True))

    raw_record: Mapped[InboundRaw] = relationship(lazy="select")

    __table_args__ = (Index("ix_inbound_mail_status", "status", "id"),)

    @property
    def raw(self) -> bytes:
        """The mail exactly as received."""
        return self.raw_record.raw


class InboundRaw(Base):
    """The raw bytes of an inbound mail, in a table of their own.

    Kept apart from :class:`InboundMail` because that row is updated several
    times (claim, outcome) and SQLite rewrites a whole row, blob included, on
    every UPDATE; the bytes here are written once and never changed.
    """

    __tablename__ = "inbound_raw"

    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_mail.id"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class User(Base):
    """A dealership employee who can receive, supervise or administer leads."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(16), default=UserRole.SALESPERSON)
    language: Mapped[str] = mapped_column(String(8), default="de")
    supervisor_email: Mapped[str | None] = mapped_column(String(320))
    receives_leads: Mapped[bool] = mapped_column(Boolean, default=True)
    can_be_assigned: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    groups: Mapped[list[Any]] = mapped_column(default=list)
    locations: Mapped[list[Any]] = mapped_column(default=list)
    absences: Mapped[list[Any]] = mapped_column(default=list)
    permissions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # category -> level
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # the lead list as the user left it: columns and page size (webui/leads/columns.py)
    list_prefs: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Customer(Base):
    """A prospect; several leads of the same person point here."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    salutation: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(64))
    phone_e164: Mapped[str | None] = mapped_column(String(32), index=True)
    street: Mapped[str | None] = mapped_column(String(255))
    postcode: Mapped[str | None] = mapped_column(String(32), index=True)
    city: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(64))
    birth_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # exact matching keys (umlauts folded, tokens sorted): see distribution/matching.py
    match_name: Mapped[str | None] = mapped_column(String(255), index=True)
    match_street: Mapped[str | None] = mapped_column(String(255))
    # merged into another customer (the survivor): no leads, in no list; see 0017_customer_file
    merged_into_id: Mapped[int | None] = mapped_column(index=True)
    merged_at: Mapped[datetime | None] = mapped_column()
    # a mailed lead found him only *similar* to known customers: a person decides
    # (update / keep / new) instead of the pipeline; [[customer id, name score], ...]
    check_since: Mapped[datetime | None] = mapped_column(index=True)
    check_candidates: Mapped[list[Any] | None] = mapped_column(JSON)


class Lead(Base):
    """An inquiry made from one inbound mail, owned by one user or the pool."""

    __tablename__ = "lead"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"), unique=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    source: Mapped[str] = mapped_column(String(64), default="unknown")
    kind: Mapped[str] = mapped_column(String(32), default="inquiry")
    parser: Mapped[str] = mapped_column(String(64), default="generic")
    confidence: Mapped[float] = mapped_column(default=0.0)
    subject: Mapped[str | None] = mapped_column(String(998))
    message: Mapped[str | None] = mapped_column(Text)
    vehicle: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trade_in: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.NEW)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column()
    next_due_at: Mapped[datetime | None] = mapped_column(index=True)
    soon_at: Mapped[datetime | None] = mapped_column()  # reminder time: due state "soon"
    overdue_at: Mapped[datetime | None] = mapped_column()  # stage-1 time: "overdue"
    stage2_at: Mapped[datetime | None] = mapped_column()  # supervisor escalation due
    # 0 nothing sent, 1 reminder sent, 2 stage-1 escalation sent, 3 supervisor told.
    escalation_stage: Mapped[int] = mapped_column(default=0, server_default="0")
    qualification: Mapped[str | None] = mapped_column(String(8))  # hot, warm, cold, junk
    reply_token: Mapped[str] = mapped_column(String(64), unique=True)
    location: Mapped[str | None] = mapped_column(String(64))  # routing location (mailbox/vehicle)
    category: Mapped[str] = mapped_column(String(32), default="sales")  # permission category
    closed_at: Mapped[datetime | None] = mapped_column()
    close_reason: Mapped[str | None] = mapped_column(String(64))  # completion reason code
    # when the lead first reached a rung of the sales ladder (contacted: first_response_at)
    test_drive_at: Mapped[datetime | None] = mapped_column()
    offer_at: Mapped[datetime | None] = mapped_column()
    contract_at: Mapped[datetime | None] = mapped_column()
    # the campaign the source names, or a manual lead's origin detail ("Autoshow 2026")
    campaign: Mapped[str | None] = mapped_column(String(128), index=True)
    # what a manual lead records beyond the mail fields: usage (purchase / use / financing)
    # of the next vehicle and the customer's interests (brochure, test drive, ...)
    extras: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the source's own number for this lead (OEM lead/process number): status feedback
    # names it, and a later mail of the source about the lead finds it by it
    source_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    # the source took the lead away to its own call centre: read-only here from then on
    handed_over_at: Mapped[datetime | None] = mapped_column()
    # hash of the decoded content (mailgate.fingerprint): the same inquiry delivered twice,
    # re-encoded or under another Message-ID, is a duplicate (NULL on rows before 0019)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    # ...and an admin handed it back to the dealer (the list filters by call-centre state)
    handed_back_at: Mapped[datetime | None] = mapped_column()
    # the qualification's processing target (seed 004: hot 2, warm 5, cold 10 working
    # days); its own due date, never the first-response deadline; mailed once when missed
    target_at: Mapped[datetime | None] = mapped_column(index=True)
    target_mailed_at: Mapped[datetime | None] = mapped_column()
    # a logged call that did not reach the customer: when to try again (My day shows it)
    follow_up_at: Mapped[datetime | None] = mapped_column()
    # a second OEM lead of a customer with an open lead: that open lead (a plain
    # reference, see migration 0016_seed_rules)
    linked_lead_id: Mapped[int | None] = mapped_column(index=True)

    customer: Mapped[Customer | None] = relationship()
    assignee: Mapped[User | None] = relationship()
    protocol: Mapped[list[ProtocolEntry]] = relationship(
        back_populates="lead", order_by="ProtocolEntry.id"
    )

    # for the web UI's lead list (sort orders and filters); see migration 0007_lead_search
    __table_args__ = (
        Index("ix_lead_received_at_id", "received_at", "id"),
        Index("ix_lead_last_activity_at", "last_activity_at", "id"),
        Index(
            "ix_lead_list",  # covers the list's filters and scope: counts skip the wide rows
            "status",
            "assignee_id",
            "kind",
            "escalation_stage",
            "soon_at",
            "overdue_at",
            "source",
            "received_at",
            "category",
            "location",
            "confidence",
        ),
        Index("ix_lead_source", "source"),
    )


class LeadSearch(Base):
    """One lower-cased line of searchable text per lead, kept by database triggers.

    Customer name, e-mail, phone (as typed and as E.164 digits), VIN, listing
    and stock number: the list's free-text search scans this narrow table
    rather than the vehicle JSON of every lead.  Written only by the triggers
    of migration 0006, so every writer of leads and customers keeps it current.
    """

    __tablename__ = "lead_search"

    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="", server_default="")


class ProtocolEntry(Base):
    """One line of a lead's history: who did what, when, and why."""

    __tablename__ = "protocol_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))  # user e-mail or "system"
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")  # English, for logs and old rows
    # the line's phrases (mailgate.protocol), worded by each reader in its language
    params: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)

    lead: Mapped[Lead] = relationship(back_populates="protocol")


class LeadFollowup(Base):
    """A later mail of the customer, attached to his open lead instead of a second lead.

    The unique dedupe key plays the role of ``lead.dedupe_key`` for attached
    mails: the same mail delivered twice (SMTP and IMAP) is attached once.
    """

    __tablename__ = "lead_followup"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"), unique=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    subject: Mapped[str | None] = mapped_column(String(998))
    message: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)  # see Lead


class DistributionState(Base):
    """Rotation pointers, one row for all rotations, changed by compare-and-set.

    One row (not one per group) so a transaction that assigns leads of several
    groups locks a single row: two workers can never deadlock on two pointers.
    ``pointers`` maps a rotation key ("rolling", "pool", "group:<name>") to the
    id of the user whose turn was taken last.
    """

    __tablename__ = "distribution_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    pointers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMail(Base):
    """A composed outgoing mail; the sender loop delivers it exactly once per key."""

    __tablename__ = "outbox_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    purpose: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"), index=True)
    mail_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(998), default="")
    message_id: Mapped[str] = mapped_column(String(998), index=True)  # a bounce names it
    # None until composed: bulk producers (the escalation scheduler) store the
    # template and its context, and the sender renders right before sending.
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    template: Mapped[str | None] = mapped_column(String(64))
    render: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    send_after: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    # a delivery status notification said the mail did not arrive (mailgate.relay_bounces)
    bounced_at: Mapped[datetime | None] = mapped_column()
    bounce_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_mail_due", "status", "next_attempt_at"),)


class DealerSetting(Base):
    """One section of the dealer settings (``[dealer]``, ``[hours]``, …) as JSON."""

    __tablename__ = "dealer_setting"

    section: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ImapState(Base):
    """Cursor and status of one IMAP mailbox folder (see :mod:`mailgate.imap`).

    The cursor (last UID handled) is only meaningful together with the folder's
    UIDVALIDITY: when the server changes that, every UID means something else,
    so the poller starts over and relies on :class:`ImapImported` to skip what
    it already stored.
    """

    __tablename__ = "imap_state"

    mailbox: Mapped[str] = mapped_column(String(64), primary_key=True)
    folder: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column()
    imported_day: Mapped[str | None] = mapped_column(String(10))  # dealer's local date
    imported_today: Mapped[int] = mapped_column(Integer, default=0)
    imported_total: Mapped[int] = mapped_column(BigInteger, default=0)
    oversize_reported: Mapped[list[Any]] = mapped_column(default=list)  # "uidvalidity:uid"


class ImapImported(Base):
    """One mail imported from a mailbox: the idempotency key of IMAP intake.

    Inserted in the same transaction as the mail itself; the unique constraint
    makes a second import of the same bytes (after a crash before the flag, a
    UIDVALIDITY reset, or two fetches racing) a no-op instead of a duplicate.
    """

    __tablename__ = "imap_imported"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(998))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("mailbox", "sha256", name="uq_imap_imported_key"),)


class AppSecret(Base):
    """A secret the application generated for itself (the web session key).

    Kept in the database, not in a file, so every instance on one PostgreSQL
    database signs sessions and mail links with the same key.
    """

    __tablename__ = "app_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """One failed login: counted per account and per address to throttle guessing."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_login_failure_email_at", "email", "at"),
        Index("ix_login_failure_ip_at", "ip", "at"),
    )


class SignedLinkUse(Base):
    """A signed mail link that has acted: links work without login, so each acts once."""

    __tablename__ = "signed_link_use"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    lead_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A token an integration (DMS, CRM) uses on the REST API; only its hash is kept.

    The token is shown once when created; a leaked database therefore leaks no
    usable token.  ``prefix`` (its first characters) lets an admin recognise a
    token in the list and in logs.  Scopes: ``read`` and ``write``.
    """

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()


class WebhookStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


class Webhook(Base):
    """A receiver of lead events: POSTs signed with its own secret (HMAC-SHA256)."""

    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook: the webhook outbox, claimed and retried like mails.

    Inserted in the transaction of the change it reports, so an event exists
    if and only if its change does; the unique key makes a second emission of
    the same event (a retried pipeline run) a no-op.
    """

    __tablename__ = "webhook_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhook.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    lead_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=WebhookStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)


class SentFolderState(Base):
    """Cursor and status of one salesperson's watched Sent folder (see ``imap.sent_folder``).

    Like :class:`ImapState`, the last UID seen is only meaningful with the
    folder's UIDVALIDITY; after a change the watcher looks again and relies on
    :class:`SentFolderAnswer` not to count a mail twice.
    """

    __tablename__ = "sent_folder_state"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    folder: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column()
    answered_total: Mapped[int] = mapped_column(BigInteger, default=0)


class SentFolderAnswer(Base):
    """A sent mail that counted as the answer to a lead: the idempotency key of the watcher.

    Only the Message-ID (hashed for the key, the text for tracing) and the
    lead: the Sent folder is the salesperson's private mail, nothing else of
    it is kept.
    """

    __tablename__ = "sent_folder_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    message_key: Mapped[str] = mapped_column(String(64))  # sha256 of the Message-ID
    message_id: Mapped[str | None] = mapped_column(String(255))
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    sent_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "message_key", "lead_id", name="uq_sent_folder_answer_key"),
    )


class AnswerTemplate(Base):
    """A dealer's ready-made answer to a customer (seed 001's lead e-mail template).

    Several named texts per language, picked on the lead page to start an
    answer; subject and body are Jinja2 sources rendered in the mail sandbox
    with the customer, the vehicle and the salesperson only
    (:mod:`mailgate.outbound.answer_templates`), checked when they are saved.
    """

    __tablename__ = "answer_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), default="de")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(320), default="")

    __table_args__ = (UniqueConstraint("name", "language", name="uq_answer_template_name"),)
