"""The rows of the CSV export: the filtered list, every column a salesperson needs in Excel.

Read in chunks of lead ids (in the list's order), so a 100,000-lead export
streams with flat memory instead of loading every lead at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from mailgate.models import Lead

from ..labels import label
from .csvexport import german_datetime, german_number
from .due import state_label, state_of

CHUNK = 1000


def header() -> list[str]:
    return [
        _("No."),
        _("Received"),
        _("Customer"),
        _("E-mail"),
        _("Phone"),
        _("Kind"),
        _("Source"),
        _("Status"),
        _("Assigned to"),
        _("Location"),
        _("Last activity"),
        _("Due at"),  # the stage-1 time; "Due" is German "Fälligkeit" like "Due state"
        _("Due state"),
        _("Make"),
        _("Model"),
        _("Price"),
        _("VIN"),
        _("Listing no."),
        _("Confidence"),
        _("Qualification"),
        _("Source code"),  # the stored code, for an integration or a re-import
    ]


def row(lead: Lead, now: datetime, zone: ZoneInfo) -> list[object]:
    c, v = lead.customer, lead.vehicle or {}
    price = v.get("price")
    return [
        lead.id,
        german_datetime(lead.received_at, zone),
        c.name if c else "",
        c.email if c else "",
        c.phone if c else "",
        label(lead.kind, "kind"),
        label(lead.source, "source"),
        label(lead.status, "lead_status"),
        (lead.assignee.name or lead.assignee.email) if lead.assignee else "",
        lead.location or "",
        german_datetime(lead.last_activity_at, zone),
        german_datetime(lead.overdue_at, zone),
        state_label(state_of(lead, now)),
        v.get("make") or "",
        v.get("model") or "",
        german_number(price) if isinstance(price, int | float) else (price or ""),
        v.get("vin") or "",
        v.get("listing_id") or "",
        german_number(lead.confidence),
        label(lead.qualification, "qualification") if lead.qualification else "",
        lead.source,
    ]


def export_rows(
    session: Session, ids_query: Select[tuple[int]], now: datetime, zone: ZoneInfo
) -> Iterator[list[object]]:
    ids = list(session.scalars(ids_query))
    session.rollback()  # read-only: end the transaction so SQLite writers are not held up
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        leads = {
            lead.id: lead
            for lead in session.scalars(
                select(Lead)
                .where(Lead.id.in_(chunk))
                .options(selectinload(Lead.customer), selectinload(Lead.assignee))
            )
        }
        for lead_id in chunk:
            yield row(leads[lead_id], now, zone)
        session.rollback()  # between chunks, too (each chunk is its own short read)
        session.expunge_all()
