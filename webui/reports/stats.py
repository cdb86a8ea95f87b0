"""Report statistics: pure functions over plain rows, so each can be checked by hand.

No database and no clock here; :mod:`.data` fetches the rows and hands them in.

Percentiles use linear interpolation between the two nearest ranks (the
"inclusive" method of :func:`statistics.quantiles`, R's type 7, Excel's
PERCENTILE.INC), so the numbers agree with what a dealer gets from the CSV in
Excel.  Response times are counted in *working time* of the dealer's calendar:
a mail at Friday 17:55 answered Monday 08:05 was answered within ten minutes
of opening time, not after 62 hours.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

WEEK = timedelta(days=7)


class Clock(Protocol):
    """A working-time clock: the dealer's ``WorkingCalendar`` or a report's ``WorkClock``."""

    def working_time_between(self, start: datetime, end: datetime) -> timedelta: ...


def week_start(day: date) -> date:
    """The Monday of ``day``'s week (ISO weeks, as German calendars count them)."""
    return day - timedelta(days=day.weekday())


def weeks_between(first: date, last: date) -> list[date]:
    """The Mondays of every week touching ``[first, last]``, in order."""
    weeks, monday = [], week_start(first)
    while monday <= last:
        weeks.append(monday)
        monday += WEEK
    return weeks


def per_week(rows: Iterable[tuple[date, str]], weeks: Sequence[date]) -> dict[str, list[int]]:
    """Counts per key and week: ``rows`` are (local date, key); keys by total, largest first."""
    index = {monday: i for i, monday in enumerate(weeks)}
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(weeks))
    for day, key in rows:
        slot = index.get(week_start(day))
        if slot is not None:
            counts[key][slot] += 1
    return dict(sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0])))


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile (0..1) with linear interpolation; None for no values.

    [1, 2, 3, 4] -> median 2.5, p90 3.7 (rank 0.9 * 3 = 2.7 between 3 and 4).
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class ResponseRow:
    """One lead as the response statistics need it."""

    person: str
    received_at: datetime
    first_response_at: datetime | None
    stage1_at: datetime | None  # the stage-1 time the lead got on arrival


@dataclass(frozen=True)
class ResponseStats:
    """First-response figures of one salesperson (hours of working time)."""

    person: str
    leads: int
    answered: int
    median_hours: float | None
    p90_hours: float | None
    on_time: int  # answered no later than the stage-1 time
    due: int  # leads whose stage-1 time has passed or that were answered

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.due if self.due else None


def working_hours(calendar: Clock, start: datetime, end: datetime) -> float:
    """Opening time between two instants, in hours (never negative)."""
    return max(calendar.working_time_between(start, end).total_seconds(), 0.0) / 3600


def response_stats(
    rows: Iterable[ResponseRow], calendar: Clock, now: datetime
) -> list[ResponseStats]:
    """Per salesperson: median/p90 working hours to the first response, share before stage 1.

    A lead still unanswered counts for the share once its stage-1 time has
    passed (it was late); before that it is not decided yet and left out.
    """
    groups: dict[str, list[ResponseRow]] = defaultdict(list)
    for row in rows:
        groups[row.person].append(row)
    result = []
    for person in sorted(groups):
        leads = groups[person]
        hours = [
            working_hours(calendar, r.received_at, r.first_response_at)
            for r in leads
            if r.first_response_at is not None
        ]
        on_time = due = 0
        for r in leads:
            if r.stage1_at is None:
                continue
            if r.first_response_at is not None:
                due += 1
                on_time += r.first_response_at <= r.stage1_at
            elif r.stage1_at <= now:
                due += 1
        result.append(
            ResponseStats(
                person=person,
                leads=len(leads),
                answered=len(hours),
                median_hours=median(hours),
                p90_hours=percentile(hours, 0.9),
                on_time=on_time,
                due=due,
            )
        )
    return result


def total_on_time(stats: Sequence[ResponseStats]) -> tuple[int, int]:
    """(answered before stage 1, decided) over all salespeople."""
    return sum(s.on_time for s in stats), sum(s.due for s in stats)


@dataclass(frozen=True)
class Outcomes:
    won: int = 0
    lost: int = 0
    other: int = 0  # closed with a reason that is neither won nor lost
    open: int = 0

    @property
    def closed(self) -> int:
        return self.won + self.lost + self.other

    @property
    def win_rate(self) -> float | None:
        """Won of (won + lost): leads closed as duplicate or junk say nothing about selling."""
        decided = self.won + self.lost
        return self.won / decided if decided else None


def outcomes_by_source(
    rows: Iterable[tuple[str, str | None]], outcome_of: Callable[[str], str]
) -> dict[str, Outcomes]:
    """(source, close reason or None while open) -> won/lost/other/open per source.

    ``outcome_of`` maps a completion reason code to won/lost/other (the
    dealer's reasons; free-text reasons from before codes count as other).
    """
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for source, reason in rows:
        tally[source]["open" if reason is None else outcome_of(reason)] += 1
    result = {
        source: Outcomes(won=c["won"], lost=c["lost"], other=c["other"], open=c["open"])
        for source, c in tally.items()
    }
    return dict(sorted(result.items(), key=lambda item: (-item[1].closed, item[0])))


# The sales ladder as the report counts it: how many leads reached each rung.
LADDER_RUNGS = ("received", "contacted", "test_drive", "offer", "contract", "won")


def ladder_by_source(rows: Iterable[tuple[str, Sequence[bool]]]) -> dict[str, list[int]]:
    """(source, reached contacted/test drive/offer/contract/won) -> leads per rung and source.

    A lead counts on every rung it reached, so a lead that skipped the test
    drive counts for the offer but not the test drive; "received" is all leads.
    Sources with the most leads first.
    """
    tally: dict[str, list[int]] = defaultdict(lambda: [0] * len(LADDER_RUNGS))
    for source, reached in rows:
        counts = tally[source]
        counts[0] += 1
        for index, hit in enumerate(reached, start=1):
            counts[index] += int(hit)
    return dict(sorted(tally.items(), key=lambda item: (-item[1][0], item[0])))


def column_totals(table: dict[str, list[int]]) -> list[int]:
    return [sum(column) for column in zip(*table.values(), strict=True)] if table else []


def top_keys(series: dict[str, list[int]], limit: int, rest: str) -> dict[str, list[int]]:
    """At most ``limit`` series; the smaller ones summed into ``rest`` (a chart stays legible)."""
    if len(series) <= limit:
        return series
    keys = list(series)
    kept = {key: series[key] for key in keys[: limit - 1]}
    summed = [sum(values) for values in zip(*(series[k] for k in keys[limit - 1 :]), strict=True)]
    return {**kept, rest: summed}
