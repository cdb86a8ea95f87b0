"""What an admin does with webhooks: add, change, delete, send a test event (no commit).

Every change drops the cached webhook lists (:func:`.emit.forget_webhooks`)
so this process emits to the new set at once; other processes within
:data:`.emit.CACHE_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, delete, func, select
from sqlalchemy.orm import Session

from mailgate.models import Lead, Webhook, WebhookDelivery, WebhookStatus, utcnow

from .destination import (
    EMPTY_ALLOWLIST,
    UNRESOLVED,
    Allowlist,
    DestinationRefused,
    check_destination,
)
from .emit import EVENTS, forget_webhooks
from .sign import new_secret

EVENTS_MISSING = "events"


class WebhookError(ValueError):
    """The webhook cannot be saved as given; ``code`` says why (a
    :data:`.destination.REASONS` code for the URL, :data:`EVENTS_MISSING`)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def check_url(url: str, allowlist: Allowlist = EMPTY_ALLOWLIST) -> str:
    """The URL, stripped, if the sender may post to it (:mod:`.destination`).

    A name that does not resolve yet is accepted (the receiver may not be
    set up yet); the sender checks every attempt again, so it cannot slip through.
    """
    url = url.strip()
    try:
        check_destination(url, allowlist)
    except DestinationRefused as exc:
        if exc.code != UNRESOLVED:
            raise WebhookError(str(exc), exc.code) from None
    return url


def _check_events(events: Sequence[str]) -> list[str]:
    unknown = set(events) - set(EVENTS)
    if unknown or not events:
        raise WebhookError(f"events are some of {', '.join(EVENTS)}", EVENTS_MISSING)
    return [e for e in EVENTS if e in events]


def create_webhook(
    session: Session,
    url: str,
    events: Sequence[str],
    name: str = "",
    active: bool = True,
    *,
    allowlist: Allowlist = EMPTY_ALLOWLIST,
) -> Webhook:
    """A new webhook with a freshly generated secret (shown to the admin to copy)."""
    hook = Webhook(
        name=name.strip()[:64],
        url=check_url(url, allowlist),
        secret=new_secret(),
        events=_check_events(events),
        active=active,
        created_at=utcnow(),
    )
    session.add(hook)
    session.flush()
    forget_webhooks()
    return hook


def update_webhook(
    session: Session,
    hook_id: int,
    *,
    url: str,
    events: Sequence[str],
    name: str,
    active: bool,
    new_secret_wanted: bool = False,
    allowlist: Allowlist = EMPTY_ALLOWLIST,
) -> Webhook:
    hook = session.get(Webhook, hook_id)
    if hook is None:
        raise WebhookError(f"no webhook {hook_id}")
    hook.url, hook.events = check_url(url, allowlist), _check_events(events)
    hook.name, hook.active = name.strip()[:64], active
    if new_secret_wanted:
        hook.secret = new_secret()
    session.flush()
    forget_webhooks()
    return hook


def delete_webhook(session: Session, hook_id: int) -> bool:
    """Remove a webhook and its deliveries (sent or not: nobody will receive them now)."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id))
    gone = session.execute(delete(Webhook).where(Webhook.id == hook_id)).rowcount
    forget_webhooks()
    return bool(gone)


def queue_test_event(session: Session, hook_id: int) -> int:
    """A ``lead.created`` for the newest lead, to this webhook only, marked as a test."""
    hook = session.get(Webhook, hook_id)
    if hook is None:
        raise WebhookError(f"no webhook {hook_id}")
    lead_id = session.scalar(select(Lead.id).order_by(Lead.id.desc()).limit(1))
    now = utcnow()
    key = f"test:{hook_id}:{now.isoformat()}"
    delivery = WebhookDelivery(
        webhook_id=hook_id,
        event="lead.created",
        lead_id=lead_id,
        payload={
            "event": "lead.created",
            "id": key,
            "occurred_at": now.isoformat(),
            "test": True,
            "data": {},
            "lead": None if lead_id is None else {"id": lead_id},
        },
        idempotency_key=key,
        status=WebhookStatus.PENDING.value,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery.id


def last_attempts(session: Session) -> dict[int, Row[tuple[int, str, str | None, int]]]:
    """Per webhook, its newest delivery that was tried: (webhook_id, status, last_error,
    attempts), for the admin's overview (``last_error`` is a :mod:`.failures` class)."""
    newest = (
        select(func.max(WebhookDelivery.id))
        .where(WebhookDelivery.attempts > 0)
        .group_by(WebhookDelivery.webhook_id)
    )
    rows = session.execute(
        select(
            WebhookDelivery.webhook_id,
            WebhookDelivery.status,
            WebhookDelivery.last_error,
            WebhookDelivery.attempts,
        ).where(WebhookDelivery.id.in_(newest))
    ).all()
    return {row.webhook_id: row for row in rows}
