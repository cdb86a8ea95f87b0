"""The parser registry: an explicit ordered tuple, the generic fallback last.

Each entry is a module with ``NAME``, ``matches(view)`` (cheap signals only) and
``parse(view, dealer_addresses)``.  Specific parsers come first; the first that
matches wins.  A test checks this tuple against the modules in this folder.
"""

from __future__ import annotations

from types import ModuleType

from . import generic

PARSERS: tuple[ModuleType, ...] = (generic,)


def pick(view) -> ModuleType:  # type: ignore[no-untyped-def]
    for module in PARSERS:
        if module.matches(view):
            return module
    return generic
