"""Repeating rows in a form (escalation rules, groups, absences, reasons).

Inputs are named ``<prefix>-<n>-<key>``; a row whose inputs are all empty is
dropped, so every table shows one blank row for adding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

SPLIT = re.compile(r"[,;\s]+")


def form_rows(form: Mapping[str, str], prefix: str, keys: Iterable[str]) -> list[dict[str, str]]:
    """The non-empty rows, in index order, as ``{key: stripped text}``."""
    keys = tuple(keys)
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-")
    indexes = sorted({int(m.group(1)) for name in form if (m := pattern.match(name))})
    result = []
    for index in indexes:
        row = {key: str(form.get(f"{prefix}-{index}-{key}", "")).strip() for key in keys}
        if any(row.values()):
            result.append(row)
    return result


def split_list(text: str) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]`` (commas, semicolons or spaces)."""
    return [part for part in SPLIT.split(text or "") if part]
