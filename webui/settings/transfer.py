"""Settings TOML download and upload (``mailgate settings export`` / ``import``).

An upload goes through the same reading and checks as the CLI import
(:mod:`mailgate.settings_import`): a file that is not a settings file is a
form error, and one without lead addresses or users is refused unless the
admin ticks that he means it.  It is also refused when it would deactivate or
demote the admin doing it (he would lock himself out).  The warnings of
:func:`settings_warnings` are shown after a good import.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField

from mailgate.dealer_settings import SettingsError, export_settings, settings_warnings, validate
from mailgate.settings_import import (
    MAX_BYTES,
    IncompleteDocument,
    UnreadableFile,
    check_complete,
    read_document,
)

from ..access import admin_required
from ..context import db
from ..phrases import words
from .common import LockoutError, bp, plain, save

INCOMPLETE = {
    "addresses": _l(
        "The file has no lead addresses ([dealer] addresses): mailgate would refuse every "
        "inquiry mail. Add them, or tick the box below if you really mean it."
    ),
    "users": _l(
        "The file has no active users ([[users]]): everybody would be deactivated. "
        "Add them, or tick the box below if you really mean it."
    ),
}

UNREADABLE = {
    "size": _l("The file is larger than 1 MB: not a settings file."),
    "encoding": _l("The file is not UTF-8 text: not a settings file (save it as UTF-8)."),
    "toml": _l("The file is not valid TOML:"),
    "depth": _l("The file nests tables or lists far too deeply: not a settings file."),
}


class ImportForm(FlaskForm):
    file = FileField(_l("Settings file (TOML)"), validators=[FileRequired()])
    allow_empty_addresses = BooleanField(_l("Import even without lead addresses"))
    allow_no_users = BooleanField(_l("Import even without active users"))


@bp.route("/transfer", methods=["GET", "POST"])
@admin_required
def transfer() -> ResponseReturnValue:
    form = ImportForm()
    if form.validate_on_submit():
        data = form.file.data.read(MAX_BYTES + 1)
        try:
            clean = save(_checked(read_document(data), form))
        except LockoutError as exc:
            form.file.errors = [str(exc)]
        except IncompleteDocument as exc:
            form.file.errors = [str(INCOMPLETE[exc.what])]
        except UnreadableFile as exc:  # the parser's words (line, column) after ours
            detail = f" {str(exc).removeprefix('not valid TOML: ')}" if exc.what == "toml" else ""
            form.file.errors = [f"{UNREADABLE[exc.what]}{detail}"]
        except SettingsError as exc:
            form.file.errors = [plain(str(exc))]
        else:
            flash(_("Settings imported."), "info")
            for warning in settings_warnings(clean):
                flash(words([warning]), "warning")
            return redirect(url_for("settings.transfer"))
        flash(_("Nothing was imported: the stored settings are unchanged."), "error")
    return render_template("settings/transfer.html", form=form)


def _checked(document: dict[str, Any], form: ImportForm) -> dict[str, Any]:
    """The uploaded document, if complete (or the admin ticked that it need not be)."""
    check_complete(
        validate(document),
        allow_empty_addresses=bool(form.allow_empty_addresses.data),
        allow_no_users=bool(form.allow_no_users.data),
    )
    return document


@bp.route("/export.toml")
@admin_required
def export() -> ResponseReturnValue:
    return Response(
        export_settings(db()),
        mimetype="application/toml",
        headers={"Content-Disposition": 'attachment; filename="mailgate-settings.toml"'},
    )
