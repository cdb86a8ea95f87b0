"""Distribution I/O: load candidates from the DB, apply the policy, record it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import User

from .policies import Candidate, Decision, choose_assignee


def assign(session: Session, dealer: DealerConfig) -> tuple[User | None, Decision]:
    # Users change rarely; one worker session (a batch of mails) reads them once.
    users = session.info.get("distribution_users")
    if users is None:
        users = list(session.scalars(select(User).order_by(User.id)))
        session.info["distribution_users"] = users
    candidates = [Candidate(u.email, u.name, u.role, u.active, u.receives_leads) for u in users]
    decision = choose_assignee(candidates, dealer.fallback_user, dealer.admin_address)
    chosen = next((u for u in users if u.email == decision.assignee), None)
    return chosen, decision
