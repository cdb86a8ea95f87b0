"""Who may answer a lead through its tracking address: tokens bound to (lead, assignee).

Why a second token: the lead's own ``reply_token`` travels to the customer
(acknowledgement, relayed answers) and in mails to several people (pool
notices, ladder mails), so it proves only "someone who saw a mail about this
lead".  The salesperson's notification carries an *assignee token* instead,
derived from the lead's secret and the assignee's user id
(:func:`assignee_token`, HMAC-SHA256, 128 bits).  Nothing is stored: when the
lead is reassigned the derivation gives the new owner a new token, and the
old owner's token is still recognised — as "a previous assignee's", which
makes a mail carrying it a *possible answer* (a note for a human), never the
answer.  The threat model these rules answer is in ``THREATS.md`` next to
this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import Lead, User, UserRole

from .replies import token_matches


class TokenKind(StrEnum):
    """What a tracking address's token proves about the mail's writer."""

    ASSIGNEE = "assignee"  # the current assignee's notification: bound to (lead, assignee)
    LEAD = "lead"  # the lead's own token: customer mails, pool and ladder mails
    PREVIOUS = "previous"  # bound to someone who is no longer the lead's assignee
    NONE = "none"  # no token, or not this lead's


def assignee_token(lead_token: str, user_id: int) -> str:
    """The token of ``user_id``'s mails about a lead: 128 bits, URL-safe, no padding.

    Keyed by the lead's 128-bit secret, so knowing one lead's (or one user's)
    token tells nothing about another's, and the database needs no new row.
    """
    digest = hmac.new(
        lead_token.encode("utf-8"), f"assignee:{user_id}".encode("ascii"), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenCheck:
    kind: TokenKind
    bound_user_id: int | None = None  # for ASSIGNEE / PREVIOUS: whose token it is


def check_token(session: Session, lead: Lead, given: str | None) -> TokenCheck:
    """Classify ``given`` for ``lead``; constant-time comparisons throughout.

    A previous assignee is found by deriving the token of every user: a
    dealership has tens of users, and this runs only for mail that carries a
    token which is neither the lead's nor the current assignee's.
    """
    if not given or not lead.reply_token:
        return TokenCheck(TokenKind.NONE)
    if lead.assignee_id is not None and token_matches(
        given, assignee_token(lead.reply_token, lead.assignee_id)
    ):
        return TokenCheck(TokenKind.ASSIGNEE, lead.assignee_id)
    if token_matches(given, lead.reply_token):
        return TokenCheck(TokenKind.LEAD)
    for user_id in session.scalars(select(User.id)):
        if user_id != lead.assignee_id and token_matches(
            given, assignee_token(lead.reply_token, user_id)
        ):
            return TokenCheck(TokenKind.PREVIOUS, user_id)
    return TokenCheck(TokenKind.NONE)


def may_act(session: Session, dealer: DealerConfig, user: User, lead: Lead) -> bool:
    """Whether ``user`` may answer ``lead`` in the dealership's name.

    The web UI's rule (:func:`mailgate.webui.access.lead_scope`: own leads,
    the pool, a supervisor's team, admins everything, category permissions on
    top), so a mail and a click obey one permission model.  Built here from
    its parts because ``lead_scope`` reads the pool user from the request's
    dealer settings, and the worker has no request.
    """
    if not user.active:
        return False
    if lead.assignee_id == user.id or user.role == UserRole.ADMIN:
        return True
    from mailgate.webui.access import Account, _category_condition, team_ids

    account = Account(
        id=user.id,
        email=user.email.lower(),
        name=user.name or user.email,
        role=user.role,
        language=user.language or "de",
        locations=tuple(user.locations or ()),
        permissions=tuple(sorted((user.permissions or {}).items())),
        session_id="",
    )
    owners = team_ids(session, account)
    pool = (dealer.document["distribution"].get("pool_user") or "").lower()
    if pool:
        pool_id = session.scalar(select(User.id).where(func.lower(User.email) == pool))
        if pool_id is not None:
            owners.append(pool_id)
    found = session.scalar(
        select(Lead.id).where(
            Lead.id == lead.id, Lead.assignee_id.in_(owners), _category_condition(account)
        )
    )
    return found is not None
