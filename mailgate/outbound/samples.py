"""Sample contexts for every packaged mail template: used to validate dealer overrides.

A dealer's own template is rendered against these before it is accepted
(``mailgate settings import``), so a typo in a variable name fails the import
with the file's name instead of failing every notification at 03:00.
"""

from __future__ import annotations

from typing import Any

_LEAD = {
    "id": 4711,
    "source": "mobile.de",
    "kind": "test_drive",
    "source_label": "mobile.de",  # display names (mailgate.labels), in the mail's language
    "kind_label": "Probefahrt",
    "subject": "Anfrage zu Ihrem Golf",
    "message": "Ist der Wagen noch da?",
    "received_at": "27.11.2026 16:00",
    "vehicle": {"make": "Volkswagen", "model": "Golf 8", "price": 24890.0, "vin": None},
    "url": "https://leads.autohaus.example/leads/4711",
}
_CUSTOMER = {
    "name": "Erika Musterfrau",
    "email": "erika@kunden.example",
    "phone": "+49 170 1234567",
    "street": "Musterweg 1",
    "postcode": "12345",
    "city": "Musterstadt",
}
_PERSON = {"name": "Anna Schmidt", "email": "anna@autohaus.example"}
# Signed action links (mailgate.signed_links); empty when the dealer has no base URL.
_ACTIONS = {
    "contacted": "https://leads.autohaus.example/m/sample-contacted",
    "resubmit": "https://leads.autohaus.example/m/sample-resubmit",
}
_LADDER = {
    "lead": _LEAD,
    "customer": _CUSTOMER,
    "assignee": _PERSON,
    "supervisor": {"name": "Carl Chef", "email": "chef@autohaus.example"},
    "due_at": "30.11.2026 10:00",
    "stage2_at": "01.12.2026 10:00",
    "waiting": "2 Tagen und 18 Stunden",  # follows "seit" (dative) / "for"
    "actions": _ACTIONS,
    "reply_reaches_customer": True,  # Reply-To is the lead's tracking address
}

SAMPLE_CONTEXTS: dict[str, dict[str, Any]] = {
    "notification": {
        "lead": _LEAD,
        "customer": _CUSTOMER,
        "assignee": _PERSON,
        "actions": _ACTIONS,
        "reply_reaches_customer": True,
    },
    "unassigned": {
        "inbound": {
            "id": 7,
            "subject": "Anfrage",
            "sender": "kunde@kunden.example",
            "received_at": "27.11.2026 16:00",
            "reason": "no customer e-mail address or phone number found",
        }
    },
    "delivery_failure": {
        "failed": {
            "id": 9,
            "purpose": "notification",
            "purpose_label": "Benachrichtigung an die zuständige Person",
            "recipients": ["anna@autohaus.example"],
            "subject": "[Lead 4711] Neue Anfrage",
            "error": "550 5.1.1 unknown user",
        }
    },
    "relay_bounce": {
        "lead": _LEAD,
        "customer": _CUSTOMER,
        "assignee": _PERSON,
        "bounce": {
            "to": "erika@kunden.example",
            "reason": "5.1.1 550 5.1.1 <erika@kunden.example>: Recipient address rejected",
            "subject": "AW: Anfrage zu Ihrem Golf",
            "sent_at": "27.11.2026 16:30",
            "taken_back": True,
            "due_at": "28.11.2026 10:30",
        },
    },
    "reminder": _LADDER,
    "stage1": _LADDER,
    "stage2": {  # the supervisor's links (mailgate.signed_links SUPERVISOR actions)
        **_LADDER,
        "actions": {
            "take_over": "https://leads.autohaus.example/m/sample-take-over",
            "reassign": "https://leads.autohaus.example/m/sample-reassign",
        },
    },
    "resubmission": _LADDER,
    "target_missed": {
        "lead": _LEAD,
        "customer": _CUSTOMER,
        "assignee": _PERSON,
        "qualification": "heiß",
        "target_at": "01.12.2026 18:00",
        "reply_reaches_customer": True,
    },
    "relay": {"subject": "AW: Ihre Anfrage", "body": "Guten Tag,\n\ngerne am Montag."},
    # the relay's notices (escalation/tracking.py): kind unknown_sender, possible_answer,
    # too_large or kept_aside; why: cc, tag, previous, not_allowed, auth, sender, loop, token
    "relay_notice": {
        "notice": {
            "kind": "unknown_sender",
            "why": "",
            "check": "",
            "lead_id": 4711,
            "inbound_id": 812,
            "sender": "a.schmidt@privat.example",
            "subject": "AW: Ihre Anfrage",
            "body": "Guten Tag,\n\ngerne am Montag.",
            "link": "https://leads.autohaus.example/m/sample-confirm",
            "confirm_relays": True,
            "size_mb": "",
            "limit_mb": "",
        }
    },
    "relay_too_large": {
        "subject": "AW: Ihre Anfrage",
        "recipient": "Autohaus Beispiel",
        "size_mb": "31.2",
        "limit_mb": "20",
    },
    "acknowledgement": {"lead": _LEAD, "customer": _CUSTOMER},
    "source_feedback": {
        "lead": {
            "id": 4711,
            "source": "oem:opel",
            "source_ref": "2718281",
            "campaign": "812 - Angebotsanfrage opel.de",
            "status": "closed",
            "received_at": "27.11.2026 16:00",
        },
        "close": {"reason": "Fahrzeug verkauft", "outcome": "won"},
        "customer": {"name": "Erika Musterfrau"},
        "customer_data": [
            {"field": "last_name", "value": "Musterfrau", "corrected": False},
            {"field": "phone", "value": "+49 821 1234567", "corrected": True},
        ],
        "dealer_name": "Autohaus Beispiel",
        "dealer_number": "DE0621.00",
    },
    "followup": {
        "lead": _LEAD,
        "customer": _CUSTOMER,
        "assignee": _PERSON,
        "followup": {"subject": "Noch eine Frage", "message": "Gibt es den auch in Blau?"},
        "reply_reaches_customer": True,
    },
    "pool_notice": {
        "lead": _LEAD,
        "customer": _CUSTOMER,
        "assignee": _PERSON,
        "actions": {"take": "https://leads.autohaus.example/m/sample-take"},
        "reply_reaches_customer": True,
    },
    "reassigned": {
        "lead": _LEAD,
        "customer": _CUSTOMER,
        "assignee": _PERSON,
        "forward": {"by": "Carl Chef", "note": "Bitte heute noch anrufen."},
        "reply_reaches_customer": True,
    },
    "imap_oversize": {
        "mailbox": "filiale-nord",
        "folder": "INBOX",
        "subject": "Angebot mit Fotos",
        "sender": "kunde@kunden.example",
        "date": "27.11.2026 16:00",
        "size_mb": "31.2",
        "limit_mb": "25",
    },
    "password_reset": {
        "name": "Anna Schmidt",
        "link": "https://leads.autohaus.example/password/reset/abc123",
        "valid_minutes": 60,
    },
    "invitation": {
        "name": "Anna Schmidt",
        "email": "anna.schmidt@autohaus.example",
        "inviter": "Ada Admin",
        "role_label": "Verkäufer:in",
        "link": "https://leads.autohaus.example/invite/abc123",
        "valid_days": 7,
    },
    "test_mail": {
        "name": "Ada Admin",
        "relay": "mail.autohaus.example:587",
        "requested_at": "07.12.2026 12:00",
    },
    "trade_in_forward": {
        "lead": _LEAD,
        "customer": _CUSTOMER,
        "trade_in": {"make": "Opel", "model": "Astra", "mileage": 98000},
    },
}


def sample_context(name: str, dealer_name: str = "Autohaus Beispiel") -> dict[str, Any] | None:
    """The sample for template ``name`` (with ``dealer_name``), or None if we have none."""
    sample = SAMPLE_CONTEXTS.get(name)
    return None if sample is None else {**sample, "dealer_name": dealer_name}
