"""Options of the web UI's select boxes as WTForms ``SelectChoice`` objects.

WTForms 3.3 deprecates ``(value, label)`` tuples as ``choices`` and 3.4 drops
them.  The option tables stay readable as pairs in the forms modules; every
``choices=`` goes through :func:`options`, so the forms build the objects WTForms
expects in one place (the test run turns the tuple warning into an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wtforms.fields.choices import SelectChoice


def options(pairs: Iterable[tuple[Any, Any]]) -> list[SelectChoice]:
    """One ``SelectChoice`` per ``(value, label)`` pair, in the given order."""
    return [SelectChoice(value, label) for value, label in pairs]
