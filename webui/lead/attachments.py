"""Downloading a message's attachment from the lead page: authorised, never rendered.

Every download checks, like the page, that the user may see the lead (404
otherwise) *and* that the mail belongs to that lead (the same question the
conversation asks, :func:`.conversation.lead_inbound_ids`), so a mail id of
another lead behind this lead's URL is a 404 too.  The bytes go out as a
download only: ``Content-Disposition: attachment`` with a file name reduced
to a name (no path, no quotes, no line breaks), ``nosniff``, a sandboxing CSP
and a type from a short list of harmless ones (anything else, HTML above all,
is ``application/octet-stream``), so a customer's ``.html`` attachment can
never run in mailgate's origin.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, abort
from flask_login import login_required
from sqlalchemy import select

from mailgate.models import InboundRaw, OutboxMail
from mailgate.outbound.outbox import materialise

from ..access import visible_lead
from ..context import db, dealer
from .conversation import lead_inbound_ids, part_bytes
from .filenames import safe_filename
from .views import bp

SAFE_TYPES = frozenset(
    {"application/pdf", "image/jpeg", "image/png", "image/gif", "image/webp", "text/plain"}
)


@bp.route("/leads/<int:lead_id>/mails/in/<int:mail_id>/parts/<int:number>")
@login_required
def inbound_part(lead_id: int, mail_id: int, number: int) -> Response:
    lead = visible_lead(lead_id)
    if mail_id not in lead_inbound_ids(db(), lead):
        abort(404)
    raw = db().scalar(select(InboundRaw.raw).where(InboundRaw.inbound_id == mail_id))
    return _download(raw, number)


@bp.route("/leads/<int:lead_id>/mails/out/<int:mail_id>/parts/<int:number>")
@login_required
def outbound_part(lead_id: int, mail_id: int, number: int) -> Response:
    visible_lead(lead_id)
    row = db().scalar(
        select(OutboxMail).where(OutboxMail.id == mail_id, OutboxMail.lead_id == lead_id)
    )
    if row is None:
        abort(404)
    try:
        composed = materialise(dealer(), row)  # a deferred row: the mail as it will be sent
    except ValueError:
        abort(404)
    return _download(row.raw if composed is None else composed.raw, number)


def _download(raw: bytes | None, number: int) -> Response:
    found = part_bytes(raw, number) if raw is not None else None
    if found is None:
        abort(404)
    part, data = found
    name = safe_filename(part.filename, number)
    mimetype = part.content_type if part.content_type in SAFE_TYPES else "application/octet-stream"
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = content_disposition(name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the UTF-8 name (RFC 6266/5987)."""
    fallback = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    fallback = fallback.replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
