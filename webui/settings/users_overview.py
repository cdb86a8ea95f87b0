"""The users overview (seed 002's "Benutzer" block): who receives leads, who can be
assigned, groups, absence, locations and category permissions of every user in one table,
with the distribution warnings (solo distribution, pool with receivers) beside it.

Read from the settings document (the source of truth for users) plus the
inactive users that exist only as database rows.  Pure reading; the switches
post to ``settings.user_switch``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import settings_warnings
from mailgate.distribution.policies import CATEGORIES
from mailgate.models import User

from ..phrases import words

SWITCHES = ("receives_leads", "can_be_assigned")


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def current_absence(absences: list[dict[str, Any]], today: date) -> dict[str, Any] | None:
    """The absence running today, else the next one to come (None when none is ahead)."""
    ahead = []
    for absence in absences or ():
        start, until = _day(absence.get("from")), _day(absence.get("until"))
        if until is None or until < today:
            continue
        ahead.append((start or today, until, absence.get("substitute") or ""))
    if not ahead:
        return None
    start, until, substitute = min(ahead)
    return {"from": start, "until": until, "substitute": substitute, "now": start <= today}


def _permissions(given: dict[str, str]) -> list[tuple[str, str]]:
    """His entries, built-in categories first; none at all: his own, team and pool leads."""
    builtin = [(c, given[c]) for c in CATEGORIES if c in given]
    return builtin + [(c, level) for c, level in given.items() if c not in CATEGORIES]


def overview(
    session: Session, document: dict[str, Any], today: date | None = None
) -> dict[str, Any]:
    today = today or date.today()
    users = {u.email.lower(): u for u in session.scalars(select(User))}
    names = {email: (u.name or u.email) for email, u in users.items()}
    rows = []
    for entry in document["users"]:
        email = entry["email"].lower()
        user = users.get(email)
        if user is None:
            continue
        absence = current_absence(entry.get("absences") or [], today)
        if absence and absence["substitute"]:
            absence["substitute"] = names.get(absence["substitute"].lower(), absence["substitute"])
        permissions = entry.get("permissions") or {}
        rows.append(
            {
                "id": user.id,
                "name": entry.get("name") or email,
                "email": email,
                "role": entry.get("role") or user.role,
                "active": True,
                "receives_leads": bool(entry.get("receives_leads")),
                "can_be_assigned": bool(entry.get("can_be_assigned")),
                "groups": list(entry.get("groups") or []),
                "locations": list(entry.get("locations") or []),
                "absence": absence,
                "permissions": _permissions(permissions),
            }
        )
    listed = {r["email"] for r in rows}
    for email, user in sorted(users.items()):
        if email in listed or user.active:
            continue
        rows.append(
            {
                "id": user.id,
                "name": user.name or email,
                "email": email,
                "role": user.role,
                "active": False,
                "receives_leads": bool(user.receives_leads),
                "can_be_assigned": bool(user.can_be_assigned),
                "groups": list(user.groups or []),
                "locations": list(user.locations or []),
                "absence": None,
                "permissions": _permissions(user.permissions or {}),
            }
        )
    rows.sort(key=lambda r: (not r["active"], str(r["name"]).lower()))
    warnings = settings_warnings(document)
    return {
        "users": rows,
        "warnings": [words([w]) for w in warnings],
        "solo": any(w.code in ("solo", "group_solo") for w in warnings),
        "mode": document["distribution"].get("mode"),
        "pool_user": document["distribution"].get("pool_user") or "",
    }
