"""Working hours and escalation times, with the timeline preview.

Hours are edited as shift rows of time inputs (:mod:`.shifts`), durations as
hours + minutes (:mod:`.durations`), rule matches as choices of real sources and
kinds (:mod:`.match_choices`); all of them are turned back into the stored
document's strings before :func:`save` validates it.  The preview JSON endpoint
takes the page's unsaved inputs, so the admin sees what a change would do before
saving it (``static/settings.js`` asks it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, Field, ValidationError

from mailgate.dealer_settings import SettingsError
from mailgate.escalation.calendar import WEEKDAYS
from mailgate.escalation.ladder import TIME_KEYS

from ..access import admin_required
from ..i18n import local_time
from . import durations, match_choices, shifts
from .common import attach_error, bp, load, plain, save
from .durations import DurationField, DurationInputError
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
    "stage1": _l("Counted in opening hours from receipt. Then the lead is overdue."),
    "reminder_before": _l("The salesperson is reminded this long before the lead is overdue."),
    "stage2": _l("Real time (nights included) after the overdue notice went out."),
    "stage2_resubmission": _l("Real time after a missed resubmission date."),
}
FOLLOW_UP_HINT = _l("Working time. Until then the lead stays in My day.")


def _required(form: FlaskForm, field: Field) -> None:
    if not field.data and not field.process_errors:
        raise ValidationError(_("Please give a duration (hours and minutes)."))


class HoursForm(FlaskForm):
    """Only the CSRF token: the shift rows are read by :func:`shifts.read_week`."""


class EscalationForm(FlaskForm):
    stage1 = DurationField(TIME_LABELS["stage1"], [_required])
    reminder_before = DurationField(TIME_LABELS["reminder_before"], [_required])
    stage2 = DurationField(TIME_LABELS["stage2"], [_required])
    stage2_resubmission = DurationField(TIME_LABELS["stage2_resubmission"], [_required])
    respect_hours_for_resubmissions = BooleanField(_l("Resubmissions only during opening hours"))
    follow_up_after = DurationField(_l("Try again after a call that did not reach the customer"))


# ---- escalation rules: rule-<n>-source (choices), -source-expert, -<time>-hours/-minutes

_RULE = re.compile(r"^rule-(\d{1,3})-")


class RuleError(ValueError):
    """A rule row cannot be read; German, naming the row."""


def _rules_from(form: MultiDict[str, str], document: dict[str, Any]) -> list[dict[str, Any]]:
    """The posted rule rows as stored rules; empty rows are dropped (that deletes a rule)."""
    rules = []
    indexes = sorted({int(m.group(1)) for name in form if (m := _RULE.match(name))})
    for position, index in enumerate(indexes, start=1):
        prefix = f"rule-{index}"
        match = {}
        for key in ("source", "kind"):
            patterns = match_choices.join_patterns(
                form.getlist(f"{prefix}-{key}"), form.get(f"{prefix}-{key}-expert", "")
            )
            if patterns:
                match[key] = patterns
        times = {}
        for key in TIME_KEYS:
            try:
                value = durations.read(form, f"{prefix}-{key}")
            except DurationInputError as exc:
                what = TIME_LABELS[key]
                message = _("Rule %(n)s, %(what)s: %(error)s", n=position, what=what, error=exc)
                raise RuleError(message) from exc
            if value:
                times[key] = value
        if match or times:
            rules.append({"match": match, **times})
    return rules


def _rule_rows(rules: list[dict[str, Any]], document: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules as the page shows them (+ one empty row): picked choices, expert text, pairs."""
    rows = []
    for rule in [*rules, {"match": {}}]:
        row: dict[str, Any] = {"times": {}}
        for key in ("source", "kind"):
            choices = match_choices.choices_for(key, document)
            picked, expert = match_choices.split_patterns(rule["match"].get(key, []), choices)
            row[key] = {"choices": choices, "picked": picked, "expert": expert}
        for key in TIME_KEYS:
            row["times"][key] = durations.split(rule[key]) if rule.get(key) else ("", "")
        rows.append(row)
    return rows


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
        "rule": _rule_name(line["rule"]),
    }


def _rule_name(code: str | None) -> str:
    """``escalation.rules[0]`` -> "Rule 1" (as the page numbers them); "" for the defaults."""
    found = re.search(r"\[(\d+)\]", code or "")
    return _("Rule %(n)s", n=int(found.group(1)) + 1) if found else ""


def _apply_times(document: dict[str, Any], values: Mapping[str, str]) -> None:
    """Durations from the page (pairs or text) into ``escalation``; raises DurationInputError."""
    for key in TIME_KEYS:
        value = durations.read(values, key)
        if value:
            document["escalation"][key] = value


@bp.route("/preview.json")
@admin_required
def preview_json() -> ResponseReturnValue:
    """The preview for the stored settings changed by the (unsaved) inputs in the query."""
    document = load()
    args = request.args
    week, errors = shifts.read_week(args.to_dict())
    if errors:
        day = next(iter(errors))
        return jsonify(error=f"{DAY_LABELS[day]}: {errors[day]}")
    document["hours"].update(week)
    try:
        _apply_times(document, args.to_dict())
        if any(name.startswith("rule-") for name in args):
            document["escalation"]["rules"] = _rules_from(args, document)
    except (DurationInputError, RuleError) as exc:
        return jsonify(error=str(exc))
    return jsonify(_timeline_view(document, args.get("source", ""), args.get("kind", "")))


def _fail(exc: SettingsError, fields: dict[str, Any]) -> None:
    if not attach_error(str(exc), fields):
        flash(plain(str(exc)), "error")
    flash(_("Nothing was saved: please correct the marked field."), "error")


@bp.route("/hours", methods=["GET", "POST"])
@admin_required
def hours() -> ResponseReturnValue:
    document = load()
    form = HoursForm()
    errors: dict[str, str] = {}
    submitted = form.validate_on_submit()
    if submitted:
        week, errors = shifts.read_week(request.form.to_dict())
        if not errors:
            document["hours"].update(week)
            try:
                save(document)
            except SettingsError as exc:
                flash(plain(str(exc)), "error")
            else:
                flash(_("Saved."), "info")
                return redirect(url_for("settings.hours"))
        flash(_("Nothing was saved: please correct the marked field."), "error")
    days = []
    for day in WEEKDAYS:
        typed = shifts.posted_rows(request.form.to_dict(), day) if submitted else None
        rows = typed if typed is not None else shifts.stored_to_rows(document["hours"][day])
        days.append(
            {
                "code": day,
                "label": DAY_LABELS[day],
                "rows": shifts.rows_for_page(rows),
                "error": errors.get(day),
            }
        )
    return render_template(
        "settings/hours.html", form=form, days=days, timeline=_timeline_view(load())
    )


@bp.route("/escalation", methods=["GET", "POST"])
@admin_required
def escalation() -> ResponseReturnValue:
    document = load()
    esc = document["escalation"]
    form = EscalationForm(data=esc)
    rules = esc["rules"]
    if form.validate_on_submit():
        for key in TIME_KEYS:
            esc[key] = getattr(form, key).data
        esc["respect_hours_for_resubmissions"] = bool(form.respect_hours_for_resubmissions.data)
        # empty (or a form without the field): the setting stays as it was
        esc["follow_up_after"] = form.follow_up_after.data or esc["follow_up_after"]
        try:
            esc["rules"] = rules = _rules_from(request.form, document)
            save(document)
        except RuleError as exc:
            flash(str(exc), "error")
            flash(_("Nothing was saved: please correct the marked field."), "error")
        except SettingsError as exc:
            fields = {f"escalation.{k}": getattr(form, k) for k in TIME_KEYS}
            _fail(exc, fields | {"escalation.follow_up_after": form.follow_up_after})
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.escalation"))
    elif form.is_submitted():
        flash(_("Nothing was saved: please correct the marked field."), "error")
    return render_template(
        "settings/escalation.html",
        preview_source=request.args.get("source", ""),
        preview_kind=request.args.get("kind", ""),
        source_choices=match_choices.source_choices(),
        kind_choices=match_choices.kind_choices(),
        form=form,
        hints=TIME_HINTS,
        follow_up_hint=FOLLOW_UP_HINT,
        rules=_rule_rows(rules, document),
        time_keys=TIME_KEYS,
        time_labels=TIME_LABELS,
        timeline=_timeline_view(document),
    )
