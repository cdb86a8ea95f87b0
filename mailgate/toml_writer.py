"""Writing the dealer settings document as TOML, in the layout an admin expects.

Hand-written because the TOML writers on PyPI either emit arrays of tables
inline (tomli-w) or are a much larger style-preserving editor (tomlkit); the
document has a fixed, small shape: tables of scalars and string lists, arrays
of tables, and inline tables of string lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def dump_settings_toml(document: dict[str, Any], sections: Iterable[str]) -> str:
    """Tables first (``sections`` in order), then the arrays of tables.

    ``[[escalation.rules]]`` is written as a sub-array after ``[escalation]``.
    """
    lines: list[str] = []
    for section in sections:
        lines.append(f"[{section}]")
        for key, value in document[section].items():
            if key == "rules":
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        for rule in document[section].get("rules", []) if section == "escalation" else []:
            lines.append("")
            lines.append("[[escalation.rules]]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in rule.items())
        lines.append("")
    for section in ("users", "groups", "imap", "completion_reasons", "feedback", "categories"):
        for item in document.get(section, []):
            lines.append(f"[[{section}]]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
            lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else _toml_value(key)
