"""Which users a viewer may filter by and reassign to (the list's select boxes).

Mirrors :func:`..access.lead_scope`: a salesperson filters by himself and the
pool, a supervisor by his team and the pool, an admin by everyone; only
supervisors (their team) and admins (everyone who can be assigned) reassign.
"""

from __future__ import annotations

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.models import User, UserRole

from ..access import Account, pool_user_id, team_ids


def visible_users(session: Session, account: Account) -> list[User]:
    """Users whose leads the account may see (for the assignee filter); once per request."""
    if "visible_users" not in g:
        g.visible_users = _visible_users(session, account)
    return list(g.visible_users)


def _visible_users(session: Session, account: Account) -> list[User]:
    query = select(User).order_by(User.name, User.email)
    if not account.is_admin:
        ids = team_ids(session, account)
        pool = pool_user_id(session)
        if pool is not None:
            ids.append(pool)
        query = query.where(User.id.in_(ids))
    return list(session.scalars(query))


def may_reassign(account: Account) -> bool:
    return account.role in (UserRole.SUPERVISOR, UserRole.ADMIN)


def reassign_targets(session: Session, account: Account) -> list[User]:
    """Users this account may hand leads to: active and assignable, within his team."""
    if not may_reassign(account):
        return []
    return [u for u in visible_users(session, account) if u.active and u.can_be_assigned]


def display_name(user: User) -> str:
    return user.name or user.email
