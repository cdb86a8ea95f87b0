"""The system page (admins): is mail flowing?

Listener up (a real TCP connect to the configured SMTP listener), relay
reachable (connect + EHLO, no mail), the IMAP mailboxes' stored state, the
last mail received, the queues, and ``mailgate doctor``'s findings in German
(loaded separately: its network checks may take seconds).  Every line has a
state badge in words (never colour alone) and says what to do.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from mailgate import doctor as checks
from mailgate.config import SmtpSettings
from mailgate.models import ImapState, InboundMail, InboundStatus, OutboxMail, OutboxStatus, utcnow

from ..access import admin_required
from ..context import db, dealer, factory, settings
from ..onboarding import relay as relay_check
from ..onboarding.state import WILDCARD
from .doctor_words import in_words

bp = Blueprint("system", __name__, url_prefix="/system")
PROBE_TIMEOUT = 2.0  # seconds: the page must answer even when the listener hangs
STALE_IMAP = timedelta(minutes=15)  # no successful fetch for this long: worth a look


@dataclass(frozen=True)
class ListenerState:
    """The SMTP listener as the probe found it: ``up``, ``down`` or ``off``."""

    state: str
    where: str
    banner: str = ""


def probe_listener(smtp: SmtpSettings, timeout: float = PROBE_TIMEOUT) -> ListenerState:
    """Connect to the listener as a mail server would and read its greeting."""
    if not smtp.enabled:
        return ListenerState("off", "")
    host = "127.0.0.1" if smtp.host in WILDCARD else smtp.host
    where = f"{smtp.host or '0.0.0.0'}:{smtp.port}"  # noqa: S104  # nosec B104 - naming it
    try:
        with socket.create_connection((host, smtp.port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            banner = sock.recv(512).decode("ascii", "replace").strip()
            try:
                sock.sendall(b"QUIT\r\n")
            except OSError:
                pass
    except OSError:
        return ListenerState("down", where)
    return ListenerState("up" if banner.startswith("220") else "down", where, banner[:120])


def _mailboxes() -> list[dict[str, Any]]:
    """Each configured mailbox with its stored state (never contacted from here)."""
    states = {row.mailbox: row for row in db().scalars(select(ImapState))}
    now = utcnow()
    result = []
    for box in dealer().document["imap"]:
        row = states.get(box["name"])
        if not box["enabled"]:
            state = "off"
        elif row is None or row.last_success_at is None:
            state = "error" if row is not None and row.last_error else "never"
        elif row.last_error_at and row.last_error_at > row.last_success_at:
            state = "error"
        elif now - row.last_success_at > STALE_IMAP:
            state = "stale"
        else:
            state = "ok"
        result.append({"box": box, "row": row, "state": state})
    return result


def _queues() -> dict[str, int]:
    def count_inbound(*statuses: str) -> int:
        query = select(func.count(InboundMail.id)).where(InboundMail.status.in_(statuses))
        return int(db().scalar(query) or 0)

    def count_outbox(*statuses: str) -> int:
        query = select(func.count(OutboxMail.id)).where(OutboxMail.status.in_(statuses))
        return int(db().scalar(query) or 0)

    return {
        "inbound_waiting": count_inbound(InboundStatus.RECEIVED, InboundStatus.PROCESSING),
        "inbound_failed": count_inbound(InboundStatus.FAILED),
        "outbox_waiting": count_outbox(OutboxStatus.PENDING, OutboxStatus.SENDING),
        "outbox_dead": count_outbox(OutboxStatus.DEAD),
    }


@bp.route("/")
@admin_required
def status() -> ResponseReturnValue:
    last = db().scalars(select(InboundMail).order_by(InboundMail.id.desc()).limit(1)).first()
    mailboxes, queues, send_mails = _mailboxes(), _queues(), dealer().send_mails
    for obj in [last, *(m["row"] for m in mailboxes)]:
        if obj is not None:
            db().expunge(obj)  # kept as read: the session ends before the network probes
    # The probes wait on the network for seconds: never while holding SQLite's lock.
    db().rollback()
    relay = settings().relay
    return render_template(
        "system/status.html",
        listener=probe_listener(settings().smtp),
        relay=relay,
        relay_where=relay_check.describe(relay),
        relay_probe=relay_check.probe(relay, timeout=5.0),
        mailboxes=mailboxes,
        last=last,
        queues=queues,
        send_mails=send_mails,
    )


def doctor_checks() -> list[checks.Check]:
    """``mailgate doctor``'s checks against this web UI's own database and settings.

    The same functions as :func:`mailgate.doctor.run_doctor`, in its order, but on the
    app's engine (the doctor opens its own from the configuration).
    """
    from mailgate.imap.settings import load_mailboxes

    sessions = factory()
    engine = db().get_bind().engine
    url = engine.url.render_as_string(hide_password=True)
    mailboxes = load_mailboxes(db())
    addresses, zone, templates = dealer().addresses, dealer().timezone, dealer().template_dir
    # The checks open their own sessions: this request's must not hold SQLite's lock meanwhile.
    db().rollback()
    found = checks.check_database(engine, url)
    found.append(checks.check_smtp_port(settings().smtp))
    found.append(checks.check_relay(settings().relay))
    if any(c.name == "migrations" and c.status == checks.OK for c in found):
        found += checks.check_dealer(sessions)
        found += checks.check_base_url(sessions, settings().web.base_url)
        found += checks.check_imap(mailboxes)
        found += checks.check_mx(addresses)
        found.append(checks.check_clock(engine, zone))
        found += checks.check_templates(templates)
    path = checks.sqlite_path(url)
    found.append(checks.check_disk(path.parent if path else settings().data_dir))
    return found


@bp.route("/doctor")
@admin_required
def doctor() -> ResponseReturnValue:
    """``mailgate doctor``'s checks, worded for the admin; a fragment for htmx."""
    findings = [in_words(check) for check in doctor_checks()]
    fragment = request.headers.get("HX-Request") == "true"
    return render_template(
        "system/_doctor.html" if fragment else "system/doctor.html", findings=findings
    )
