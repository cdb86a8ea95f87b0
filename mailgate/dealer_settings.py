"""Dealer settings: one TOML document describing a dealership, stored in the DB.

``mailgate settings import FILE`` validates the whole document first and changes
nothing on error (the message names the key); unknown keys are errors.  Sections
are stored as JSON rows of :class:`~mailgate.models.DealerSetting`, users as
:class:`~mailgate.models.User` rows.  :func:`load_dealer_config` gives the rest
of the program a typed, read-only view with defaults filled in.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailgate.distribution.categories import all_codes, check_categories, dealer_categories
from mailgate.distribution.policies import GROUP_MATCH_KEYS, PERMISSIONS
from mailgate.models import DealerSetting, User, UserRole
from mailgate.protocol import N_, Phrase, phrase, register
from mailgate.toml_writer import dump_settings_toml

if TYPE_CHECKING:  # imported where used: SMTP intake starts without parsers, holidays, Jinja2
    from mailgate.escalation.calendar import WorkingCalendar
    from mailgate.escalation.ladder import EscalationTimes
    from mailgate.parsers.context import ParseContext


class SettingsError(ValueError):
    """The dealer settings document is invalid; the message names the key."""


# Schema: section -> key -> (type, default).  ``list`` values are lists of str.
# The comment above each section and key is its description in the dealer settings
# reference (docs/reference/dealer-settings.md, written by mailgate.docs_gen): one
# sentence or two for the dealer's IT person; tests/test_docs_reference.py wants one.
_STR, _BOOL, _LIST, _DUR, _DICT = "str", "bool", "list", "duration", "dict"
SCHEMA: dict[str, dict[str, tuple[str, Any]]] = {
    # The dealership: its lead addresses, who hears about problems, how mails look and link back.
    "dealer": {
        # The dealership's name, as shown in the web UI and in mails.
        "name": (_STR, ""),
        # IANA time zone of the dealership: working hours, due times, dates in the web UI and
        # reports.
        "timezone": (_STR, "Europe/Berlin"),
        # Language of mails to no particular user (notices to admin_address, customers) and of users
        # without their own: "de" or "en".
        "language": (_STR, "de"),
        # Country (ISO code) for phone numbers written without +: 0170 … becomes +49 170 … with DE.
        "country": (_STR, "DE"),
        # Display name in the From of outgoing mails (the address is the lead address); empty: none.
        "from_name": (_STR, ""),
        # The lead addresses. The SMTP listener accepts mail only for these (and their +tag forms)
        # and answers 550 to everything else; an import without them is refused unless
        # --allow-empty-addresses.
        "addresses": (_LIST, []),
        # Hears about undeliverable mails, oversized IMAP mails and stage 2 escalations of users
        # without a supervisor.
        "admin_address": (_STR, ""),
        # Hears about mails that became no lead (quarantined: too large, unreadable, no lead in
        # them).
        "unassigned_notice_to": (_STR, ""),
        # With false, every outgoing mail is recorded in the outbox as suppressed and none is
        # sent (for a trial run beside the old system).
        "send_mails": (_BOOL, True),
        # "relay": a salesperson answers the notification and mailgate relays the answer to the
        # customer from the lead address; "cc": Reply-To names the customer and the tracking
        # address, no relay.
        "reply_mode": (_STR, "relay"),
        # Seed 002 "Leadtracking": "both" (answers from the mail client are tracked and the lead
        # page has an answer form), "view_only" (the lead page only shows the conversation;
        # salespeople answer from their mail client) or "lead_page" (answer on the lead page;
        # the customer's address links to the form, not to the mail client).
        "answer_mode": (_STR, "both"),
        # The largest mail (in MB, attachments included) the relay passes between a salesperson
        # and a customer; a larger one is not relayed, its sender gets a notice and the lead a
        # note (1 to 50; many providers refuse more than 20 to 25 MB).
        "max_relay_size_mb": ("int", 20),
        # Where the web UI is reached, e.g. https://leads.autohaus.example: the only source of links
        # in mails (password reset, action links). The web UI refuses other Host headers.
        "base_url": (_STR, ""),
        # The authserv-ids of your own MX's Authentication-Results headers; a platform's mail is
        # then believed only if DKIM/SPF/DMARC did not fail there. Empty: such headers are ignored.
        "trusted_authserv_ids": (_LIST, []),
        # Folder with mail template overrides, laid out like
        # templates/email/<de|en>/<name>.subject.txt|.txt|.html; every file is test-rendered at
        # import.
        "templates_dir": (_STR, ""),
        # Source patterns (e.g. "website", "oem:*") whose prospects get a short "we received your
        # inquiry" mail; never to no-reply addresses.
        "acknowledge_sources": (_LIST, []),
    },
    # Opening hours per weekday, e.g. mon = ["08:00-12:00", "13:00-18:00"]; a day without intervals
    # is closed. Escalation times count in these hours, and staff mails leave only inside them.
    "hours": {day: (_LIST, []) for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    # Public holidays and closing days: no working time passes on them.
    "holidays": {
        # Country of the public holidays (the holidays package's ISO code).
        "country": (_STR, "DE"),
        # State or region, e.g. "BY" for Bavaria; empty: the nationwide holidays only.
        "subdivision": (_STR, ""),
        # Holiday categories of the holidays package, e.g. ["public", "catholic"] for 15 August in
        # Bavaria.
        "categories": (_LIST, ["public"]),
        # Extra closing days: dates or ranges, e.g. ["2026-12-24..2026-12-31"].
        "closures": (_LIST, []),
    },
    # Reaction times: stage 1 in working time from receipt; the salesperson's reminder before it
    # and stage 2 (his supervisor, after the stage-1 mail) in continuous time.
    "escalation": {
        # Reaction time in working time from receipt; then the assignee is told the lead is overdue.
        "stage1": (_DUR, "4h"),
        # The assignee's reminder comes this much time before stage 1, counted continuously
        # (seed 002: only stage 1 follows the opening hours); sent at the next opening time.
        "reminder_before": (_DUR, "1h"),
        # Elapsed time (nights and holidays count) from the stage-1 mail to the mail to the
        # assignee's supervisor.
        "stage2": (_DUR, "24h"),
        # The same, counted from a resubmission date that has passed.
        "stage2_resubmission": (_DUR, "8h"),
        # Count stage2_resubmission in working time instead of elapsed time.
        "respect_hours_for_resubmissions": (_BOOL, False),
        # A logged call that did not reach the customer is not the answer: try again after this
        # much working time (the lead stays in My day).
        "follow_up_after": (_DUR, "4h"),
        # Overrides per source or kind: match = {source = ["oem:*"]} plus any of stage1,
        # reminder_before, stage2, stage2_resubmission; the first matching rule wins.
        "rules": ("rules", []),
    },
    # Who gets a new lead: rotation, groups or pool, and where it goes when nobody is present.
    "distribution": {
        # "rolling": in turn among present users with receives_leads; "groups": rolling within the
        # first [[groups]] entry that matches; "pool": leads wait at pool_user until someone takes
        # one.
        "mode": (_STR, "rolling"),
        # Gets a lead when no regular receiver and no substitute is present (after him: the admin).
        "fallback_user": (_STR, ""),
        # The pool account that holds leads until taken (mode pool).
        "pool_user": (_STR, ""),
        # Users may take only the oldest lead in the pool.
        "pool_oldest_only": (_BOOL, False),
        # A known customer's new inquiry goes through the rotation instead of to his last
        # salesperson.
        "distribute_followups_normally": (_BOOL, False),
        # Group matching uses the vehicle's location from the mail instead of the receiving
        # mailbox's location.
        "use_vehicle_location": (_BOOL, False),
        # Address that also gets trade-in requests without a vehicle reference, with a PDF of the
        # core data.
        "trade_in_cc": (_STR, ""),
        # Tell the users who can be assigned about each new pool lead by mail.
        "pool_notice": (_BOOL, False),
        # Location -> its lead mailbox addresses, e.g. {munich = ["muenchen@autohaus.example"]}: a
        # lead's location is that of the address it came to.
        "locations": (_DICT, {}),
        # Portal relay domains besides the built-in ones: such sender addresses identify a customer
        # only within their own conversation.
        "relay_domains": (_LIST, []),
    },
}
# One person: login, role, whether and which leads he receives.
USER_KEYS: dict[str, tuple[str, Any]] = {
    # Login and mail address; the key that identifies the user across imports.
    "email": (_STR, None),
    # Display name.
    "name": (_STR, ""),
    # "salesperson" (own leads and the pool), "supervisor" (his team's leads) or "admin"
    # (everything, the settings).
    "role": (_STR, UserRole.SALESPERSON.value),
    # Web UI and mail language, "de" or "en"; empty: the dealer's language.
    "language": (_STR, ""),
    # E-mail of the user who gets this user's stage 2 escalations; empty: the dealer's
    # admin_address.
    "supervisor": (_STR, ""),
    # Takes part in the rotation.
    "receives_leads": (_BOOL, True),
    # Leads may be assigned to him by hand and he may take pool leads.
    "can_be_assigned": (_BOOL, True),
    # With false, he cannot log in and gets no leads; users missing from an imported file are
    # deactivated.
    "active": (_BOOL, True),
    # Names of the [[groups]] he receives leads in (mode groups).
    "groups": (_LIST, []),
    # Locations he belongs to (own_location permissions, location groups).
    "locations": (_LIST, []),
    # Absences: [{from = 2026-12-01, until = 2026-12-05, substitute = "ben@autohaus.example"}];
    # while absent he gets no new leads, his substitute (or the next in a chain) does.
    "absences": ("absences", []),
    # Lead category (built-in or [[categories]] code) -> all | own_location | none, e.g.
    # {service = "none", nissan = "all"}. "all": he sees every lead of it, "own_location": its
    # leads of his locations, "none": none; no entry: his own (team's, pool's) leads. A user never
    # receives leads he may not see.
    "permissions": ("permissions", {}),
    # Watch his IMAP Sent folder for answers (off): a mail from his own mail program to the customer
    # of one of his open leads counts as the answer.
    "sent_folder": ("sent_folder", {}),
}
# dealer.answer_mode: who answers the customer where (seed 002 "Leadtracking")
ANSWER_MODES = ("both", "view_only", "lead_page")
# A group of [distribution] mode "groups": the first whose match fits the lead receives it.
GROUP_KEYS = {
    # The group's name, as users' groups = [...] name it.
    "name": (_STR, None),
    # Globs per lead property (source, kind, make, location, category), e.g.
    # {make = ["VW", "Audi"]}; every property given must match.
    "match": (_DICT, {}),
}
# A mailbox that mailgate fetches inquiries from (IDLE or polling), exactly once each.
IMAP_KEYS: dict[str, tuple[str, Any]] = {
    # Shown on the status page and used by mailgate fetch --mailbox.
    "name": (_STR, None),
    # The IMAP server.
    "host": (_STR, None),
    # 993 for ssl, 143 for starttls.
    "port": ("int", 993),
    # "ssl" (implicit TLS), "starttls", or "none" (only for a server on this machine); certificates
    # are always verified.
    "security": (_STR, "ssl"),
    # PEM trusted for this server instead of the system store (a private CA, or the server's
    # self-signed certificate).
    "ca_file": (_STR, ""),
    # Login name, usually the mailbox address.
    "username": (_STR, ""),
    # Password; better password_file.
    "password": (_STR, ""),
    # File holding the password (readable by the mailgate user only).
    "password_file": (_STR, ""),
    # XOAUTH2 (Microsoft 365, Google): a command run at every connect that prints an access token.
    "oauth2_token_command": (_STR, ""),
    # XOAUTH2: a file your token helper keeps fresh, instead of the command.
    "oauth2_token_file": (_STR, ""),
    # The folder to import from; on first contact every message in it is imported.
    "folder": (_STR, "INBOX"),
    # Polling interval without IDLE; with IDLE, how often IDLE is renewed (at most every 9 minutes).
    "interval": (_DUR, "60s"),
    # "flag" (mark \\Seen), "move:<folder>" or "delete" — done only after the mail is committed.
    "after_import": (_STR, "flag"),
    # The location (distribution locations) this mailbox belongs to.
    "location": (_STR, ""),
    # With false, the mailbox is not watched (it stays in the settings).
    "enabled": (_BOOL, True),
}
# A salesperson's own IMAP account, read-only: a mail in its Sent folder to the
# customer of one of his open leads counts as the answer (mailgate.imap.sent_folder).
SENT_FOLDER_KEYS: dict[str, tuple[str, Any]] = {
    # Watch this user's Sent folder.
    "enabled": (_BOOL, False),
    # His IMAP server.
    "host": (_STR, ""),
    # 993 for ssl, 143 for starttls.
    "port": ("int", 993),
    # "ssl", "starttls" or "none" (only for a server on this machine), as for [[imap]].
    "security": (_STR, "ssl"),
    # PEM trusted for this server instead of the system store.
    "ca_file": (_STR, ""),
    # His IMAP login.
    "username": (_STR, ""),
    # Password; better password_file.
    "password": (_STR, ""),
    # File holding the password.
    "password_file": (_STR, ""),
    # The folder his mail program keeps sent mail in ("Sent", "Gesendete Elemente"); opened
    # read-only.
    "folder": (_STR, "Sent"),
    # How often the folder is read.
    "interval": (_DUR, "60s"),
}
# A reason to choose when closing a lead (sold, bought elsewhere …), counted in the reports.
REASON_KEYS: dict[str, tuple[str, Any]] = {
    # Short code (a-z, 0-9, _) used by the API and reports.
    "code": (_STR, None),
    # The text shown when closing a lead.
    "label": (_STR, ""),
    # "won", "lost" or "other": how the reports count a lead closed with it.
    "outcome": (_STR, "other"),
    # No longer offered when closing (old leads keep it).
    "hidden": (_BOOL, False),
}
# Status feedback to a lead's source (car makers' lead systems): per source pattern, the
# address or webhook that hears of every status change and the close (escalation/feedback.py).
FEEDBACK_KEYS: dict[str, tuple[str, Any]] = {
    # Source pattern whose leads report back, e.g. "oem:volkswagen".
    "source": (_STR, None),
    # A mail to this address at every status change and the close ...
    "to": (_STR, ""),
    # ... or an event to this webhook (its name, settings → integrations).
    "webhook": (_STR, ""),
    # Language of the feedback mails, "de" or "en"; empty: the dealer's.
    "language": (_STR, ""),
    # The dealer's number at this source (e.g. Opel's "DE0621.00"), named in every mail.
    "dealer_number": (_STR, ""),
    # With true, the close feedback carries the customer's current data, fields
    # corrected by hand marked, for sources that update their records from it.
    "customer_data": (_BOOL, False),
    # With false, nothing is reported (the entry stays in the settings).
    "enabled": (_BOOL, True),
}
# A lead category of the dealer's own (seed 003: permissions per user and lead category), e.g.
# "Siebel – NISSAN" for every Nissan lead; a new lead gets the first whose rule fits, else the
# built-in sales / service / financing by its kind.
CATEGORY_KEYS: dict[str, tuple[str, Any]] = {
    # Short code (a-z, 0-9, _, -; at most 32) stored on the lead and used in users' permissions.
    "code": (_STR, None),
    # The name shown in the lead list, its channel filter and the reports.
    "name": (_STR, ""),
    # Source patterns whose leads belong here, e.g. ["oem:nissan"] (* and ? as wildcards).
    "sources": (_LIST, []),
    # Lead kinds that belong here, e.g. ["financing"]; with sources as well, both must fit.
    "kinds": (_LIST, []),
}
LIST_SECTIONS = ("users", "groups", "imap", "completion_reasons", "feedback", "categories")
_LIST_KEYS = (
    ("users", USER_KEYS),
    ("groups", GROUP_KEYS),
    ("imap", IMAP_KEYS),
    ("completion_reasons", REASON_KEYS),
    ("feedback", FEEDBACK_KEYS),
    ("categories", CATEGORY_KEYS),
)
_REASON_CODE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ADDRESS = re.compile(r"^[^@\s\"<>()]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_INTERVAL = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def is_plain_address(text: str) -> bool:
    """A lead address as ``dealer.addresses`` accepts it: no display name, no +tag, one line.

    For the web UI's own check before saving (it names the refused entry); ``fullmatch``
    so that nothing after a line break passes.
    """
    return (
        isinstance(text, str)
        and _ADDRESS.fullmatch(text) is not None
        and "+" not in text.split("@")[0]
    )


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"4h"``, ``"1h30m"``, ``"2d"`` -> timedelta (elapsed time)."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration like '4h' or '1h30m': {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _check_value(where: str, kind: str, value: Any) -> Any:
    if kind == _STR:
        if not isinstance(value, str):
            raise SettingsError(f"{where} must be a string")
    elif kind == _BOOL:
        if not isinstance(value, bool):
            raise SettingsError(f"{where} must be true or false")
    elif kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise SettingsError(f"{where} must be a whole number")
    elif kind == _LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{where} must be a list of strings")
    elif kind == _DUR:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from exc
    elif kind == _DICT:
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()
        ):
            raise SettingsError(f"{where} must be a table of string lists")
    elif kind == "rules":
        if not isinstance(value, list):
            raise SettingsError(f"{where} must be an array of tables")
        for i, rule in enumerate(value):
            if not isinstance(rule, dict) or "match" not in rule:
                raise SettingsError(f"{where}[{i}] needs a match table")
            for key, item in rule.items():
                if key == "match":
                    _check_value(f"{where}[{i}].match", _DICT, item)
                elif key in ("stage1", "reminder_before", "stage2", "stage2_resubmission"):
                    _check_value(f"{where}[{i}].{key}", _DUR, item)
                else:
                    raise SettingsError(f"unknown key {where}[{i}].{key}")
    elif kind == "sent_folder":
        return _check_table(where, value, SENT_FOLDER_KEYS)
    elif kind == "permissions":
        if not isinstance(value, dict):
            raise SettingsError(f"{where} must be a table of category = level")
        for category, level in value.items():  # dealer categories: _check_permission_categories
            if level not in PERMISSIONS:
                raise SettingsError(f"{where}.{category} must be {', '.join(PERMISSIONS)}")
    elif kind == "absences":
        if not isinstance(value, list):
            raise SettingsError(f"{where} must be an array of tables")
        for i, absence in enumerate(value):
            if not isinstance(absence, dict):
                raise SettingsError(f"{where}[{i}] must be a table")
            unknown = set(absence) - {"from", "until", "substitute"}
            if unknown:
                raise SettingsError(f"unknown key {where}[{i}].{sorted(unknown)[0]}")
            for key in ("from", "until"):
                absence[key] = str(absence.get(key, ""))  # TOML dates arrive as date objects
                try:
                    date.fromisoformat(absence[key])
                except ValueError as exc:
                    raise SettingsError(f"{where}[{i}].{key} must be a date YYYY-MM-DD") from exc
            if str(absence["until"]) < str(absence["from"]):
                raise SettingsError(f"{where}[{i}]: until is before from")
    return value


def _check_table(where: str, table: Any, keys: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SettingsError(f"{where} must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in keys:
            raise SettingsError(f"unknown key {where}.{key}")
        out[key] = _check_value(f"{where}.{key}", keys[key][0], value)
    for key, (_, default) in keys.items():
        if key not in out:
            if default is None:
                raise SettingsError(f"{where}.{key} is required")
            kind = keys[key][0]
            out[key] = (
                _check_value(f"{where}.{key}", kind, {}) if kind == "sent_folder" else default
            )
    return out


def validate(document: dict[str, Any], *, check_templates: bool = True) -> dict[str, Any]:
    """Check a whole settings document; returns it normalised with defaults.

    ``check_templates=False`` when loading what is stored: the dealer's template
    files were checked when the settings were saved, and one broken on disk
    since must not stop every load (the sender falls back to the packaged one).
    """
    clean: dict[str, Any] = {}
    for section in document:
        if section not in SCHEMA and section not in LIST_SECTIONS:
            raise SettingsError(f"unknown section [{section}]")
    for section, keys in SCHEMA.items():
        clean[section] = _check_table(f"{section}", document.get(section, {}), keys)
    for section, keys in _LIST_KEYS:
        items = document.get(section, [])
        if not isinstance(items, list):
            raise SettingsError(f"[[{section}]] must be an array of tables")
        clean[section] = [_check_table(f"{section}[{i}]", t, keys) for i, t in enumerate(items)]
    _check_semantics(clean)
    if check_templates and clean["dealer"]["templates_dir"]:
        from mailgate.outbound.compose import check_overrides

        problems = check_overrides(Path(clean["dealer"]["templates_dir"]))
        if problems:
            raise SettingsError("dealer.templates_dir: " + "; ".join(problems[:5]))
    return clean


def _check_semantics(doc: dict[str, Any]) -> None:
    dealer = doc["dealer"]
    try:
        ZoneInfo(dealer["timezone"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"dealer.timezone: unknown time zone {dealer['timezone']!r}") from exc
    if dealer["reply_mode"] not in ("relay", "cc"):
        raise SettingsError('dealer.reply_mode must be "relay" or "cc"')
    if dealer["answer_mode"] not in ANSWER_MODES:
        raise SettingsError('dealer.answer_mode must be "both", "view_only" or "lead_page"')
    if not 1 <= dealer["max_relay_size_mb"] <= 50:
        raise SettingsError("dealer.max_relay_size_mb must be between 1 and 50")
    for i, address in enumerate(dealer["addresses"]):
        if not _ADDRESS.fullmatch(address) or "+" in address.split("@")[0]:
            raise SettingsError(f"dealer.addresses[{i}]: not a plain e-mail address: {address!r}")
    for key in ("admin_address", "unassigned_notice_to"):
        if dealer[key] and not _ADDRESS.fullmatch(dealer[key]):
            raise SettingsError(f"dealer.{key}: not an e-mail address: {dealer[key]!r}")
    if dealer["base_url"]:
        from mailgate.config import check_base_url

        problem = check_base_url("dealer.base_url", dealer["base_url"])
        if problem:  # links in mails are built from it: only a plain http(s) URL
            raise SettingsError(problem)
    for day, intervals in doc["hours"].items():
        for interval in intervals:
            match = _INTERVAL.fullmatch(interval)
            if not match or interval[:5] >= interval[6:]:
                raise SettingsError(
                    f"hours.{day}: not an interval like '08:00-12:00': {interval!r}"
                )
    for i, closure in enumerate(doc["holidays"]["closures"]):
        try:
            for part in str(closure).split("..", 1):
                date.fromisoformat(part.strip())
        except ValueError as exc:
            raise SettingsError(
                f"holidays.closures[{i}] must be a date YYYY-MM-DD or a range "
                f"YYYY-MM-DD..YYYY-MM-DD: {closure!r}"
            ) from exc
    _check_calendar(doc)
    if doc["distribution"]["mode"] not in ("rolling", "pool", "groups"):
        raise SettingsError('distribution.mode must be "rolling", "pool" or "groups"')
    emails = set()
    for i, user in enumerate(doc["users"]):
        address = user["email"].lower()
        if not _ADDRESS.fullmatch(address):
            raise SettingsError(f"users[{i}].email: not an e-mail address: {user['email']!r}")
        if address in emails:
            raise SettingsError(f"users[{i}].email: duplicate user {address}")
        emails.add(address)
        if user["role"] not in {r.value for r in UserRole}:
            raise SettingsError(f"users[{i}].role must be salesperson, supervisor or admin")
        _check_sent_folder(f"users[{i}].sent_folder", user["sent_folder"])
    for i, user in enumerate(doc["users"]):
        refs = [("supervisor", user["supervisor"])]
        refs += [
            (f"absences[{j}].substitute", a.get("substitute", ""))
            for j, a in enumerate(user["absences"])
        ]
        for key, ref in refs:
            if ref and ref.lower() not in emails:
                raise SettingsError(f"users[{i}].{key}: no user {ref!r}")
    for key in ("fallback_user", "pool_user"):
        ref = doc["distribution"][key]
        if ref and ref.lower() not in emails:
            raise SettingsError(f"distribution.{key}: no user {ref!r}")
    _check_lead_categories(doc)
    _check_distribution(doc, emails)
    names: set[str] = set()
    for i, mailbox in enumerate(doc["imap"]):
        if mailbox["security"] not in ("ssl", "starttls", "none"):
            raise SettingsError(f'imap[{i}].security must be "ssl", "starttls" or "none"')
        _check_imap(f"imap[{i}]", mailbox, names)
    _check_reasons(doc["completion_reasons"])
    _check_feedback(doc["feedback"])


def _check_feedback(channels: list[dict[str, Any]]) -> None:
    """``[[feedback]]``: a source pattern, a valid address, a known language."""
    for i, channel in enumerate(channels):
        if not channel["source"].strip():
            raise SettingsError(f'feedback[{i}].source: a source or pattern (e.g. "oem:opel")')
        if bool(channel["to"]) == bool(channel["webhook"]):
            raise SettingsError(f"feedback[{i}]: give either an address (to) or a webhook")
        if channel["to"] and not _ADDRESS.fullmatch(channel["to"]):
            raise SettingsError(f"feedback[{i}].to: not an e-mail address: {channel['to']!r}")
        if channel["language"] not in ("", "de", "en"):
            raise SettingsError(f'feedback[{i}].language must be "de", "en" or empty')
        number = channel["dealer_number"]
        if len(number) > 40 or not number.isprintable():
            raise SettingsError(
                f"feedback[{i}].dealer_number: at most 40 printable characters, one line"
            )


def _check_reasons(reasons: list[dict[str, Any]]) -> None:
    """``[[completion_reasons]]``: unique lower-case codes, a known outcome, a label.

    The label defaults to the code, so a reason always reads as something.
    """
    from mailgate.completion import OUTCOMES

    codes: set[str] = set()
    for i, reason in enumerate(reasons):
        code = reason["code"]
        if not _REASON_CODE.fullmatch(code):
            raise SettingsError(
                f"completion_reasons[{i}].code must be 1-64 lower-case letters, digits or '_' "
                f"(starting with a letter or digit): {code!r}"
            )
        if code in codes:
            raise SettingsError(f"completion_reasons[{i}].code: duplicate reason {code!r}")
        codes.add(code)
        if reason["outcome"] not in OUTCOMES:
            raise SettingsError(
                f"completion_reasons[{i}].outcome must be {', '.join(OUTCOMES)}: "
                f"{reason['outcome']!r}"
            )
        reason["label"] = reason["label"].strip() or code


def _check_imap(where: str, mailbox: dict[str, Any], names: set[str]) -> None:
    """One ``[[imap]]`` entry: the checks that need more than a type."""
    from mailgate.imap.rules import parse_after_import

    name = mailbox["name"]
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", name):
        raise SettingsError(f"{where}.name must be 1-64 letters, digits, '.', '_' or '-'")
    if name in names:
        raise SettingsError(f"{where}.name: duplicate mailbox {name!r}")
    names.add(name)
    _check_connection(where, mailbox)
    try:
        parse_after_import(mailbox["after_import"])
    except ValueError as exc:
        raise SettingsError(f"{where}.after_import {exc}") from exc


def _check_sent_folder(where: str, entry: dict[str, Any]) -> None:
    """A user's ``sent_folder``: checked like an ``[[imap]]`` account once it is switched on.

    Switched off, the keys may stay half filled in (the admin turns it off
    while the password is being sorted out) and nothing connects.
    """
    if not entry["enabled"]:
        return
    if entry["security"] not in ("ssl", "starttls", "none"):
        raise SettingsError(f'{where}.security must be "ssl", "starttls" or "none"')
    _check_connection(where, entry)
    if not entry["folder"].strip():
        raise SettingsError(f"{where}.folder is required (e.g. Sent or Gesendete Elemente)")


def _check_connection(where: str, mailbox: dict[str, Any]) -> None:
    """Server, port, security, one way to log in, interval: shared by mailboxes and Sent folders."""
    from mailgate.imap.rules import is_loopback

    if not mailbox["host"].strip():
        raise SettingsError(f"{where}.host is required")
    if not 0 < mailbox["port"] < 65536:
        raise SettingsError(f"{where}.port must be between 1 and 65535")
    if mailbox["security"] == "none" and not is_loopback(mailbox["host"]):
        raise SettingsError(
            f'{where}.security = "none" sends the password in clear text: '
            "only allowed for a server on this machine (localhost)"
        )
    secrets = [
        k
        for k in ("password", "password_file", "oauth2_token_command", "oauth2_token_file")
        if mailbox.get(k)
    ]
    if len(secrets) > 1:
        raise SettingsError(f"{where}: give only one of {', '.join(secrets)}")
    if not mailbox["username"]:
        raise SettingsError(f"{where}.username is required")
    if parse_duration(mailbox["interval"]) < timedelta(seconds=5):
        raise SettingsError(f"{where}.interval must be at least 5s")


def _check_distribution(doc: dict[str, Any], emails: set[str]) -> None:
    """Distribution references and rules (warnings: :func:`settings_warnings`)."""
    dist = doc["distribution"]
    if dist["mode"] == "pool" and not dist["pool_user"]:
        raise SettingsError('distribution.pool_user is required when mode = "pool"')
    if dist["trade_in_cc"] and not _ADDRESS.fullmatch(dist["trade_in_cc"]):
        raise SettingsError(
            f"distribution.trade_in_cc: not an e-mail address: {dist['trade_in_cc']!r}"
        )
    for location, addresses in dist["locations"].items():
        for j, address in enumerate(addresses):
            if not _ADDRESS.fullmatch(address):
                raise SettingsError(
                    f"distribution.locations.{location}[{j}]: not an e-mail address: {address!r}"
                )
    names = set()
    for i, group in enumerate(doc["groups"]):
        if group["name"] in names:
            raise SettingsError(f"groups[{i}].name: duplicate group {group['name']!r}")
        names.add(group["name"])
        for key in group["match"]:
            if key not in GROUP_MATCH_KEYS:
                raise SettingsError(
                    f"unknown key groups[{i}].match.{key} (one of {', '.join(GROUP_MATCH_KEYS)})"
                )
    for i, user in enumerate(doc["users"]):
        for j, name in enumerate(user["groups"]):
            if name not in names:
                raise SettingsError(f"users[{i}].groups[{j}]: no group {name!r}")
        for j, absence in enumerate(user["absences"]):
            if absence.get("substitute", "").lower() == user["email"].lower():
                raise SettingsError(
                    f"users[{i}].absences[{j}].substitute: a user cannot substitute himself"
                )
    active = [u for u in doc["users"] if u["active"]]
    if active:
        # A built-in category defaults to "all" (settings written before categories keep
        # working); a dealer's own category needs someone given "all" on it by name.
        names_of = {c["code"]: c["name"] or c["code"] for c in doc["categories"]}
        for category in all_codes(dealer_categories(doc)):
            default = "" if category in names_of else "all"
            if not any(u["permissions"].get(category, default) == "all" for u in active):
                named = f" ({names_of[category]!r})" if category in names_of else ""
                raise SettingsError(
                    f"users[*].permissions.{category}: nobody sees all {category} leads{named} "
                    "(at least one user per category must have ALL, so no lead is overlooked: "
                    f'give one permissions = {{ {category} = "all" }})'
                )


def _check_lead_categories(doc: dict[str, Any]) -> None:
    """``[[categories]]`` well-formed, and users' permissions name only known categories."""
    from mailgate.labels import KINDS

    problem = check_categories(doc["categories"], KINDS)
    if problem:
        raise SettingsError(problem)
    codes = all_codes(dealer_categories(doc))
    for i, user in enumerate(doc["users"]):
        for category in user["permissions"]:
            if category not in codes:
                raise SettingsError(
                    f"users[{i}].permissions.{category}: unknown lead category "
                    f"(one of {', '.join(codes)})"
                )


WARNINGS = {
    "no_fallback_user": N_(
        "distribution.fallback_user is not set: leads nobody can take go to the admin account"
    ),
    "pool_with_receivers": N_(
        "pool mode, but these users still have receives_leads on, so leads rotate "
        "between them and the pool account: {users}"
    ),
    "pool_with_groups": N_(
        "a pool cannot be combined with distribution groups: the groups are ignored"
    ),
    "group_without_receivers": N_(
        "group '{group}' has no member who receives leads: its leads go to the fallback user"
    ),
    "group_solo": N_(
        "group '{group}' is a solo distribution ({user} only): "
        "when he is absent its leads go to substitutes or the fallback user"
    ),
    "solo": N_(
        "solo distribution: only {user} receives leads; "
        "when he is absent leads go to substitutes or the fallback user"
    ),
    "nobody_receives_leads": N_("nobody receives leads: every lead goes to the fallback user"),
}
register(WARNINGS)


def settings_warnings(doc: dict[str, Any]) -> list[Phrase]:
    """Legal but risky distribution settings, for the settings page and the import.

    Phrases (:mod:`mailgate.protocol`), so the settings page words them in the
    admin's language and the CLI in English.
    """
    dist, users = doc["distribution"], [u for u in doc["users"] if u["active"]]
    receivers = [u["email"] for u in users if u["receives_leads"]]
    warnings = []
    if not dist["fallback_user"]:
        warnings.append(phrase("no_fallback_user"))
    if dist["mode"] == "pool":
        pool = dist["pool_user"].lower()
        others = [e for e in receivers if e.lower() != pool]
        if others:
            warnings.append(phrase("pool_with_receivers", users=", ".join(others)))
        if doc["groups"] or any(u["groups"] for u in users):
            warnings.append(phrase("pool_with_groups"))
    elif dist["mode"] == "groups":
        for group in doc["groups"]:
            members = [
                u["email"] for u in users if u["receives_leads"] and group["name"] in u["groups"]
            ]
            if not members:
                warnings.append(phrase("group_without_receivers", group=group["name"]))
            elif len(members) == 1:
                warnings.append(phrase("group_solo", group=group["name"], user=members[0]))
    elif len(receivers) == 1:
        warnings.append(phrase("solo", user=receivers[0]))
    elif not receivers:
        warnings.append(phrase("nobody_receives_leads"))
    return warnings


def import_settings(session: Session, text: str) -> dict[str, Any]:
    """Validate a TOML document and replace the stored dealer settings with it."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"not valid TOML: {exc}") from exc
    return apply_document(session, document)


def apply_document(session: Session, document: dict[str, Any]) -> dict[str, Any]:
    """Validate a settings document and replace the stored settings with it.

    The one way settings are saved: the TOML import and every settings page in
    the web UI go through here, so a page can never store what an import would
    refuse.  Nothing is written when the document is invalid.
    """
    clean = validate(document)
    _check_used_reasons(session, clean["completion_reasons"])
    _check_feedback_webhooks(session, clean["feedback"])
    existing = {u.email: u for u in session.scalars(select(User))}
    check_keeps_an_admin(existing, clean["users"])
    session.execute(delete(DealerSetting))
    for section in (*SCHEMA, "groups", "imap", "completion_reasons", "feedback", "categories"):
        data = clean[section] if section in SCHEMA else {"items": clean[section]}
        session.add(DealerSetting(section=section, data=data))
    had_admin = any(u.role == UserRole.ADMIN for u in existing.values())
    seen = set()
    for entry in clean["users"]:
        email = entry["email"].lower()
        seen.add(email)
        user = existing.get(email) or User(email=email)
        user.name = entry["name"]
        user.role = entry["role"]
        user.language = entry["language"] or clean["dealer"]["language"]
        user.supervisor_email = entry["supervisor"].lower() or None
        user.receives_leads = entry["receives_leads"]
        user.can_be_assigned = entry["can_be_assigned"]
        user.active = entry["active"]
        user.groups = entry["groups"]
        user.locations = entry["locations"]
        user.absences = entry["absences"]
        user.permissions = entry["permissions"]
        session.add(user)
    for email, user in existing.items():
        if email not in seen:
            user.active = False  # users own leads and history: deactivate, never delete
    session.add(DealerSetting(section=SENT_FOLDERS_SECTION, data={"items": _sent_folders(clean)}))
    session.flush()
    if had_admin or any(u["role"] == UserRole.ADMIN for u in clean["users"]):
        from mailgate.setup_lock import mark_admin_created

        mark_admin_created(session)  # an imported admin closes the first-admin set-up too
    return clean


def check_keeps_an_admin(existing: dict[str, User], users: list[dict[str, Any]]) -> None:
    """Refuse a users list that leaves none of today's active admins active and admin.

    Users missing from a document are deactivated, so a minimal settings file
    written before anyone thought of the admin would lock everybody out of the
    web UI.  The admins that count are those who can log in (with a password);
    without any, every active admin does.  The message names what the document
    would do to them, and whom else it would deactivate.
    """
    admins = [u for u in existing.values() if u.active and u.role == UserRole.ADMIN]
    guards = [u for u in admins if u.password_hash] or admins
    if not guards:
        return
    after = {u["email"].lower(): u for u in users}
    changes = []
    for user in guards:
        entry = after.get(user.email.lower())
        if entry is not None and entry["active"] and entry["role"] == UserRole.ADMIN:
            return
        if entry is None or not entry["active"]:
            why = "not in [[users]]" if entry is None else "active = false"
            changes.append(f"deactivate {user.email} ({why})")
        else:
            changes.append(f"demote {user.email} to {entry['role']}")
    others = sorted(
        u.email
        for u in existing.values()
        if u.active and u not in guards and not after.get(u.email.lower(), {}).get("active")
    )
    also = f"; it would also deactivate {', '.join(others)}" if others else ""
    raise SettingsError(
        "users: this would leave no active admin who can log in: it would "
        f'{", ".join(changes)}{also}. Keep an admin in [[users]] with role = "admin", '
        "or create another admin first (mailgate users create-admin)"
    )


def _check_feedback_webhooks(session: Session, channels: list[dict[str, Any]]) -> None:
    """A feedback channel by webhook names one that exists (webhooks live in the database)."""
    from mailgate.models import Webhook

    names = {name for name in session.scalars(select(Webhook.name))}
    for i, channel in enumerate(channels):
        if channel["webhook"] and channel["webhook"] not in names:
            raise SettingsError(f"feedback[{i}].webhook: no webhook {channel['webhook']!r}")


# Users are rows of their own table; their Sent-folder accounts (with a password)
# are kept beside the other settings sections, keyed by the user's address.
SENT_FOLDERS_SECTION = "sent_folders"


def _sent_folders(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The users' ``sent_folder`` tables that differ from "off, nothing filled in"."""
    default = _check_table("sent_folder", {}, SENT_FOLDER_KEYS)
    return {
        u["email"].lower(): u["sent_folder"] for u in doc["users"] if u["sent_folder"] != default
    }


def used_reason_codes(session: Session) -> set[str]:
    """Completion reason codes some lead was closed with (they may not disappear)."""
    from mailgate.models import Lead

    query = select(Lead.close_reason).where(Lead.close_reason.is_not(None)).distinct()
    return {code for code in session.scalars(query) if code}


def _check_used_reasons(session: Session, reasons: list[dict[str, Any]]) -> None:
    """A dealer list must keep every code already used (hide it instead of removing it).

    Without a list the defaults apply, so their codes count as kept.
    """
    from mailgate.completion import DEFAULT_REASONS

    kept = {r["code"] for r in reasons} if reasons else {r.code for r in DEFAULT_REASONS}
    known_before = {r.code for r in DEFAULT_REASONS} | {
        item["code"]
        for row in session.scalars(
            select(DealerSetting).where(DealerSetting.section == "completion_reasons")
        )
        for item in (row.data or {}).get("items", [])
    }
    # Free-text reasons (closed before any list existed) are not codes: only known ones count.
    missing = sorted((used_reason_codes(session) & known_before) - kept)
    if missing:
        raise SettingsError(
            "completion_reasons: codes already used by closed leads cannot be removed "
            f"(set hidden = true instead): {', '.join(missing)}"
        )


def stored_document(session: Session) -> dict[str, Any]:
    """The stored settings as a validated document (defaults where nothing is stored)."""
    rows = {row.section: row.data for row in session.scalars(select(DealerSetting))}
    document: dict[str, Any] = {section: rows.get(section, {}) for section in SCHEMA}
    document["dealer"] = _without_unusable_base_url(document["dealer"])
    document["groups"] = rows.get("groups", {}).get("items", [])
    document["imap"] = rows.get("imap", {}).get("items", [])
    document["completion_reasons"] = rows.get("completion_reasons", {}).get("items", [])
    document["feedback"] = rows.get("feedback", {}).get("items", [])
    document["categories"] = rows.get("categories", {}).get("items", [])
    sent_folders = rows.get(SENT_FOLDERS_SECTION, {}).get("items", {})
    users = session.scalars(select(User).where(User.active).order_by(User.id))
    document["users"] = [
        {
            "email": u.email,
            "name": u.name,
            "role": u.role,
            "language": u.language,
            "supervisor": u.supervisor_email or "",
            "receives_leads": u.receives_leads,
            "can_be_assigned": u.can_be_assigned,
            "groups": list(u.groups),
            "locations": list(u.locations),
            "absences": list(u.absences),
            "permissions": dict(u.permissions or {}),
            "sent_folder": dict(sent_folders.get(u.email.lower(), {})),
        }
        for u in users
    ]
    return validate(document, check_templates=False)


def _without_unusable_base_url(dealer: dict[str, Any]) -> dict[str, Any]:
    """A base URL stored before it was validated must not make every load fail: it counts
    as unset (no links in mails), and ``mailgate doctor`` says so."""
    from mailgate.config import check_base_url

    value = dealer.get("base_url")
    if isinstance(value, str) and value and check_base_url("dealer.base_url", value):
        return {key: item for key, item in dealer.items() if key != "base_url"}
    return dealer


def export_settings(session: Session) -> str:
    """The stored settings as TOML that ``import_settings`` accepts unchanged.

    A user's ``sent_folder`` is written only when it is set up: the default
    (off, empty) would add a line of noise to every ``[[users]]`` entry.
    """
    document = stored_document(session)
    configured = _sent_folders(document)
    for user in document["users"]:
        if user["email"].lower() not in configured:
            del user["sent_folder"]
    return dump_settings_toml(document, SCHEMA)


def _check_calendar(doc: dict[str, Any]) -> None:
    """Build the working-time clock once so overlaps and unknown regions fail at import."""
    from mailgate.escalation.calendar import CalendarError, WorkingCalendar

    if not any(doc["hours"].values()):
        return
    holidays = doc["holidays"]
    try:
        WorkingCalendar.from_settings(
            doc["hours"],
            timezone=doc["dealer"]["timezone"],
            country=holidays["country"] or None,
            subdivision=holidays["subdivision"] or None,
            categories=holidays["categories"],
            closures=holidays["closures"],
        )
    except CalendarError as exc:
        raise SettingsError(f"hours/holidays: {exc}") from exc


@dataclass(frozen=True)
class DealerConfig:
    """The typed view of dealer settings the pipeline and sender read."""

    name: str
    timezone: ZoneInfo
    language: str
    country: str
    from_name: str
    addresses: tuple[str, ...]
    admin_address: str
    unassigned_notice_to: str
    send_mails: bool
    reply_mode: str
    base_url: str
    fallback_user: str
    stage1: timedelta
    reminder_before: timedelta
    document: dict[str, Any]

    @property
    def template_dir(self) -> Path | None:
        """The dealer's own mail templates (validated at import), or None for the packaged."""
        configured = self.document["dealer"].get("templates_dir")
        return Path(configured) if configured else None

    @cached_property
    def calendar(self) -> WorkingCalendar:
        """The working-time clock; with no opening hours configured, time runs continuously."""
        from mailgate.escalation.calendar import WEEKDAYS, WorkingCalendar

        hours = self.document["hours"]
        holidays = self.document["holidays"]
        if not any(hours.values()):
            always = {day: ["00:00-24:00"] for day in WEEKDAYS}
            return WorkingCalendar.from_settings(always, timezone=self.timezone.key, country=None)
        return WorkingCalendar.from_settings(
            hours,
            timezone=self.timezone.key,
            country=holidays["country"] or None,
            subdivision=holidays["subdivision"] or None,
            categories=holidays["categories"],
            closures=holidays["closures"],
        )

    def escalation_times(self, source: str, kind: str) -> EscalationTimes:
        """The four durations for a lead of this source and kind (rules applied)."""
        from mailgate.escalation.ladder import EscalationTimes, times_for

        esc = self.document["escalation"]
        defaults = EscalationTimes(
            stage1=parse_duration(esc["stage1"]),
            reminder_before=parse_duration(esc["reminder_before"]),
            stage2=parse_duration(esc["stage2"]),
            stage2_resubmission=parse_duration(esc["stage2_resubmission"]),
        )
        return times_for(
            defaults, esc["rules"], source=source, kind=kind, parse_duration=parse_duration
        )

    @cached_property
    def parse_context(self) -> ParseContext:
        """What the pure parsers may know about this dealership."""
        from mailgate.parsers.context import ParseContext

        trusted = self.document["dealer"].get("trusted_authserv_ids", [])
        return ParseContext(
            dealer_addresses=frozenset(self.addresses),
            region=self.country or "DE",
            trusted_authserv_ids=frozenset(t.lower() for t in trusted),
        )

    @property
    def sender_address(self) -> str:
        """Outgoing automatic mails come from the first lead address."""
        return self.addresses[0] if self.addresses else "mailgate@localhost"


def load_dealer_config(session: Session) -> DealerConfig:
    return config_from_document(stored_document(session))


def config_from_document(doc: dict[str, Any]) -> DealerConfig:
    """The typed view of a validated document (also of an unsaved one, for previews)."""
    dealer = doc["dealer"]
    return DealerConfig(
        name=dealer["name"],
        timezone=ZoneInfo(dealer["timezone"]),
        language=dealer["language"],
        country=dealer["country"],
        from_name=dealer["from_name"] or dealer["name"] or "mailgate",
        addresses=tuple(a.lower() for a in dealer["addresses"]),
        admin_address=dealer["admin_address"],
        unassigned_notice_to=dealer["unassigned_notice_to"] or dealer["admin_address"],
        send_mails=dealer["send_mails"],
        reply_mode=dealer["reply_mode"],
        base_url=dealer["base_url"],
        fallback_user=doc["distribution"]["fallback_user"].lower(),
        stage1=parse_duration(doc["escalation"]["stage1"]),
        reminder_before=parse_duration(doc["escalation"]["reminder_before"]),
        document=doc,
    )
