"""Durations as an hours + minutes pair instead of typed codes like ``4h``.

The settings document keeps its duration strings (``"4h"``, ``"1h30m"``, ``"1d"``);
the page shows two number inputs, ``<name>-hours`` and ``<name>-minutes``, and
:func:`compose` turns them back into such a string — the format
:func:`mailgate.dealer_settings.parse_duration` reads, so what is saved is what the
escalation uses.  A form without the pair (an older script posting ``stage1=4h``)
is still read as the text it sends; the settings validation then judges it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask_babel import gettext as _
from wtforms import Field
from wtforms.utils import unset_value

from mailgate.dealer_settings import parse_duration

MAX_HOURS = 9999  # a bit more than a year: anything above is a typing accident


class DurationInputError(ValueError):
    """The pair cannot be a duration; the message is German and says what to type."""


def compose(hours: str, minutes: str) -> str:
    """``("1", "30")`` -> ``"1h30m"``; ``("", "")`` -> ``""`` (nothing given)."""
    hours, minutes = hours.strip(), minutes.strip()
    if not hours and not minutes:
        return ""
    if not (hours or "0").isdecimal() or not (minutes or "0").isdecimal():
        raise DurationInputError(_("Hours and minutes must be whole numbers, e.g. 4 and 30."))
    h, m = int(hours or 0), int(minutes or 0)
    if h > MAX_HOURS:
        raise DurationInputError(_("At most %(n)s hours.", n=MAX_HOURS))
    if m > 59:
        raise DurationInputError(_("Minutes go from 0 to 59; write 90 minutes as 1 h 30 min."))
    if h and m:
        return f"{h}h{m}m"
    return f"{h}h" if h else f"{m}m"


def split(stored: str) -> tuple[str, str]:
    """``"1d"`` -> ``("24", "0")``; a text that is no duration -> ``(text, "")``."""
    try:
        total = parse_duration(stored)
    except ValueError:
        return (stored, "")
    minutes = int(total / timedelta(minutes=1))
    return str(minutes // 60), str(minutes % 60)


def read(form: Mapping[str, str], name: str) -> str | None:
    """The duration posted as ``<name>-hours``/``<name>-minutes`` (or ``<name>``); None if absent.

    Raises :class:`DurationInputError` for a pair that is no duration.
    """
    if f"{name}-hours" in form or f"{name}-minutes" in form:
        return compose(str(form.get(f"{name}-hours", "")), str(form.get(f"{name}-minutes", "")))
    if name in form:
        return str(form[name]).strip()
    return None


class DurationField(Field):
    """A duration edited as hours + minutes; ``data`` is the stored string or ``""``."""

    raw_pair: tuple[str, str] | None = None

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        if formdata is None:
            return
        pair = (f"{self.name}-hours", f"{self.name}-minutes")
        if pair[0] in formdata or pair[1] in formdata:
            self.raw_pair = (formdata.get(pair[0], ""), formdata.get(pair[1], ""))
            try:
                self.data = compose(*self.raw_pair)
            except DurationInputError as exc:
                self.data = ""
                self.process_errors.append(str(exc))

    def _value(self) -> str:
        return self.data or ""

    @property
    def pair(self) -> tuple[str, str]:
        """The values for the two inputs: what was typed, else the stored duration split."""
        if self.raw_pair is not None:
            return self.raw_pair
        return split(self.data) if self.data else ("", "")
