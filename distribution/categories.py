"""Lead categories a dealer defines: which department's permissions a lead falls under.

Seed 003: "je Benutzer und Lead-Art die entsprechende Berechtigung" — the
permission ALL or per location is set per user and *lead category*, and a
category is the dealer's (e.g. "Siebel – NISSAN" holds Nissan's test drives,
offer requests and financing expiries alike).  So a category is a code, a
display name and rules by source pattern and/or kind; a lead gets the first
category whose rule fits when it is created and keeps it (the permissions
that decided who saw it must not shift under it later).

Without any ``[[categories]]`` (and for a lead no dealer rule fits) the three
built-in categories of :func:`~mailgate.distribution.policies.category_of`
apply exactly as before, so existing settings and leads keep their meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from .policies import CATEGORIES, category_of

# A category code is stored in Lead.category (String(32)) and used as a TOML key
# in users' permissions tables, so: short, lower case, no spaces or quotes.
CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_NAME = 80


@dataclass(frozen=True)
class Category:
    """One dealer category: ``sources`` are globs (``oem:nissan``, ``portal:*``),
    ``kinds`` lead kinds; every list given must fit (an empty list fits anything)."""

    code: str
    name: str
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def matches(self, source: str, kind: str) -> bool:
        if self.sources and not any(fnmatchcase(source.lower(), p.lower()) for p in self.sources):
            return False
        return not self.kinds or kind in self.kinds


def categorise(source: str, kind: str, categories: Sequence[Category] = ()) -> str:
    """The code of the first dealer category that fits, else the built-in one of the kind."""
    for category in categories:
        if category.matches(source or "", kind or ""):
            return category.code
    return category_of(kind)


def dealer_categories(document: Mapping[str, Any]) -> tuple[Category, ...]:
    """The ``[[categories]]`` of a validated settings document, in their order."""
    return tuple(
        Category(
            code=item["code"],
            name=item["name"] or item["code"],
            sources=tuple(item["sources"]),
            kinds=tuple(item["kinds"]),
        )
        for item in document.get("categories", ())
    )


def all_codes(categories: Iterable[Category]) -> tuple[str, ...]:
    """Every category a lead can have: the dealer's first, then the built-in fallbacks."""
    codes = [c.code for c in categories]
    return (*codes, *(c for c in CATEGORIES if c not in codes))


def check_categories(items: Sequence[Mapping[str, Any]], kinds: Iterable[str]) -> str | None:
    """What is wrong with a ``[[categories]]`` list (the message names the key), or None.

    Settings files are written by hand and imported by admins: a code must be
    usable as a stored value and a TOML key, and a category without any rule
    would silently swallow every lead after it.
    """
    known = set(kinds)
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"categories[{i}]"
        code = item["code"]
        if not CODE.match(code):
            return (
                f"{where}.code: 1-32 characters a-z, 0-9, _ or -, starting with a letter "
                f"or digit: {code!r}"
            )
        if code in seen:
            return f"{where}.code: duplicate category {code!r}"
        seen.add(code)
        name = item["name"]
        if len(name) > MAX_NAME or not name.isprintable():
            return f"{where}.name: at most {MAX_NAME} printable characters, one line"
        if not item["sources"] and not item["kinds"]:
            return f'{where}: give sources (e.g. ["oem:nissan"]) and/or kinds to decide its leads'
        for j, pattern in enumerate(item["sources"]):
            if not pattern.strip() or len(pattern) > 64 or not pattern.isprintable():
                return f'{where}.sources[{j}]: a source or pattern like "oem:nissan"'
        for j, kind in enumerate(item["kinds"]):
            if kind not in known:
                allowed = ", ".join(sorted(known))
                return f"{where}.kinds[{j}]: unknown kind {kind!r} (one of {allowed})"
    return None
