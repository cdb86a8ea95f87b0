"""Leads: the list (home page) and the detail page, limited to what the user may see."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from mailgate.escalation.ladder import due_state
from mailgate.models import Lead, utcnow

from . import nav
from .access import lead_scope, me
from .context import db
from .paging import Page

bp = Blueprint("leads", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    nav.register(app, nav.NavEntry("leads.lead_list", _l("Leads"), order=10))


@bp.route("/leads")
@login_required
def lead_list() -> str:
    scope = lead_scope(me())
    page = Page.from_request(db().scalar(select(func.count()).select_from(Lead).where(scope)) or 0)
    rows = db().scalars(
        select(Lead)
        .where(scope)
        .options(selectinload(Lead.customer), selectinload(Lead.assignee))
        .order_by(Lead.received_at.desc(), Lead.id.desc())
        .offset(page.offset)
        .limit(page.size)
    )
    now = utcnow()
    items = [(lead, due_state(now, lead.soon_at, lead.overdue_at)) for lead in rows]
    return render_template("leads/list.html", items=items, page=page)
