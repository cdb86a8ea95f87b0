"""CSV for German Excel: ``;`` separated, UTF-8 with BOM, German dates and decimal commas.

Excel guesses the encoding from the BOM and the separator from the locale
(German: ``;``), so a double click opens the file with umlauts and columns
intact.  Cells that Excel would read as a formula (starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return) get a leading ``'``: mail content is
written by strangers and must not run as a formula on a salesperson's PC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: str) -> str:
    """The cell text, with a leading ``'`` if Excel would take it for a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def german_datetime(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%d.%m.%Y %H:%M") if value else ""


def german_number(value: float | int | None, decimals: int = 2) -> str:
    """``1234.5`` -> ``1234,50`` (no thousands separator: Excel parses it as a number)."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.{decimals}f}".replace(".", ",")


def cell(value: object) -> str:
    return defuse("" if value is None else str(value))


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The file as chunks of text (BOM first), for a streamed download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([cell(h) for h in header])
    yield BOM + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell(v) for v in row])
        yield buffer.getvalue()
