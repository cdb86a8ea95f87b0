"""Working hours, holidays and escalation times, with the timeline preview.

The preview JSON endpoint takes the page's unsaved inputs, so the admin sees
what a change would do before saving it (``static/settings.js`` asks it).
"""

from __future__ import annotations

from typing import Any

from babel.dates import format_date
from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from mailgate.dealer_settings import SettingsError
from mailgate.escalation.calendar import WEEKDAYS
from mailgate.escalation.ladder import TIME_KEYS
from mailgate.models import utcnow

from ..access import admin_required
from ..choices import options
from ..i18n import local_time
from ..input_limits import FIRST_DAY, LAST_DAY
from . import regions
from .common import attach_error, bp, load, plain, save
from .rows import form_rows, split_list
from .timeline import preview

DAY_LABELS = {
    "mon": _l("Monday"),
    "tue": _l("Tuesday"),
    "wed": _l("Wednesday"),
    "thu": _l("Thursday"),
    "fri": _l("Friday"),
    "sat": _l("Saturday"),
    "sun": _l("Sunday"),
}
TIME_LABELS = {
    "stage1": _l("Answer within (working time)"),
    "reminder_before": _l("Reminder before that"),
    "stage2": _l("Supervisor escalation after another"),
    "stage2_resubmission": _l("Escalation after a missed resubmission"),
}
TIME_HINTS = {
    "stage1": _l("Counted in opening hours from receipt, e.g. 4h. Then the lead is overdue."),
    "reminder_before": _l("The salesperson is reminded this long before it is overdue, e.g. 1h."),
    "stage2": _l("Real time (nights included) after the overdue notice went out, e.g. 24h."),
    "stage2_resubmission": _l("Real time after a missed resubmission date, e.g. 8h."),
}


class HoursForm(FlaskForm):
    pass


for _day in WEEKDAYS:
    setattr(HoursForm, _day, StringField(DAY_LABELS[_day]))


class EscalationForm(FlaskForm):
    stage1 = StringField(TIME_LABELS["stage1"])
    reminder_before = StringField(TIME_LABELS["reminder_before"])
    stage2 = StringField(TIME_LABELS["stage2"])
    stage2_resubmission = StringField(TIME_LABELS["stage2_resubmission"])
    respect_hours_for_resubmissions = BooleanField(_l("Resubmissions only during opening hours"))
    follow_up_after = StringField(
        _l("Try again after a call that did not reach the customer"),
        description=_l("Working time, e.g. 4h. Until then the lead stays in My day."),
    )


class HolidaysForm(FlaskForm):
    country = SelectField(_l("Country"))
    subdivision = SelectField(_l("Region"))
    categories = StringField(_l("Holiday kinds"))
    closures = TextAreaField(_l("Company closure days"))


def _apply_hours(document: dict[str, Any], values: dict[str, str]) -> None:
    for day in WEEKDAYS:
        if day in values:
            document["hours"][day] = split_list(values[day].replace(" - ", "-"))


def _apply_times(document: dict[str, Any], values: dict[str, str]) -> None:
    for key in TIME_KEYS:
        if key in values:
            document["escalation"][key] = values[key].strip()


RULE_KEYS = ("source", "kind", *TIME_KEYS)


def _rules_from(form: dict[str, str]) -> list[dict[str, Any]]:
    rules = []
    for row in form_rows(form, "rule", RULE_KEYS):
        match = {k: split_list(row[k]) for k in ("source", "kind") if row[k]}
        rules.append({"match": match, **{k: row[k] for k in TIME_KEYS if row[k]}})
    return rules


def _timeline_view(document: dict[str, Any], source: str = "", kind: str = "") -> dict[str, Any]:
    """The preview formatted for the page; ``error`` instead when the document is invalid."""
    try:
        line = preview(document, source, kind)
    except (SettingsError, ValueError) as exc:
        return {"error": plain(str(exc))}
    return {
        "received_at": local_time(line["received_at"]),
        "reminder_at": local_time(line["reminder_at"]),
        "stage1_at": local_time(line["stage1_at"]),
        "stage2_at": local_time(line["stage2_at"]),
        "rule": line["rule"] or "",
    }


@bp.route("/preview.json")
@admin_required
def preview_json() -> ResponseReturnValue:
    """The preview for the stored settings changed by the (unsaved) inputs in the query."""
    document = load()
    args = request.args.to_dict()
    _apply_hours(document, args)
    _apply_times(document, args)
    if any(name.startswith("rule-") for name in args):
        document["escalation"]["rules"] = _rules_from(args)
    return jsonify(_timeline_view(document, args.get("source", ""), args.get("kind", "")))


def _fail(exc: SettingsError, fields: dict[str, Any]) -> None:
    if not attach_error(str(exc), fields):
        flash(plain(str(exc)), "error")
    flash(_("Nothing was saved: please correct the marked field."), "error")


@bp.route("/hours", methods=["GET", "POST"])
@admin_required
def hours() -> ResponseReturnValue:
    document = load()
    form = HoursForm(data={day: ", ".join(document["hours"][day]) for day in WEEKDAYS})
    if form.validate_on_submit():
        _apply_hours(document, {day: getattr(form, day).data or "" for day in WEEKDAYS})
        try:
            save(document)
        except SettingsError as exc:
            _fail(exc, {f"hours.{day}": getattr(form, day) for day in WEEKDAYS})
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.hours"))
    return render_template(
        "settings/hours.html", form=form, days=WEEKDAYS, timeline=_timeline_view(document)
    )


@bp.route("/escalation", methods=["GET", "POST"])
@admin_required
def escalation() -> ResponseReturnValue:
    document = load()
    esc = document["escalation"]
    form = EscalationForm(data=esc)
    rules = esc["rules"]
    if form.validate_on_submit():
        _apply_times(document, {k: getattr(form, k).data or "" for k in TIME_KEYS})
        esc["respect_hours_for_resubmissions"] = bool(form.respect_hours_for_resubmissions.data)
        # empty (or a form without the field): the setting stays as it was
        esc["follow_up_after"] = (form.follow_up_after.data or "").strip() or esc["follow_up_after"]
        esc["rules"] = rules = _rules_from(request.form.to_dict())
        try:
            save(document)
        except SettingsError as exc:
            fields = {f"escalation.{k}": getattr(form, k) for k in TIME_KEYS}
            _fail(exc, fields | {"escalation.follow_up_after": form.follow_up_after})
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.escalation"))
    return render_template(
        "settings/escalation.html",
        preview_source=request.args.get("source", ""),
        preview_kind=request.args.get("kind", ""),
        form=form,
        hints=TIME_HINTS,
        rules=rules,
        time_keys=TIME_KEYS,
        time_labels=TIME_LABELS,
        timeline=_timeline_view(document),
    )


@bp.route("/regions.json")
@admin_required
def regions_json() -> ResponseReturnValue:
    """A country's regions and holiday kinds, for the picker (``static/settings.js``)."""
    country = request.args.get("country", "").upper()
    return jsonify(
        regions=[{"code": c, "name": n} for c, n in regions.subdivisions(country)],
        categories=list(regions.categories(country)) if country else [],
    )


@bp.route("/holidays", methods=["GET", "POST"])
@admin_required
def holidays() -> ResponseReturnValue:
    document = load()
    cal = document["holidays"]
    form = HolidaysForm(
        data={
            "country": cal["country"],
            "subdivision": cal["subdivision"],
            "categories": ", ".join(cal["categories"]),
            "closures": "\n".join(cal["closures"]),
        }
    )
    country = (form.country.data or cal["country"] or "").upper()
    form.country.choices = options(
        [("", _("No public holidays")), *regions.countries(str(get_locale() or "de"))]
    )
    form.subdivision.choices = options([("", _("Whole country")), *regions.subdivisions(country)])
    if form.validate_on_submit():
        cal["country"] = country
        cal["subdivision"] = form.subdivision.data or ""
        cal["categories"] = split_list(form.categories.data or "") or ["public"]
        cal["closures"] = [
            line.strip() for line in (form.closures.data or "").splitlines() if line.strip()
        ]
        try:
            save(document)
        except SettingsError as exc:
            fields = {f"holidays.{k}": getattr(form, k) for k in ("categories", "closures")}
            fields["hours/holidays"] = form.subdivision
            _fail(exc, fields)
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.holidays"))
    year = request.args.get("year", type=int) or utcnow().year
    if not FIRST_DAY.year <= year <= LAST_DAY.year:  # a year the holiday tables can compute
        year = utcnow().year
    language = str(get_locale() or "de")
    pattern = "EEEE, dd.MM.yyyy" if language == "de" else "EEEE, d MMM yyyy"
    try:
        days = [
            (format_date(day, pattern, locale=language), _("Company closure") if closure else why)
            for day, why, closure in regions.days_off(document, year, language)
        ]
    except ValueError:
        days = []
    return render_template(
        "settings/holidays.html",
        form=form,
        year=year,
        days=days,
        categories=regions.categories(country) if country else (),
    )
