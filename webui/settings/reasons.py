"""Completion reasons: rename, hide, add; a code never changes once it exists.

The first save turns the defaults (:mod:`mailgate.completion`) into the
dealer's own list.  Existing codes are shown, not editable, and cannot be
removed here (hide them); ``apply_document`` also refuses to drop a code that
closed leads use, so an import cannot either.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from mailgate.completion import OUTCOMES, reason_items
from mailgate.dealer_settings import SettingsError

from ..access import admin_required
from .common import bp, load, plain, save

OUTCOME_LABELS = {"won": _l("won"), "lost": _l("lost"), "other": _l("other")}
assert set(OUTCOME_LABELS) == set(OUTCOMES)


class ReasonsForm(FlaskForm):
    pass


def _from_form(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The existing reasons with their new label/outcome/hidden, then a new one if given."""
    form = request.form
    result = []
    for i, reason in enumerate(current):
        result.append(
            {
                "code": reason["code"],  # immutable: never read from the form
                "label": form.get(f"reason-{i}-label", reason["label"]).strip(),
                "outcome": form.get(f"reason-{i}-outcome", reason["outcome"]),
                "hidden": form.get(f"reason-{i}-hidden") == "y",
            }
        )
    code = form.get("new-code", "").strip()
    if code or form.get("new-label", "").strip():
        result.append(
            {
                "code": code,
                "label": form.get("new-label", "").strip(),
                "outcome": form.get("new-outcome", "other"),
                "hidden": False,
            }
        )
    return result


@bp.route("/reasons", methods=["GET", "POST"])
@admin_required
def reasons() -> ResponseReturnValue:
    document = load()
    current = reason_items(document)
    form = ReasonsForm()
    shown, error, new = current, None, {}
    if form.validate_on_submit():
        shown = _from_form(current)
        document["completion_reasons"] = shown
        try:
            save(document)
        except SettingsError as exc:
            error = plain(str(exc))
            new = shown[-1] if len(shown) > len(current) else {}
            shown = shown[: len(current)]
            flash(_("Nothing was saved: please correct the marked field."), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.reasons"))
    return render_template(
        "settings/reasons.html",
        form=form,
        reasons=shown,
        outcomes=OUTCOME_LABELS,
        error=error,
        new=new,
    )
