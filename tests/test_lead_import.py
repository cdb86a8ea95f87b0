"""Lead import from a CSV file (issue 20 item 15, seed 004's standard lead import).

The file is outside input: every cut, encoding and shape must end in a German
message and no lead, never a 500.  A valid file's leads are distributed like
manual ones; the source's own id makes a second upload harmless; the duplicate
decision (update / keep / new) applies to identifying matches only.  Both databases.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.distribution.lead_import import (
    IGNORE,
    MAX_COLUMNS,
    MAX_ROWS,
    ImportFileError,
    check_mapping,
    guess_mapping,
    read_table,
    rows_to_leads,
)
from mailgate.models import Customer, Lead, ProtocolEntry

from .distribution_helpers import form_mail, ingest
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    CHEF,
    app_fixture,
    team_fixture,
)
from .webui_helpers import csrf_token, logged_in

PAGE = "/leads/import"
GOOD = (
    "Vorname;Nachname;E-Mail;Telefon;PLZ;Marke;Modell;Bemerkung;Lead-ID\r\n"
    "Karla;Kundin;karla.kundin@kunden.example;0171 5550101;80331;VW;Golf;Probefahrt?;EV-1\r\n"
    "Otto;Ohnemail;;089 1234567;80335;Opel;Corsa;;EV-2\r\n"
    "Fritz;Falsch;kein-at-zeichen;;;;;;EV-3\r\n"
    'Jörg;Müller;joerg.mueller@kunden.example;;;Škoda;Octavia;=HYPERLINK("x");EV-4\r\n'
)


# --- the pure part ------------------------------------------------------------------------------


def test_german_excel_files_are_read_and_their_columns_recognised() -> None:
    """German Excel writes Windows-1252 with ";"; others write UTF-8 (BOM or not) with ","."""
    for data in (
        GOOD.encode("cp1252", "replace"),
        GOOD.encode("utf-8"),
        b"\xef\xbb\xbf" + GOOD.encode("utf-8"),
        GOOD.replace(";", ",").encode("utf-8"),
        GOOD.replace(";", "\t").encode("utf-8"),
    ):
        table = read_table(data)
        assert table.headers[0] == "Vorname" and len(table.rows) == 4
        mapping = guess_mapping(table.headers)
        assert mapping == [
            "first_name",
            "last_name",
            "email",
            "phone",
            "postcode",
            "make",
            "model",
            "remark",
            "external_id",
        ]
    english = guess_mapping(["First Name", "Surname", "E-mail address", "Mobile", "ZIP", "Notes"])
    assert english == ["first_name", "last_name", "email", "phone", "postcode", "remark"]
    assert guess_mapping(["Name", "Kunde", "Foo"]) == ["name", IGNORE, IGNORE]  # each field once
    # mailgate's own export: "Quelle" is the display name, "Quellen-Code" the code to re-import
    exported = guess_mapping(["Quelle", "E-Mail", "Quellen-Code"])
    assert exported == [IGNORE, "email", "origin"]
    assert guess_mapping(["Source code", "Quelle"]) == ["origin", IGNORE]
    assert guess_mapping(["Quelle", "E-Mail"]) == ["origin", "email"]


def test_rows_become_leads_or_say_why_not() -> None:
    table = read_table(GOOD.encode())
    rows = rows_to_leads(
        table, guess_mapping(table.headers), default_origin="Herbstmesse", imported_from="x.csv"
    )
    assert [r.line for r in rows] == [2, 3, 4, 5]
    karla, otto, fritz, joerg = rows
    assert karla.lead is not None and karla.lead.origin == "Herbstmesse"
    assert karla.lead.external_id == "EV-1" and karla.lead.vehicle == {
        "make": "VW",
        "model": "Golf",
    }
    assert otto.lead is not None and "email" not in otto.lead.customer
    assert fritz.lead is None and [p.code for p in fritz.problems] == ["email"]
    assert joerg.lead is not None and joerg.lead.remark == '=HYPERLINK("x")'  # data, not a formula
    assert [p.code for p in check_mapping([IGNORE, "make", "make"], 3)] == [
        "field_twice",
        "no_contact_column",
    ]
    assert [p.code for p in check_mapping(["__class__", "email"], 2)] == ["unknown_field"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"  \r\n ", "empty"),
        (b"Vorname;Nachname\r\n", "no_rows"),
        (b"PK\x03\x04\x14\x00\x00\x00", "binary"),  # an XLSX (a zip)
        (b"x" * (2 * 1024 * 1024 + 1), "too_large"),
        (b"E-Mail\n" + b"a@b.example\n" * (MAX_ROWS + 1), "rows"),
        (b";" * MAX_COLUMNS + b"\nx\n", "columns"),
        (b"E-Mail;Bemerkung\na@b.example;" + b"y" * 5000 + b"\n", "cell"),
        (b"E-Mail\n\x81\x8d\x8f\x90\x9d\n", "encoding"),  # undefined in Windows-1252 too
    ],
)
def test_a_file_that_cannot_be_read_says_why(data: bytes, code: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        read_table(data)
    assert caught.value.code == code


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000) | st.text(max_size=1500).map(lambda t: t.encode("utf-8")))
def test_any_bytes_give_a_table_or_a_reason(data: bytes) -> None:
    try:
        table = read_table(data)
    except ImportFileError:
        return
    mapping = guess_mapping(table.headers)
    for row in rows_to_leads(table, mapping, default_origin="Import", imported_from="f.csv"):
        assert (row.lead is None) == bool(row.problems)


# --- through the web UI -------------------------------------------------------------------------


def upload(client: FlaskClient, data: bytes, **form: str) -> str:
    """Step 1: the file; returns the preview page."""
    token = csrf_token(client, PAGE)
    fields = {"origin": "Herbstmesse", "duplicates": "keep", **form}
    response = client.post(
        PAGE,
        data={**fields, "csrf_token": token, "file": (io.BytesIO(data), "messe.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code in (200, 400), response.status_code
    assert "Traceback" not in page
    return page


def confirm(client: FlaskClient, preview: str, **changes: str) -> str:
    """Step 2: post the preview form back as the browser would (with ``changes``)."""
    fields = dict(re.findall(r'name="(content|filename|csrf_token)"[^>]*value="([^"]*)"', preview))
    fields = {k: _unescape(v) for k, v in fields.items()}
    for i, name in re.findall(
        r'<select name="map-(\d+)".*?<option value="([^"]*)" selected', preview, re.S
    ):
        fields[f"map-{i}"] = name
    fields.update({"origin": "Herbstmesse", "duplicates": "keep", "action": "import"}, **changes)
    response = client.post(PAGE, data=fields)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _unescape(value: str) -> str:
    import html

    return html.unescape(value)


def test_an_admin_imports_a_file_and_a_second_upload_changes_nothing(
    team: sessionmaker[Session], app: Flask
) -> None:
    admin = logged_in(app, ADA)
    preview = upload(admin, GOOD.encode("cp1252", "replace"))
    assert "Leads importieren: Spalten prüfen" in preview
    assert "3 Zeilen können importiert werden." in preview
    assert "Zeile 4: Keine E-Mail-Adresse: kein-at-zeichen" in preview
    done = confirm(admin, preview)
    assert "3 Leads angelegt." in done and "1 Zeile wurde ausgelassen." in done
    with team() as session:
        leads = session.scalars(select(Lead).where(Lead.parser == "import").order_by(Lead.id)).all()
        assert [(lead.source, lead.source_ref) for lead in leads] == [
            ("Herbstmesse", "EV-1"),
            ("Herbstmesse", "EV-2"),
            ("Herbstmesse", "EV-4"),
        ]
        assert all(lead.assignee_id is not None for lead in leads)  # distributed
        assert leads[2].message == '=HYPERLINK("x")'
        assert leads[2].customer is not None and leads[2].customer.last_name == "Müller"
        protocol = session.scalar(
            select(ProtocolEntry.detail).where(ProtocolEntry.lead_id == leads[0].id)
        )
        assert (
            protocol is not None and "imported by ada@autohaus.example from messe.csv" in protocol
        )
    again = confirm(admin, upload(admin, GOOD.encode("utf-8")))
    assert "0 Leads angelegt." in again
    assert "3 Zeilen wurden schon früher importiert: nichts Neues." in again
    with team() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 3


@pytest.mark.parametrize(("policy", "phone"), [("keep", "089 111"), ("update", "0171 5550101")])
def test_the_duplicate_decision_applies_to_known_customers(
    team: sessionmaker[Session], app: Flask, policy: str, phone: str
) -> None:
    with team() as session:
        session.add(
            Customer(name="Karla Kundin", email="karla.kundin@kunden.example", phone="089 111")
        )
        session.commit()
    admin = logged_in(app, ADA)
    confirm(admin, upload(admin, GOOD.encode()), duplicates=policy)
    with team() as session:
        karlas = session.scalars(
            select(Customer).where(Customer.email == "karla.kundin@kunden.example")
        ).all()
        assert len(karlas) == 1 and karlas[0].phone == phone
    confirm(admin, upload(admin, GOOD.replace("EV-", "NEU-").encode()), duplicates="new")
    with team() as session:
        count = select(func.count()).select_from(Customer)
        assert session.scalar(count.where(Customer.email == "karla.kundin@kunden.example")) == 2


def test_a_mapping_the_admin_changes_is_checked_again(
    team: sessionmaker[Session], app: Flask
) -> None:
    admin = logged_in(app, ADA)
    preview = upload(admin, GOOD.encode())
    page = confirm(admin, preview, **{"map-0": "make", "map-5": "make", "action": "preview"})
    assert "Marke ist für mehr als eine Spalte gewählt." in page
    page = confirm(admin, preview, **{"map-2": "__globals__"})
    assert "Unbekanntes Feld: __globals__." in page
    with team() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04", "Die Excel-Datei lässt sich nicht lesen"),
        (b"\x00\x01binary", "weder eine CSV-Textdatei noch eine Excel-Arbeitsmappe"),
        (b"", "Die Datei ist leer."),
        (b"Vorname;Nachname\r\n", "Die Datei hat eine Kopfzeile, aber keine Leads."),
        (b"Marke;Modell\r\nVW;Golf\r\n", "Bitte eine Spalte für E-Mail-Adresse"),
    ],
)
def test_bad_files_get_a_german_answer_and_no_lead(
    team: sessionmaker[Session], app: Flask, data: bytes, message: str
) -> None:
    admin = logged_in(app, ADA)
    page = upload(admin, data)
    assert message in page
    with team() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0


def test_a_tampered_content_field_is_checked_like_an_upload(
    team: sessionmaker[Session], app: Flask
) -> None:
    admin = logged_in(app, ADA)
    token = csrf_token(admin, PAGE)
    huge = json.dumps({"headers": ["E-Mail"], "rows": [["a@b.example"]] * (MAX_ROWS + 5)})
    odd = json.dumps({"headers": ["E-Mail"], "rows": [[{"__class__": 1}]]})
    for content, message in (
        (huge, "mehr als 2.000 Zeilen"),
        ("E-Mail\na@b.example\n", "lässt sich nicht als CSV lesen"),  # not what a step carries
        (odd, "lässt sich nicht als CSV lesen"),
        ("E-Mail\n\x00\n", "NUL-Zeichen"),
    ):
        response = admin.post(
            PAGE,
            data={"csrf_token": token, "content": content, "origin": "X", "action": "import"},
        )
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    with team() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0


def test_only_admins_import(team: sessionmaker[Session], app: Flask) -> None:
    ingest(team, form_mail(1))
    for email in (ANNA, CHEF):
        client = logged_in(app, email)
        assert client.get(PAGE).status_code == 403
        assert 'id="import-leads"' not in client.get("/leads").get_data(as_text=True)
    admin = logged_in(app, ADA)
    assert 'id="import-leads"' in admin.get("/leads").get_data(as_text=True)
    anonymous = app.test_client()
    assert anonymous.get(PAGE).status_code == 302


# --- Excel workbooks ----------------------------------------------------------------------------


def workbook(rows: list[list[object]]) -> bytes:
    """An .xlsx as Excel writes it (openpyxl), first sheet only."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_excel_workbook_reads_like_its_csv() -> None:
    from datetime import datetime

    from mailgate.distribution.lead_workbook import read_workbook

    data = workbook(
        [
            ["Vorname", "Nachname", "E-Mail", "Geburtsdatum", "Preis", "Lead-ID", None],
            ["Jörg", "Müller", "joerg@kunden.example", datetime(1980, 5, 17), 28490.0, 4711],
            ["Ilse", "Ömer", None, None, None, "EV-2"],
        ]
    )
    table = read_workbook(data)
    assert table.headers == ["Vorname", "Nachname", "E-Mail", "Geburtsdatum", "Preis", "Lead-ID"]
    assert table.rows[0] == [
        "Jörg",
        "Müller",
        "joerg@kunden.example",
        "1980-05-17",
        "28490",
        "4711",
    ]
    rows = rows_to_leads(
        table, guess_mapping(table.headers), default_origin="Messe", imported_from="x.xlsx"
    )
    assert rows[0].lead is not None and rows[0].lead.customer["birth_date"].year == 1980
    assert rows[1].lead is not None and rows[1].lead.external_id == "EV-2"


def test_a_zip_bomb_or_an_old_xls_is_refused_before_it_is_unpacked() -> None:
    import zipfile

    from mailgate.distribution.lead_workbook import read_workbook

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"<" * (80 * 1024 * 1024))
    with pytest.raises(ImportFileError) as caught:
        read_workbook(bomb.getvalue())
    assert caught.value.code == "xlsx"
    for data, code in (
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "xls"),
        (b"PK\x03\x04junk", "xlsx"),
    ):
        with pytest.raises(ImportFileError) as caught:
            read_workbook(data)
        assert caught.value.code == code


def test_an_admin_imports_an_excel_file(team: sessionmaker[Session], app: Flask) -> None:
    admin = logged_in(app, ADA)
    data = workbook(
        [
            ["Vorname", "Nachname", "E-Mail", "Telefon", "Marke", "Modell", "Lead-ID"],
            ["Karla", "Kundin", "karla.kundin@kunden.example", "0171 5550101", "VW", "Golf", "X-1"],
        ]
    )
    token = csrf_token(admin, PAGE)
    response = admin.post(
        PAGE,
        data={
            "csrf_token": token,
            "origin": "Herbstmesse",
            "duplicates": "keep",
            "file": (io.BytesIO(data), "messe.xlsx"),
        },
        content_type="multipart/form-data",
    )
    preview = response.get_data(as_text=True)
    assert response.status_code == 200 and "1 Zeile kann importiert werden." in preview
    done = confirm(admin, preview)
    assert "1 Lead angelegt." in done
    with team() as session:
        lead = session.scalar(select(Lead).where(Lead.source_ref == "X-1"))
        assert lead is not None and lead.vehicle == {"make": "VW", "model": "Golf"}
