"""The overview's numbers: a handful of aggregate queries, each number with its list filter.

Every number is defined as a lead-list filter (:class:`..leads.filters.Filters`)
and counted with the list's own SQL (:func:`..leads.query.conditions`) inside
the viewer's lead scope (:func:`..access.lead_scope`), so a click on a number
opens a list of exactly the leads it counted.  Per-salesperson figures are one
``GROUP BY assignee_id`` with a ``SUM(CASE …)`` per figure, not a loop per
person or per lead.

The median first response is the reports' figure (:mod:`..reports.stats`):
working time by the dealer's opening hours (:class:`..reports.worktime.WorkClock`)
from receipt to the first answer, over the answered leads received this week
(Monday 00:00 in the dealer's time zone until now).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import Lead, User, UserRole

from ..access import Account, team_ids
from ..leads.filters import OPEN, Filters
from ..leads.query import conditions
from ..reports.stats import ResponseRow, response_stats, week_start
from ..reports.worktime import WorkClock


@dataclass(frozen=True)
class Figure:
    """A count and the lead-list filter that lists exactly the counted leads."""

    count: int
    filters: Filters

    @property
    def args(self) -> dict[str, str]:
        return self.filters.args()


@dataclass(frozen=True)
class PersonRow:
    user_id: int
    name: str
    open: Figure
    overdue: Figure
    due_today: Figure
    answered: Figure  # this week's answered leads: what the median is taken over
    median_hours: float | None  # working hours to the first response (None: none answered)


@dataclass(frozen=True)
class SourceRow:
    source: str  # the stored code; the template shows its display name
    figure: Figure


@dataclass
class Overview:
    today: date
    week_from: date
    people: list[PersonRow] = field(default_factory=list)
    intake: list[SourceRow] = field(default_factory=list)
    intake_total: Figure | None = None
    pool: Figure | None = None  # None: the dealer has no pool
    unassigned: Figure | None = None
    escalated: Figure | None = None  # leads escalated today (either rung)
    stage1: Figure | None = None  # ... to the salesperson (stage 1)
    stage2: Figure | None = None  # ... to the supervisor (stage 2)


@dataclass(frozen=True)
class Context:
    """What every count needs: the viewer's scope and the list's way of reading filters."""

    session: Session
    scope: ColumnElement[bool]
    now: datetime
    zone: ZoneInfo
    region: str
    dialect: str

    def where(self, filters: Filters) -> ColumnElement[bool]:
        found = conditions(
            filters, now=self.now, zone=self.zone, region=self.region, dialect=self.dialect
        )
        return and_(self.scope, *found)

    def count_of(self, filters: Filters) -> ColumnElement[int]:
        """``SUM(CASE WHEN <filters> THEN 1 ELSE 0 END)``: one figure of an aggregate row."""
        return func.coalesce(func.sum(case((self.where(filters), 1), else_=0)), 0)


OPEN_LEADS = Filters(status=OPEN)
PERSON_FIGURES = {
    "open": OPEN_LEADS,
    "overdue": Filters(status=OPEN, due="overdue"),
    "due_today": Filters(status=OPEN, due_today=True),
}


def build(ctx: Context, account: Account, config: DealerConfig, pool_id: int | None) -> Overview:
    """All figures of the overview for ``account`` (supervisor: his scope; admin: all)."""
    today = ctx.now.astimezone(ctx.zone).date()
    monday = week_start(today)
    overview = Overview(today=today, week_from=monday)
    counts = _person_counts(ctx)
    medians = _medians(ctx, config, monday, today)
    shown = set(_team(ctx.session, account)) | set(counts) | set(medians)
    shown.discard(pool_id)
    names = _names(ctx.session, shown)
    for user_id in sorted(shown, key=lambda i: (names.get(i, "").casefold(), i)):
        mine = {key: replace(f, assignee=str(user_id)) for key, f in PERSON_FIGURES.items()}
        numbers = counts.get(user_id, {})
        answered, median = medians.get(user_id, (0, None))
        overview.people.append(
            PersonRow(
                user_id=user_id,
                name=names.get(user_id, ""),
                open=Figure(numbers.get("open", 0), mine["open"]),
                overdue=Figure(numbers.get("overdue", 0), mine["overdue"]),
                due_today=Figure(numbers.get("due_today", 0), mine["due_today"]),
                answered=Figure(answered, _week_answered(monday, today, str(user_id))),
                median_hours=median,
            )
        )
    _intake(ctx, overview, today)
    _queues(ctx, overview, pool_id)
    _escalations(ctx, overview, today)
    return overview


def _person_counts(ctx: Context) -> dict[int, dict[str, int]]:
    """Open / overdue / due today per assignee: one grouped query over the open leads."""
    columns = [ctx.count_of(f).label(key) for key, f in PERSON_FIGURES.items()]
    rows = ctx.session.execute(
        select(Lead.assignee_id, *columns)
        .where(ctx.where(OPEN_LEADS), Lead.assignee_id.is_not(None))
        .group_by(Lead.assignee_id)
    ).all()
    return {
        row.assignee_id: {key: int(row._mapping[key]) for key in PERSON_FIGURES} for row in rows
    }


def _week_answered(monday: date, today: date, assignee: str = "") -> Filters:
    return Filters(assignee=assignee, date_from=monday, date_to=today, answered="yes")


def _medians(
    ctx: Context, config: DealerConfig, monday: date, today: date
) -> dict[int, tuple[int, float | None]]:
    """(answered leads, median working hours to the first response) per assignee, this week."""
    rows = ctx.session.execute(
        select(Lead.assignee_id, Lead.received_at, Lead.first_response_at).where(
            ctx.where(_week_answered(monday, today)), Lead.assignee_id.is_not(None)
        )
    ).all()
    if not rows:
        return {}
    # answers come after receipt: lay the clock out over the week and a little beyond
    clock = WorkClock(config.calendar, monday - timedelta(days=1), today + timedelta(days=1))
    stats = response_stats(
        (ResponseRow(str(r.assignee_id), r.received_at, r.first_response_at, None) for r in rows),
        clock,
        ctx.now,
    )
    return {int(s.person): (s.answered, s.median_hours) for s in stats}


def _team(session: Session, account: Account) -> list[int]:
    """Whose rows are shown even without a lead: a supervisor's active team members; for an
    admin every active salesperson (anyone else only while holding leads in the scope)."""
    query = select(User.id).where(User.active.is_(True))
    if account.is_admin:
        query = query.where(User.role == UserRole.SALESPERSON)
    else:
        members = [i for i in team_ids(session, account) if i != account.id]
        query = query.where(User.id.in_(members))
    return list(session.scalars(query))


def _names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(wanted)))
    return {row.id: row.name or row.email for row in rows}


def _intake(ctx: Context, overview: Overview, today: date) -> None:
    """Today's leads per source (one grouped query), most first."""
    todays = Filters(date_from=today, date_to=today)
    rows = ctx.session.execute(
        select(Lead.source, func.count(Lead.id)).where(ctx.where(todays)).group_by(Lead.source)
    ).all()
    ordered = sorted(rows, key=lambda row: (-row[1], row[0] or ""))
    overview.intake = [
        SourceRow(source or "", Figure(int(n), replace(todays, source=source or "")))
        for source, n in ordered
    ]
    overview.intake_total = Figure(sum(int(n) for _, n in rows), todays)


def _queues(ctx: Context, overview: Overview, pool_id: int | None) -> None:
    """Open leads waiting in the pool and open leads with nobody assigned: one query."""
    unassigned = Filters(status=OPEN, assignee="none")
    pool = Filters(status=OPEN, assignee=str(pool_id)) if pool_id is not None else None
    columns = [ctx.count_of(unassigned)]
    if pool is not None:
        columns.append(ctx.count_of(pool))
    row = ctx.session.execute(select(*columns).where(ctx.where(OPEN_LEADS))).one()
    overview.unassigned = Figure(int(row[0]), unassigned)
    if pool is not None:
        overview.pool = Figure(int(row[1]), pool)


def _escalations(ctx: Context, overview: Overview, today: date) -> None:
    """Leads escalated today: in all, to the salesperson (stage 1), to the supervisor (2)."""
    any_rung = Filters(escalated=today)
    stage1 = Filters(escalated=today, escalation="stage1")
    stage2 = Filters(escalated=today, escalation="stage2")
    row = ctx.session.execute(
        select(func.count(Lead.id), ctx.count_of(stage1), ctx.count_of(stage2)).where(
            ctx.where(any_rung)
        )
    ).one()
    overview.escalated = Figure(int(row[0]), any_rung)
    overview.stage1 = Figure(int(row[1]), stage1)
    overview.stage2 = Figure(int(row[2]), stage2)
