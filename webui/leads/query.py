"""From :class:`~.filters.Filters` to SQL: conditions, search and sort order of the list.

The list, its count and the CSV export use the same conditions, always
together with the user's lead scope (:func:`..access.lead_scope`), so no
filter value can widen what a user sees.  The free-text search scans the
narrow ``lead_search`` table (customer name, e-mail, phone, VIN, listing and
stock number, make, model, licence plate, the source's lead number; kept by
triggers, see migrations ``0007_lead_search`` and ``0017_customer_file``); a
number is searched as typed and, if it is a phone number, also in its E.164
form, so ``0170 1234567`` finds ``+49 170 1234567`` and ``123456789`` a listing
id; a number is also the lead number itself.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Text, and_, cast, column, not_, or_, select, table
from sqlalchemy.sql.elements import UnaryExpression

from mailgate.distribution.matching import normalise_phone
from mailgate.escalation.ladder import NEVER, RESUBMISSION
from mailgate.models import OPEN_STATUSES, Customer, Lead, LeadSearch, LeadStatus, ProtocolEntry

from ..input_limits import DB_INT_MAX
from .due import state_condition
from .filters import ESCALATIONS, OPEN, Filters

REVIEW_CONFIDENCE = 0.5  # parses below this confidence are flagged "needs review"
NOT_DELETED = tuple(s.value for s in LeadStatus if s != LeadStatus.DELETED)
PHONE_LIKE = re.compile(r"^\+?[\d\s/().-]{6,}$")


def like_pattern(term: str) -> str:
    """``%term%`` with LIKE's wildcards in the term taken literally (escape ``\\``)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_terms(query: str, region: str = "DE") -> list[str]:
    """What must all occur in a lead's search line: words, or the digits of a phone number."""
    query = query.strip().lower()
    if not query:
        return []
    if PHONE_LIKE.match(query):
        e164 = normalise_phone(query, region)
        digits = (e164 or "").lstrip("+") or re.sub(r"\D", "", query)
        if e164 or len(digits) >= 6:
            return [digits]
    return query.split()


def search_alternatives(query: str, region: str = "DE") -> list[tuple[str, ...]]:
    """What must all occur in a lead's search line: per word, the spellings any of which will do.

    A number is ambiguous: ``123456789`` is a mobile.de listing id as likely as
    a phone number, so a digit string is searched as typed (listing id, stock
    number, the source's lead number, part of a phone number) *and*, when it
    is a valid phone number, in its E.164 digits (``0170 1234567`` finds
    ``+49 170 1234567``).  Reading it only as a phone number found no listing
    id of 8-10 digits (a 6-digit test did not show it: too short for a phone).
    """
    query = query.strip().lower()
    if not query:
        return []
    if PHONE_LIKE.match(query):
        return [_number_spellings(query, region)]
    return [
        _number_spellings(word, region) if word.isdigit() and word.isascii() else (word,)
        for word in query.split()
    ]


def _number_spellings(text: str, region: str) -> tuple[str, ...]:
    digits = re.sub(r"[^0-9]", "", text)
    spellings = [digits] if digits else [text]
    e164 = normalise_phone(text, region)
    if e164 and e164.lstrip("+") not in spellings:
        spellings.append(e164.lstrip("+"))
    return tuple(spellings)


def lead_number(query: str) -> int | None:
    """The query as a lead number (the list shows it), if it is one the database can hold."""
    text = query.strip().lstrip("#")
    if text.isascii() and text.isdigit() and 0 < int(text) <= DB_INT_MAX:
        return int(text)
    return None


FTS = table("lead_search_fts", column("rowid"), column("text"))  # SQLite only (0006)
TRIGRAM = 3  # the trigram index answers LIKE for terms of three characters or more


def _term_match(term: str, dialect: str) -> ColumnElement[bool]:
    """Leads whose search line contains ``term``: by the trigram index where it can."""
    if dialect == "sqlite" and len(term) >= TRIGRAM and not set(term) & set("%_\\"):
        found = select(FTS.c.rowid).where(FTS.c.text.like(f"%{term}%"))
    else:
        pattern = like_pattern(term)
        found = select(LeadSearch.lead_id).where(LeadSearch.text.like(pattern, escape="\\"))
    return Lead.id.in_(found)


def search_condition(
    query: str, region: str = "DE", dialect: str = "sqlite"
) -> ColumnElement[bool] | None:
    groups = search_alternatives(query, region)
    if not groups:
        return None
    found = and_(*(or_(*(_term_match(t, dialect) for t in group)) for group in groups))
    number = lead_number(query)
    return or_(Lead.id == number, found) if number is not None else found


def needs_review() -> ColumnElement[bool]:
    """Low parser confidence, or the parser left warnings."""
    warnings = cast(Lead.warnings, Text)
    return or_(
        Lead.confidence < REVIEW_CONFIDENCE,
        and_(Lead.warnings.is_not(None), warnings.not_in(("[]", "null"))),
    )


def day_start(day: datetime | object, zone: ZoneInfo) -> datetime:
    """Midnight of a local calendar day, in UTC."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)  # type: ignore[arg-type]


def conditions(
    filters: Filters, *, now: datetime, zone: ZoneInfo, region: str = "DE", dialect: str = "sqlite"
) -> list[ColumnElement[bool]]:
    """The SQL conditions of ``filters`` (to be combined with the lead scope)."""
    out: list[ColumnElement[bool]] = []
    found = search_condition(filters.q, region, dialect)
    status: ColumnElement[str] = Lead.status
    if found is not None and dialect == "sqlite":
        # Let the search's id list drive the query: SQLite (no statistics) would
        # otherwise walk the status index over every lead and probe the list.
        # ``status || ''`` is SQLite's documented way to keep a term off an index.
        status = Lead.status.concat("")
    if filters.status == OPEN:
        out.append(status.in_(OPEN_STATUSES))
    elif filters.status:
        out.append(status == filters.status)
    else:  # an IN list, not "!=": the index on (status, assignee_id, ...) can seek it
        out.append(status.in_(NOT_DELETED))
    if filters.source:
        out.append(Lead.source == filters.source)
    if filters.campaign:
        out.append(Lead.campaign == filters.campaign)
    if filters.channel:
        out.append(Lead.category == filters.channel)
    if filters.kind:
        out.append(Lead.kind == filters.kind)
    if filters.assignee == "none":
        out.append(Lead.assignee_id.is_(None))
    elif filters.assignee:
        out.append(Lead.assignee_id == int(filters.assignee))
    if filters.location:
        out.append(Lead.location == filters.location)
    if filters.date_from:
        out.append(Lead.received_at >= day_start(filters.date_from, zone))
    if filters.date_to:
        out.append(Lead.received_at < day_start(filters.date_to + timedelta(days=1), zone))
    if filters.due:
        out.append(state_condition(filters.due, now))
    if filters.review:
        out.append(needs_review())
    out.extend(_seed_conditions(filters, now))
    out.extend(_overview_conditions(filters, now, zone))
    if found is not None:
        out.append(found)
    return out


def _seed_conditions(filters: Filters, now: datetime) -> list[ColumnElement[bool]]:
    """Call-centre state (seed 000 §4/5) and the processing target (seed 004)."""
    out: list[ColumnElement[bool]] = []
    if filters.callcentre == "taken":
        out.append(Lead.handed_over_at.is_not(None))
    elif filters.callcentre == "returned":
        out.append(Lead.handed_back_at.is_not(None))
    if filters.target == "set":
        out.append(Lead.target_at.is_not(None))
    elif filters.target == "missed":
        out.append(and_(Lead.target_at <= now, Lead.status.in_(OPEN_STATUSES)))
    return out


def due_today_condition(now: datetime, zone: ZoneInfo) -> ColumnElement[bool]:
    """What is left of a salesperson's day: *My day* (:func:`.agenda.section_of`: due
    resubmissions, stage-1 times and follow-ups before tonight) less the leads already
    in the due state "overdue", so "overdue" and "due today" never count a lead twice."""
    end = day_start(now.astimezone(zone).date() + timedelta(days=1), zone)
    resubmission = and_(Lead.escalation_stage == RESUBMISSION, Lead.soon_at < end)
    unanswered = and_(Lead.first_response_at.is_(None), Lead.overdue_at < end)
    today = and_(Lead.escalation_stage != RESUBMISSION, or_(Lead.follow_up_at < end, unanswered))
    return and_(
        Lead.status.in_(OPEN_STATUSES),
        Lead.escalation_stage < NEVER,
        or_(resubmission, today),
        not_(state_condition("overdue", now)),
    )


def escalated_condition(
    day: date | None, rungs: tuple[str, ...], zone: ZoneInfo
) -> ColumnElement[bool]:
    """Leads with an escalation (the protocol's ``stage1``/``stage2`` lines) on ``day``
    (a local calendar day; None: ever)."""
    entries = select(ProtocolEntry.lead_id).where(ProtocolEntry.action.in_(rungs))
    if day is not None:
        entries = entries.where(
            ProtocolEntry.at >= day_start(day, zone),
            ProtocolEntry.at < day_start(day + timedelta(days=1), zone),
        )
    return Lead.id.in_(entries)


def _overview_conditions(
    filters: Filters, now: datetime, zone: ZoneInfo
) -> list[ColumnElement[bool]]:
    """The supervisor overview's filters (issue 21): due today, answered, escalated."""
    out: list[ColumnElement[bool]] = []
    if filters.due_today:
        out.append(due_today_condition(now, zone))
    if filters.answered == "yes":
        out.append(Lead.first_response_at.is_not(None))
    elif filters.answered == "no":
        out.append(Lead.first_response_at.is_(None))
    if filters.escalated or filters.escalation:
        rungs = (filters.escalation,) if filters.escalation else ESCALATIONS
        out.append(escalated_condition(filters.escalated, rungs, zone))
    return out


def order_by(sort: str) -> list[ColumnElement[object] | UnaryExpression[object]]:
    """The ORDER BY of a sort choice; ``id`` last so pages never overlap."""
    if sort == "oldest":
        return [Lead.received_at.asc(), Lead.id.asc()]
    if sort == "activity":
        return [Lead.last_activity_at.desc(), Lead.id.desc()]
    if sort == "due":
        return [Lead.overdue_at.is_(None), Lead.overdue_at.asc(), Lead.id.asc()]
    if sort == "customer":
        return [Customer.name.is_(None), Customer.name.asc(), Lead.id.asc()]
    return [Lead.received_at.desc(), Lead.id.desc()]
