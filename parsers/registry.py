"""The parser registry: an explicit ordered tuple, the generic fallback last.

Each entry is a module with ``NAME``, ``matches(view)`` (cheap signals only:
sender domains, headers, a marker string) and ``parse(view, ctx)``.  Specific
parsers come first; the first that matches wins.  ``tests/test_parser_fixtures.py``
checks this tuple against the modules in this folder and their fixture folders.

One piece of evidence outranks every ``matches``: a mail that imitates a
platform (:func:`.signals.lookalike_reason`) goes to the generic parser, which
files it as a non-lead -- no specific parser may lend a phishing mail the
credibility of its source, however lead-like its body.
"""

from __future__ import annotations

from types import ModuleType

from . import (
    adf,
    autoscout24,
    generic,
    kleinanzeigen,
    mobile_de,
    oem_brands,
    oem_hyundai,
    oem_mercedes_benz,
    oem_nissan,
    oem_opel,
    oem_volkswagen,
    website,
)
from .message import MailView
from .signals import lookalike_reason

PARSERS: tuple[ModuleType, ...] = (
    mobile_de,
    kleinanzeigen,
    autoscout24,
    adf,
    oem_opel,
    oem_nissan,
    oem_volkswagen,
    oem_mercedes_benz,
    oem_hyundai,
    oem_brands,
    website,
    generic,
)
SPECIFIC: tuple[ModuleType, ...] = PARSERS[:-1]


def pick(view: MailView) -> ModuleType:
    """The first parser whose ``matches`` accepts the mail; generic if none does or a look-alike."""
    if lookalike_reason(view):
        return generic
    for module in SPECIFIC:
        try:
            if module.matches(view):
                return module
        except Exception as exc:  # noqa: BLE001 - a broken matcher must not stop the others
            view.warnings.append(f"{module.NAME}: matches failed: {type(exc).__name__}")
    return generic
