"""Signed action links from staff mails: a confirmation page, and the button that acts.

Mail scanners and link previews open every link in a mail, so GET only shows
what the link would do; the POST from the page's button (with a CSRF token)
acts, through the same service functions as the lead page.  The link itself
identifies the user (no login needed, that is the point on a phone); it is
refused when it is forged, expired, already used, sent to someone else than
the logged-in user, or when the lead is no longer the user's to act on.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.distribution.actions import ActionError as DistributionError
from mailgate.distribution.actions import pool_leads, take_from_pool
from mailgate.escalation.actions import ActionError as EscalationError
from mailgate.escalation.actions import log_contact, set_resubmission
from mailgate.escalation.calendar import WorkingCalendar
from mailgate.escalation.confirm_reply import ConfirmError, confirm_reply, parse_token_id
from mailgate.escalation.tracking import ReplyRejected
from mailgate.models import OPEN_STATUSES, Lead, User, utcnow
from mailgate.signed_links import LinkClaims, LinkError, link_secret, record_use, verify, was_used

from . import signed_supervisor as supervisor
from .access import pool_user_id
from .context import db, dealer

log = logging.getLogger("mailgate.webui")
bp = Blueprint("signed", __name__)
RESUBMIT_HOUR = time(9, 0)

# Refusals: the HTTP status and what the page says (msgids, translated at render time).
PROBLEMS: dict[str, tuple[int, object]] = {
    "invalid": (400, _l("This link is not valid. It may have been shortened or changed.")),
    "expired": (410, _l("This link has expired. Please open the lead in mailgate instead.")),
    "used": (410, _l("This link has already been used. Each link works only once.")),
    "other_user": (
        403,
        _l("This link was sent to another user. Log out or open the lead in mailgate."),
    ),
    "inactive": (403, _l("The account this link was sent to is no longer active.")),
    "gone": (409, _l("This lead no longer exists or is closed; there is nothing to do.")),
    "not_yours": (409, _l("This lead is no longer assigned to you; there is nothing to do.")),
    "taken": (409, _l("Someone has already taken this lead from the pool.")),
    "not_oldest": (
        409,
        _l("Only the oldest lead in the pool may be taken. Please open the pool in mailgate."),
    ),
    "failed": (409, _l("This could not be done: %(detail)s")),
    "not_supervisor": (403, _l("This link is for a supervisor. Please open the lead in mailgate.")),
    "already_yours": (409, _l("This lead is already assigned to you; there is nothing to do.")),
    "bad_choice": (400, _l("Please choose a colleague from the list.")),
}
ACTION_TEXT = {
    "contacted": _l("I contacted the customer"),
    "resubmit": _l("Resubmit tomorrow"),
    "take": _l("Take this lead"),
    "take_over": _l("Take this lead over"),
    "reassign": _l("Reassign this lead"),
    "confirm_reply": _l("This was my answer: count it and send it to the customer"),
}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def next_working_morning(calendar: WorkingCalendar, now: datetime) -> datetime:
    """ "Tomorrow" for a resubmission: the next day the dealer is open, 09:00 or at opening.

    Friday afternoon -> Monday 09:00 (no Saturday hours); the day before a
    holiday -> the day after it.  A dealer who opens at 10:00 gets 10:00.
    """
    day: date = now.astimezone(calendar.zone).date()
    for _day in range(366):
        day += timedelta(days=1)
        if calendar.day_intervals(day):
            return calendar.next_open(datetime.combine(day, RESUBMIT_HOUR, tzinfo=calendar.zone))
    raise ValueError("the dealer is not open on any day of the next year")


def _problem(code: str, detail: str = "") -> ResponseReturnValue:
    status, message = PROBLEMS[code]
    text = str(message) % {"detail": detail} if code == "failed" else str(message)
    return render_template("signed/problem.html", code=code, message=text), status


def _check(session: Session, token: str) -> tuple[LinkClaims, User, Lead]:
    """The claims, user and lead of a link that may act now; :class:`LinkError` otherwise."""
    claims = verify(link_secret(session), token, utcnow())
    if was_used(session, claims):
        raise LinkError("used")
    if current_user.is_authenticated and current_user.id != claims.user_id:
        raise LinkError("other_user")
    user = session.get(User, claims.user_id)
    if user is None or not user.active:
        raise LinkError("inactive")
    lead = session.get(Lead, claims.lead_id)
    if lead is None or lead.status not in OPEN_STATUSES:
        raise LinkError("gone")
    if claims.action == "take":
        if lead.assignee_id != pool_user_id(session):
            raise LinkError("taken")
        if dealer().document["distribution"]["pool_oldest_only"]:
            waiting = pool_leads(session, dealer(), user.email)
            if waiting and waiting[0].id != lead.id:
                raise LinkError("not_oldest")
    elif claims.action in supervisor.SUPERVISOR_ACTIONS:
        supervisor.check(claims, user, lead)
    elif lead.assignee_id != user.id:
        raise LinkError("not_yours")
    return claims, user, lead


def _act(session: Session, config: DealerConfig, claims: LinkClaims, user: User) -> str:
    """Perform the link's action; returns what to tell the user."""
    now = utcnow()
    if claims.action == "confirm_reply":
        return _confirm_reply(session, config, claims, user, now)
    if claims.action in supervisor.SUPERVISOR_ACTIONS:
        chosen = request.form.get("to")
        target = supervisor.act(session, config, claims, user, chosen, pool_user_id(session))
        if target.id == user.id:
            return _("The lead is yours now.")
        return _("The lead is now assigned to %(name)s.", name=target.name or target.email)
    if claims.action == "contacted":
        log_contact(session, claims.lead_id, user.email, now, "direct", "confirmed by mail link")
        return _("Noted: you contacted the customer. The escalation for this lead stops.")
    if claims.action == "resubmit":
        when = next_working_morning(config.calendar, now)
        set_resubmission(session, config, claims.lead_id, user.email, now, when)
        return _("The lead comes back to you on %(when)s.", when=_format(when, config))
    take_from_pool(session, config, claims.lead_id, user.email, now)
    return _("The lead is yours now.")


def _confirm_reply(
    session: Session, config: DealerConfig, claims: LinkClaims, user: User, now: datetime
) -> str:
    """An answer from an address not on file, confirmed: counted and relayed (issue 17)."""
    try:
        outcome = confirm_reply(session, config, claims, user, now)
    except ConfirmError as exc:
        raise LinkError(str(exc)) from exc
    except ReplyRejected as exc:  # the relay cap: a loop is running on this lead
        raise EscalationError(str(exc)) from exc
    if outcome.action == "too_large":
        return _("Not sent: the message is larger than allowed. You got a mail about it.")
    if not parse_token_id(claims.token_id)[0]:  # a direct answer: the customer has it
        return _("Confirmed: your answer counts.")
    return _("Confirmed: your answer counts and goes to the customer.")


def _format(moment: datetime, config: DealerConfig) -> str:
    from .i18n import local_time

    return local_time(moment.astimezone(config.timezone))


@bp.get("/m/<linktoken:token>")
def confirm(token: str) -> ResponseReturnValue:
    """Show what the link would do, with the one button that does it (GET never acts)."""
    session = db()
    try:
        claims, user, lead = _check(session, token)
    except LinkError as exc:
        session.commit()  # a first link may have created the signing key
        return _problem(exc.reason)
    session.commit()
    return render_template(
        "signed/confirm.html",
        token=token,
        claims=claims,
        user=user,
        lead=lead,
        action_text=ACTION_TEXT[claims.action],
        choices=supervisor.choices(session, lead, pool_user_id(session))
        if claims.action == "reassign"
        else [],
    )


@bp.post("/m/<linktoken:token>")
def act(token: str) -> ResponseReturnValue:
    """Act once: the use is recorded in the action's transaction."""
    session = db()
    try:
        claims, user, lead = _check(session, token)
        message = _act(session, dealer(), claims, user)
        record_use(session, claims, utcnow())
        session.commit()
    except LinkError as exc:
        session.rollback()
        return _problem(exc.reason)
    except (EscalationError, DistributionError) as exc:
        session.rollback()
        log.info("signed link %s for lead %s refused: %s", claims.action, claims.lead_id, exc)
        return _problem("failed", str(exc))
    log.info("signed link: %s by %s on lead %s", claims.action, user.email, lead.id)
    return render_template("signed/done.html", message=message, lead=lead, claims=claims)
