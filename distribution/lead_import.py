"""Leads from a file (seed 004's standard lead import): read, map the columns, check each row.

A dealer exports leads from an event tool, a call centre or an old CRM into a
spreadsheet and wants them worked like every other lead.  This module is the
pure part: it decodes the CSV (UTF-8 with or without BOM, or Windows-1252 as
German Excel writes it; ``;``, ``,`` or tab), guesses which column is which from
German and English headers, and turns each row into a :class:`ManualLead` or
a list of problems.  Nothing here touches the database: the caller shows the
report, and :mod:`.lead_import_apply` creates the leads the person confirmed.

An imported file is outside input: its size, row and column counts and cell
lengths are bounded before anything else, a NUL byte or undecodable text is a
clear error, and a cell is only ever data (the CSV *export* guards against
formula injection; here a leading ``=`` is just a character).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from . import matching
from .manual import KINDS, ManualLead

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 2000
MAX_COLUMNS = 60
MAX_CELL = 4000
IGNORE = ""  # the mapping of a column nobody wants

# Target field -> header spellings (compared folded: lower case, no accents, no punctuation).
HEADERS: dict[str, tuple[str, ...]] = {
    "salutation": ("anrede", "salutation", "title of address"),
    "title": ("titel", "title", "akademischer titel"),
    "first_name": ("vorname", "first name", "firstname", "given name", "forename"),
    "last_name": ("nachname", "familienname", "last name", "lastname", "surname"),
    "name": ("name", "kunde", "kundenname", "full name", "customer", "customer name"),
    "email": ("email", "e mail", "mail", "e mail adresse", "email address", "mail adresse"),
    "phone": (
        "telefon",
        "tel",
        "telefonnummer",
        "phone",
        "phone number",
        "mobil",
        "handy",
        "mobile",
        "rufnummer",
    ),
    "street": ("strasse", "str", "street", "adresse", "address", "strasse und hausnummer"),
    "postcode": ("plz", "postleitzahl", "postcode", "zip", "zip code", "postal code"),
    "city": ("ort", "stadt", "wohnort", "city", "town"),
    "country": ("land", "country"),
    "birth_date": ("geburtsdatum", "geboren", "date of birth", "birth date", "birthday"),
    "make": ("marke", "hersteller", "fabrikat", "make", "brand", "manufacturer"),
    "model": ("modell", "model", "fahrzeug", "vehicle", "typ"),
    "price": ("preis", "price", "kaufpreis", "betrag"),
    "kind": ("art", "leadart", "lead art", "anfrageart", "kind", "type", "lead type"),
    "origin": ("quelle", "herkunft", "source", "origin", "lead quelle"),
    "origin_detail": ("kampagne", "aktion", "veranstaltung", "campaign", "event"),
    "remark": (
        "bemerkung",
        "nachricht",
        "kommentar",
        "anmerkung",
        "notiz",
        "remark",
        "message",
        "comment",
        "notes",
    ),
    "external_id": (
        "id",
        "lead id",
        "leadid",
        "lead nr",
        "lead nummer",
        "externe id",
        "external id",
        "referenz",
        "reference",
    ),
}
FIELDS = tuple(HEADERS)
# Columns holding a source's stored code (``mailgate leads`` CSV export), preferred to "Quelle".
CODE_HEADERS = frozenset({"quellencode", "sourcecode"})
CUSTOMER_COLUMNS = (
    "name",
    "salutation",
    "title",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
    "country",
    "birth_date",
)
# German and English words for the lead kinds a file may use.
KIND_WORDS = {
    "anfrage": "inquiry",
    "angebotsanfrage": "inquiry",
    "inquiry": "inquiry",
    "probefahrt": "test_drive",
    "test drive": "test_drive",
    "inzahlungnahme": "trade_in",
    "trade in": "trade_in",
    "finanzierung": "financing",
    "financing": "financing",
    "service": "service",
    "werkstatt": "service",
    "sonstiges": "other",
    "other": "other",
}
_PUNCT = re.compile(r"[^a-z0-9]+")


class ImportFileError(ValueError):
    """The file as a whole cannot be read (size, encoding, shape).

    ``code`` names the reason and ``params`` its numbers, so the web UI says it in
    the reader's language; ``str()`` is the English line for the CLI and the logs.
    """

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Problem:
    """Why a row (or the mapping) cannot be imported: a code and the value concerned."""

    code: str
    value: str = ""


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]  # each as long as headers


@dataclass
class RowResult:
    line: int  # the row's line in the file (the header is line 1)
    lead: ManualLead | None
    external_id: str = ""
    problems: list[Problem] = field(default_factory=list)


def fold(text: str) -> str:
    """A header as compared: lower case, umlauts spelt out, accents and punctuation gone."""
    text = text.strip().lower().replace("ß", "ss")
    for umlaut, spelt in (("ä", "a"), ("ö", "o"), ("ü", "u")):
        text = text.replace(umlaut, spelt)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _PUNCT.sub(" ", text).strip()


def read_table(data: bytes) -> Table:
    """The CSV's header and rows, or :class:`ImportFileError` with the reason."""
    if not data.strip():
        raise ImportFileError("empty", "the file is empty")
    if len(data) > MAX_BYTES:
        raise ImportFileError(
            "too_large",
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB",
            mb=MAX_BYTES // (1024 * 1024),
        )
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")) or b"\x00" in data:  # XLSX, XLS
        raise ImportFileError("binary", "not a CSV text file (an Excel workbook or binary data)")
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=";,\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ";" if text.split("\n", 1)[0].count(";") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if len(rows) > MAX_ROWS:
                raise ImportFileError(
                    "rows", f"more than {MAX_ROWS} rows: please split the file", n=MAX_ROWS
                )
            if len(row) > MAX_COLUMNS:
                raise ImportFileError(
                    "columns",
                    f"more than {MAX_COLUMNS} columns in line {len(rows) + 1}",
                    n=MAX_COLUMNS,
                    line=len(rows) + 1,
                )
            if any(len(cell) > MAX_CELL for cell in row):
                raise ImportFileError(
                    "cell",
                    f"a cell in line {len(rows) + 1} is over {MAX_CELL} characters",
                    n=MAX_CELL,
                    line=len(rows) + 1,
                )
            if any(cell.strip() for cell in row):
                rows.append([cell.strip() for cell in row])
    except csv.Error as exc:
        raise ImportFileError("csv", f"not a readable CSV file ({exc})") from None
    if not rows:
        raise ImportFileError("empty", "the file is empty")
    headers, body = rows[0], rows[1:]
    if not body:
        raise ImportFileError("no_rows", "the file has a header line but no leads")
    width = len(headers)
    return Table(headers, [(row + [""] * width)[:width] for row in body])


def table_as_json(table: Table) -> str:
    """The table as the import's later steps carry it in the form (whatever was uploaded)."""
    return json.dumps({"headers": table.headers, "rows": table.rows}, ensure_ascii=False)


def table_from_json(text: str) -> Table:
    """The table a form carried back; checked like an upload (a tampered field gains nothing)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES * 2:
        raise ImportFileError("too_large", "the file is too large", mb=MAX_BYTES // (1024 * 1024))
    try:
        data = json.loads(text)
        headers, rows = data["headers"], data["rows"]
    except (ValueError, TypeError, KeyError):
        raise ImportFileError("csv", "the carried file is not readable") from None
    table = [headers, *rows] if isinstance(headers, list) and isinstance(rows, list) else None
    if table is None or not all(
        isinstance(row, list) and all(isinstance(cell, str) for cell in row) for row in table
    ):
        raise ImportFileError("csv", "the carried file is not readable")
    if len(rows) > MAX_ROWS:
        raise ImportFileError("rows", f"more than {MAX_ROWS} rows", n=MAX_ROWS)
    for number, row in enumerate(table, start=1):
        if len(row) > MAX_COLUMNS:
            raise ImportFileError("columns", "too many columns", n=MAX_COLUMNS, line=number)
        if any(len(cell) > MAX_CELL or "\x00" in cell for cell in row):
            raise ImportFileError("cell", "a cell is too long", n=MAX_CELL, line=number)
    if not rows:
        raise ImportFileError("no_rows", "the file has a header line but no leads")
    width = len(headers)
    return Table(headers, [(row + [""] * width)[:width] for row in rows])


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")  # German Excel's "CSV (Trennzeichen-getrennt)"
    except UnicodeDecodeError:
        raise ImportFileError(
            "encoding", "the file is neither UTF-8 nor Windows-1252 text"
        ) from None


def guess_mapping(headers: Sequence[str]) -> list[str]:
    """For each column the field its header names, or :data:`IGNORE`; each field once."""
    # compared without spaces: "E-Mail-Adresse", "E-mail address" and "Emailadresse" alike
    spellings = {
        spelling.replace(" ", ""): name for name, words in HEADERS.items() for spelling in words
    }
    folded = [fold(header).replace(" ", "") for header in headers]
    # mailgate's own CSV export has "Quelle" (a display name) and "Quellen-Code" (the code):
    # a re-import reads the code, wherever the two columns stand
    taken: set[str] = {"origin"} if any(h in CODE_HEADERS for h in folded) else set()
    mapping = []
    for header in folded:
        name = "origin" if header in CODE_HEADERS else spellings.get(header, IGNORE)
        if name in taken and header not in CODE_HEADERS:
            name = IGNORE
        taken.add(name)
        mapping.append(name)
    return mapping


def check_mapping(mapping: Sequence[str], width: int) -> list[Problem]:
    """Problems of a chosen mapping (unknown fields, a field twice, no contact column)."""
    if len(mapping) != width:
        return [Problem("mapping_width")]
    chosen = [name for name in mapping if name != IGNORE]
    problems = [Problem("unknown_field", name) for name in sorted(set(chosen) - set(FIELDS))]
    problems += [
        Problem("field_twice", name) for name in sorted({n for n in chosen if chosen.count(n) > 1})
    ]
    if not {"email", "phone", "last_name", "name"} & set(chosen):
        problems.append(Problem("no_contact_column"))
    return problems


def rows_to_leads(
    table: Table, mapping: Sequence[str], *, default_origin: str, imported_from: str
) -> list[RowResult]:
    """Each row as a lead to create, or the problems that keep it out."""
    results = []
    for number, row in enumerate(table.rows, start=2):
        values = {name: cell for name, cell in zip(mapping, row, strict=True) if name != IGNORE}
        results.append(lead_from_values(number, values, default_origin, imported_from))
    return results


def lead_from_values(
    line: int, values: Mapping[str, str], default_origin: str, imported_from: str
) -> RowResult:
    """One lead's field values (a row, or an API request) as a lead, or its problems."""
    problems: list[Problem] = []
    customer: dict[str, object] = {
        name: values[name] for name in CUSTOMER_COLUMNS if values.get(name)
    }
    if "email" in customer and matching.normalise_email(str(customer["email"])) is None:
        problems.append(Problem("email", str(customer["email"])))
    if values.get("birth_date"):
        born = _date(values["birth_date"])
        if born is None:
            problems.append(Problem("birth_date", values["birth_date"]))
        customer["birth_date"] = born
    if not any(customer.get(name) for name in ("email", "phone", "last_name", "name")):
        problems.append(Problem("no_contact"))
    kind = "inquiry"
    if values.get("kind"):
        found = KIND_WORDS.get(fold(values["kind"])) or (
            values["kind"] if values["kind"] in KINDS else None
        )
        if found is None:
            problems.append(Problem("kind", values["kind"]))
        else:
            kind = found
    origin = values.get("origin") or default_origin
    if not origin.strip():
        problems.append(Problem("no_origin"))
    vehicle = {name: values[name] for name in ("make", "model", "price") if values.get(name)}
    external_id = values.get("external_id", "")[:64]
    if problems:
        return RowResult(line, None, external_id, problems)
    lead = ManualLead(
        customer=customer,
        origin=origin[:64],
        origin_detail=values.get("origin_detail", "")[:128],
        kind=kind,
        vehicle=vehicle,
        remark=values.get("remark", ""),
        external_id=external_id,
        imported_from=imported_from[:120],
    )
    return RowResult(line, lead, external_id)


def _date(text: str) -> date | None:
    for pattern in ("%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%y"):
        try:
            parsed = datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
        return parsed if 1900 <= parsed.year <= 2100 else None
    return None
