"""Working time for many leads at once: the calendar's opening intervals as a running total.

:class:`~mailgate.escalation.calendar.WorkingCalendar` answers one question
at a time and walks the days for each (time-zone conversions, holiday
lookups): fine for one lead, seconds for a quarter's ten thousand.  A report
asks about one known stretch of days, so :class:`WorkClock` lays that stretch
out once as UTC intervals with the working time before each, and answers by
binary search.  Outside the stretch it asks the calendar, so the answers are
the calendar's everywhere (a test compares them).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta

from mailgate.escalation.calendar import WorkingCalendar

ZERO = timedelta(0)


class WorkClock:
    """Opening time between instants, and deadlines, for days ``first`` to ``last``."""

    def __init__(self, calendar: WorkingCalendar, first: date, last: date) -> None:
        self.calendar = calendar
        self.low = datetime.combine(first, time(), tzinfo=calendar.zone).astimezone(UTC)
        after = last + timedelta(days=1)
        self.high = datetime.combine(after, time(), tzinfo=calendar.zone).astimezone(UTC)
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []
        self.before: list[timedelta] = []  # working time from ``low`` to each start
        self.through: list[timedelta] = []  # ... to each end
        total, day = ZERO, first
        while day <= last:
            for opens, closes in calendar.day_intervals(day):
                self.starts.append(opens)
                self.ends.append(closes)
                self.before.append(total)
                total += closes - opens
                self.through.append(total)
            day += timedelta(days=1)

    def _inside(self, moment: datetime) -> bool:
        return self.low <= moment <= self.high

    def _elapsed(self, moment: datetime) -> timedelta:
        """Working time from ``low`` to ``moment`` (inside the stretch)."""
        i = bisect_right(self.starts, moment) - 1
        if i < 0:
            return ZERO
        return self.before[i] + min(moment, self.ends[i]) - self.starts[i]

    def between(self, start: datetime, end: datetime) -> timedelta:
        """As :meth:`WorkingCalendar.working_time_between`."""
        if not (self._inside(start) and self._inside(end)):
            return self.calendar.working_time_between(start, end)
        return self._elapsed(end) - self._elapsed(start)

    def add(self, moment: datetime, duration: timedelta) -> datetime:
        """As :meth:`WorkingCalendar.add_working_time` (for a positive duration)."""
        if duration <= ZERO or not self._inside(moment):
            return self.calendar.add_working_time(moment, duration)
        target = self._elapsed(moment) + duration
        i = bisect_left(self.through, target)
        if i == len(self.through):
            return self.calendar.add_working_time(moment, duration)
        return self.starts[i] + (target - self.before[i])

    # the calendar's names, so the statistics take either
    working_time_between = between
    add_working_time = add
