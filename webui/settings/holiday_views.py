"""Holidays: country and region selects, the categories as a checklist, closures as date rows.

The categories are the ``holidays`` package's for the chosen country, named in words
(:data:`.regions.CATEGORY_NAMES`); company closures are date-range rows
(:mod:`.closures`).  Both are stored in the document's existing format
(``categories = ["public", "catholic"]``, ``closures = ["2026-12-24..2026-12-31"]``).
"""

from __future__ import annotations

from babel.dates import format_date
from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField

from mailgate.dealer_settings import SettingsError
from mailgate.models import utcnow

from ..access import admin_required
from ..choices import options
from ..input_limits import FIRST_DAY, LAST_DAY
from . import closures, regions
from .common import attach_error, bp, load, plain, save
from .rows import split_list


class HolidaysForm(FlaskForm):
    country = SelectField(_l("Country"))
    subdivision = SelectField(_l("Region"))


@bp.route("/regions.json")
@admin_required
def regions_json() -> ResponseReturnValue:
    """A country's regions and holiday kinds, for the picker (``static/settings.js``)."""
    country = request.args.get("country", "").upper()[:8]
    return jsonify(
        regions=[{"code": c, "name": n} for c, n in regions.subdivisions(country)],
        categories=[{"code": c, "name": n} for c, n in regions.category_choices(country)],
    )


def _posted_categories(allowed: list[str]) -> list[str]:
    """The ticked categories the country offers (a forged code is dropped); legacy text too."""
    ticked = request.form.getlist("categories")
    if len(ticked) == 1 and not request.form.get("categories-list"):
        ticked = split_list(ticked[0])  # an older form or script: "public, catholic"
    return [code for code in ticked if code in allowed] or ["public"]


@bp.route("/holidays", methods=["GET", "POST"])
@admin_required
def holidays() -> ResponseReturnValue:
    document = load()
    cal = document["holidays"]
    form = HolidaysForm(data={"country": cal["country"], "subdivision": cal["subdivision"]})
    chosen = form.country.data if form.is_submitted() else cal["country"]
    country = (chosen or "").upper()
    form.country.choices = options(
        [("", _("No public holidays")), *regions.countries(str(get_locale() or "de"))]
    )
    form.subdivision.choices = options([("", _("Whole country")), *regions.subdivisions(country)])
    category_choices = regions.category_choices(country)
    picked = cal["categories"]
    closure_rows = closures.stored_to_rows(cal["closures"])
    closure_errors: list[tuple[int, str]] = []
    if form.validate_on_submit():
        cal["country"] = country
        cal["subdivision"] = form.subdivision.data or ""
        cal["categories"] = picked = _posted_categories([c for c, _n in category_choices])
        posted, closure_errors = closures.read_rows(request.form.to_dict())
        if posted is None and "closures" in request.form:  # an older form: one per line
            lines = request.form["closures"].splitlines()
            posted = [line.strip() for line in lines if line.strip()]
        if posted is not None:
            cal["closures"] = posted
            closure_rows = closures.posted_rows(request.form.to_dict()) or closure_rows
        if closure_errors:
            flash(_("Nothing was saved: please correct the marked field."), "error")
        else:
            try:
                save(document)
            except SettingsError as exc:
                fields = {"hours/holidays": form.subdivision}
                if "closure" in str(exc) or "date" in str(exc):
                    closure_errors = [(0, plain(str(exc)))]
                elif not attach_error(str(exc), fields):
                    flash(plain(str(exc)), "error")
                flash(_("Nothing was saved: please correct the marked field."), "error")
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
            for day, why, closure in regions.days_off(load(), year, language)
        ]
    except ValueError:
        days = []
    return render_template(
        "settings/holidays.html",
        form=form,
        year=year,
        days=days,
        category_choices=category_choices,
        picked=picked,
        closure_rows=[*closure_rows, ("", "")],
        closure_errors=closure_errors,
    )
