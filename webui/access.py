"""Who may see and do what: roles and the lead scope, enforced on every route.

Salespeople see their own leads and the pool, supervisors their team's (the
users whose supervisor they are) plus their own and the pool, admins all.
A customer has no owner of his own: who may see (and change) a customer
follows from his leads (:func:`customer_scope`), so there is one rule, not
two that drift apart; changing his data needs all of his leads in sight
(:func:`may_change_customer`), as colleagues' replies go to his address.  On
top of that, a user's category permissions (built-in sales / service /
financing or the dealer's ``[[categories]]``: all, own location, none) apply to
every role but admin: "none" and "own_location" narrow what he owns, an
explicit "all" or "own_location" also widens it to the category's leads of
everyone (of his locations) — seed 003's ALLE.  The scope is a SQL
condition, so lists, counts, exports and single lead lookups all use the
same rule and a lead outside it is a 404, never a page with a hidden menu
entry.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy import ColumnElement, and_, false, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailgate.models import AppSecret, Customer, Lead, LeadStatus, User, UserRole

from .context import db, dealer

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Account:
    """The logged-in user as Flask-Login keeps it: a snapshot, not an ORM object.

    ``session_id`` ties a browser session to the password it was made with, so
    changing or resetting the password logs out every other session.
    """

    id: int
    email: str
    name: str
    role: str
    language: str
    locations: tuple[str, ...]
    permissions: tuple[tuple[str, str], ...]
    session_id: str
    is_active: bool = True
    is_authenticated: bool = True
    is_anonymous: bool = False

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(
            id=user.id,
            email=user.email.lower(),
            name=user.name or user.email,
            role=user.role,
            language=user.language or "de",
            locations=tuple(user.locations or ()),
            permissions=tuple(sorted((user.permissions or {}).items())),
            session_id=login_id(user),
            is_active=bool(user.active),
        )

    def get_id(self) -> str:
        return self.session_id

    @property
    def is_admin(self) -> bool:
        return self.role == UserRole.ADMIN

    @property
    def is_supervisor(self) -> bool:
        return self.role == UserRole.SUPERVISOR

    def permission(self, category: str) -> str:
        return dict(self.permissions).get(category, "all")


def session_id_of(user: User) -> str:
    """``<user id>:<a fingerprint of the password hash>`` (never the hash itself)."""
    import hashlib

    fingerprint = hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]
    return f"{user.id}:{fingerprint}"


def _epoch_name(user_id: int) -> str:
    return f"session_epoch:{user_id}"


def session_epoch(user_id: int) -> str:
    """The user's current session epoch ("" until the first logout), kept in the database.

    Sessions are signed cookies, so without a server-side value a cookie copied
    before a logout would still be good afterwards.  Logging out sets a new
    random epoch (:func:`end_sessions`), which ends every session of that user
    on every instance.  Read in the request's own session (SQLite: no second
    writer inside a request).
    """
    found = db().get(AppSecret, _epoch_name(user_id))
    return found.value if found is not None else ""


def end_sessions(user_id: int) -> None:
    """Invalidate every session of the user (logout); commits the request's session."""
    name, value = _epoch_name(user_id), secrets.token_urlsafe(24)
    session = db()
    found = session.get(AppSecret, name)
    if found is not None:
        found.value = value
        session.commit()
        return
    session.add(AppSecret(name=name, value=value))
    try:
        session.commit()
    except IntegrityError:  # another instance logged the same user out just now
        session.rollback()
        session.execute(update(AppSecret).where(AppSecret.name == name).values(value=value))
        session.commit()


def login_id(user: User) -> str:
    """What the session cookie holds: ``<id>:<password fingerprint>:<session epoch>``."""
    return f"{session_id_of(user)}:{session_epoch(user.id)}"


def load_account(session_id: str) -> Account | None:
    """Flask-Login's user loader: the account if it still exists, is active, has the same
    password and has not logged out since (same session epoch)."""
    user_id, _, _fingerprint = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db().get(User, int(user_id))
    if user is None or not user.active or login_id(user) != session_id:
        return None
    return Account.of(user)


def me() -> Account:
    """The logged-in account (routes using this are behind ``login_required``)."""
    return current_user._get_current_object()  # type: ignore[no-any-return]


def roles_required(*roles: str) -> Callable[[F], F]:
    """Login required, and one of ``roles`` (403 otherwise, also for direct URLs and POSTs)."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if me().role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


admin_required = roles_required(UserRole.ADMIN)


def team_ids(session: Session, account: Account) -> list[int]:
    """The account itself plus, for a supervisor, the users he supervises."""
    ids = [account.id]
    if account.is_supervisor:
        ids += session.scalars(
            select(User.id).where(func.lower(User.supervisor_email) == account.email)
        ).all()
    return ids


def pool_user_id(session: Session) -> int | None:
    pool = dealer().document["distribution"].get("pool_user") or ""
    if not pool:
        return None
    return session.scalar(select(User.id).where(func.lower(User.email) == pool.lower()))


def _category_condition(account: Account) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    for category, level in account.permissions:  # no entry: no restriction
        if level == "none":
            conditions.append(Lead.category != category)
        elif level == "own_location":
            conditions.append(
                or_(Lead.category != category, Lead.location.in_(account.locations or ("",)))
            )
    return and_(true(), *conditions)


def _category_grants(account: Account) -> ColumnElement[bool]:
    """Leads seen through a category permission, whoever owns them (seed 003).

    "Je Benutzer und Lead-Art die Berechtigung ALLE oder je Standort": an
    explicit "all" shows every lead of the category, "own_location" its leads
    of the user's locations.  Only explicit entries grant: a user without one
    keeps seeing his own, his team's and the pool's leads, as before.
    """
    grants: list[ColumnElement[bool]] = []
    for category, level in account.permissions:
        if level == "all":
            grants.append(Lead.category == category)
        elif level == "own_location" and account.locations:
            grants.append(and_(Lead.category == category, Lead.location.in_(account.locations)))
    return or_(false(), *grants)


def lead_scope(account: Account, session: Session | None = None) -> ColumnElement[bool]:
    """The SQL condition for the leads ``account`` may see."""
    if account.is_admin:
        return true()
    session = session or db()
    owners = team_ids(session, account)
    pool = pool_user_id(session)
    if pool is not None:
        owners.append(pool)
    owned = Lead.assignee_id.in_(owners) if owners else false()
    return or_(and_(owned, _category_condition(account)), _category_grants(account))


def visible_lead(lead_id: int) -> Lead:
    """The lead if the logged-in account may see it, else 404 (not 403: no probing by id)."""
    lead = db().scalar(select(Lead).where(Lead.id == lead_id, lead_scope(me())))
    if lead is None:
        abort(404)
    return lead


def customer_scope(account: Account, session: Session | None = None) -> ColumnElement[bool]:
    """The SQL condition for the customers ``account`` may see: those with a lead he may see.

    Customer data is as private as the leads it came with: a salesperson sees
    (and may change) the customers of his own and the pool's leads, a
    supervisor his team's, an admin every customer.  A customer with no lead
    in the scope is someone else's, even when one knows his phone number.
    """
    if account.is_admin:
        return true()
    leads = select(Lead.customer_id).where(
        Lead.customer_id.is_not(None), lead_scope(account, session)
    )
    return Customer.id.in_(leads)


def visible_customer_ids(session: Session, account: Account, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` the account may see (one query, for a list of candidates)."""
    wanted = set(ids)
    if not wanted:
        return set()
    found = session.scalars(
        select(Customer.id).where(Customer.id.in_(wanted), customer_scope(account, session))
    )
    return set(found)


def visible_customer(customer_id: int) -> Customer:
    """The customer if the logged-in account may see him, else 404 (as for a lead)."""
    customer = db().scalar(select(Customer).where(Customer.id == customer_id, customer_scope(me())))
    if customer is None:
        abort(404)
    return customer


def may_change_customer(session: Session, account: Account, customer_id: int) -> bool:
    """Whether ``account`` may change the customer's data, not only see it.

    A customer's data serves every lead he has: his e-mail address is where
    each salesperson's reply is relayed.  So seeing him through one lead is
    not enough to change him; every lead of his (but deleted ones) must be in
    the user's scope.  Admins always may.
    """
    if account.is_admin:
        return True
    leads = set(
        session.scalars(
            select(Lead.id).where(
                Lead.customer_id == customer_id, Lead.status != LeadStatus.DELETED.value
            )
        )
    )
    seen = set(
        session.scalars(
            select(Lead.id).where(Lead.customer_id == customer_id, lead_scope(account, session))
        )
    )
    return bool(seen) and leads <= seen
