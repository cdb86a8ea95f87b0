"""The list's rows as plain strings, formatted once per request.

Rendering 50 rows through Jinja filters and gettext calls cost more than the
database queries (every ``_()`` and ``|local`` looks up the locale again), so
the view resolves labels and the date format once per request and hands the
template finished strings.  Dates come out exactly as :func:`..i18n.local_time`
writes them (a test compares both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import get_month_names
from flask_babel import format_timedelta, get_locale, gettext

from mailgate.labels import source_label
from mailgate.models import Lead

from ..i18n import local_time
from ..labels import LABELS
from .due import GREY, state_of
from .due import LABELS as DUE_LABELS
from .query import REVIEW_CONFIDENCE


@dataclass(frozen=True)
class Row:
    id: int
    customer: str
    review: bool
    kind: str
    status: str
    assignee: str
    source: str
    vehicle: str
    phone: str
    received: str
    activity: str
    waiting: str
    state: str
    state_label: str
    grey: bool
    select_label: str


class RowFormatter:
    """Formats leads for one request: language, time zone and labels resolved once."""

    def __init__(self, zone: ZoneInfo, now: datetime) -> None:
        self.zone, self.now = zone, now
        self.language = str(get_locale() or "de")
        self.kinds = {code: str(text) for code, text in LABELS["kind"].items()}
        self.statuses = {code: str(text) for code, text in LABELS["lead_status"].items()}
        self.states = {code: str(text) for code, text in DUE_LABELS.items()}
        self.select = gettext("Select lead %(id)s")  # no variables: filled per row
        self.sources: dict[str, str] = {}
        self.months = get_month_names("abbreviated", locale="en") if self.language == "en" else {}

    def source(self, code: str) -> str:
        """A source by its name ("Hersteller: Opel"), looked up once per code and request."""
        if code not in self.sources:
            self.sources[code] = source_label(code, self.language)
        return self.sources[code]

    @staticmethod
    def vehicle(vehicle: dict[str, object] | None) -> str:
        """Make and model of the vehicle asked about ("VW Golf"), "–" without them."""
        parts = [str((vehicle or {}).get(key) or "").strip() for key in ("make", "model")]
        return " ".join(part for part in parts if part) or "–"

    def time(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        local = value.astimezone(self.zone)
        if self.language == "de":
            return local.strftime("%d.%m.%Y %H:%M")
        if self.language == "en":
            return f"{local.day} {self.months[local.month]} {local.year}, {local:%H:%M}"
        return local_time(value)

    def waiting(self, lead: Lead, state: str) -> str:
        """How long the customer has waited for a first answer ("–" once answered or closed)."""
        if lead.first_response_at is not None or state == "closed":
            return "–"
        return str(format_timedelta(self.now - lead.received_at, threshold=1.0))

    def row(self, lead: Lead, unnamed: str) -> Row:
        """``unnamed``: e.g. ``Lead %(id)s``, for a lead without customer name or e-mail."""
        c, a = lead.customer, lead.assignee
        state = state_of(lead, self.now)
        return Row(
            id=lead.id,
            customer=((c.name or c.email) if c else None) or unnamed % {"id": lead.id},
            review=(lead.confidence or 0.0) < REVIEW_CONFIDENCE or bool(lead.warnings),
            kind=self.kinds.get(lead.kind, lead.kind),
            status=self.statuses.get(lead.status, lead.status),
            assignee=(a.name or a.email) if a else "–",
            source=self.source(lead.source),
            vehicle=self.vehicle(lead.vehicle),
            phone=(c.phone if c else None) or "–",
            received=self.time(lead.received_at),
            activity=self.time(lead.last_activity_at),
            waiting=self.waiting(lead, state),
            state=state,
            state_label=self.states.get(state, state),
            grey=state in GREY,
            select_label=self.select % {"id": lead.id},
        )
