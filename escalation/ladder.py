"""Pure escalation arithmetic: from receipt and the configured times to due times.

For now the stage-1 time is counted continuously; the working-hours calendar
replaces :func:`initial_due_times`' arithmetic without changing its shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class DueTimes:
    soon_at: datetime  # reminder: due state turns "soon"
    overdue_at: datetime  # stage 1: due state turns "overdue"
    next_due_at: datetime  # the next moment the scheduler must look at the lead


def initial_due_times(
    received_at: datetime, stage1: timedelta, reminder_before: timedelta
) -> DueTimes:
    """``received 10:00, stage1 4h, reminder 1h`` -> soon 13:00, overdue 14:00, next 13:00."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    overdue = received_at + stage1
    soon = max(received_at, overdue - reminder_before)
    return DueTimes(soon_at=soon, overdue_at=overdue, next_due_at=soon)


def due_state(now: datetime, soon_at: datetime | None, overdue_at: datetime | None) -> str:
    """``ok`` before the reminder, ``soon`` from it, ``overdue`` from stage 1."""
    if overdue_at is not None and now >= overdue_at:
        return "overdue"
    if soon_at is not None and now >= soon_at:
        return "soon"
    return "ok"
