"""Who may act on a lead the user can already see, and to whom it may be given.

Seeing is :func:`..access.visible_lead`'s job (a 404 outside the scope).  On
top of that a salesperson acts only on his own leads: the pool and colleagues'
leads he may see (pool) or not at all, but a pool lead is *taken* first, so
nobody logs calls on a lead that is not his.  Supervisors act on everything
they see (their team's leads and the pool), admins on everything.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.distribution.policies import may_see
from mailgate.distribution.service import to_candidate
from mailgate.models import Lead, User

from ..access import Account, pool_user_id


def may_act(account: Account, lead: Lead) -> bool:
    if lead.handed_over_at is not None:  # the source's call centre has it: read-only
        return False
    if account.is_admin or account.is_supervisor:
        return True
    return lead.assignee_id == account.id


def in_pool(session: Session, lead: Lead) -> bool:
    pool = pool_user_id(session)
    return pool is not None and lead.assignee_id == pool


def assignable_users(session: Session, lead: Lead) -> list[User]:
    """Active users who may be assigned leads and may see this lead's category (not its owner)."""
    users = session.scalars(
        select(User)
        .where(User.active.is_(True), User.can_be_assigned.is_(True))
        .order_by(User.name, User.email)
    )
    return [
        u
        for u in users
        if u.id != lead.assignee_id and may_see(to_candidate(u), lead.category, lead.location)
    ]
