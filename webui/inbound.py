"""Received mails (admins): every stored mail with its status, and one mail's content.

A mail's own HTML is never rendered here; the text part is shown through
Jinja's autoescaping, and the same shape caps as the pipeline apply so a
hostile mail cannot stall a page view.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from mailgate.models import InboundMail
from mailgate.parsers.message import ShapeError, check_shape, load, safe_header

from . import nav
from .access import admin_required
from .context import db
from .paging import Page

INBOUND_HEADERS = ("From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID")
bp = Blueprint("inbound", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    nav.register(app, nav.NavEntry("inbound.inbound_list", _l("Inbox"), ("admin",), order=60))


@bp.route("/inbound")
@admin_required
def inbound_list() -> str:
    page = Page.from_request(db().scalar(select(func.count()).select_from(InboundMail)) or 0)
    # Columns, not entities: a page of mails must not load fifty raw messages.
    rows = db().execute(
        select(
            InboundMail.id,
            InboundMail.received_at,
            InboundMail.channel,
            InboundMail.envelope_from,
            InboundMail.message_id,
            InboundMail.size,
            InboundMail.status,
            InboundMail.status_reason,
            InboundMail.lead_id,
        )
        .order_by(InboundMail.id.desc())
        .offset(page.offset)
        .limit(page.size)
    )
    return render_template("inbound/list.html", rows=rows.all(), page=page)


@bp.route("/inbound/<int:inbound_id>")
@admin_required
def inbound_detail(inbound_id: int) -> str:
    mail = db().get(InboundMail, inbound_id) or abort(404)
    try:
        check_shape(mail.raw)
    except ShapeError as exc:
        shown = _("(not shown: %(why)s)", why=str(exc))
        return render_template("inbound/detail.html", mail=mail, headers=[], text=shown)
    view = load(mail.raw)
    headers = [(name, safe_header(view.message, name, [])) for name in INBOUND_HEADERS]
    return render_template("inbound/detail.html", mail=mail, headers=headers, text=view.text)
