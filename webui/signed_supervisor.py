"""The supervisor's links in the stage-2 escalation mail: take the lead over, or reassign it.

Why links at all: the escalation reaches the supervisor on the phone, and the
two things he then does are "I'll do it myself" and "give it to someone who
is here"; opening mailgate, logging in and finding the lead costs the minutes
the escalation is about.  Like every signed link (:mod:`.signed`) the GET shows
a confirmation page and only the POST acts, so a mail scanner that opens the
link changes nothing; the reassign page also asks *to whom* (only users who
may be given the lead are offered, and the POSTed choice is checked against
that list again).  The link is signed for the mail's recipient: it acts only
while he is an active supervisor or admin and the lead is open.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.distribution.actions import reassign
from mailgate.distribution.policies import may_see
from mailgate.distribution.service import to_candidate
from mailgate.models import Lead, User, UserRole, utcnow
from mailgate.signed_links import LinkClaims, LinkError

SUPERVISOR_ACTIONS = ("take_over", "reassign")
ROLES = (UserRole.SUPERVISOR.value, UserRole.ADMIN.value)


def check(claims: LinkClaims, user: User, lead: Lead) -> None:
    """Refuse the link unless its user may still act on the lead as supervisor."""
    if user.role not in ROLES:
        raise LinkError("not_supervisor")
    if claims.action == "take_over" and lead.assignee_id == user.id:
        raise LinkError("already_yours")


def choices(session: Session, lead: Lead, pool_user: int | None) -> list[User]:
    """Who the lead may be given to: active, assignable, allowed to see it, not its holder."""
    users = session.scalars(
        select(User).where(User.active, User.can_be_assigned).order_by(User.name, User.email)
    ).all()
    return [
        user
        for user in users
        if user.id not in (lead.assignee_id, pool_user)
        and may_see(to_candidate(user), lead.category, lead.location)
    ]


def act(
    session: Session,
    config: DealerConfig,
    claims: LinkClaims,
    user: User,
    chosen: str | None,
    pool_user: int | None,
) -> User:
    """Take over or reassign (``chosen``: the form's user id); returns the new assignee."""
    now = utcnow()
    if claims.action == "take_over":
        reassign(session, config, [claims.lead_id], user.email, actor=user.email, now=now)
        return user
    lead = session.get(Lead, claims.lead_id)
    assert lead is not None  # checked by the caller
    allowed = {str(u.id): u for u in choices(session, lead, pool_user)}
    target = allowed.get((chosen or "").strip())
    if target is None:
        raise LinkError("bad_choice")
    reassign(session, config, [claims.lead_id], target.email, actor=user.email, now=now)
    return target
