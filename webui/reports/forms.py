"""The date-range picker: a GET form (no CSRF: it changes nothing), dates in the dealer's zone."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.validators import Optional, ValidationError

from ..input_limits import within_day_range
from .stats import week_start

DEFAULT_WEEKS = 12
MAX_DAYS = 3 * 366  # a wider range makes a chart of unreadable slivers


def default_range(today: date) -> tuple[date, date]:
    """The last twelve weeks: from the Monday eleven weeks before this one, to today."""
    return week_start(today) - timedelta(weeks=DEFAULT_WEEKS - 1), today


class RangeForm(FlaskForm):
    class Meta:
        csrf = False

    # within_day_range: years the report's arithmetic can hold (weeks, time zones, +62 days)
    start = DateField(_l("From"), validators=[Optional(), within_day_range])
    end = DateField(_l("Until"), validators=[Optional(), within_day_range])
    # narrowing (seed 000's report filters); options set by the view, unknown values ignored
    source = SelectField(_l("Source"), choices=[], validate_choice=False)
    campaign = SelectField(_l("Campaign"), choices=[], validate_choice=False)
    channel = SelectField(_l("Channel"), choices=[], validate_choice=False)
    type = SelectField(_l("Type"), choices=[], validate_choice=False)  # the lead's kind
    location = SelectField(_l("Location"), choices=[], validate_choice=False)

    NARROWING = ("source", "campaign", "channel", "type", "location")

    def narrowing(self) -> dict[str, str]:
        """The chosen narrowing values that are among the offered options."""
        chosen = {}
        for name in self.NARROWING:
            field = getattr(self, name)
            allowed = {choice.value for choice in field.choices}
            if field.data and field.data in allowed:
                chosen[name] = field.data
        return chosen

    def validate_end(self, field: Any) -> None:
        if self.start.data and field.data:
            if field.data < self.start.data:
                raise ValidationError(_l("The end lies before the start."))
            if (field.data - self.start.data).days > MAX_DAYS:
                raise ValidationError(_l("Please choose at most three years."))

    def chosen(self, today: date) -> tuple[date, date]:
        """The valid range asked for, else the default (also for a half-filled form)."""
        first, last = default_range(today)
        if not self.validate():
            return first, last
        end = self.end.data or today
        start = self.start.data or min(first, end)
        if start > end:
            start = end
        return start, end
