"""The one CSV writer of mailgate: every export goes through it, so no cell runs as a formula.

Mail content is written by strangers (customer names, messages, subjects, an OEM's
campaign line) and ends up in a salesperson's Excel or LibreOffice.  A spreadsheet
takes a cell that starts with ``=``, ``+``, ``-`` or ``@`` for a formula — also a DDE
payload such as ``=cmd|' /C calc'!A0`` — and some do so after leading blanks or
quotes, or for the full-width forms ``＝＋－＠`` (they normalise them).  Following
OWASP's CSV-injection guidance, such a cell gets a leading ``'``: the spreadsheet
shows the text, nothing is evaluated, and a reader sees exactly what was written
after that one character.  Tab and carriage return at the start count as well.

Every cell is defused this way, numbers included: a negative number in an export
reads as text (``'-5``), as the lead list's CSV has always documented.  Exports
write counts and German decimals, which are never negative, so nothing is lost.

The files are for German Excel: ``;`` separated, UTF-8 with a BOM (Excel guesses
the encoding from it), CRLF line ends; the csv module quotes separators, quotes
and line breaks inside a cell, so a cell never spills into the next one.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator

BOM = "\ufeff"
DELIMITER = ";"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What a spreadsheet may skip before it looks for a formula: blanks, line breaks,
# invisible format characters (zero-width space, BOM) and quote marks.
_QUOTES = frozenset("\"'`´‘’‚‛“”„‟′″«»‹›")
_TRIGGERS = frozenset("=+-@")


def _skippable(char: str) -> bool:
    if char.isspace() or char in _QUOTES:
        return True
    category = unicodedata.category(char)
    return category.startswith(("Z", "C"))  # separators, control and format characters


def is_formula(value: str) -> bool:
    """True if a spreadsheet could evaluate ``value`` (so it must be defused).

    The first character that is not a blank, an invisible character or a quote is
    compared after Unicode compatibility normalisation (NFKC), which maps the
    full-width and small forms (``＝``, ``﹦``, ``＋``, ``－``, ``＠``) to ASCII;
    the minus sign ``−`` counts as a minus.
    """
    if value.startswith(FORMULA_START):
        return True
    for char in value:
        if _skippable(char):
            continue
        normal = unicodedata.normalize("NFKC", char)[:1]
        return normal in _TRIGGERS or char == "\u2212"
    return False


def defuse(value: str) -> str:
    """The cell text, with a leading ``'`` if a spreadsheet would take it for a formula."""
    return "'" + value if is_formula(value) else value


def cell(value: object) -> str:
    """Any value as defused cell text (``None`` is an empty cell)."""
    return defuse("" if value is None else str(value))


def csv_lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The file as chunks of text, BOM first, one chunk per row (for a streamed download)."""
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=DELIMITER, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
    )
    yield BOM
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell(v) for v in row])
        yield buffer.getvalue()


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """The whole file as one string (for small exports built in memory)."""
    return "".join(csv_lines(rows))
