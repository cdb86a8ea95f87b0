"""Labels the lead page needs beyond the core ones (registered into :data:`labels.LABELS`).

Defined here rather than in the core module so the lead area owns its words;
``register`` adds them without overriding a core label of the same code.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from mailgate import labels as core_labels

from ..labels import LABELS, core_words
from .forms import CUSTOMER_LABELS, VEHICLE_LABELS
from .manual_forms import BIRTH_DATE

EXTRA: dict[str, dict[str, object]] = {
    "action": {
        "edited": _l("data corrected"),
        "reprocessed": _l("mail processed again"),
        "outbox_resend": _l("mail sent again"),
        "note": _l("note"),
        "customer": _l("customer recognised"),
        "routing": _l("routing"),
        "pool": _l("put in the pool"),
        "follow-up": _l("follow-up attached"),
        "trade_in_cc": _l("trade-in copy sent"),
        "handed_over": _l("taken over by the source"),
    },
    # one table with the admin's delivery-failure mail: mailgate.labels
    "mail_purpose": {
        code: core_words(core_labels.purpose_label, code) for code in core_labels.MAIL_PURPOSES
    },
    "contact_channel": {
        "phone": _l("Phone call"),
        "visit": _l("Visit at the dealership"),
        "email": _l("E-mail from my own mailbox"),
        "other": _l("Other"),
        "lead_page": _l("answer sent from the lead page"),
    },
    "match_how": {
        "e-mail": _l("e-mail address"),
        "phone": _l("phone number"),
        "name and address": _l("name and address"),
        "relay address (same conversation)": _l("relay address (same conversation)"),
        "similar name": _l("similar name at the same postcode"),
    },
    "edit_field": {
        **CUSTOMER_LABELS,
        **VEHICLE_LABELS,
        "birth_date": BIRTH_DATE,
    },  # corrected fields in the protocol
    "recipient": {
        "assignee": _l("the assignee"),
        "supervisor": _l("the supervisor"),
    },
    "outbox_status": {
        "pending": _l("waiting to be sent"),
        "sending": _l("being sent"),
        "sent": _l("sent"),
        "suppressed": _l("not sent (sending is off)"),
        "dead": _l("failed"),
    },
}


def register() -> None:
    for kind, labels in EXTRA.items():
        target = LABELS.setdefault(kind, {})
        for code, text in labels.items():
            target.setdefault(code, text)
