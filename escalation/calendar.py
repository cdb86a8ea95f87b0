"""The dealer's working-time clock: opening hours, public holidays, closure days.

Pure: no database, no clock.  All arithmetic works on *intervals* (one per
opening period of a day), never minute by minute, and on UTC instants, so a
DST change cannot make an interval longer or shorter than the wall clock says.
(Subtracting two aware datetimes that share a ``tzinfo`` ignores their UTC
offsets in Python; everything here converts to UTC first for that reason.)

Conventions: an opening interval is half-open for ``is_open`` (a shop that
opens 08:00-12:00 is open at 08:00, closed at 12:00), but a deadline may fall
exactly on the closing time ("by 18:00").

Worked example, a dealer open Mon-Fri 08:00-12:00 and 13:00-18:00, Sat
09:00-13:00, in Bavaria::

    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> cal = WorkingCalendar.from_settings(
    ...     {"mon": ["08:00-12:00", "13:00-18:00"], "tue": ["08:00-12:00", "13:00-18:00"],
    ...      "wed": ["08:00-12:00", "13:00-18:00"], "thu": ["08:00-12:00", "13:00-18:00"],
    ...      "fri": ["08:00-12:00", "13:00-18:00"], "sat": ["09:00-13:00"]},
    ...     timezone="Europe/Berlin", country="DE", subdivision="BY")
    >>> friday = datetime(2026, 11, 27, 16, 30, tzinfo=berlin)
    >>> cal.add_working_time(friday, timedelta(hours=4)).isoformat()  # 1.5 h Fri + 2.5 h Sat
    '2026-11-28T11:30:00+01:00'
    >>> cal.next_open(datetime(2026, 11, 28, 13, 0, tzinfo=berlin)).isoformat()  # Sat -> Mon
    '2026-11-30T08:00:00+01:00'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holiday_data

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZERO = timedelta(0)
# No dealer is closed for ten years; a search that long means "never open".
_SEARCH_DAYS = 3660


class CalendarError(ValueError):
    """The opening hours cannot form a usable clock (bad interval, never open)."""


def parse_interval(text: str) -> tuple[time, time]:
    """``"08:00-12:00"`` -> ``(time(8), time(12))``; ``"24:00"`` ends a day."""
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start = time.fromisoformat(start_text)
        end = time.max if end_text == "24:00" else time.fromisoformat(end_text)
    except ValueError as exc:
        raise CalendarError(f"not an interval like '08:00-12:00': {text!r}") from exc
    if end <= start:
        raise CalendarError(f"interval ends before it starts: {text!r}")
    return start, end


@dataclass(frozen=True)
class WorkingCalendar:
    """Opening intervals per weekday (Monday first), minus holidays and closure days."""

    zone: ZoneInfo
    week: tuple[tuple[tuple[time, time], ...], ...]
    closed: Mapping[date, str] = field(default_factory=dict)
    holidays: holiday_data.HolidayBase | None = None

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise CalendarError("opening hours need seven weekdays, Monday first")
        if not any(self.week):
            raise CalendarError("no opening hours on any weekday: the clock would never run")
        for day in self.week:
            ordered = sorted(day)
            for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
                if start < end:
                    raise CalendarError("opening intervals of one day overlap")

    @classmethod
    def from_settings(
        cls,
        hours: Mapping[str, Sequence[str]],
        *,
        timezone: str = "Europe/Berlin",
        country: str | None = "DE",
        subdivision: str | None = None,
        categories: Iterable[str] = ("public",),
        closures: Iterable[str | date] = (),
    ) -> WorkingCalendar:
        """Build from the settings' ``[hours]`` and ``[holidays]`` sections.

        ``closures`` are dates (``2026-12-24``) or inclusive ranges
        (``2026-12-24..2026-12-31``): the dealer's own company holidays.
        """
        week = tuple(
            tuple(sorted(parse_interval(text) for text in hours.get(day, ()))) for day in WEEKDAYS
        )
        public = None
        if country:
            try:
                public = holiday_data.country_holidays(
                    country.upper(),
                    subdiv=subdivision or None,
                    categories=tuple(categories) or ("public",),
                )
            except (NotImplementedError, KeyError, ValueError) as exc:
                region = f"{country}-{subdivision}" if subdivision else country
                raise CalendarError(f"unknown holiday region {region}") from exc
        return cls(
            zone=ZoneInfo(timezone),
            week=week,
            closed=dict(_closure_days(closures)),
            holidays=public,
        )

    # --- days -----------------------------------------------------------------

    def closed_reason(self, day: date) -> str | None:
        """Why the dealer is closed all day (holiday name, closure), or None."""
        if day in self.closed:
            return self.closed[day]
        if self.holidays is not None and day in self.holidays:
            return str(self.holidays.get(day))
        return None

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The opening intervals of one local date as UTC instants (empty when closed)."""
        if self.closed_reason(day) is not None:
            return []
        result = []
        for start, end in self.week[day.weekday()]:
            opens = datetime.combine(day, start, tzinfo=self.zone).astimezone(UTC)
            if end == time.max:
                closes = datetime.combine(day + timedelta(days=1), time(), tzinfo=self.zone)
            else:
                closes = datetime.combine(day, end, tzinfo=self.zone)
            result.append((opens, closes.astimezone(UTC)))
        return result

    def _forward(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Intervals that end after ``moment`` (UTC), in time order."""
        day = moment.astimezone(self.zone).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            for opens, closes in self.day_intervals(day + timedelta(days=offset)):
                if closes > moment:
                    yield opens, closes
        raise CalendarError("the dealer is never open in the next ten years")

    def _backward(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Intervals that start before ``moment`` (UTC), latest first."""
        day = moment.astimezone(self.zone).date() + timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            for opens, closes in reversed(self.day_intervals(day - timedelta(days=offset))):
                if opens < moment:
                    yield opens, closes
        raise CalendarError("the dealer was never open in the previous ten years")

    # --- instants -------------------------------------------------------------

    def is_open(self, moment: datetime) -> bool:
        """True while the dealer is open (opening time included, closing time not)."""
        instant = _utc(moment)
        return any(
            opens <= instant < closes
            for opens, closes in self.day_intervals(moment.astimezone(self.zone).date())
        )

    def next_open(self, moment: datetime) -> datetime:
        """``moment`` itself if open, else the next opening time (in the dealer's zone).

        Saturday 13:00, just closed, no Sunday hours -> Monday 08:00.
        """
        instant = _utc(moment)
        for opens, closes in self._forward(instant):
            if instant < closes:
                return self._local(max(opens, instant))
        raise AssertionError("unreachable: _forward raises when nothing is found")

    def send_time(self, moment: datetime) -> datetime:
        """When a staff mail due at ``moment`` may leave (seed 002: only while open).

        ``moment`` itself while open *or exactly at a closing time* (a deadline
        "by 13:00" on a Saturday is mailed at 13:00, not on Monday morning);
        otherwise the next opening time.
        """
        instant = _utc(moment)
        if self.is_open(instant) or self.is_closing_time(instant):
            return self._local(instant)
        return self.next_open(instant)

    def is_closing_time(self, moment: datetime) -> bool:
        """True exactly at the end of an opening interval (Saturday 13:00, 12:00 before lunch)."""
        instant = _utc(moment)
        day = moment.astimezone(self.zone).date()
        return any(
            closes == instant
            for offset in (-1, 0)
            for _, closes in self.day_intervals(day + timedelta(days=offset))
        )

    def last_closing(self, moment: datetime) -> datetime:
        """The latest closing time at or before ``moment`` (in the dealer's zone)."""
        instant = _utc(moment)
        for _, closes in self._backward(instant + timedelta(microseconds=1)):
            if closes <= instant:
                return self._local(closes)
        raise AssertionError("unreachable: _backward raises when nothing is found")

    def add_working_time(self, moment: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of opening time has passed after ``moment``.

        Received Friday 17:00, 2 h, open until 18:00 and Monday from 08:00:
        1 h on Friday, 1 h on Monday -> Monday 09:00.  A duration of zero gives
        ``next_open(moment)``.  The result may be a closing time ("by 18:00").
        """
        if duration < ZERO:
            return self.subtract_working_time(moment, -duration)
        instant = _utc(moment)
        remaining = duration
        for opens, closes in self._forward(instant):
            start = max(opens, instant)
            if remaining == ZERO or start + remaining <= closes:
                return self._local(start + remaining)
            remaining -= closes - start
        raise AssertionError("unreachable")

    def subtract_working_time(self, moment: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of opening time before ``moment``.

        Stage 1 due Monday 09:00 and a reminder 2 h before, Friday open until
        18:00: 1 h on Monday, 1 h on Friday -> Friday 17:00.  The result may be
        an opening time; a duration of zero gives ``moment``.
        """
        if duration < ZERO:
            return self.add_working_time(moment, -duration)
        instant = _utc(moment)
        if duration == ZERO:
            return self._local(instant)
        remaining = duration
        for opens, closes in self._backward(instant):
            end = min(closes, instant)
            if end - remaining >= opens:
                return self._local(end - remaining)
            remaining -= end - opens
        raise AssertionError("unreachable")

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """Closing time of the ``days``-th open day after ``moment``'s own day.

        A processing target of "2 working days" set on Friday 10:00 (open
        Mon-Sat) ends Monday at closing time: Saturday is day one, Monday day two.
        """
        if days < 1:
            raise ValueError("a target is at least one working day away")
        day = moment.astimezone(self.zone).date()
        for _ in range(_SEARCH_DAYS):
            day += timedelta(days=1)
            intervals = self.day_intervals(day)
            if intervals:
                days -= 1
                if days == 0:
                    return self._local(intervals[-1][1])
        raise CalendarError("the dealer is never open in the next ten years")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Opening time inside ``[start, end]``; negative if ``end`` is before ``start``.

        Friday 17:00 to Monday 09:00 with Friday until 18:00 and Monday from
        08:00 (no Saturday hours) -> 2 h.
        """
        first, last = _utc(start), _utc(end)
        if last < first:
            return -self.working_time_between(end, start)
        total = ZERO
        for opens, closes in self._forward(first):
            if opens >= last:
                break
            total += min(closes, last) - max(opens, first)
        return total

    def _local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("working-time arithmetic needs timezone-aware datetimes")
    return moment.astimezone(UTC)


def _closure_days(closures: Iterable[str | date]) -> Iterator[tuple[date, str]]:
    for item in closures:
        if isinstance(item, date):
            yield item, "closed"
            continue
        first_text, _, last_text = str(item).partition("..")
        try:
            first = date.fromisoformat(first_text.strip())
            last = date.fromisoformat(last_text.strip()) if last_text else first
        except ValueError as exc:
            raise CalendarError(f"closure is not a date or 'from..until': {item!r}") from exc
        if last < first:
            raise CalendarError(f"closure ends before it starts: {item!r}")
        if (last - first).days > 366:
            raise CalendarError(f"closure longer than a year: {item!r}")
        day = first
        while day <= last:
            yield day, "closed"
            day += timedelta(days=1)
