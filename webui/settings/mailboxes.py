"""IMAP mailboxes: status per mailbox, "fetch now", add / edit / remove.

Status comes from :func:`mailgate.imap.state.mailbox_status`; "fetch now" is
:func:`mailgate.imap.fetch.fetch_now`, the function ``mailgate fetch`` uses,
followed like there by processing what came in.  Passwords are write-only: the
page never sends a stored password back; an empty input keeps it.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, NumberRange, Optional

from mailgate.dealer_settings import IMAP_KEYS, SettingsError
from mailgate.imap.state import mailbox_status

from ..access import admin_required
from ..choices import options
from ..context import db, dealer, factory, settings
from .common import attach_error, bp, load, plain, save

SECURITY = [
    ("ssl", _l("SSL/TLS (port 993)")),
    ("starttls", _l("STARTTLS (port 143)")),
    ("none", _l("none (only for a server on this machine)")),
]
TEXT_KEYS = (
    "name",
    "host",
    "username",
    "folder",
    "interval",
    "after_import",
    "location",
    "password_file",
    "oauth2_token_command",
    "oauth2_token_file",
)


class MailboxForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired()])
    host = StringField(_l("Server"), validators=[DataRequired()])
    port = IntegerField(_l("Port"), validators=[Optional(), NumberRange(1, 65535)])
    security = SelectField(_l("Encryption"), choices=options(SECURITY))
    username = StringField(_l("User name"))
    password = PasswordField(_l("Password"))
    clear_password = BooleanField(_l("Remove the stored password"))
    password_file = StringField(_l("Password file"))
    oauth2_token_command = StringField(_l("OAuth2 token command"))
    oauth2_token_file = StringField(_l("OAuth2 token file"))
    folder = StringField(_l("Folder"))
    interval = StringField(_l("Check every"))
    after_import = StringField(_l("After import"))
    location = StringField(_l("Location"))
    enabled = BooleanField(_l("Enabled"))


HINTS = {
    "name": _l("A short name for this mailbox: letters, digits, '.', '_' or '-'."),
    "password": _l("Write-only: a stored password is never shown. Leave empty to keep it."),
    "password_file": _l("Instead of a password: a file holding it (only one way to log in)."),
    "interval": _l("How often to look for new mail when the server offers no push, e.g. 60s."),
    "after_import": _l("flag, delete or move:<folder> (e.g. move:Imported)."),
    "location": _l("Leads from this mailbox belong to this location (optional)."),
}


class FetchForm(FlaskForm):
    pass


@bp.route("/mailboxes")
@admin_required
def mailboxes() -> ResponseReturnValue:
    statuses = mailbox_status(db(), dealer().timezone)
    return render_template("settings/mailboxes.html", statuses=statuses, form=FetchForm())


@bp.route("/mailboxes/<name>/fetch", methods=["POST"])
@admin_required
def mailbox_fetch(name: str) -> ResponseReturnValue:
    from mailgate.imap.fetch import fetch_now
    from mailgate.worker import process_pending

    if not FetchForm().validate_on_submit():
        abort(400)
    db().close()  # end the request's transaction: SQLite lets only one writer at a time
    try:
        reports = fetch_now(factory(), settings(), name)
    except LookupError:
        abort(404)
    for report in reports:
        if report.error:
            flash(_("%(name)s: %(error)s", name=report.mailbox, error=report.error), "error")
        else:
            flash(
                _("%(name)s: %(n)s new mails fetched.", name=report.mailbox, n=report.imported),
                "info",
            )
    if any(r.imported for r in reports):
        process_pending(factory(), settings())
    return redirect(url_for("settings.mailboxes"))


def _entry(document: dict[str, Any], name: str) -> dict[str, Any]:
    entry = next((m for m in document["imap"] if m["name"] == name), None)
    if entry is None:
        abort(404)
    return entry


def _edit(document: dict[str, Any], entry: dict[str, Any], is_new: bool) -> ResponseReturnValue:
    form = MailboxForm(data={k: v for k, v in entry.items() if k != "password"})
    index = document["imap"].index(entry)
    if form.validate_on_submit():
        for key in TEXT_KEYS:
            entry[key] = (getattr(form, key).data or "").strip()
        entry["port"] = form.port.data or (993 if form.security.data == "ssl" else 143)
        entry["security"] = form.security.data
        entry["enabled"] = bool(form.enabled.data)
        if form.password.data:
            entry["password"] = form.password.data
        elif form.clear_password.data:
            entry["password"] = ""  # nosec B105  # clears the stored password on request
        try:
            save(document)
        except SettingsError as exc:
            where = f"imap[{index}]"
            fields = {f"{where}.{k}": getattr(form, k) for k in (*TEXT_KEYS, "port", "security")}
            fields[f"{where}.password"] = form.password
            fields[f"{where}:"] = form.password_file  # "give only one of ..."
            if not attach_error(str(exc), fields):
                flash(plain(str(exc)), "error")
            flash(_("Nothing was saved: please correct the marked field."), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.mailboxes"))
    return render_template(
        "settings/mailbox.html",
        form=form,
        hints=HINTS,
        is_new=is_new,
        has_password=bool(entry.get("password")),
        name=entry.get("name", ""),
    )


@bp.route("/mailboxes/new", methods=["GET", "POST"])
@admin_required
def mailbox_new() -> ResponseReturnValue:
    document = load()
    entry = {key: default for key, (_kind, default) in IMAP_KEYS.items()}
    entry.update(name="", host="", folder="INBOX")
    document["imap"].append(entry)
    return _edit(document, entry, is_new=True)


@bp.route("/mailboxes/<name>", methods=["GET", "POST"])
@admin_required
def mailbox_edit(name: str) -> ResponseReturnValue:
    document = load()
    return _edit(document, _entry(document, name), is_new=False)


@bp.route("/mailboxes/<name>/delete", methods=["POST"])
@admin_required
def mailbox_delete(name: str) -> ResponseReturnValue:
    if not FetchForm().validate_on_submit():
        abort(400)
    document = load()
    document["imap"].remove(_entry(document, name))
    try:
        save(document)
    except SettingsError as exc:
        flash(plain(str(exc)), "error")
    else:
        flash(_("Mailbox %(name)s removed.", name=name), "info")
    return redirect(url_for("settings.mailboxes"))
