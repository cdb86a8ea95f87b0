"""Status feedback to the sources: per source pattern, the address that hears of every status
change and close of its leads (``[[feedback]]``; sent by :mod:`mailgate.escalation.feedback`)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from mailgate.dealer_settings import SettingsError

from ..access import admin_required
from .common import bp, load, plain, save


class FeedbackForm(FlaskForm):
    pass


def _from_form(count: int) -> list[dict[str, Any]]:
    """The kept rows with their edits (ticked "remove" drops one), then a new one if given."""
    form = request.form
    rows = []
    for i in range(count):
        if form.get(f"fb-{i}-remove") == "y":
            continue
        rows.append(
            {
                "source": form.get(f"fb-{i}-source", "").strip(),
                "to": form.get(f"fb-{i}-to", "").strip(),
                "webhook": form.get(f"fb-{i}-webhook", ""),
                "language": form.get(f"fb-{i}-language", ""),
                "enabled": form.get(f"fb-{i}-enabled") == "y",
                "dealer_number": form.get(f"fb-{i}-dealer_number", "").strip(),
                "customer_data": form.get(f"fb-{i}-customer_data") == "y",
            }
        )
    source, to = form.get("new-source", "").strip(), form.get("new-to", "").strip()
    webhook = form.get("new-webhook", "")
    if source or to or webhook:
        language = form.get("new-language", "")
        rows.append(
            {
                "source": source,
                "to": to,
                "webhook": webhook,
                "language": language,
                "enabled": True,
                "dealer_number": form.get("new-dealer_number", "").strip(),
                "customer_data": form.get("new-customer_data") == "y",
            }
        )
    return rows


@bp.route("/feedback", methods=["GET", "POST"])
@admin_required
def feedback() -> ResponseReturnValue:
    document = load()
    current = list(document.get("feedback", []))
    form = FeedbackForm()
    shown, error = current, None
    if form.validate_on_submit():
        shown = _from_form(len(current))
        document["feedback"] = shown
        try:
            save(document)
        except SettingsError as exc:
            error = plain(str(exc))
            flash(_("Nothing was saved: please correct the marked field."), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.feedback"))
    sources = sorted({str(s) for s in _known_sources()})
    return render_template(
        "settings/feedback.html",
        form=form,
        channels=shown,
        error=error,
        sources=sources,
        webhooks=_webhook_names(),
    )


def _webhook_names() -> list[str]:
    """Named webhooks (settings → integrations) a source may hear back through."""
    from sqlalchemy import select

    from mailgate.models import Webhook

    from ..context import db

    return [n for n in db().scalars(select(Webhook.name).order_by(Webhook.name)) if n]


def _known_sources() -> list[str]:
    """Sources of existing leads, offered as suggestions for the pattern field."""
    from sqlalchemy import select

    from mailgate.models import Lead

    from ..context import db

    return list(db().scalars(select(Lead.source).distinct().limit(100)))
