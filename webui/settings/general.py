"""General settings: sender name, sending on/off, notice addresses, reply mode, language, zone,
and the base URL links in mails are built from."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Length

from mailgate.dealer_settings import SettingsError

from ..access import admin_required
from ..choices import options
from .common import attach_error, bp, load, plain, save

LANGUAGES = [("de", "Deutsch"), ("en", "English")]
REPLY_MODES = [
    ("relay", _l("Relay: customers' replies come back through mailgate")),
    ("cc", _l("Copy: salespeople answer directly, mailgate gets a copy")),
]


class GeneralForm(FlaskForm):
    from_name = StringField(_l("Sender name"), validators=[Length(max=200)])
    send_mails = BooleanField(_l("Send mails"))
    unassigned_notice_to = StringField(
        _l("Address for unassigned inquiries"), validators=[Length(max=320)]
    )
    trade_in_cc = StringField(_l("Copy of trade-in inquiries to"), validators=[Length(max=320)])
    reply_mode = SelectField(_l("Reply mode"), choices=options(REPLY_MODES))
    language = SelectField(_l("Language of mails and new users"), choices=options(LANGUAGES))
    timezone = SelectField(_l("Time zone"))
    base_url = StringField(_l("Web address (base URL)"), validators=[Length(max=300)])


HINTS = {
    "from_name": _l("Shown as the sender of every mail mailgate sends, e.g. 'Autohaus – Sales'."),
    "send_mails": _l(
        "Off: nothing leaves (useful while setting up); mails wait in the outbox instead."
    ),
    "unassigned_notice_to": _l(
        "Who hears about an inquiry nobody could be assigned. Empty: the admin address."
    ),
    "trade_in_cc": _l("Optional: an appraiser who gets a copy of every trade-in inquiry."),
    "reply_mode": _l("How the conversation with the customer runs."),
    "language": _l("German or English for mails to customers and for new users."),
    "timezone": _l("All dates and working hours are in this time zone."),
    "base_url": _l(
        "Where mailgate's web UI is reached, e.g. https://leads.autohaus.example. Links in "
        "mails (password reset, leads) are built from it, never from the browser's address; "
        "empty: mails carry no links and nobody can reset a password."
    ),
}


@bp.route("/", methods=["GET", "POST"])
@admin_required
def general() -> ResponseReturnValue:
    document = load()
    dealer, dist = document["dealer"], document["distribution"]
    form = GeneralForm(data={**dealer, "trade_in_cc": dist["trade_in_cc"]})
    form.timezone.choices = sorted(available_timezones())
    if form.validate_on_submit():
        for key in (
            "from_name",
            "unassigned_notice_to",
            "reply_mode",
            "language",
            "timezone",
            "base_url",
        ):
            dealer[key] = (getattr(form, key).data or "").strip()
        dealer["send_mails"] = bool(form.send_mails.data)
        dist["trade_in_cc"] = (form.trade_in_cc.data or "").strip()
        try:
            save(document)
        except SettingsError as exc:
            fields = {f"dealer.{k}": getattr(form, k) for k in HINTS if k != "trade_in_cc"}
            fields["distribution.trade_in_cc"] = form.trade_in_cc
            if not attach_error(str(exc), fields):
                flash(plain(str(exc)), "error")
            flash(_("Nothing was saved: please correct the marked field."), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.general"))
    return render_template("settings/general.html", form=form, hints=HINTS)
