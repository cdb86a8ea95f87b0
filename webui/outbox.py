"""Outbox / delivery log (admins): every outgoing mail, why it failed, and "send again".

The sender stores SMTP replies as they came ("550 5.1.1 ..."); the page puts
them in plain words next to the original text, so an admin sees at a glance
whether an address is wrong or a server was only down for a while.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from mailgate.models import OutboxMail, utcnow
from mailgate.outbound.admin import ResendError, resend, resendable
from mailgate.parsers.message import clean_line, decode_words

from . import nav
from .access import admin_required, me
from .context import db, dealer
from .outbox_preview import preview
from .paging import Page

bp = Blueprint("outbox", __name__)
# the badge beside each state's word (the word carries the meaning, the colour repeats it)
STATUS_BADGES = {
    "pending": "text-bg-info",
    "sending": "text-bg-info",
    "sent": "text-bg-success",
    "suppressed": "text-bg-warning",
    "dead": "text-bg-danger",
}
STATUS_LABELS = {
    "pending": _l("waiting"),
    "sending": _l("being sent"),
    "sent": _l("sent"),
    "suppressed": _l("not sent (mail sending off)"),
    "dead": _l("failed for good"),
}
PURPOSE_LABELS = {
    "notification": _l("New lead notice"),
    "pool_notice": _l("Pool notice"),
    "reminder": _l("Reminder"),
    "stage1": _l("Overdue notice"),
    "stage2": _l("Supervisor escalation"),
    "resubmission": _l("Resubmission"),
    "target_missed": _l("Processing target missed"),
    "acknowledgement": _l("Confirmation to customer"),
    "relay": _l("Reply to customer"),
    "followup": _l("Follow-up notice"),
    "reassigned": _l("Reassignment notice"),
    "forwarded": _l("Forwarded lead"),
    "trade_in_cc": _l("Trade-in copy"),
    "unassigned": _l("Unassigned inquiry"),
    "delivery_failure": _l("Delivery failure notice"),
    "password_reset": _l("Password reset"),
    "invitation": _l("Invitation to mailgate"),
    "imap_oversize": _l("Oversized mail notice"),
    "source_feedback": _l("Status feedback to the source"),
}
# (pattern on the stored error, explanation); the first match wins.
EXPLANATIONS: tuple[tuple[re.Pattern[str], object], ...] = (
    (
        re.compile(r"\b5\.1\.[0-9]|\b550\b.*(unknown|no such|user)", re.I),
        _l("The recipient address does not exist."),
    ),
    (
        re.compile(r"\b5\.2\.2|\b552\b|mailbox full|quota", re.I),
        _l("The recipient's mailbox is full."),
    ),
    (
        re.compile(r"\b5\.7\.[0-9]|\b554\b|spam|blocked|policy|relay", re.I),
        _l("The receiving server refused the mail (spam filter, policy or relaying)."),
    ),
    (
        re.compile(
            r"refused|unreachable|timed? ?out|timeout|connect|name or service|resolve", re.I
        ),
        _l("Our mail server could not be reached."),
    ),
    (re.compile(r"auth", re.I), _l("Logging in to our mail server failed.")),
    (
        re.compile(r"template|render|undefined", re.I),
        _l("The mail could not be composed from its template."),
    ),
    (
        re.compile(r"\b4[0-9][0-9]\b|\b4\.[0-9]\.[0-9]", re.I),
        _l("A temporary problem at the receiving server."),
    ),
)
LIST_COLUMNS = (
    OutboxMail.id,
    OutboxMail.status,
    OutboxMail.purpose,
    OutboxMail.recipients,
    OutboxMail.subject,
    OutboxMail.attempts,
    OutboxMail.last_error,
    OutboxMail.created_at,
    OutboxMail.sent_at,
    OutboxMail.lead_id,
)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.filters.update(
        outbox_status=lambda code: STATUS_LABELS.get(code, code),
        outbox_badge=lambda code: STATUS_BADGES.get(code, "text-bg-secondary"),
        outbox_purpose=lambda code: PURPOSE_LABELS.get(code, code),
        plain_error=plain_error,
    )
    app.jinja_env.globals.update(
        outbox_resendable=lambda mail: resendable(
            mail.status, mail.last_error, mail.next_attempt_at, utcnow()
        )
    )
    nav.register(app, nav.NavEntry("outbox.outbox_list", _l("Outbox"), ("admin",), order=70))


def plain_error(error: str | None) -> str:
    """The stored error in plain words (empty when there is none or it is not recognised)."""
    if not error:
        return ""
    for pattern, text in EXPLANATIONS:
        if pattern.search(error):
            return str(text)
    return ""


@bp.route("/outbox")
@admin_required
def outbox_list() -> str:
    status = request.args.get("status", "")
    if status not in STATUS_LABELS:
        status = ""
    query = select(*LIST_COLUMNS)
    count = select(func.count()).select_from(OutboxMail)
    if status:
        query, count = (q.where(OutboxMail.status == status) for q in (query, count))
    page = Page.from_request(db().scalar(count) or 0)
    rows = (
        db()
        .execute(query.order_by(OutboxMail.id.desc()).offset(page.offset).limit(page.size))
        .all()
    )
    counts = dict(
        db().execute(select(OutboxMail.status, func.count()).group_by(OutboxMail.status)).all()
    )
    return render_template(
        "outbox/list.html",
        rows=rows,
        page=page,
        status=status,
        statuses=STATUS_LABELS,
        counts={code: format_decimal(n) for code, n in counts.items()},
        total=format_decimal(page.total),
    )


@bp.route("/outbox/<int:outbox_id>")
@admin_required
def outbox_detail(outbox_id: int) -> str:
    mail = db().get(OutboxMail, outbox_id) or abort(404)
    headers = _headers(mail.raw) if mail.raw else []
    shown = preview(dealer(), mail)
    return render_template("outbox/detail.html", mail=mail, headers=headers, preview=shown)


@bp.post("/outbox/<int:outbox_id>/resend")
@admin_required
def outbox_resend(outbox_id: int) -> ResponseReturnValue:
    session = db()
    if session.get(OutboxMail, outbox_id) is None:
        abort(404)
    try:
        resend(session, outbox_id, me().email, utcnow())
        session.commit()
    except ResendError:
        session.rollback()
        flash(_("This mail cannot be sent again: it has not failed."), "error")
        return redirect(url_for("outbox.outbox_detail", outbox_id=outbox_id)), 303
    flash(_("The mail is queued again and will be sent with the next pass."), "success")
    return redirect(url_for("outbox.outbox_detail", outbox_id=outbox_id)), 303


def _headers(raw: bytes) -> list[tuple[str, str]]:
    """The composed mail's header block, unfolded and decoded (``=?utf-8?q?...?=`` as words)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = re.sub(r"\r\n[ \t]+", " ", head).split("\r\n")
    pairs = [line.split(":", 1) for line in lines if ":" in line]
    return [(name, clean_line(decode_words(value.strip())) or "") for name, value in pairs]
