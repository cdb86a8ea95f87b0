"""Importing a settings *file*: what a whole-document replacement needs beyond validation.

An import replaces everything, so a file that is valid but nearly empty -- a
truncated copy, the wrong file, an empty upload -- would wipe the lead
addresses (SMTP then answers 550 and marketplaces bounce real inquiries for
good) and deactivate every user.  Such a document is refused unless the
caller says it means it (``--allow-empty-addresses``, ``--allow-no-users``).
Files that are not settings at all (binary, not UTF-8, too large, nested
beyond any settings key) fail with one line, never a traceback.  The CLI and
the web UI's upload both come through :func:`read_document` and
:func:`import_document`; ``--dry-run`` shows :func:`diff_settings` and rolls
back.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import (
    SCHEMA,
    SENT_FOLDERS_SECTION,
    SettingsError,
    _sent_folders,
    apply_document,
    stored_document,
    validate,
)
from mailgate.models import DealerSetting, User

MAX_BYTES = 1024 * 1024  # a settings file is a few kilobytes
MAX_DEPTH = 16  # the deepest settings key is 5 levels down (escalation.rules[].match.source)
_TOO_DEEP = f"not a settings file: tables or arrays nested deeper than {MAX_DEPTH} levels"


class IncompleteDocument(SettingsError):
    """A valid document that would wipe the lead addresses or every user.

    ``what`` is ``"addresses"`` or ``"users"``: the CLI names its flag, the web
    UI its checkbox.
    """

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


class UnreadableFile(SettingsError):
    """Not a settings file at all; ``what`` is ``size``, ``encoding``, ``toml`` or ``depth``."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


def read_document(data: bytes) -> dict[str, Any]:
    """The TOML document in ``data``; :class:`SettingsError` with one line if it is not one."""
    if len(data) > MAX_BYTES:
        raise UnreadableFile(
            "size", f"the file is larger than {MAX_BYTES // 1024} KiB: not a settings file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"not UTF-8 text (invalid byte at offset {exc.start}): save the settings file as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark from a Windows editor is harmless
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise UnreadableFile("depth", _TOO_DEEP) from None
    except ValueError as exc:  # TOMLDecodeError, and whatever else tomllib might raise
        raise UnreadableFile("toml", f"not valid TOML: {exc}") from None
    if _depth(document) > MAX_DEPTH:
        raise UnreadableFile("depth", _TOO_DEEP)
    return document


def _depth(value: Any) -> int:
    """How deeply tables and arrays nest (iteratively: a deep value must not recurse here)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def check_complete(
    clean: dict[str, Any], *, allow_empty_addresses: bool = False, allow_no_users: bool = False
) -> None:
    """Refuse a document without lead addresses or without an active user, unless allowed."""
    if not clean["dealer"]["addresses"] and not allow_empty_addresses:
        raise IncompleteDocument(
            "addresses",
            "[dealer] addresses is missing or empty: with no lead address the SMTP listener "
            "refuses every inquiry (550) and marketplaces bounce them for good",
        )
    if not any(user["active"] for user in clean["users"]) and not allow_no_users:
        raise IncompleteDocument(
            "users",
            "[[users]] is missing or has no active user: the import would deactivate everyone",
        )


@dataclass
class SettingsDiff:
    """What an import would change, by the categories an operator checks first."""

    users_added: list[str] = field(default_factory=list)
    users_changed: list[str] = field(default_factory=list)
    users_deactivated: list[str] = field(default_factory=list)
    addresses_added: list[str] = field(default_factory=list)
    addresses_removed: list[str] = field(default_factory=list)
    hours_changed: list[str] = field(default_factory=list)
    other_changes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per category that has something, or ``no changes``."""
        labels = (
            ("users added", self.users_added),
            ("users changed", self.users_changed),
            ("users deactivated", self.users_deactivated),
            ("lead addresses added", self.addresses_added),
            ("lead addresses removed", self.addresses_removed),
            ("hours changed", self.hours_changed),
            ("other changes", self.other_changes),
        )
        out = [f"{label}: {'; '.join(items)}" for label, items in labels if items]
        return out or ["no changes"]


# Fields of a [[users]] entry and the User attribute each is stored in.
_USER_FIELDS = (
    ("name", "name"),
    ("role", "role"),
    ("language", "language"),
    ("supervisor", "supervisor_email"),
    ("receives_leads", "receives_leads"),
    ("can_be_assigned", "can_be_assigned"),
    ("active", "active"),
    ("groups", "groups"),
    ("locations", "locations"),
    ("absences", "absences"),
    ("permissions", "permissions"),
)
# List sections: the key that names an entry in the diff.
_ENTRY_KEYS = {
    "groups": "name",
    "imap": "name",
    "completion_reasons": "code",
    "feedback": "source",
    "categories": "code",
}
_SECRET_WORDS = ("password", "token", "secret")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _change(key: str, old: Any, new: Any) -> str:
    if any(word in key for word in _SECRET_WORDS):
        return f"{key} (changed)"
    return f"{key} {_show(old)} -> {_show(new)}"


def diff_settings(session: Session, clean: dict[str, Any]) -> SettingsDiff:
    """Compare a validated document with what is stored (before it is applied)."""
    before = stored_document(session)
    diff = SettingsDiff()
    _diff_users(session, clean, diff)
    old_addresses = [a.lower() for a in before["dealer"]["addresses"]]
    new_addresses = [a.lower() for a in clean["dealer"]["addresses"]]
    diff.addresses_added = [a for a in new_addresses if a not in old_addresses]
    diff.addresses_removed = [a for a in old_addresses if a not in new_addresses]
    for day, intervals in clean["hours"].items():
        old = before["hours"].get(day, [])
        if old != intervals:
            diff.hours_changed.append(
                f"{day} {', '.join(old) or '(closed)'} -> {', '.join(intervals) or '(closed)'}"
            )
    for section in SCHEMA:
        if section == "hours":
            continue
        for key, new in clean[section].items():
            if (section, key) != ("dealer", "addresses") and before[section].get(key) != new:
                diff.other_changes.append(
                    _change(f"{section}.{key}", before[section].get(key), new)
                )
    for section, name_key in _ENTRY_KEYS.items():
        diff.other_changes.extend(_diff_entries(section, name_key, before[section], clean[section]))
    return diff


def _diff_users(session: Session, clean: dict[str, Any], diff: SettingsDiff) -> None:
    existing = {u.email.lower(): u for u in session.scalars(select(User).order_by(User.id))}
    folders_row = session.get(DealerSetting, SENT_FOLDERS_SECTION)
    old_folders = (folders_row.data or {}).get("items", {}) if folders_row else {}
    new_folders = _sent_folders(clean)
    seen = set()
    for entry in clean["users"]:
        email = entry["email"].lower()
        seen.add(email)
        user = existing.get(email)
        if user is None:
            diff.users_added.append(f"{email} ({entry['role']})")
            continue
        if user.active and not entry["active"]:
            diff.users_deactivated.append(f"{email} (active = false)")
            continue
        wanted = {**entry, "language": entry["language"] or clean["dealer"]["language"]}
        wanted["supervisor"] = entry["supervisor"].lower() or None
        changes = [
            _change(key, getattr(user, attr), wanted[key])
            for key, attr in _USER_FIELDS
            if getattr(user, attr) != wanted[key]
        ]
        if old_folders.get(email, {}) != new_folders.get(email, {}):
            changes.append("sent_folder (changed)")
        if changes:
            diff.users_changed.append(f"{email} ({', '.join(changes)})")
    for email, user in existing.items():
        if email not in seen and user.active:
            diff.users_deactivated.append(f"{email} (not in [[users]])")


def _diff_entries(
    section: str, name_key: str, old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[str]:
    """``imap: added filiale-sued; changed filiale-nord`` -- names only, never a password."""
    before = {str(e[name_key]): e for e in old}
    after = {str(e[name_key]): e for e in new}
    parts = [f"added {n}" for n in after if n not in before]
    parts += [f"removed {n}" for n in before if n not in after]
    parts += [f"changed {n}" for n in after if n in before and before[n] != after[n]]
    return [f"{section}: {', '.join(parts)}"] if parts else []


@dataclass
class ImportPlan:
    """A validated, complete document and what applying it would change."""

    clean: dict[str, Any]
    diff: SettingsDiff


def plan_import(
    session: Session,
    document: dict[str, Any],
    *,
    allow_empty_addresses: bool = False,
    allow_no_users: bool = False,
) -> ImportPlan:
    """Validate, refuse an incomplete document, compute the diff; changes nothing."""
    clean = validate(document)
    check_complete(
        clean, allow_empty_addresses=allow_empty_addresses, allow_no_users=allow_no_users
    )
    return ImportPlan(clean, diff_settings(session, clean))


def import_document(
    session: Session,
    document: dict[str, Any],
    *,
    allow_empty_addresses: bool = False,
    allow_no_users: bool = False,
) -> ImportPlan:
    """:func:`plan_import`, then apply it (no commit: the caller commits or rolls back)."""
    plan = plan_import(
        session,
        document,
        allow_empty_addresses=allow_empty_addresses,
        allow_no_users=allow_no_users,
    )
    return ImportPlan(apply_document(session, document), plan.diff)
