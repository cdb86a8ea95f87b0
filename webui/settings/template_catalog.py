"""Mail templates in words: a title and a purpose per template, a description per variable.

The template editor lists templates by what they are for ("Eskalation Stufe 1: the
lead is overdue"), not by their file names (``stage1``), and shows which variables a
template can use, with what each holds and the fields of the structured ones
(``lead.make`` …), taken from the sample data the preview renders with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from mailgate.outbound.samples import sample_context
from mailgate.outbound.template_check import allowed_variables

# name -> (title, purpose); group: who receives it
TEMPLATES: dict[str, tuple[LazyString, LazyString, LazyString]] = {
    "notification": (
        _l("New lead"),
        _l("Tells the salesperson about a lead assigned to them."),
        _l("To salespeople"),
    ),
    "reassigned": (
        _l("Lead handed over"),
        _l("Tells the new salesperson that a lead was passed on to them."),
        _l("To salespeople"),
    ),
    "followup": (
        _l("Customer wrote again"),
        _l("Passes a further message of the customer on to the salesperson."),
        _l("To salespeople"),
    ),
    "pool_notice": (
        _l("New lead in the pool"),
        _l("Tells salespeople that a lead waits in the pool to be taken."),
        _l("To salespeople"),
    ),
    "reminder": (
        _l("Reminder before it is overdue"),
        _l("Reminds the salesperson shortly before the answer time runs out."),
        _l("To salespeople"),
    ),
    "stage1": (
        _l("Escalation stage 1: overdue"),
        _l("Tells the salesperson that the answer time has run out."),
        _l("To salespeople"),
    ),
    "stage2": (
        _l("Escalation stage 2: supervisor"),
        _l("Tells the supervisor that a lead is still unanswered."),
        _l("To supervisors and admins"),
    ),
    "resubmission": (
        _l("Resubmission due"),
        _l("Reminds the salesperson of a resubmission date that has come."),
        _l("To salespeople"),
    ),
    "target_missed": (
        _l("Processing target missed"),
        _l("Tells the salesperson that a lead has not reached its next step in time."),
        _l("To salespeople"),
    ),
    "relay_bounce": (
        _l("Mail to the customer bounced"),
        _l("Tells the salesperson that their answer could not be delivered."),
        _l("To salespeople"),
    ),
    "relay_too_large": (
        _l("Answer too large"),
        _l("Tells the sender that a mail was too large to be relayed."),
        _l("To salespeople"),
    ),
    "relay_notice": (
        _l("Notice about a relayed mail"),
        _l("Explains why a mail between salesperson and customer was held back."),
        _l("To salespeople"),
    ),
    "relay": (
        _l("Relayed answer"),
        _l("The frame of an answer relayed from the salesperson to the customer."),
        _l("To customers"),
    ),
    "acknowledgement": (
        _l("Acknowledgement of receipt"),
        _l("Confirms to the customer that the inquiry has arrived."),
        _l("To customers"),
    ),
    "trade_in_forward": (
        _l("Trade-in copy"),
        _l("Passes a trade-in request with its core data on to the appraiser."),
        _l("To the appraiser"),
    ),
    "source_feedback": (
        _l("Status feedback to the platform"),
        _l("Reports the outcome of a lead back to the manufacturer or platform."),
        _l("To platforms"),
    ),
    "unassigned": (
        _l("Mail without a lead"),
        _l("Tells the office about a mail that did not become a lead."),
        _l("To admins"),
    ),
    "delivery_failure": (
        _l("Delivery failure"),
        _l("Tells the admin that a mail could not be delivered."),
        _l("To admins"),
    ),
    "imap_oversize": (
        _l("Mail too large in a mailbox"),
        _l("Tells the admin about a mail in a mailbox that was too large to import."),
        _l("To admins"),
    ),
    "password_reset": (
        _l("Reset password"),
        _l("The link to set a new password."),
        _l("To users"),
    ),
    "invitation": (
        _l("Invitation"),
        _l("Invites a new user with a link to set their password."),
        _l("To users"),
    ),
    "test_mail": (
        _l("Test mail"),
        _l("Checks from the settings that outgoing mail works."),
        _l("To admins"),
    ),
}

VARIABLES: dict[str, LazyString] = {
    "lead": _l("The lead: subject, kind, source, vehicle, message, link to the lead page"),
    "customer": _l("The customer: name, e-mail, phone, address"),
    "assignee": _l("The salesperson the lead is assigned to: name, e-mail"),
    "supervisor": _l("The salesperson's supervisor: name, e-mail"),
    "actions": _l("Links that act on the lead from the mail (contacted, resubmission)"),
    "due_at": _l("When the lead is due (date and time)"),
    "stage2_at": _l("When the supervisor will be told"),
    "waiting": _l("How long the customer has been waiting, e.g. 2 days and 3 hours"),
    "reply_reaches_customer": _l("Whether answering the mail reaches the customer (yes/no)"),
    "followup": _l("The customer's further message: subject and text"),
    "forward": _l("Who handed the lead over, with their note"),
    "bounce": _l("The bounced mail: recipient, subject, reason"),
    "failed": _l("The undeliverable mail: recipients, subject, error"),
    "inbound": _l("The mail that became no lead: sender, subject, reason"),
    "notice": _l("What was held back and why"),
    "trade_in": _l("The trade-in vehicle: make, model, mileage"),
    "close": _l("The outcome of the lead and the completion reason"),
    "customer_data": _l("The customer data reported to the platform (list of fields)"),
    "dealer_name": _l("The dealership's name"),
    "dealer_number": _l("The dealer number at the platform"),
    "qualification": _l("The lead's qualification (hot, warm, cold)"),
    "target_at": _l("The processing target that was missed"),
    "body": _l("The relayed text"),
    "subject": _l("The mail's subject"),
    "sender": _l("The sender's address"),
    "date": _l("When the mail arrived"),
    "folder": _l("The mailbox folder"),
    "mailbox": _l("The mailbox's name"),
    "size_mb": _l("The mail's size in MB"),
    "limit_mb": _l("The largest size allowed in MB"),
    "recipient": _l("The recipient's address"),
    "link": _l("The personal link (valid for a limited time)"),
    "name": _l("The user's name"),
    "email": _l("The user's e-mail address"),
    "inviter": _l("Who sent the invitation"),
    "role_label": _l("The user's role"),
    "valid_days": _l("For how many days the link is valid"),
    "valid_minutes": _l("For how many minutes the link is valid"),
    "relay": _l("The mail server used for sending"),
    "requested_at": _l("When the test was started"),
}


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    fields: tuple[str, ...]  # "lead.make", ... for structured variables


def title(name: str) -> str:
    entry = TEMPLATES.get(name)
    return str(entry[0]) if entry else _("Mail template “%(name)s”", name=name)


def purpose(name: str) -> str:
    entry = TEMPLATES.get(name)
    return str(entry[1]) if entry else ""


def audience(name: str) -> str:
    entry = TEMPLATES.get(name)
    return str(entry[2]) if entry else _("Other mails")


def _fields(prefix: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        return tuple(f"{prefix}.{key}" for key in sorted(value))
    return ()


def variables(name: str) -> list[Variable]:
    """The variables template ``name`` may use, with description and fields (sorted)."""
    allowed = sorted(allowed_variables(name) or ())
    sample = sample_context(name) or {}
    return [
        Variable(var, str(VARIABLES.get(var, "")), _fields(var, sample.get(var))) for var in allowed
    ]
