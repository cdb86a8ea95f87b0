"""Flask app factory and the read-only blueprints: leads, inbound mails, health.

The web UI sits beside the pipeline, not in it: it only reads what the worker
wrote, through the same session factory (no Flask-SQLAlchemy, no globals).
Everything that came in by mail is untrusted and reaches the page through
Jinja's autoescaping only; a mail's own HTML is never rendered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload, sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from mailgate.config import Settings
from mailgate.dealer_settings import load_dealer_config
from mailgate.escalation.ladder import due_state
from mailgate.models import InboundMail, Lead, utcnow
from mailgate.parsers.message import ShapeError, check_shape, load, safe_header

log = logging.getLogger("mailgate.webui")

PAGE_SIZE = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Header fields of a received mail worth showing; the body is shown as text only.
INBOUND_HEADERS = ("From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID")

# German labels for the codes stored in the database; unknown codes show as they are.
LABELS: dict[str, dict[str, str]] = {
    "due": {"ok": "ok", "soon": "bald fällig", "overdue": "überfällig"},
    "kind": {
        "inquiry": "Anfrage",
        "test_drive": "Probefahrt",
        "trade_in": "Inzahlungnahme",
        "financing": "Finanzierung",
        "service": "Service",
        "other": "Sonstiges",
    },
    "lead_status": {
        "new": "neu",
        "assigned": "zugewiesen",
        "contacted": "kontaktiert",
        "closed": "abgeschlossen",
    },
    "inbound_status": {
        "received": "eingegangen",
        "processing": "in Bearbeitung",
        "processed": "verarbeitet",
        "discarded": "verworfen",
        "quarantined": "in Quarantäne",
        "failed": "fehlgeschlagen",
    },
    "action": {
        "received": "eingegangen",
        "assigned": "zugewiesen",
        "unassigned": "nicht zugewiesen",
        "notified": "benachrichtigt",
    },
}
VEHICLE_FIELDS = (
    ("make", "Marke"),
    ("model", "Modell"),
    ("price", "Preis"),
    ("mileage", "Kilometerstand"),
    ("first_registration", "Erstzulassung"),
    ("vin", "FIN"),
    ("listing_id", "Inserat-Nr."),
    ("stock_number", "Bestandsnummer"),
)

leads = Blueprint("leads", __name__)
inbound = Blueprint("inbound", __name__)
health = Blueprint("health", __name__)


def create_app(factory: sessionmaker[Session], settings: Settings) -> Flask:
    """Build the app around an existing session factory, so tests and ``serve`` share one."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.web.secret_key or None
    app.extensions["mailgate"] = {"factory": factory, "settings": settings}
    app.register_blueprint(leads)
    app.register_blueprint(inbound)
    app.register_blueprint(health)
    app.teardown_appcontext(_close_session)
    app.after_request(_add_security_headers)
    app.register_error_handler(HTTPException, _error_page)
    app.jinja_env.filters.update(local=_local_time, label=_label, value=_vehicle_value)
    app.jinja_env.globals["VEHICLE_FIELDS"] = VEHICLE_FIELDS
    return app


def db() -> Session:
    """The request's session: opened on first use, so static files never touch the DB."""
    if "db" not in g:
        g.db = current_app.extensions["mailgate"]["factory"]()
    return g.db


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _error_page(exc: HTTPException) -> ResponseReturnValue:
    """German error pages in the site's frame instead of werkzeug's English ones."""
    return render_template("base.html", error=exc), exc.code or 500


def _label(code: str | None, kind: str) -> str:
    if code is None:
        return "–"
    return LABELS[kind].get(code, code)


def _local_time(value: datetime | None) -> str:
    """A stored UTC time in the dealer's time zone (read once per request)."""
    if value is None:
        return "–"
    if "tz" not in g:
        g.tz = load_dealer_config(db()).timezone
    return value.astimezone(g.tz).strftime("%d.%m.%Y %H:%M")


def _vehicle_value(value: Any, key: str) -> str:
    """Prices and mileages in German notation; everything else as stored."""
    if key == "price" and isinstance(value, int | float):
        amount = f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
        return amount.removesuffix(",00") + " €"
    if key == "mileage" and isinstance(value, int | float):
        return f"{value:,.0f}".replace(",", ".") + " km"
    return str(value)


@dataclass(frozen=True)
class Page:
    """One page of a list; the number is clamped so any ``?page=`` value is harmless."""

    number: int
    count: int
    total: int

    @classmethod
    def from_request(cls, total: int) -> Page:
        count = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        requested = request.args.get("page", 1, type=int) or 1
        return cls(number=min(max(requested, 1), count), count=count, total=total)

    @property
    def offset(self) -> int:
        return (self.number - 1) * PAGE_SIZE


@leads.route("/")
def lead_list() -> str:
    page = Page.from_request(db().scalar(select(func.count()).select_from(Lead)) or 0)
    rows = db().scalars(
        select(Lead)
        .options(selectinload(Lead.customer), selectinload(Lead.assignee))
        .order_by(Lead.received_at.desc(), Lead.id.desc())
        .offset(page.offset)
        .limit(PAGE_SIZE)
    )
    now = utcnow()
    items = [(lead, due_state(now, lead.soon_at, lead.overdue_at)) for lead in rows]
    return render_template("leads.html", items=items, page=page)


@leads.route("/leads/<int:lead_id>")
def lead_detail(lead_id: int) -> str:
    lead = db().get(Lead, lead_id) or abort(404)
    state = due_state(utcnow(), lead.soon_at, lead.overdue_at)
    return render_template("lead.html", lead=lead, state=state)


@inbound.route("/inbound")
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
        .limit(PAGE_SIZE)
    )
    return render_template("inbound.html", rows=rows.all(), page=page)


@inbound.route("/inbound/<int:inbound_id>")
def inbound_detail(inbound_id: int) -> str:
    mail = db().get(InboundMail, inbound_id) or abort(404)
    try:
        # The same caps the pipeline applies, so a hostile mail cannot stall a page view.
        check_shape(mail.raw)
    except ShapeError as exc:
        return render_template(
            "inbound_detail.html", mail=mail, headers=[], text=f"(nicht angezeigt: {exc})"
        )
    view = load(mail.raw)
    headers = [(name, safe_header(view.message, name, [])) for name in INBOUND_HEADERS]
    return render_template("inbound_detail.html", mail=mail, headers=headers, text=view.text)


@health.route("/healthz")
def healthz() -> ResponseReturnValue:
    """For load balancers and ``serve``'s own checks: is the database answering?"""
    try:
        db().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - the probe says "error"; the log gets the details
        log.warning("health check: database query failed", exc_info=True)
        return jsonify(status="error", database="error"), 503
    return jsonify(status="ok", database="ok")
