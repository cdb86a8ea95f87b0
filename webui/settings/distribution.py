"""Distribution: mode, pool, fallback, locations, groups and their routing rules.

Legal but risky combinations are not refused; :func:`settings_warnings` (the
same list the import prints) is shown on the page after every save.
"""

from __future__ import annotations

import re
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from mailgate.dealer_settings import GROUP_KEYS, SettingsError, settings_warnings
from mailgate.distribution.policies import GROUP_MATCH_KEYS

from ..access import admin_required
from ..choices import options
from ..phrases import words
from . import match_choices
from .common import attach_error, bp, load, plain, save
from .rows import split_list

MODES = [
    ("rolling", _l("Rolling: new leads go to the next salesperson in turn")),
    ("pool", _l("Pool: new leads wait in the pool until someone takes them")),
    ("groups", _l("Groups: routing rules pick a group, it rotates within the group")),
]
MATCH_LABELS = {
    "source": _l("Sources"),
    "kind": _l("Kinds"),
    "make": _l("Makes"),
    "location": _l("Locations"),
    "category": _l("Categories"),
}
assert set(MATCH_LABELS) == set(GROUP_MATCH_KEYS) and "match" in GROUP_KEYS


class DistributionForm(FlaskForm):
    mode = SelectField(_l("Distribution mode"), choices=options(MODES))
    fallback_user = SelectField(_l("Fallback user"))
    pool_user = SelectField(_l("Pool account"))
    pool_oldest_only = BooleanField(_l("Pool: only the oldest lead may be taken"))
    pool_notice = BooleanField(_l("Tell salespeople about new pool leads"))
    distribute_followups_normally = BooleanField(
        _l("Distribute follow-up inquiries normally (not to the earlier salesperson)")
    )
    use_vehicle_location = BooleanField(_l("Route by the vehicle's location"))
    locations = TextAreaField(_l("Locations and their mailbox addresses"))
    relay_domains = StringField(_l("Further portal relay domains"))


HINTS = {
    "fallback_user": _l("Gets every lead nobody else can take (everyone absent, no match)."),
    "pool_user": _l("The account that holds pool leads (required in pool mode)."),
    "locations": _l("One location per line: Nord: nord@autohaus.example, verkauf-nord@..."),
    "relay_domains": _l("Portals that relay customer mail from their own domain, comma-separated."),
}


def _locations_text(locations: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {', '.join(addresses)}" for name, addresses in locations.items())


def _parse_locations(text: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip():
            name, _sep, addresses = line.partition(":")
            result[name.strip()] = split_list(addresses)
    return result


_GROUP = re.compile(r"^group-(\d{1,3})-")
MAX_NAME = 100


class GroupError(ValueError):
    """A group row cannot be saved; German, naming the group's row."""


def _groups_from(form: MultiDict[str, str]) -> list[dict[str, Any]]:
    """The posted group rows: picked choices + expert patterns per match key; a row
    without a name and without any match is dropped (that deletes the group)."""
    groups = []
    indexes = sorted({int(m.group(1)) for name in form if (m := _GROUP.match(name))})
    for position, index in enumerate(indexes, start=1):
        prefix = f"group-{index}"
        name = form.get(f"{prefix}-name", "").strip()
        match = {}
        for key in GROUP_MATCH_KEYS:
            patterns = match_choices.join_patterns(
                form.getlist(f"{prefix}-{key}"), form.get(f"{prefix}-{key}-expert", "")
            )
            if patterns:
                match[key] = patterns
        if not name and match:
            raise GroupError(_("Group %(n)s: please give the group a name.", n=position))
        if len(name) > MAX_NAME:
            message = _("Group %(n)s: at most %(max)s characters.", n=position, max=MAX_NAME)
            raise GroupError(message)
        if name or match:
            groups.append({"name": name, "match": match})
    return groups


def _group_rows(groups: list[dict[str, Any]], document: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups as the page shows them (+ one empty row): per key the choices and the rest."""
    rows = []
    for group in [*groups, {"name": "", "match": {}}]:
        row: dict[str, Any] = {"name": group["name"], "match": {}}
        for key in GROUP_MATCH_KEYS:
            choices = match_choices.choices_for(key, document)
            picked, expert = match_choices.split_patterns(group["match"].get(key, []), choices)
            row["match"][key] = {"choices": choices, "picked": picked, "expert": expert}
        rows.append(row)
    return rows


@bp.route("/distribution", methods=["GET", "POST"])
@admin_required
def distribution() -> ResponseReturnValue:
    document = load()
    dist = document["distribution"]
    form = DistributionForm(
        data={
            **dist,
            "locations": _locations_text(dist["locations"]),
            "relay_domains": ", ".join(dist["relay_domains"]),
        }
    )
    users = [("", _("(nobody)"))] + [
        (u["email"], f"{u['name'] or u['email']} <{u['email']}>") for u in document["users"]
    ]
    form.fallback_user.choices = form.pool_user.choices = options(users)
    groups = document["groups"]
    if form.validate_on_submit():
        for key in ("mode", "fallback_user", "pool_user"):
            dist[key] = getattr(form, key).data or ""
        for key in (
            "pool_oldest_only",
            "pool_notice",
            "distribute_followups_normally",
            "use_vehicle_location",
        ):
            dist[key] = bool(getattr(form, key).data)
        dist["locations"] = _parse_locations(form.locations.data or "")
        dist["relay_domains"] = split_list(form.relay_domains.data or "")
        try:
            document["groups"] = groups = _groups_from(request.form)
            save(document)
        except GroupError as exc:
            flash(str(exc), "error")
            flash(_("Nothing was saved: please correct the marked field."), "error")
        except SettingsError as exc:
            fields = {f"distribution.{k}": getattr(form, k) for k in ("mode", "fallback_user")}
            fields |= {"distribution.pool_user": form.pool_user, "locations": form.locations}
            if not attach_error(str(exc), fields):
                flash(plain(str(exc)), "error")
            flash(_("Nothing was saved: please correct the marked field."), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.distribution"))
    return render_template(
        "settings/distribution.html",
        form=form,
        hints=HINTS,
        groups=_group_rows(groups, document),
        match_keys=GROUP_MATCH_KEYS,
        match_labels=MATCH_LABELS,
        warnings=[words([w]) for w in settings_warnings(document)],
    )
