"""Opening hours as shift rows: ``<day>-<n>-start`` / ``<day>-<n>-end`` time inputs.

The page shows per weekday a few rows of ``<input type=time>`` pairs (split shifts,
e.g. 08:00–12:00 and 13:00–18:00).  This module turns the posted rows back into the
stored format (``["08:00-12:00", "13:00-18:00"]``) and says in German what is wrong
with a day, so nothing half-checked reaches :func:`apply_document`.

A time input cannot show 24:00: an end of 00:00 means midnight at the end of the
day (stored as 24:00), and a stored 24:00 is shown as 00:00.  Forms and query
strings from before the shift rows (``mon=08:00-12:00, 13:00-18:00``) are still read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _

from mailgate.escalation.calendar import WEEKDAYS

from .rows import split_list

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::00(?:\.0+)?)?$")
_ROW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)-(\d{1,2})-(start|end)$")
MIN_ROWS = 2  # rows per day without JavaScript (one more than the day has, at least this)
MAX_ROWS = 8  # more shifts than this in a day is a typing accident


@dataclass(frozen=True)
class Shift:
    start: str
    end: str  # "24:00" for midnight at the end of the day


def stored_to_rows(intervals: list[str]) -> list[tuple[str, str]]:
    """``["08:00-24:00"]`` -> ``[("08:00", "00:00")]``: values for the time inputs."""
    rows = []
    for interval in intervals:
        start, _sep, end = interval.partition("-")
        rows.append((start, "00:00" if end == "24:00" else end))
    return rows


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")[:2]
    return int(hours) * 60 + int(minutes)


def _day_rows(form: Mapping[str, str], day: str) -> list[tuple[str, str]] | None:
    """The day's (start, end) inputs in row order; None when the form has no shift rows."""
    indexes = sorted(
        {int(m.group(2)) for name in form if (m := _ROW.match(name)) and m.group(1) == day}
    )
    if not indexes:
        return None
    return [
        (str(form.get(f"{day}-{i}-start", "")).strip(), str(form.get(f"{day}-{i}-end", "")).strip())
        for i in indexes
    ]


def _legacy_rows(text: str) -> list[tuple[str, str]]:
    rows = []
    for part in split_list(text.replace(" - ", "-").replace("–", "-")):
        start, _sep, end = part.partition("-")
        rows.append((start.strip(), end.strip()))
    return rows


def check_day(rows: list[tuple[str, str]]) -> tuple[list[str], str | None]:
    """The stored intervals of one day, or a German error (then the list is empty)."""
    shifts: list[tuple[int, int, str]] = []
    filled = [(s, e) for s, e in rows if s or e]
    if len(filled) > MAX_ROWS:
        return [], _("At most %(n)s opening times per day.", n=MAX_ROWS)
    for start, end in filled:
        if not start or not end:
            return [], _("Give both a start and an end time (or leave both empty).")
        end = "00:00" if end == "24:00" else end
        if not _TIME.match(start) or not _TIME.match(end):
            return [], _("%(start)s–%(end)s is not a time of day like 08:00.", start=start, end=end)
        begin, finish = _minutes(start), _minutes(end) or 24 * 60
        if finish <= begin:
            return [], _(
                "The opening time %(start)s–%(end)s ends before it starts.", start=start, end=end
            )
        label = f"{start[:5]}-{'24:00' if finish == 24 * 60 else end[:5]}"
        shifts.append((begin, finish, label))
    shifts.sort()
    for (_b1, end1, first), (begin2, _e2, second) in zip(shifts, shifts[1:], strict=False):
        if begin2 < end1:
            return [], _(
                "The opening times %(first)s and %(second)s overlap.",
                first=first.replace("-", "–"),
                second=second.replace("-", "–"),
            )
    return [label for _b, _e, label in shifts], None


def read_week(form: Mapping[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Every day present in ``form`` -> its intervals; and day -> German error.

    Days the form does not mention at all are left out (the caller keeps them).
    """
    week: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for day in WEEKDAYS:
        rows = _day_rows(form, day)
        if rows is None:
            if day not in form:
                continue
            rows = _legacy_rows(str(form[day]))
        intervals, error = check_day(rows)
        if error is not None:
            errors[day] = error
        else:
            week[day] = intervals
    return week, errors


def posted_rows(form: Mapping[str, str], day: str) -> list[tuple[str, str]] | None:
    """What the admin typed for ``day`` (to show again after an error), or None."""
    rows = _day_rows(form, day)
    if rows is None and day in form:
        rows = _legacy_rows(str(form[day]))
    return rows


def rows_for_page(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The rows to render: the day's shifts plus one empty row, at least :data:`MIN_ROWS`."""
    filled = [r for r in rows if r[0] or r[1]]
    return filled + [("", "")] * max(1, MIN_ROWS - len(filled))
