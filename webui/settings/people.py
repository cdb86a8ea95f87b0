"""Users: the list, one user's switches, role, team, groups, permissions, absences; new users.

A user is a ``[[users]]`` entry of the settings document, saved like every
other page; a new user gets an initial password or a reset link by mail
(the ``password_reset`` template, the same as "forgot password").
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields import SelectMultipleField
from wtforms.validators import DataRequired, Email, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from mailgate.dealer_settings import SettingsError
from mailgate.distribution.policies import CATEGORIES
from mailgate.imap.sent_record import sent_folder_status
from mailgate.models import User, UserRole

from ..access import admin_required
from ..accounts.views import LINKS_NOT_SET_UP_ADMIN, links_configured, queue_reset_mail
from ..choices import options
from ..context import db
from ..labels import category_choices
from ..passwords import MIN_LENGTH, hash_password
from .common import attach_error, bp, load, plain, save
from .rows import form_rows, split_list

ROLES = [
    (UserRole.SALESPERSON.value, _l("Salesperson")),
    (UserRole.SUPERVISOR.value, _l("Supervisor")),
    (UserRole.ADMIN.value, _l("Admin")),
]
# "" = no entry: his own, his team's and the pool's leads; "all" grants every lead of the
# category (seed 003 "ALLE"), so it is a choice of its own, never the unstated default
LEVELS = [
    ("", _l("own, team and pool leads")),
    ("all", _l("all leads")),
    ("own_location", _l("only of his locations")),
    ("none", _l("none")),
]
CATEGORY_LABELS = {"sales": _l("Sales"), "service": _l("Service"), "financing": _l("Financing")}
assert set(CATEGORY_LABELS) == set(CATEGORIES)


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=255)])
    role = SelectField(_l("Role"), choices=options(ROLES))
    language = SelectField(_l("Language"))
    supervisor = SelectField(_l("Supervisor"))
    active = BooleanField(_l("Active (may log in, owns leads)"))
    receives_leads = BooleanField(_l("Receives new leads"))
    can_be_assigned = BooleanField(_l("Can be assigned leads by hand"))
    groups = CheckboxesField(_l("Groups"))
    locations = StringField(_l("Locations"))
    perm_sales = SelectField(CATEGORY_LABELS["sales"], choices=options(LEVELS))
    perm_service = SelectField(CATEGORY_LABELS["service"], choices=options(LEVELS))
    perm_financing = SelectField(CATEGORY_LABELS["financing"], choices=options(LEVELS))


class NewUserForm(UserForm):
    email = EmailField(
        _l("E-mail address"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)],
    )
    password = PasswordField(
        _l("Initial password"), validators=[Optional(), Length(min=MIN_LENGTH, max=1024)]
    )
    send_link = BooleanField(_l("Send a link to set the password by mail"))


HINTS = {
    "receives_leads": _l("Takes part in the automatic distribution."),
    "locations": _l("For location routing and 'own location' permissions; comma-separated."),
    "groups": _l("Distribution groups he belongs to (groups mode)."),
    "password": _l("At least %(n)s characters; or leave empty and send a link.", n=MIN_LENGTH),
}
ABSENCE_KEYS = ("from", "until", "substitute")


def _choices(form: UserForm, document: dict[str, Any], email: str) -> None:
    others = [u for u in document["users"] if u["email"].lower() != email]
    # Supervisors and admins first; anyone may be chosen, as in the settings file.
    ranked = sorted(others, key=lambda u: u["role"] not in (UserRole.SUPERVISOR, UserRole.ADMIN))
    form.supervisor.choices = options(
        [("", _("(none)")), *((u["email"], u["name"] or u["email"]) for u in ranked)]
    )
    form.language.choices = options(
        [("", _("Dealer's language")), ("de", "Deutsch"), ("en", "English")]
    )
    form.groups.choices = options((g["name"], g["name"]) for g in document["groups"])


def _form_data(entry: dict[str, Any]) -> dict[str, Any]:
    data = {**entry, "locations": ", ".join(entry["locations"])}
    for category in CATEGORIES:
        data[f"perm_{category}"] = entry["permissions"].get(category, "")
    return data


def _apply(form: UserForm, entry: dict[str, Any]) -> None:
    for key in ("name", "role", "language", "supervisor"):
        entry[key] = (getattr(form, key).data or "").strip()
    for key in ("active", "receives_leads", "can_be_assigned"):
        entry[key] = bool(getattr(form, key).data)
    entry["groups"] = list(form.groups.data or [])
    entry["locations"] = split_list(form.locations.data or "")
    old = entry.get("permissions") or {}
    kept = {c: level for c, level in old.items() if c not in CATEGORIES}
    entry["permissions"] = kept | {  # the form edits the built-in three; [[categories]]' stay
        c: getattr(form, f"perm_{c}").data for c in CATEGORIES if getattr(form, f"perm_{c}").data
    }
    entry["absences"] = [
        {k: v for k, v in row.items() if v or k != "substitute"}
        for row in form_rows(request.form.to_dict(), "absence", ABSENCE_KEYS)
    ]


def _fields(form: UserForm, index: int) -> dict[str, Any]:
    """Settings keys of this user -> the inputs their errors belong to."""
    where = f"users[{index}]"
    fields = {f"{where}.{k}": getattr(form, k) for k in ("role", "supervisor", "groups", "name")}
    fields["users[*].permissions"] = form.perm_sales
    if isinstance(form, NewUserForm):
        fields[f"{where}.email"] = form.email
    return fields


def _failed(exc: SettingsError, form: UserForm, index: int) -> None:
    """Absence errors go above the absence table (rows have no form field), others inline."""
    message = str(exc)
    if "absences" in message or not attach_error(message, _fields(form, index)):
        flash(plain(message), "error")
    flash(_("Nothing was saved: please correct the marked field."), "error")


@bp.route("/users")
@admin_required
def users() -> ResponseReturnValue:
    """Seed 002's "Benutzer" block: every user's distribution set-up on one page, the two
    switches editable in place, the solo-distribution and pool warnings beside it."""
    from .users_overview import overview

    return render_template(
        "settings/users.html",
        levels=dict(LEVELS),
        category_labels={**CATEGORY_LABELS, **dict(category_choices())},
        role_labels=dict(ROLES),
        **overview(db(), load()),
    )


@bp.route("/users/<int:user_id>/switch", methods=["POST"])
@admin_required
def user_switch(user_id: int) -> ResponseReturnValue:
    """Set one switch (receives leads / can be assigned) of one user: a small form per
    switch, so it works without JavaScript; the value is explicit (a double click sets
    the same value twice instead of flipping it back)."""
    from .users_overview import SWITCHES

    user = db().get(User, user_id) or abort(404)
    name, value = request.form.get("switch", ""), request.form.get("value", "")
    back = redirect(url_for("settings.users", _anchor=f"user-{user_id}"))
    if name not in SWITCHES or value not in ("0", "1"):
        flash(_("Unknown switch: nothing was saved."), "error")
        return back
    document = load()
    email = user.email.lower()
    entry = next((u for u in document["users"] if u["email"].lower() == email), None)
    if entry is None:  # inactive users are not in the document
        flash(_("This user is inactive: change him on his own page."), "error")
        return back
    entry[name] = value == "1"
    try:
        save(document)
    except SettingsError as exc:
        flash(plain(str(exc)), "error")
        flash(_("Nothing was saved."), "error")
    else:
        flash(_("Saved: %(name)s.", name=user.name or user.email), "info")
    return back


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user_edit(user_id: int) -> ResponseReturnValue:
    user = db().get(User, user_id) or abort(404)
    document = load()
    email = user.email.lower()
    index = next((i for i, u in enumerate(document["users"]) if u["email"].lower() == email), None)
    sent_folder = document["users"][index]["sent_folder"] if index is not None else None
    if index is None:  # inactive users are not in the document: saving adds them back
        document["users"].append(
            {
                "email": email,
                "name": user.name or "",
                "role": user.role,
                "language": user.language or "",
                "supervisor": user.supervisor_email or "",
                "receives_leads": user.receives_leads,
                "can_be_assigned": user.can_be_assigned,
                "active": False,
                "groups": list(user.groups or []),
                "locations": list(user.locations or []),
                "absences": list(user.absences or []),
                "permissions": dict(user.permissions or {}),
            }
        )
        index = len(document["users"]) - 1
    entry = document["users"][index]
    form = UserForm(data=_form_data(entry))
    _choices(form, document, email)
    absences = entry["absences"]
    if form.validate_on_submit():
        _apply(form, entry)
        absences = entry["absences"]
        try:
            save(document)
        except SettingsError as exc:
            _failed(exc, form, index)
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.user_edit", user_id=user_id))
    return render_template(
        "settings/user.html",
        form=form,
        user=user,
        hints=HINTS,
        absences=absences,
        substitutes=[u for u in document["users"] if u["email"].lower() != email],
        sent_folder=sent_folder,
        status=sent_folder_status(db(), user.id, sent_folder["folder"]) if sent_folder else None,
    )


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_new() -> ResponseReturnValue:
    document = load()
    form = NewUserForm(
        data={
            "role": "salesperson",
            "active": True,
            "receives_leads": True,
            "can_be_assigned": True,
        }
    )
    _choices(form, document, "")
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        if db().scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
            form.email.errors = [_("A user with this address exists already.")]
        elif not form.password.data and not form.send_link.data:
            form.password.errors = [_("Set an initial password or send a link.")]
        elif form.send_link.data and not links_configured():
            form.send_link.errors = [str(LINKS_NOT_SET_UP_ADMIN)]
        else:
            entry: dict[str, Any] = {"email": email}
            _apply(form, entry)
            document["users"].append(entry)
            try:
                save(document)
            except SettingsError as exc:
                _failed(exc, form, len(document["users"]) - 1)
            else:
                return _welcome(email, form)
    return render_template(
        "settings/user.html", form=form, user=None, hints=HINTS, absences=[], substitutes=[]
    )


def _welcome(email: str, form: NewUserForm) -> ResponseReturnValue:
    """Set the initial password and/or queue the reset link, then open the user's page."""
    user = db().scalar(select(User).where(func.lower(User.email) == email))
    assert user is not None  # just saved
    if form.password.data:
        user.password_hash = hash_password(form.password.data)
        db().flush()
    if form.send_link.data:
        queue_reset_mail(user)
    db().commit()
    flash(
        _("User created; a link to set the password is on its way.")
        if form.send_link.data
        else _("User created."),
        "info",
    )
    return redirect(url_for("settings.user_edit", user_id=user.id))
