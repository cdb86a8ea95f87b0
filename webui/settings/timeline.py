"""The "a lead received now would escalate at ..." preview, from the timeline function.

Uses :func:`mailgate.escalation.ladder.timeline` (what ``mailgate timeline``
uses) on a *candidate* document, so the preview shows unsaved changes too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailgate.dealer_settings import config_from_document, validate
from mailgate.escalation.ladder import timeline
from mailgate.models import utcnow


def preview(
    document: dict[str, Any], source: str = "", kind: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """The escalation instants of a lead received ``now`` (raises SettingsError if invalid)."""
    config = config_from_document(validate(document))
    times = config.escalation_times(source or "", kind or "")
    received = (now or utcnow()).astimezone(config.timezone)
    line = timeline(config.calendar, times, received)
    return {
        "received_at": line.received_at,
        "reminder_at": line.reminder_at,
        "stage1_at": line.stage1_at,
        "stage2_at": line.stage2_at,
        "rule": times.rule,
    }
