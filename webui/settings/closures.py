"""Company closures as date-range rows: ``closure-<n>-from`` / ``-until`` / ``-delete``.

Stored as ``holidays.closures`` strings, ``"2026-12-24"`` for one day and
``"2026-12-24..2026-12-31"`` for a range — what the working-time calendar reads.
The page shows each stored closure as a row with a delete box and one empty row
for a new one; :func:`read_rows` checks them in German before anything is saved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from flask_babel import gettext as _

from ..input_limits import FIRST_DAY, LAST_DAY

_ROW = re.compile(r"^closure-(\d{1,4})-(from|until|delete)$")


def stored_to_rows(closures: list[str]) -> list[tuple[str, str]]:
    """``["2026-12-24..2026-12-31", "2026-05-15"]`` -> ``[(from, until), (day, day)]``."""
    rows = []
    for closure in closures:
        first, _sep, last = closure.partition("..")
        rows.append((first.strip(), (last or first).strip()))
    return rows


def _day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY and len(text) == 10 else None


def check_row(first: str, last: str) -> tuple[str | None, str | None]:
    """(stored closure, None) or (None, German error) for one from/until pair."""
    start = _day(first)
    if start is None:
        return None, _("Pick the first closed day (a date like 24.12.2026).")
    end = _day(last) if last else start
    if end is None:
        return None, _("The last closed day is not a date.")
    if end < start:
        return None, _("The last closed day is before the first.")
    if (end - start).days > 366:
        return None, _("A closure can last at most a year.")
    return (start.isoformat() if end == start else f"{start}..{end}"), None


def read_rows(form: Mapping[str, str]) -> tuple[list[str] | None, list[tuple[int, str]]]:
    """The closures posted as rows (None when the form has none) and (row number, error)."""
    indexes = sorted({int(m.group(1)) for name in form if (m := _ROW.match(name))})
    if not indexes:
        return None, []
    closures: list[str] = []
    errors: list[tuple[int, str]] = []
    for position, index in enumerate(indexes, start=1):
        first = str(form.get(f"closure-{index}-from", "")).strip()
        last = str(form.get(f"closure-{index}-until", "")).strip()
        if form.get(f"closure-{index}-delete") or not (first or last):
            continue
        closure, error = check_row(first, last)
        if error is not None:
            errors.append((position, error))
        elif closure not in closures:
            closures.append(closure)
    return closures, errors


def posted_rows(form: Mapping[str, str]) -> list[tuple[str, str]]:
    """The rows as typed (to show again after an error), without deleted ones."""
    indexes = sorted({int(m.group(1)) for name in form if (m := _ROW.match(name))})
    return [
        (str(form.get(f"closure-{i}-from", "")), str(form.get(f"closure-{i}-until", "")))
        for i in indexes
        if not form.get(f"closure-{i}-delete")
        and (form.get(f"closure-{i}-from") or form.get(f"closure-{i}-until"))
    ]
