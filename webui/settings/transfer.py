"""Settings TOML download and upload (``mailgate settings export`` / ``import``).

An upload goes through the same validation as the CLI import; it is refused
when it would deactivate or demote the admin doing it (he would lock himself
out).  The warnings of :func:`settings_warnings` are shown after a good import.
"""

from __future__ import annotations

import tomllib

from flask import Response, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from mailgate.dealer_settings import SettingsError, export_settings, settings_warnings

from ..access import admin_required
from ..context import db
from ..phrases import words
from .common import LockoutError, bp, plain, save

MAX_UPLOAD = 1024 * 1024  # a settings file is a few kilobytes


class ImportForm(FlaskForm):
    file = FileField(_l("Settings file (TOML)"), validators=[FileRequired()])


@bp.route("/transfer", methods=["GET", "POST"])
@admin_required
def transfer() -> ResponseReturnValue:
    form = ImportForm()
    if form.validate_on_submit():
        data = form.file.data.read(MAX_UPLOAD + 1)
        try:
            if len(data) > MAX_UPLOAD:
                raise SettingsError(_("The file is larger than 1 MB: not a settings file."))
            try:
                document = tomllib.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"not valid TOML: {exc}") from exc
            clean = save(document)
        except LockoutError as exc:
            form.file.errors = [str(exc)]
        except SettingsError as exc:
            form.file.errors = [plain(str(exc))]
        else:
            flash(_("Settings imported."), "info")
            for warning in settings_warnings(clean):
                flash(words([warning]), "warning")
            return redirect(url_for("settings.transfer"))
        flash(_("Nothing was imported: the stored settings are unchanged."), "error")
    return render_template("settings/transfer.html", form=form)


@bp.route("/export.toml")
@admin_required
def export() -> ResponseReturnValue:
    return Response(
        export_settings(db()),
        mimetype="application/toml",
        headers={"Content-Disposition": 'attachment; filename="mailgate-settings.toml"'},
    )
