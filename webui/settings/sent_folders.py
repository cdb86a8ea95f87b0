"""A salesperson's Sent folder: the IMAP account mailgate reads to see his answers.

Its own page under the user (``/settings/users/<id>/sent-folder``) so the
user form stays about the person; saved like every page, as the user's
``sent_folder`` table of the settings document.  The password is write-only
as on the mailbox page: never sent back, an empty input keeps it.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import NumberRange, Optional

from mailgate.dealer_settings import SettingsError
from mailgate.imap.sent_record import sent_folder_status
from mailgate.models import User

from ..access import admin_required
from ..choices import options
from ..context import db
from .common import attach_error, bp, load, plain, save
from .mailboxes import SECURITY

TEXT_KEYS = ("host", "username", "password_file", "folder", "interval", "ca_file")


class SentFolderForm(FlaskForm):
    enabled = BooleanField(_l("Count mails in his Sent folder as answers"))
    host = StringField(_l("Server"))
    port = IntegerField(_l("Port"), validators=[Optional(), NumberRange(1, 65535)])
    security = SelectField(_l("Encryption"), choices=options(SECURITY))
    username = StringField(_l("User name"))
    password = PasswordField(_l("Password"))
    clear_password = BooleanField(_l("Remove the stored password"))
    password_file = StringField(_l("Password file"))
    folder = StringField(_l("Folder"))
    interval = StringField(_l("Check every"))
    ca_file = StringField(_l("Trusted certificate (PEM file)"))


HINTS = {
    "enabled": _l(
        "For salespeople who answer from their own mail program instead of the "
        "notification: a mail to the customer of one of his open leads counts as the "
        "response. mailgate only reads the folder; it changes nothing there and keeps "
        "nothing of his mail."
    ),
    "password": _l("Write-only: a stored password is never shown. Leave empty to keep it."),
    "password_file": _l("Instead of a password: a file holding it (only one way to log in)."),
    "folder": _l("As the mail program names it, e.g. Sent or Gesendete Elemente."),
    "interval": _l("How often to look for new mail when the server offers no push, e.g. 60s."),
}


def _user_entry(user_id: int) -> tuple[User, dict[str, Any], dict[str, Any], int]:
    user = db().get(User, user_id) or abort(404)
    document = load()
    email = user.email.lower()
    index = next((i for i, u in enumerate(document["users"]) if u["email"].lower() == email), None)
    if index is None:  # inactive users are not in the settings and have nothing watched
        abort(404)
    return user, document, document["users"][index], index


@bp.route("/users/<int:user_id>/sent-folder", methods=["GET", "POST"])
@admin_required
def user_sent_folder(user_id: int) -> ResponseReturnValue:
    user, document, entry, index = _user_entry(user_id)
    current = entry["sent_folder"]
    form = SentFolderForm(data={k: v for k, v in current.items() if k != "password"})
    if form.validate_on_submit():
        for key in TEXT_KEYS:
            current[key] = (getattr(form, key).data or "").strip()
        current["security"] = form.security.data
        current["port"] = form.port.data or (993 if form.security.data == "ssl" else 143)
        current["enabled"] = bool(form.enabled.data)
        if form.password.data:
            current["password"] = form.password.data
        elif form.clear_password.data:
            current["password"] = ""  # nosec B105  # clears the stored password on request
        try:
            save(document)
        except SettingsError as exc:
            where = f"users[{index}].sent_folder"
            fields = {f"{where}.{k}": getattr(form, k) for k in (*TEXT_KEYS, "port", "security")}
            fields[f"{where}.password"] = form.password
            fields[f"{where}:"] = form.password_file  # "give only one of ..."
            if not attach_error(str(exc), fields):
                flash(plain(str(exc)), "error")
            flash(_("Nothing was saved: please correct the marked field."), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.user_sent_folder", user_id=user_id))
    return render_template(
        "settings/sent_folder.html",
        form=form,
        user=user,
        hints=HINTS,
        has_password=bool(current.get("password")),
        status=sent_folder_status(db(), user.id, current["folder"]),
    )
