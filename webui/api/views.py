"""The API's routes: list, get, change status, add a note; and the OpenAPI document.

The same service functions as the web UI (``set_stage``, ``close_lead``) so an
integration's change writes the same protocol and webhook events as a click;
the protocol names the integration as ``api:<token name>``.  Integrations see
every lead (like an admin): a token is made by an admin for a whole system.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import false, func, select
from sqlalchemy.orm import selectinload

from mailgate.completion import completion_reasons
from mailgate.distribution.lead_import import lead_from_values
from mailgate.distribution.lead_import_apply import DUPLICATE_POLICIES, import_lead
from mailgate.escalation.actions import (
    CONTACT_OUTCOMES,
    ActionError,
    close_lead,
    log_contact,
    set_stage,
)
from mailgate.models import SALES_STAGES, Lead, LeadStatus, ProtocolEntry, User, utcnow
from mailgate.protocol import phrase
from mailgate.protocol_log import log
from mailgate.webhooks.payload import lead_document

from ..context import db, dealer
from ..input_limits import MAX_JSON_BYTES, JsonError, clamped_day, json_body
from .openapi import LEAD_IN_CUSTOMER, MAX_NOTE, MAX_PER_PAGE, document
from .problems import ApiError, problem
from .tokens import Caller, authenticate

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])
DIGITS = re.compile(r"[0-9]{1,9}")
# lead_import's row problems, as an integration's developer reads them
ROW_PROBLEMS = {
    "email": "customer.email is not an e-mail address",
    "birth_date": "customer.birth_date is not a date (YYYY-MM-DD or DD.MM.YYYY)",
    "no_contact": "the customer needs an e-mail address, a phone number or a name",
    "kind": "unknown kind",
    "no_origin": "origin is empty",
}
FILTERS = ("status", "source", "kind", "assignee", "received_from", "received_to")


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> ResponseReturnValue:
    return problem(exc.status, exc.title, exc.detail)


def caller() -> Caller:
    return g.api_caller


def requires(scope: str) -> Callable[[F], F]:
    """The route needs a valid bearer token (401) whose scopes include ``scope`` (403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            kind, _, token = header.partition(" ")
            found = authenticate(db(), token.strip()) if kind.lower() == "bearer" else None
            if found is None:
                raise ApiError(401, "Unauthorized", "a valid bearer token is required")
            if scope not in found.scopes:
                raise ApiError(403, "Forbidden", f"this token lacks the {scope!r} scope")
            g.api_caller = found
            _check_arguments()  # after the token: a stranger learns nothing but 401
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(document(_reason_codes()))


def _reason_codes() -> list[str]:
    """The completion reasons an integration may close with (the hidden ones are retired)."""
    return [r.code for r in completion_reasons(dealer().document) if not r.hidden]


def _usable(name: str, value: str) -> str:
    """Refuse text that is not Unicode (lone surrogates): no database can store it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "Bad Request", f"{name} is not valid Unicode text") from None
    return value


ARGUMENTS = {"api.list_leads": {*FILTERS, "page", "per_page"}, "api.openapi": None}


def _check_arguments() -> None:
    """Unknown query parameters are refused: a misspelt filter must not return everything."""
    allowed = ARGUMENTS.get(request.endpoint or "", set())
    for name in request.args:
        if allowed is not None and name not in allowed:
            raise ApiError(400, "Bad Request", f"unknown query parameter {name!r}")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not DIGITS.fullmatch(raw):  # not int(): it also takes " 5", "1_0" and "٥"
        raise ApiError(400, "Bad Request", f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, "Bad Request", f"{name} must be between {low} and {high}")
    return value


def _date_arg(name: str) -> date | None:
    """A date filter.  Any ISO date is valid (the document says so); one outside
    FIRST_DAY..LAST_DAY is moved to that bound, which selects the same leads, so that a day
    later or the time zone's shift stays within the years ``datetime`` holds."""
    raw = request.args.get(name)
    if raw is None:
        return None
    parsed = clamped_day(raw)
    if parsed is None:
        raise ApiError(400, "Bad Request", f"{name} must be a date like 2026-11-30")
    return parsed


def _day_start(day: date) -> datetime:
    """Midnight of ``day`` in the dealership's time zone: dates mean the dealer's days."""
    return datetime.combine(day, time(), tzinfo=dealer().timezone)


@bp.get("/leads")
@requires("read")
def list_leads() -> ResponseReturnValue:
    args = request.args
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", 25, 1, MAX_PER_PAGE)
    conditions: list[Any] = []
    status = args.get("status")
    if status is not None:
        if status not in {s.value for s in LeadStatus}:
            raise ApiError(400, "Bad Request", f"unknown status {status!r}")
        conditions.append(Lead.status == status)
    else:
        conditions.append(Lead.status != LeadStatus.DELETED.value)
    if any("\x00" in args.get(name, "") for name in ("source", "kind", "assignee")):
        conditions.append(false())  # no stored value has one (and PostgreSQL refuses them)
    for name, column in (("source", Lead.source), ("kind", Lead.kind)):
        if args.get(name) is not None:
            conditions.append(column == args[name].replace("\x00", ""))
    if args.get("assignee") is not None:
        email = args["assignee"].replace("\x00", "").lower()
        owner = select(User.id).where(func.lower(User.email) == email)
        conditions.append(Lead.assignee_id.in_(owner.scalar_subquery()))
    start, end = _date_arg("received_from"), _date_arg("received_to")
    if start is not None:
        conditions.append(Lead.received_at >= _day_start(start))
    if end is not None:
        conditions.append(Lead.received_at < _day_start(end + timedelta(days=1)))
    total = db().scalar(select(func.count()).select_from(Lead).where(*conditions)) or 0
    leads = db().scalars(
        select(Lead)
        .where(*conditions)
        .order_by(Lead.received_at.desc(), Lead.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
        .options(selectinload(Lead.customer), selectinload(Lead.assignee))
    )
    items = [lead_document(lead) for lead in leads]
    return jsonify(items=items, page=page, per_page=per_page, total=total)


def _lead(lead_id: int) -> Lead:
    lead = db().get(Lead, lead_id, populate_existing=True) if lead_id < 2**31 else None
    if lead is None:
        raise ApiError(404, "Not Found", f"no lead {lead_id}")
    return lead


@bp.post("/leads")
@requires("write")
def create_lead() -> ResponseReturnValue:
    """A lead from another system (a website chat, an event app): the rules of the import."""
    data = _body(
        {
            "customer": dict,
            "vehicle": dict,
            "kind": str,
            "origin": str,
            "campaign": str,
            "message": str,
            "external_id": str,
            "duplicates": str,
        }
    )
    values = {
        **_strings(data.get("customer", {}), "customer", LEAD_IN_CUSTOMER),
        **_strings(data.get("vehicle", {}), "vehicle", {"make": 64, "model": 255, "price": 32}),
    }
    for name, field, limit in (
        ("kind", "kind", 32),
        ("campaign", "origin_detail", 128),
        ("message", "remark", 4000),
        ("external_id", "external_id", 64),
    ):
        text = str(data.get(name, "")).replace("\x00", "").strip()
        if len(text) > limit:
            raise ApiError(400, "Bad Request", f"{name} must be at most {limit} characters")
        if text:
            values[field] = text
    origin = str(data.get("origin", "")).replace("\x00", "").strip()
    if not origin or len(origin) > 64:
        raise ApiError(400, "Bad Request", "origin must be 1 to 64 characters")
    duplicates = data.get("duplicates", "keep")
    if duplicates not in DUPLICATE_POLICIES:
        raise ApiError(400, "Bad Request", f"duplicates must be one of {list(DUPLICATE_POLICIES)}")
    row = lead_from_values(1, values, origin, f"API ({caller().name})")
    if row.lead is None:
        detail = "; ".join(ROW_PROBLEMS.get(p.code, p.code) for p in row.problems)
        raise ApiError(422, "Unprocessable Content", detail)
    outcome = import_lead(
        db(), dealer(), row.lead, duplicates=duplicates, actor=caller().actor, now=utcnow()
    )
    if outcome.result == "refused" or outcome.lead_id is None:
        db().rollback()
        raise ApiError(422, "Unprocessable Content", outcome.detail or "the lead was refused")
    db().commit()
    status = 201 if outcome.result == "created" else 200
    return jsonify(lead_document(_lead(outcome.lead_id))), status


def _strings(part: Any, name: str, limits: dict[str, int]) -> dict[str, str]:
    """A nested object of known text fields (customer, vehicle), each within its length."""
    values = {}
    for key, value in part.items():
        if key not in limits:
            raise ApiError(400, "Bad Request", f"unknown field {name}.{key}")
        if not isinstance(value, str):
            raise ApiError(400, "Bad Request", f"{name}.{key} must be a string")
        text = _usable(f"{name}.{key}", value).replace("\x00", "").strip()
        if len(text) > limits[key]:
            raise ApiError(
                400, "Bad Request", f"{name}.{key} must be at most {limits[key]} characters"
            )
        if text:
            values[key] = text
    return values


@bp.get("/leads/<int:lead_id>")
@requires("read")
def get_lead(lead_id: int) -> ResponseReturnValue:
    return jsonify(lead_document(_lead(lead_id)))


def _body(allowed: dict[str, type]) -> dict[str, Any]:
    """The JSON object of the request, with only known keys of the right types (else 400);
    size and nesting depth are limited before parsing (:func:`json_body`)."""
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise ApiError(413, "Content Too Large", f"the body must be at most {MAX_JSON_BYTES} bytes")
    if not request.is_json:
        raise ApiError(400, "Bad Request", "the body must be a JSON object")
    request.max_content_length = MAX_JSON_BYTES  # also for a body without Content-Length
    try:
        data = json_body(request.get_data(cache=True))
    except JsonError as exc:
        raise ApiError(400, "Bad Request", str(exc)) from None
    if not isinstance(data, dict):
        raise ApiError(400, "Bad Request", "the body must be a JSON object")
    unknown = set(data) - set(allowed)
    if unknown:
        raise ApiError(400, "Bad Request", f"unknown fields: {', '.join(sorted(unknown))}")
    for key, kind in allowed.items():
        if key in data and not isinstance(data[key], kind):
            raise ApiError(400, "Bad Request", f"{key} must be a {kind.__name__}")
        if key in data and isinstance(data[key], str):
            _usable(key, data[key])
    return data


@bp.post("/leads/<int:lead_id>/status")
@requires("write")
def change_status(lead_id: int) -> ResponseReturnValue:
    data = _body({"status": str, "reason": str})
    _lead(lead_id)
    status, now, actor = data.get("status"), utcnow(), caller().actor
    try:
        if status in SALES_STAGES and "reason" not in data:
            set_stage(db(), lead_id, actor, now, status)
        elif status == LeadStatus.CLOSED.value:
            usable = _reason_codes()
            if data.get("reason") not in usable:
                raise ApiError(422, "Unprocessable Content", f"reason must be one of {usable}")
            close_lead(db(), lead_id, actor, now, reason=data["reason"])
        else:
            raise ApiError(
                400,
                "Bad Request",
                f"status must be one of {[*SALES_STAGES, 'closed']}; a reason only with closed",
            )
    except ActionError as exc:
        db().rollback()
        raise ApiError(409, "Conflict", str(exc)) from None
    db().commit()
    return jsonify(lead_document(_lead(lead_id)))


CONTACT_CHANNELS = ("phone", "visit", "email", "other")


@bp.post("/leads/<int:lead_id>/contacts")
@requires("write")
def add_contact(lead_id: int) -> ResponseReturnValue:
    """A contact made outside mailgate; only ``reached`` counts as the answer (seed 000)."""
    data = _body({"channel": str, "outcome": str, "note": str})
    channel = data.get("channel", "phone")
    outcome = data.get("outcome", "reached")
    note = str(data.get("note", "")).replace("\x00", "").strip()
    if channel not in CONTACT_CHANNELS:
        raise ApiError(400, "Bad Request", f"channel must be one of {list(CONTACT_CHANNELS)}")
    if outcome not in CONTACT_OUTCOMES:
        raise ApiError(400, "Bad Request", f"outcome must be one of {list(CONTACT_OUTCOMES)}")
    if len(note) > MAX_NOTE:
        raise ApiError(400, "Bad Request", f"note must be at most {MAX_NOTE} characters")
    _lead(lead_id)
    try:
        log_contact(
            db(),
            lead_id,
            caller().actor,
            utcnow(),
            channel,
            note,
            outcome=outcome,
            dealer=dealer(),
        )
    except ActionError as exc:
        db().rollback()
        raise ApiError(409, "Conflict", str(exc)) from None
    db().commit()
    return jsonify(lead_document(_lead(lead_id)))


@bp.post("/leads/<int:lead_id>/notes")
@requires("write")
def add_note(lead_id: int) -> ResponseReturnValue:
    data = _body({"text": str})
    text = str(data.get("text", "")).replace("\x00", "").strip()
    if not text or len(text) > MAX_NOTE:
        raise ApiError(400, "Bad Request", f"text must be 1 to {MAX_NOTE} characters")
    _lead(lead_id)
    now, who = utcnow(), caller()
    what = phrase("api_note", integration=who.name, note=text)
    entry_id = log(db(), lead_id, actor=who.actor, action="note", what=what, at=now)
    db().commit()
    entry = db().get(ProtocolEntry, entry_id)
    assert entry is not None
    body = {"id": entry.id, "lead_id": lead_id, "at": now.isoformat(), "actor": who.actor}
    return jsonify(body | {"text": entry.detail}), 201
