"""Flask app factory and the read-only blueprints (leads, inbound mails, health)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, jsonify, render_template, request
from mailgate.escalation.ladder import due_state
from mailgate.parsers.message import load, safe_header
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mailgate.config import Settings
from mailgate.dealer_settings import load_dealer_config
from mailgate.models import InboundMail, Lead, utcnow

PAGE_SIZE = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

leads = Blueprint("leads", __name__)
inbound = Blueprint("inbound", __name__)
health = Blueprint("health", __name__)


def create_app(factory: sessionmaker[Session], settings: Settings) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.web.secret_key or None
    app.extensions["mailgate"] = {"factory": factory, "settings": settings}
    app.register_blueprint(leads)
    app.register_blueprint(inbound)
    app.register_blueprint(health)
    app.teardown_appcontext(_close_session)
    app.after_request(_security_headers)
    app.jinja_env.filters["local"] = _local_time
    return app


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = current_app.extensions["mailgate"]["factory"]()
    return g.db


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def _security_headers(response: Any) -> Any:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _local_time(value: datetime | None) -> str:
    if value is None:
        return "–"
    if "tz" not in g:
        g.tz = load_dealer_config(db()).timezone
    return value.astimezone(g.tz).strftime("%d.%m.%Y %H:%M")


@leads.route("/")
def lead_list() -> str:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    total = db().scalar(select(func.count()).select_from(Lead)) or 0
    rows = (
        db()
        .scalars(
            select(Lead)
            .options(selectinload(Lead.customer), selectinload(Lead.assignee))
            .order_by(Lead.received_at.desc(), Lead.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
        .all()
    )
    now = utcnow()
    items = [(lead, due_state(now, lead.soon_at, lead.overdue_at)) for lead in rows]
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render_template("leads.html", items=items, page=page, pages=pages, total=total)


@leads.route("/leads/<int:lead_id>")
def lead_detail(lead_id: int) -> str:
    lead = db().get(Lead, lead_id)
    if lead is None:
        abort(404)
    state = due_state(utcnow(), lead.soon_at, lead.overdue_at)
    return render_template("lead.html", lead=lead, state=state)


@inbound.route("/inbound")
def inbound_list() -> str:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    columns = (
        InboundMail.id,
        InboundMail.received_at,
        InboundMail.channel,
        InboundMail.envelope_from,
        InboundMail.size,
        InboundMail.status,
        InboundMail.status_reason,
        InboundMail.lead_id,
    )
    rows = (
        db()
        .execute(
            select(*columns)
            .order_by(InboundMail.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
        .all()
    )
    return render_template("inbound.html", rows=rows, page=page)


@inbound.route("/inbound/<int:inbound_id>")
def inbound_detail(inbound_id: int) -> str:
    mail = db().get(InboundMail, inbound_id)
    if mail is None:
        abort(404)
    view = load(mail.raw)
    headers = [
        (name, safe_header(view.message, name, []) or "")
        for name in ("From", "Reply-To", "To", "Subject", "Date", "Message-ID")
    ]
    return render_template("inbound_detail.html", mail=mail, headers=headers, text=view.text)


@health.route("/healthz")
def healthz() -> Any:
    try:
        db().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - health says "error", never a traceback
        return jsonify(status="error", database="error"), 503
    return jsonify(status="ok", database="ok")
