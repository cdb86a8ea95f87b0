"""Leads from an Excel workbook (.xlsx): its first sheet as the same table a CSV gives.

Dealers keep their event and call-centre lists in Excel; asking them to export
CSV first loses umlauts and dates on the way.  openpyxl reads the workbook
(read-only, values not formulas); this module only bounds what it may cost and
turns cells into the text :mod:`.lead_import` checks.

An .xlsx is a zip archive of XML, so a small upload can unpack into gigabytes
(a zip bomb): the archive's declared sizes are checked before openpyxl opens
it, and rows, columns and cell lengths stop at the CSV reader's limits.  The
old binary .xls format is refused with the advice to save as .xlsx or CSV.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time
from typing import Any

from .lead_import import MAX_CELL, MAX_COLUMNS, MAX_ROWS, ImportFileError, Table

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"
MAX_UNPACKED = 64 * 1024 * 1024  # all members of the archive together, as declared
MAX_RATIO = 200  # unpacked / packed: spreadsheets compress 5-20 times, bombs far more


def is_workbook(data: bytes) -> bool:
    return data.startswith((XLSX_MAGIC, XLS_MAGIC))


def read_workbook(data: bytes) -> Table:
    """The first sheet's header and rows, or :class:`ImportFileError` with the reason."""
    if data.startswith(XLS_MAGIC):
        raise ImportFileError("xls", "an old Excel file (.xls): save it as .xlsx or CSV")
    _check_archive(data)
    from openpyxl import load_workbook  # only an import of a workbook needs it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise ImportFileError(
            "xlsx", f"not a readable Excel workbook ({type(exc).__name__})"
        ) from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise ImportFileError("empty", "the workbook has no sheet")
        rows = _rows(sheet.iter_rows(values_only=True))
    finally:
        book.close()
    if not rows:
        raise ImportFileError("empty", "the file is empty")
    headers, body = rows[0], rows[1:]
    if not body:
        raise ImportFileError("no_rows", "the file has a header line but no leads")
    width = len(headers)
    return Table(headers, [(row + [""] * width)[:width] for row in body])


def _check_archive(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ImportFileError("xlsx", "not a readable Excel workbook (a damaged archive)") from None
    with archive:
        unpacked = sum(member.file_size for member in archive.infolist())
        packed = sum(member.compress_size for member in archive.infolist()) or 1
    if unpacked > MAX_UNPACKED or unpacked / packed > MAX_RATIO:
        raise ImportFileError("xlsx", "the workbook unpacks to far more than a lead list")


def _rows(values: Any) -> list[list[str]]:
    rows: list[list[str]] = []
    for number, row in enumerate(values, start=1):
        cells = [_text(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()  # Excel pads rows with empty formatted cells
        if len(cells) > MAX_COLUMNS:
            raise ImportFileError(
                "columns",
                f"more than {MAX_COLUMNS} columns in line {number}",
                n=MAX_COLUMNS,
                line=number,
            )
        if any(len(cell) > MAX_CELL for cell in cells):
            raise ImportFileError(
                "cell",
                f"a cell in line {number} is over {MAX_CELL} characters",
                n=MAX_CELL,
                line=number,
            )
        if any(cells):
            rows.append(cells)
        if len(rows) > MAX_ROWS + 1:
            raise ImportFileError(
                "rows", f"more than {MAX_ROWS} rows: please split the file", n=MAX_ROWS
            )
    return rows


def _text(value: Any) -> str:
    """A cell as the CSV reader would have seen it: dates ISO, whole numbers without ".0"."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace("\x00", "").strip()
