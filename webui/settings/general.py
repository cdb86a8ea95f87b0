"""General settings: the dealership (name, lead addresses, admin address, country), sending,
notice addresses, reply mode, language, time zone, and the base URL links in mails are built
from — every ``[dealer]`` key a newcomer needs, so nobody has to write TOML to receive mail."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from mailgate.dealer_settings import SettingsError, is_plain_address

from ..access import admin_required
from ..choices import options
from ..context import settings
from ..onboarding.state import listener_target, suggested_base_url
from .common import attach_error, bp, load, plain, save

LANGUAGES = [("de", "Deutsch"), ("en", "English")]
REPLY_MODES = [
    ("relay", _l("Relay: customers' replies come back through mailgate")),
    ("cc", _l("Copy: salespeople answer directly, mailgate gets a copy")),
]
# Countries of the dealership (phone numbers without +49 …): the usual ones, German names.
COUNTRIES = [
    ("DE", _l("Germany")),
    ("AT", _l("Austria")),
    ("CH", _l("Switzerland")),
    ("LU", _l("Luxembourg")),
    ("NL", _l("Netherlands")),
    ("BE", _l("Belgium")),
    ("FR", _l("France")),
    ("IT", _l("Italy")),
    ("PL", _l("Poland")),
    ("CZ", _l("Czech Republic")),
    ("DK", _l("Denmark")),
]
# Offered first in the time-zone picker; the rest follow, filtered as the admin types.
EUROPEAN_ZONES = (
    "Europe/Berlin",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Luxembourg",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Paris",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Prague",
    "Europe/Copenhagen",
    "Europe/London",
)
MAX_ADDRESSES = 100
_SPLIT = re.compile(r"[\r\n,;]+")


# The regions of the IANA names a person picks from (no "Poland", "W-SU" or "localtime").
REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian")


def zone_choices() -> list[str]:
    """The European zones first, then the other ``Region/City`` ones (the <datalist>)."""
    rest = sorted(
        zone
        for zone in available_timezones()
        if zone not in EUROPEAN_ZONES and zone.split("/")[0] in (*REGIONS, "Pacific")
    )
    return [*EUROPEAN_ZONES, *rest, "UTC"]


class GeneralForm(FlaskForm):
    name = StringField(_l("Name of the dealership"), validators=[Length(max=200)])
    addresses = TextAreaField(_l("Lead addresses"), validators=[Length(max=40_000)])
    admin_address = StringField(_l("Admin address"), validators=[Length(max=320)])
    country = SelectField(_l("Country"))
    from_name = StringField(_l("Sender name"), validators=[Length(max=200)])
    send_mails = BooleanField(_l("Send mails"))
    unassigned_notice_to = StringField(
        _l("Address for unassigned inquiries"), validators=[Length(max=320)]
    )
    trade_in_cc = StringField(_l("Copy of trade-in inquiries to"), validators=[Length(max=320)])
    reply_mode = SelectField(_l("Reply mode"), choices=options(REPLY_MODES))
    language = SelectField(_l("Language of mails and new users"), choices=options(LANGUAGES))
    timezone = StringField(_l("Time zone"), validators=[Length(max=64)])
    base_url = StringField(_l("Web address (base URL)"), validators=[Length(max=300)])


HINTS = {
    "name": _l("Shown in the web UI and in mails, e.g. 'Autohaus Muster GmbH'."),
    "addresses": _l(
        "The addresses customers and platforms send inquiries to, one per line, e.g. "
        "anfragen@autohaus.example. mailgate accepts mail only for these (and their "
        "+tag forms) and refuses everything else."
    ),
    "admin_address": _l(
        "Hears about undeliverable mails and problems with mailboxes, e.g. it@autohaus.example."
    ),
    "country": _l("Phone numbers written without a country code belong to this country."),
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
    "timezone": _l(
        "All dates and working hours are in this time zone. Type to search, e.g. 'Berlin'."
    ),
    "base_url": _l(
        "Where mailgate's web UI is reached, e.g. https://leads.autohaus.example. Links in "
        "mails (password reset, invitations, leads) are built from it, never from the "
        "browser's address; empty: mails carry no links and nobody can reset a password."
    ),
}
DEALER_KEYS = (
    "name",
    "admin_address",
    "country",
    "from_name",
    "unassigned_notice_to",
    "reply_mode",
    "language",
    "timezone",
    "base_url",
)


def parse_addresses(text: str) -> tuple[list[str], list[str]]:
    """(addresses, refused entries) from the text area: one per line, commas allowed.

    Every line is taken on its own, so ``a@b.example\\r\\nBcc: x`` is two entries and the
    second is refused — nothing after a line break can become part of an address.
    """
    found: list[str] = []
    refused: list[str] = []
    for part in _SPLIT.split(text):
        entry = part.strip()
        if not entry:
            continue
        if not is_plain_address(entry) or len(entry) > 254:
            refused.append(entry[:80])
        elif entry.lower() not in found:
            found.append(entry.lower())
    return found, refused


def _check_form(form: GeneralForm) -> tuple[list[str], bool]:
    """The form's own checks (the document's validation follows on save)."""
    ok = True
    addresses, refused = parse_addresses(form.addresses.data or "")
    if refused:
        form.addresses.errors = [
            _(
                "Not a plain e-mail address (one per line, without name or +tag): %(entries)s",
                entries=", ".join(f"„{e}“" for e in refused[:5]),
            )
        ]
        ok = False
    elif len(addresses) > MAX_ADDRESSES:
        form.addresses.errors = [_("At most %(n)s lead addresses.", n=MAX_ADDRESSES)]
        ok = False
    zone = (form.timezone.data or "").strip()
    if zone not in available_timezones():
        form.timezone.errors = [_("Unknown time zone: pick one from the list.")]
        ok = False
    return addresses, ok


@bp.route("/", methods=["GET", "POST"])
@admin_required
def general() -> ResponseReturnValue:
    document = load()
    dealer, dist = document["dealer"], document["distribution"]
    stored_base_url = bool(dealer["base_url"])
    suggestion = suggested_base_url(settings().web)
    data = {
        **dealer,
        "trade_in_cc": dist["trade_in_cc"],
        "addresses": "\n".join(dealer["addresses"]),
    }
    if not dealer["base_url"]:
        data["base_url"] = suggestion  # a suggestion only: stored when the admin saves
    form = GeneralForm(data=data)
    known = dict(COUNTRIES)
    form.country.choices = options(
        COUNTRIES
        if dealer["country"] in known
        else [(dealer["country"], dealer["country"]), *COUNTRIES]
    )
    if form.validate_on_submit():
        addresses, ok = _check_form(form)
        if ok:
            for key in DEALER_KEYS:
                dealer[key] = (getattr(form, key).data or "").strip()
            dealer["addresses"] = addresses
            dealer["send_mails"] = bool(form.send_mails.data)
            dist["trade_in_cc"] = (form.trade_in_cc.data or "").strip()
            try:
                save(document)
            except SettingsError as exc:
                fields = {f"dealer.{k}": getattr(form, k) for k in DEALER_KEYS}
                fields["dealer.addresses"] = form.addresses
                fields["distribution.trade_in_cc"] = form.trade_in_cc
                if not attach_error(str(exc), fields):
                    flash(plain(str(exc)), "error")
                flash(_("Nothing was saved: please correct the marked field."), "error")
            else:
                flash(_("Saved."), "info")
                return redirect(url_for("settings.general"))
        else:
            flash(_("Nothing was saved: please correct the marked field."), "error")
    elif form.is_submitted():  # a value too long for its field: the error is beside it
        flash(_("Nothing was saved: please correct the marked field."), "error")
    return render_template(
        "settings/general.html",
        form=form,
        hints=HINTS,
        zones=zone_choices(),
        european_zones=EUROPEAN_ZONES,
        listener=listener_target(settings().smtp),
        suggestion=suggestion,
        base_url_stored=stored_base_url,
    )
