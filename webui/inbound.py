"""Received mails (admins): every stored mail with its status, one mail's content, reprocess.

A mail's own HTML is never rendered into this page: the text part is shown
through Jinja's autoescaping, the HTML part only in a sandboxed frame served
with its own strict CSP (:mod:`.lead.original`), and the same shape caps as
the pipeline apply so a hostile mail cannot stall a page view.  A mail that
failed (or was quarantined or discarded) can be put back into the queue after
a fix: the worker runs it again (:func:`mailgate.worker.reprocess`).
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from mailgate.models import InboundMail, InboundStatus, utcnow
from mailgate.parsers.message import ShapeError, check_shape, load, safe_header
from mailgate.protocol import phrase
from mailgate.protocol_log import log
from mailgate.worker import reprocess as requeue

from . import nav
from .access import admin_required, me
from .context import db, factory
from .inbound_reasons import explain_reason
from .inbound_summary import EMPTY, summaries
from .lead import original
from .paging import Page

INBOUND_HEADERS = ("From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID")
REPROCESSABLE = (InboundStatus.FAILED, InboundStatus.QUARANTINED, InboundStatus.DISCARDED)
# how a mail came in, in words (InboundMail.channel)
CHANNELS = {
    "smtp": _l("delivered by mail server"),
    "pipe": _l("handed over by the local mail server"),
    "imap": _l("fetched from a mailbox"),
    "demo": _l("demo mail"),
}
# the badge beside each state's word (the word carries the meaning, the colour repeats it)
STATUS_BADGES = {
    "received": "text-bg-info",
    "processing": "text-bg-info",
    "processed": "text-bg-success",
    "discarded": "text-bg-secondary",
    "quarantined": "text-bg-warning",
    "failed": "text-bg-danger",
}
bp = Blueprint("inbound", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.filters.update(
        reason=explain_reason,
        inbound_channel=lambda code: str(CHANNELS.get(code, code)),
        inbound_badge=lambda code: STATUS_BADGES.get(code, "text-bg-secondary"),
        kilobytes=kilobytes,
    )
    nav.register(app, nav.NavEntry("inbound.inbound_list", _l("Inbox"), ("admin",), order=60))


def kilobytes(size: int) -> str:
    """A mail's size in KB, in the user's notation (12,3 KB)."""
    return _("%(size)s KB", size=format_decimal(size / 1024, format="#,##0.0"))


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
    found = rows.all()
    return render_template(
        "inbound/list.html",
        rows=found,
        page=page,
        summaries=summaries(db(), (row.id for row in found)),
        empty=EMPTY,
        total=format_decimal(page.total),
    )


class ReprocessForm(FlaskForm):
    """One button; the CSRF token is all there is."""


@bp.route("/inbound/<int:inbound_id>")
@admin_required
def inbound_detail(inbound_id: int) -> str:
    mail = db().get(InboundMail, inbound_id) or abort(404)
    described = original.describe(mail.raw)
    context = {
        "mail": mail,
        "original": described,
        "form": ReprocessForm(),
        "may_reprocess": mail.status in REPROCESSABLE,
    }
    try:
        check_shape(mail.raw)
    except ShapeError as exc:
        shown = _("(not shown: %(why)s)", why=str(exc))
        return render_template("inbound/detail.html", headers=[], text=shown, **context)
    view = load(mail.raw)
    headers = [(name, safe_header(view.message, name, [])) for name in INBOUND_HEADERS]
    return render_template("inbound/detail.html", headers=headers, text=view.text, **context)


@bp.route("/inbound/<int:inbound_id>/original.html")
@admin_required
def inbound_html(inbound_id: int) -> Response:
    mail = db().get(InboundMail, inbound_id) or abort(404)
    return original.html_response(mail.raw)


@bp.route("/inbound/<int:inbound_id>/original.eml")
@admin_required
def inbound_eml(inbound_id: int) -> Response:
    mail = db().get(InboundMail, inbound_id) or abort(404)
    return original.eml_response(mail, f"mail-{inbound_id}")


@bp.post("/inbound/<int:inbound_id>/reprocess")
@admin_required
def inbound_reprocess(inbound_id: int) -> ResponseReturnValue:
    """Queue a failed mail again; the worker picks it up within seconds."""
    mail = db().get(InboundMail, inbound_id) or abort(404)
    if not ReprocessForm().validate_on_submit():
        abort(400)
    if mail.status not in REPROCESSABLE:
        flash(_("Only a failed, quarantined or discarded mail can be processed again."), "error")
        return redirect(url_for("inbound.inbound_detail", inbound_id=inbound_id))
    lead_id = mail.lead_id
    db().rollback()  # reprocess uses its own session; do not hold a transaction meanwhile
    if requeue(factory(), [inbound_id]) != 1:
        flash(_("The mail is being processed right now; try again in a moment."), "error")
    else:
        if lead_id is not None:
            what = phrase("reprocess_queued", inbound=inbound_id)
            log(db(), lead_id, actor=me().email, action="reprocessed", what=what, at=utcnow())
            db().commit()
        flash(_("The mail is queued and will be processed again shortly."), "success")
    return redirect(url_for("inbound.inbound_detail", inbound_id=inbound_id))
