"""The lead detail page, limited to leads the user may see (404 otherwise)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from mailgate.escalation.ladder import due_state
from mailgate.models import utcnow

from ..access import visible_lead

bp = Blueprint("lead", __name__)


@bp.route("/leads/<int:lead_id>")
@login_required
def detail(lead_id: int) -> str:
    lead = visible_lead(lead_id)
    state = due_state(utcnow(), lead.soon_at, lead.overdue_at)
    return render_template("lead/detail.html", lead=lead, state=state)
