"""Display labels for the codes stored in the database (translated; unknown codes as they are)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import LazyString, get_locale
from flask_babel import lazy_gettext as _l

from mailgate import labels as core_labels


def core_words(words: Callable[[str, str], str], code: str) -> LazyString:
    """A label from :mod:`mailgate.labels` in the request's language, looked up when shown."""
    return LazyString(lambda: words(code, str(get_locale() or "de")))


LABELS: dict[str, dict[str, Any]] = {
    "due": {
        "ok": _l("ok"),
        "soon": _l("due soon"),
        "overdue": _l("overdue"),
        "paused": _l("paused"),
        "resubmission": _l("resubmission"),
    },
    # kinds, statuses and sources: the one table of mailgate.labels, shared with the mails
    "kind": {code: core_words(core_labels.kind_label, code) for code in core_labels.KINDS},
    "lead_status": {
        code: core_words(core_labels.status_label, code) for code in core_labels.LEAD_STATUSES
    },
    "source": {code: core_words(core_labels.source_label, code) for code in core_labels.SOURCES},
    "inbound_status": {
        "received": _l("received"),
        "processing": _l("processing"),
        "processed": _l("processed"),
        "discarded": _l("discarded"),
        "quarantined": _l("quarantined"),
        "failed": _l("failed"),
    },
    "role": {
        "salesperson": _l("Salesperson"),
        "supervisor": _l("Supervisor"),
        "admin": _l("Admin"),
    },
    "action": {
        "received": _l("received"),
        "opened": _l("opened by the salesperson"),
        "edited": _l("data corrected"),
        "note": _l("note"),
        "handed_over": _l("taken over by the call centre"),
        "outbox_resend": _l("mail sent again"),
        "reprocessed": _l("mail processed again"),
        "assigned": _l("assigned"),
        "unassigned": _l("not assigned"),
        "notified": _l("notified"),
        "reassigned": _l("reassigned"),
        "forwarded": _l("forwarded"),
        "taken": _l("taken from the pool"),
        "deleted": _l("deleted"),
        "contact": _l("contact logged"),
        "contact_attempt": _l("contact attempt"),
        "target_missed": _l("processing target missed"),
        "handed_back": _l("handed back from the call centre"),
        "linked_lead": _l("own lead of the source, linked"),
        "closed": _l("closed"),
        "reopened": _l("reopened"),
        "resubmission": _l("resubmission set"),
        "due_moved": _l("due date changed"),
        "qualified": _l("qualification set"),
        "clock_restarted": _l("escalation clock restarted"),
        "status": _l("status changed"),
        "answered": _l("answered"),
        "customer_replied": _l("customer replied"),
        "possible_answer": _l("possible answer (not counted)"),
        "unknown_sender": _l("message from an address not on file"),
        "reply_confirmed": _l("answer confirmed"),
        "relay_refused": _l("not relayed"),
        "reply_kept_aside": _l("mail to the reply address kept aside"),
        "relayed": _l("reply relayed"),
        "undelivered": _l("mail not delivered (bounce)"),
        "acknowledged": _l("acknowledgement sent"),
        "followup": _l("follow-up attached"),
        "reminder": _l("reminder"),
        "stage1": _l("escalation stage 1"),
        "stage2": _l("escalation to supervisor"),
        "stage2_resubmission": _l("resubmission escalated"),
        "resubmission_due": _l("resubmission due"),
    },
    "category": {  # the lead's channel: the department it belongs to
        "sales": _l("Sales"),
        "service": _l("Service"),
        "financing": _l("Financing"),
    },
    # what a manual lead records of the next vehicle and the customer's interests (seed 004)
    "usage": {
        "purchase": _l("purchase"),
        "use": _l("lease / use"),
        "financing": _l("financing"),
    },
    "interest": {
        "dealer_contact": _l("dealer contact"),
        "brochure": _l("brochure"),
        "test_drive": _l("test drive"),
        "offer": _l("vehicle offer"),
        "purchase": _l("vehicle purchase"),
        "accessories": _l("accessories catalogue"),
    },
    "qualification": {
        "hot": _l("hot"),
        "warm": _l("warm"),
        "cold": _l("cold"),
        "junk": _l("junk"),
    },
}

VEHICLE_FIELDS = (
    ("make", _l("Make")),
    ("model", _l("Model")),
    ("price", _l("Price")),
    ("mileage", _l("Mileage")),
    ("first_registration", _l("First registration")),
    ("vin", _l("VIN")),
    ("listing_id", _l("Listing no.")),
    ("stock_number", _l("Stock no.")),
    ("location", _l("Location")),
)


def label(code: str | None, kind: str) -> str:
    if code is None:
        return "–"
    if kind == "source":  # any source, also ``oem:<brand>`` (not a fixed list)
        return core_labels.source_label(code, str(get_locale() or "de"))
    if kind == "category":  # the dealer's own [[categories]] by their name
        named = {c.code: c.name for c in _dealer_categories()}.get(code)
        if named:
            return named
    return str(LABELS.get(kind, {}).get(code, code))


def _dealer_categories() -> tuple[Any, ...]:
    from mailgate.distribution.categories import dealer_categories

    from .context import dealer

    return dealer_categories(dealer().document)


def category_choices() -> list[tuple[str, str]]:
    """Every category a lead can have here (the dealer's first, then the built-in), labelled:
    the lead list's channel filter and the reports offer what the dealer defined."""
    from mailgate.distribution.categories import all_codes

    return [(c, label(c, "category")) for c in all_codes(_dealer_categories())]


def vehicle_value(value: Any, key: str) -> str:
    """Prices and mileages in the user's notation (24.890 € / €24,890.00); the rest as stored."""
    from flask_babel import format_currency, format_decimal

    if key == "price" and isinstance(value, int | float):
        text = format_currency(value, "EUR")
        return text.replace(",00", "") if text.endswith(",00\xa0€") else text
    if key == "mileage" and isinstance(value, int | float):
        return format_decimal(value, format="#,##0") + " km"
    return str(value)
