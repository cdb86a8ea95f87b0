"""Fetch the rows a report needs (one query) and hand them to the pure statistics.

"Answered before stage 1" compares the first response with the stage-1 time
the lead got *on arrival*, recomputed as the escalation timeline does
(:func:`mailgate.escalation.ladder.timeline`) with the dealer's current
calendar and escalation times.  Why not ``lead.overdue_at``: it is the
*current* stage-1 time and is overwritten by later actions (resubmission,
moved due date, qualification, reassignment restart), so for an answered lead
it usually no longer says when the first answer was due.  The price: a change
of opening hours or escalation times re-judges old leads by the new rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from mailgate.completion import reason_by_code
from mailgate.dealer_settings import DealerConfig
from mailgate.escalation.ladder import EscalationTimes
from mailgate.models import Lead, LeadStatus, User

from .stats import (
    Outcomes,
    ResponseRow,
    ResponseStats,
    ladder_by_source,
    outcomes_by_source,
    per_week,
    response_stats,
    weeks_between,
)
from .worktime import WorkClock


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    weeks: list[date]
    leads: int
    sources: dict[str, list[int]]
    kinds: dict[str, list[int]]
    responses: list[ResponseStats]
    outcomes: dict[str, Outcomes]
    ladder: dict[str, list[int]]  # source -> leads per rung of stats.LADDER_RUNGS


def local_bounds(config: DealerConfig, start: date, end: date) -> tuple[datetime, datetime]:
    """``[start 00:00, day after end 00:00)`` in the dealer's zone, as UTC instants."""
    zone = config.timezone
    first = datetime.combine(start, time(), tzinfo=zone).astimezone(UTC)
    last = datetime.combine(end + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return first, last


def outcome_function(document: dict[str, Any]) -> Callable[[str], str]:
    """Completion reason code -> won/lost/other with the dealer's reasons (unknown: other)."""

    def outcome(code: str) -> str:
        reason = reason_by_code(document, code)
        return reason.outcome if reason is not None else "other"

    return outcome


def build_report(
    session: Session,
    config: DealerConfig,
    scope: ColumnElement[bool],
    start: date,
    end: date,
    now: datetime,
    not_people: set[int],
) -> Report:
    """All report figures for leads received in ``[start, end]`` within ``scope``.

    ``not_people`` are assignee ids that are no salesperson (the pool user):
    their leads count for sources, kinds and outcomes, not per person.
    """
    first, last = local_bounds(config, start, end)
    rows = session.execute(
        select(
            Lead.received_at,
            Lead.source,
            Lead.kind,
            Lead.status,
            Lead.first_response_at,
            Lead.close_reason,
            Lead.test_drive_at,
            Lead.offer_at,
            Lead.contract_at,
            Lead.assignee_id,
            User.name,
            User.email,
        )
        .outerjoin(User, User.id == Lead.assignee_id)
        .where(
            scope,
            Lead.status != LeadStatus.DELETED.value,
            Lead.received_at >= first,
            Lead.received_at < last,
        )
    ).all()
    zone = config.timezone
    weeks = weeks_between(start, end)
    days = [(row.received_at.astimezone(zone).date(), row) for row in rows]
    times: dict[tuple[str, str], EscalationTimes] = {}
    # stage 1 and first answers fall after receipt: lay out the range and two months more
    calendar = WorkClock(config.calendar, start - timedelta(days=1), end + timedelta(days=62))

    def stage1(row: Any) -> datetime:
        """As :func:`mailgate.escalation.ladder.timeline` computes ``stage1_at``."""
        key = (row.source, row.kind)
        if key not in times:
            times[key] = config.escalation_times(*key)
        return calendar.add_working_time(row.received_at, times[key].stage1)

    responses = [
        ResponseRow(
            person=row.name or row.email,
            received_at=row.received_at,
            first_response_at=row.first_response_at,
            stage1_at=stage1(row),
        )
        for row in rows
        if row.assignee_id is not None and row.assignee_id not in not_people
    ]
    closed = LeadStatus.CLOSED.value
    outcome = outcome_function(config.document)

    def won(row: Any) -> bool:
        return row.status == closed and outcome(row.close_reason or "") == "won"

    return Report(
        start=start,
        end=end,
        weeks=weeks,
        leads=len(rows),
        sources=per_week(((day, row.source) for day, row in days), weeks),
        kinds=per_week(((day, row.kind) for day, row in days), weeks),
        responses=response_stats(responses, calendar, now),
        outcomes=outcomes_by_source(
            (
                (row.source, (row.close_reason or "") if row.status == closed else None)
                for row in rows
            ),
            outcome,
        ),
        ladder=ladder_by_source(
            (
                row.source,
                (
                    row.first_response_at is not None,
                    row.test_drive_at is not None,
                    row.offer_at is not None,
                    row.contract_at is not None,
                    won(row),
                ),
            )
            for row in rows
        ),
    )
