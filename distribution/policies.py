"""Pure assignment policies: candidates in, decision plus a readable reason out.

Today there is one policy: every lead goes to the configured fallback user, or
when that user is missing or inactive, to the first active salesperson who
receives leads, and finally to the admin.  Rolling, pool and group distribution
build on the same :class:`Decision` shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    email: str
    name: str
    role: str
    active: bool
    receives_leads: bool


@dataclass(frozen=True)
class Decision:
    assignee: str | None
    reason: str


def choose_assignee(
    candidates: Sequence[Candidate], fallback_user: str, admin_address: str
) -> Decision:
    """Fallback user -> first active lead receiver -> admin account -> nobody."""
    by_email = {c.email.lower(): c for c in candidates}
    fallback = by_email.get(fallback_user.lower()) if fallback_user else None
    if fallback is not None and fallback.active:
        return Decision(fallback.email, "fallback user")
    for candidate in candidates:
        if candidate.active and candidate.receives_leads and candidate.role != "admin":
            why = "fallback user inactive" if fallback else "no fallback user configured"
            return Decision(candidate.email, f"{why} → first active salesperson")
    admin = by_email.get(admin_address.lower()) if admin_address else None
    if admin is not None and admin.active:
        return Decision(admin.email, "nobody receives leads → admin account")
    return Decision(None, "nobody can take the lead: no active user configured")
