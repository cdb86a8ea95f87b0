"""Lead import in the browser (seed 004's standard import): upload, check the columns, import.

Three steps on one URL, so nothing is stored between them: the upload is read
and shown with the columns mailgate recognised; the admin corrects the column
mapping, sees which rows would be refused and why, chooses the duplicate
decision, and imports.  The file's text rides along in the form (it is at most
2 MB, and is checked again in full on every step, so a tampered field gains
nothing an upload could not).  Rows are committed one by one: a large file
never holds the database's write lock long, and a row that fails leaves the
others in place; rows with the source's own id are imported once however often
the file is uploaded.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, StringField
from wtforms.validators import DataRequired, Length

from mailgate.distribution.lead_import import (
    FIELDS,
    IGNORE,
    MAX_BYTES,
    ImportFileError,
    Problem,
    Table,
    check_mapping,
    guess_mapping,
    read_table,
    rows_to_leads,
    table_as_json,
    table_from_json,
)
from mailgate.distribution.lead_import_apply import RowOutcome, import_lead
from mailgate.distribution.lead_workbook import is_workbook, read_workbook
from mailgate.models import utcnow

from ..access import admin_required, me
from ..choices import options
from ..context import db, dealer

log = logging.getLogger("mailgate.webui")
bp = Blueprint("lead_import", __name__)
PREVIEW_ROWS = 8
MAX_LISTED_PROBLEMS = 100

FIELD_LABELS: dict[str, Any] = {
    IGNORE: _l("(do not import)"),
    "name": _l("Name (first and last)"),
    "salutation": _l("Salutation"),
    "title": _l("Title"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "street": _l("Street"),
    "postcode": _l("Postcode"),
    "city": _l("City"),
    "country": _l("Country"),
    "birth_date": _l("Date of birth"),
    "make": _l("Make"),
    "model": _l("Model"),
    "price": _l("Price"),
    "kind": _l("Kind"),
    "origin": _l("Origin"),
    "origin_detail": _l("Campaign"),
    "remark": _l("Remark"),
    "external_id": _l("Lead number of the source"),
}
FILE_ERRORS: dict[str, Any] = {
    "empty": _l("The file is empty."),
    "too_large": _l("The file is larger than %(mb)s MB: please split it."),
    "binary": _l("This is neither a CSV text file nor an Excel workbook (.xlsx)."),
    "rows": _l("The file has more than %(n)s rows: please split it."),
    "columns": _l("Line %(line)s has more than %(n)s columns."),
    "cell": _l("A cell in line %(line)s is longer than %(n)s characters."),
    "csv": _l("The file cannot be read as CSV."),
    "no_rows": _l("The file has a header line but no leads."),
    "encoding": _l("The file is neither UTF-8 nor Windows-1252 text."),
    "xls": _l("This is an old Excel file (.xls): please save it as .xlsx or CSV."),
    "xlsx": _l("The Excel file cannot be read (damaged, or far larger than a lead list)."),
}
PROBLEMS: dict[str, Any] = {
    "mapping_width": _l("The column mapping does not fit the file."),
    "unknown_field": _l("Unknown field: %(value)s."),
    "field_twice": _l("%(value)s is chosen for more than one column."),
    "no_contact_column": _l("Choose a column for the e-mail address, phone number or name."),
    "email": _l("Not an e-mail address: %(value)s"),
    "birth_date": _l("Not a date of birth: %(value)s"),
    "no_contact": _l("No e-mail address, phone number or name."),
    "kind": _l("Unknown kind: %(value)s"),
    "no_origin": _l("No origin: choose a column or enter the origin of the import."),
}
DUPLICATE_CHOICES = (
    ("update", _l("Known customer: update his data from the file")),
    ("keep", _l("Known customer: keep his data as it is")),
    ("new", _l("Always create a new customer")),
)


class UploadForm(FlaskForm):
    file = FileField(_l("CSV or Excel file (.xlsx)"))
    content = HiddenField()  # the decoded file of an earlier step
    filename = HiddenField()
    origin = StringField(
        _l("Origin of the leads"), validators=[DataRequired(), Length(max=64)], default="Import"
    )
    duplicates = RadioField(
        _l("When a row names a known customer (same e-mail, phone, or name and address)"),
        choices=options(DUPLICATE_CHOICES),
        default="keep",
    )


def say(problem: Problem) -> str:
    """A row's or the mapping's problem in the reader's language."""
    value = str(FIELD_LABELS.get(problem.value, problem.value))
    return str(PROBLEMS[problem.code]) % {"value": value}


@bp.route("/leads/import", methods=["GET", "POST"])
@admin_required
def lead_import() -> ResponseReturnValue:
    form = UploadForm()
    if not form.validate_on_submit():
        return render_template("lead_import/upload.html", form=form)
    table, error = _table(form)
    if table is None:
        form.file.errors = [error]
        return render_template("lead_import/upload.html", form=form), 400
    mapping = _mapping(table)
    problems = [say(p) for p in check_mapping(mapping, len(table.headers))]
    rows = [] if problems else _rows(table, mapping, form)
    if request.form.get("action") == "import" and not problems:
        return _import(rows, form)
    refused = [row for row in rows if row.lead is None]
    return render_template(
        "lead_import/preview.html",
        form=form,
        table=table,
        preview=table.rows[:PREVIEW_ROWS],
        mapping=mapping,
        fields=[IGNORE, *FIELDS],
        field_labels=FIELD_LABELS,
        problems=problems,
        valid=len(rows) - len(refused),
        refused=[(row.line, [say(p) for p in row.problems]) for row in refused][
            :MAX_LISTED_PROBLEMS
        ],
        refused_count=len(refused),
    )


def _table(form: UploadForm) -> tuple[Table | None, str]:
    """The uploaded file, or the text of an earlier step, as a table; else the German reason."""
    upload = form.file.data
    if upload is not None and getattr(upload, "filename", ""):
        data = upload.read(MAX_BYTES + 1)
        form.filename.data = (upload.filename or "")[:120]
    elif form.content.data:
        data = b""
    else:
        return None, _("Please choose a CSV or Excel file.")
    uploaded = upload is not None and bool(getattr(upload, "filename", ""))
    try:
        if not uploaded:
            table = table_from_json(form.content.data or "")
        elif is_workbook(data):
            table = read_workbook(data)
        else:
            table = read_table(data)
    except ImportFileError as exc:
        shown = {k: format_number(v) if k in ("n", "mb") else v for k, v in exc.params.items()}
        return None, str(FILE_ERRORS[exc.code]) % shown
    except UnicodeEncodeError:
        return None, str(FILE_ERRORS["encoding"])
    if uploaded:
        form.content.data = table_as_json(table)  # the later steps carry it as text
    return table, ""


def _mapping(table: Table) -> list[str]:
    """The admin's column choices where given (unknown values kept, refused by the check)."""
    guessed = guess_mapping(table.headers)
    if not any(key.startswith("map-") for key in request.form):
        return guessed
    return [request.form.get(f"map-{i}", IGNORE)[:40] for i in range(len(table.headers))]


def _rows(table: Table, mapping: list[str], form: UploadForm) -> list[Any]:
    return rows_to_leads(
        table,
        mapping,
        default_origin=(form.origin.data or "").strip(),
        imported_from=form.filename.data or _("uploaded file"),
    )


def _import(rows: list[Any], form: UploadForm) -> ResponseReturnValue:
    """Create the valid rows, one commit each; the report lists what became of every row."""
    session, config, actor = db(), dealer(), me().email
    outcomes: list[tuple[int, RowOutcome]] = []
    for row in rows:
        if row.lead is None:
            continue
        outcome = import_lead(
            session,
            config,
            row.lead,
            duplicates=form.duplicates.data or "keep",
            actor=actor,
            now=utcnow(),
        )
        session.commit()
        outcomes.append((row.line, outcome))
    created = [(line, o) for line, o in outcomes if o.result == "created"]
    log.info(
        "lead import by %s from %s: %d created, %d known, %d refused rows",
        actor,
        form.filename.data,
        len(created),
        sum(1 for _, o in outcomes if o.result == "exists"),
        len(rows) - len(created),
    )
    return render_template(
        "lead_import/done.html",
        created=created,
        existing=[(line, o) for line, o in outcomes if o.result == "exists"],
        refused=[(line, o) for line, o in outcomes if o.result == "refused"],
        invalid=[(row.line, [say(p) for p in row.problems]) for row in rows if row.lead is None],
    )
