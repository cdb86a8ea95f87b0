"""The pool: leads nobody owns yet, and the button to take one.

The list and the take rule are the distribution service's
(:func:`pool_leads`, :func:`take_from_pool`); with *oldest only* every lead
but the oldest is shown with a disabled button and the reason beside it, and
the server refuses such a take anyway.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from mailgate.distribution.actions import ActionError, pool_leads, take_from_pool
from mailgate.models import utcnow

from ..access import me
from ..context import db, dealer
from .due import state_of
from .errors import explain
from .forms import TakeForm
from .rows import RowFormatter

bp = Blueprint("pool", __name__)


@bp.route("/pool")
@login_required
def pool() -> str:
    dist = dealer().document["distribution"]
    error = None
    try:
        leads = pool_leads(db(), dealer(), me().email)
    except ActionError as exc:
        leads, error = [], explain(exc)
    now = utcnow()
    oldest_only = bool(dist.get("pool_oldest_only"))
    items = [
        {"lead": lead, "state": state_of(lead, now), "takeable": not oldest_only or i == 0}
        for i, lead in enumerate(leads)
    ]
    return render_template(
        "leads/pool.html",
        items=items,
        has_pool=bool(dist.get("pool_user")),
        oldest_only=oldest_only,
        error=error,
        form=TakeForm(),
        vehicle=RowFormatter.vehicle,
    )


@bp.route("/pool/<int:lead_id>/take", methods=["POST"])
@login_required
def take(lead_id: int) -> ResponseReturnValue:
    form = TakeForm()
    if not form.validate_on_submit():
        flash(_("The form has expired; please try again."), "error")
        return redirect(url_for("pool.pool"))
    try:
        take_from_pool(db(), dealer(), lead_id, me().email)
    except ActionError as exc:
        db().rollback()
        flash(explain(exc), "error")
        return redirect(url_for("pool.pool"))
    db().commit()
    flash(_("Lead %(id)s is now yours.", id=lead_id), "info")
    return redirect(url_for("lead.detail", lead_id=lead_id))
