"""Emitting lead events: one webhook_delivery row per interested webhook, in the caller's
transaction (a transactional outbox: the event exists if and only if the change does).

Why a cache: :func:`emit` sits on the worker's hot path (every new lead), and
almost every dealership has no webhook at all.  The list of active webhooks is
kept per engine for a few seconds, so emitting costs a dictionary lookup when
none is configured; the admin pages call :func:`forget_webhooks` after a
change, and other processes see it within :data:`CACHE_SECONDS`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from mailgate.models import Lead, Webhook, WebhookDelivery, WebhookStatus, utcnow

from .payload import lead_document

EVENTS = (
    "lead.created",
    "lead.assigned",
    "lead.answered",
    "lead.escalated",
    "lead.status_changed",
    "lead.closed",
)
CACHE_SECONDS = 5.0
MAX_KEY_LENGTH = 255

_Hooks = tuple[tuple[int, frozenset[str]], ...]
_cache: weakref.WeakKeyDictionary[Engine, tuple[float, _Hooks]] = weakref.WeakKeyDictionary()
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def forget_webhooks() -> None:
    """Drop the cached webhook lists (after an admin added, changed or removed one)."""
    _cache.clear()


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def active_webhooks(session: Session) -> _Hooks:
    """(id, events) of every active webhook, from the cache when it is fresh."""
    engine = _engine(session)
    now = time.monotonic()
    cached = _cache.get(engine)
    if cached is not None and cached[0] > now:
        return cached[1]
    rows = session.execute(select(Webhook.id, Webhook.events).where(Webhook.active)).all()
    hooks = tuple((row.id, frozenset(row.events or ())) for row in rows)
    _cache[engine] = (now + CACHE_SECONDS, hooks)
    return hooks


def emit(
    session: Session,
    event: str,
    lead_id: int,
    payload: Mapping[str, Any] | None = None,
    *,
    key: str = "",
) -> int:
    """Queue ``event`` for every active webhook that wants it; returns how many rows were new.

    ``key`` tells two events of one kind for one lead apart (e.g. the new
    assignee and time for ``lead.assigned``); the idempotency key
    ``event:lead:webhook:key`` makes emitting the same event twice a no-op.
    Does not commit; a no-op (and no query) when no webhook is configured.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = [hook_id for hook_id, events in active_webhooks(session) if event in events]
    return _queue(session, hooks, event, lead_id, payload, key)


def emit_to(
    session: Session,
    webhook_id: int,
    event: str,
    lead_id: int,
    payload: Mapping[str, Any] | None = None,
    *,
    key: str = "",
) -> int:
    """Queue ``event`` for one webhook whatever events it subscribed to (a source's status
    feedback channel, :mod:`mailgate.escalation.feedback`); same idempotency as :func:`emit`."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    return _queue(session, [webhook_id], event, lead_id, payload, key)


def _queue(
    session: Session,
    hooks: list[int],
    event: str,
    lead_id: int,
    payload: Mapping[str, Any] | None,
    key: str,
) -> int:
    if not hooks:
        return 0
    session.flush()
    lead = session.scalars(
        select(Lead)
        .where(Lead.id == lead_id)
        .options(selectinload(Lead.customer), selectinload(Lead.assignee))
        .execution_options(populate_existing=True)
    ).one()
    now = utcnow()
    body = {"data": dict(payload or {}), "lead": lead_document(lead)}
    rows = []
    for hook_id in hooks:
        delivery_key = f"{event}:{lead_id}:{hook_id}:{key}"[:MAX_KEY_LENGTH]
        rows.append(
            {
                "webhook_id": hook_id,
                "event": event,
                "lead_id": lead_id,
                "payload": {"event": event, "id": delivery_key, "occurred_at": now.isoformat()}
                | body,
                "idempotency_key": delivery_key,
                "status": WebhookStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
        )
    dialect = session.get_bind().dialect.name
    return len(session.execute(_insert_statement(dialect), rows).all())


@cache
def _insert_statement(dialect: str) -> Any:
    """INSERT .. ON CONFLICT DO NOTHING: a duplicate must not abort the caller's transaction."""
    table = WebhookDelivery.__table__
    return (
        _INSERTS[dialect](table)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id)
    )


def emit_new_lead(session: Session, lead_id: int, assignee_id: int | None, now: Any) -> None:
    """``lead.created``, and ``lead.assigned`` when the lead went to a person (not the pool).

    One call for the pipeline, so its hot path has one cheap check when no
    webhook is configured.
    """
    if not active_webhooks(session):
        return
    emit(session, "lead.created", lead_id)
    if assignee_id is not None:
        emit(session, "lead.assigned", lead_id, {"by": "system"}, key=f"{assignee_id}:{now}")
