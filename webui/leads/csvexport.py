"""The lead list's CSV for German Excel: German dates and decimal commas.

The file itself — ``;`` separated, UTF-8 with BOM, every cell defused so that
nothing a customer wrote runs as a formula — comes from :mod:`mailgate.csv_safe`,
the one CSV writer of every export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from mailgate.csv_safe import BOM, FORMULA_START, cell, defuse
from mailgate.csv_safe import csv_lines as _file_lines

__all__ = [
    "BOM",
    "FORMULA_START",
    "cell",
    "csv_lines",
    "defuse",
    "german_datetime",
    "german_number",
]


def german_datetime(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%d.%m.%Y %H:%M") if value else ""


def german_number(value: float | int | None, decimals: int = 2) -> str:
    """``1234.5`` -> ``1234,50`` (no thousands separator: Excel parses it as a number)."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.{decimals}f}".replace(".", ",")


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The file as chunks of text (BOM first), for a streamed download."""
    return _file_lines(_with_header(header, rows))


def _with_header(
    header: Iterable[str], rows: Iterable[Iterable[object]]
) -> Iterator[Iterable[object]]:
    yield list(header)
    yield from rows
