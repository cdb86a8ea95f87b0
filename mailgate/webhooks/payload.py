"""A lead as JSON: the one shape the REST API returns and webhook events carry.

One function for both so an integration sees the same fields whether it asks
(``GET /api/v1/leads/{id}``) or is told (``lead.assigned``).  Datetimes are ISO
8601 in UTC; absent values are ``null``, never missing keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailgate.models import Customer, Lead, User

CUSTOMER_FIELDS = (
    "salutation",
    "title",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
    "country",
)
LEAD_TIMES = (
    "received_at",
    "created_at",
    "last_activity_at",
    "first_response_at",
    "next_due_at",
    "closed_at",
    "test_drive_at",
    "offer_at",
    "contract_at",
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def customer_document(customer: Customer | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {"id": customer.id, **{f: getattr(customer, f) for f in CUSTOMER_FIELDS}}


def user_document(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"email": user.email, "name": user.name}


def lead_document(lead: Lead) -> dict[str, Any]:
    """Everything an integration needs of one lead (customer and assignee included)."""
    return {
        "id": lead.id,
        "status": lead.status,
        "source": lead.source,
        "kind": lead.kind,
        "category": lead.category,
        "location": lead.location,
        "qualification": lead.qualification,
        "subject": lead.subject,
        "message": lead.message,
        "vehicle": lead.vehicle or {},
        "close_reason": lead.close_reason,
        "escalation_stage": lead.escalation_stage,
        **{name: iso(getattr(lead, name)) for name in LEAD_TIMES},
        "assignee": user_document(lead.assignee),
        "customer": customer_document(lead.customer),
    }
