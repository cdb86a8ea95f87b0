"""Protocol lines as phrase codes with parameters, worded by whoever reads them.

A lead's protocol is read by people in different languages (the web UI in
German or English, the CLI and logs in English), so a service function does
not write a finished sentence: it writes one or more :class:`Phrase` objects —
a code from :data:`PHRASES` plus the values that fill it.  The row keeps them
as JSON (``protocol_entry.params``) and, for logs, exports and rows written
before phrases existed, the English sentence in ``detail``.

The English wording below is also the msgid the web UI translates (its
catalog extraction reads this module, keyword ``N_``), so the words exist once.
Parameter names carry their type for the reader: ``…_at`` is an ISO timestamp
(shown in the dealer's time zone), ``…_on`` an ISO date; a list of phrases is
worded phrase by phrase and joined (``reason`` chains with arrows, others
with semicolons).  Pure: no I/O, no database.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    """Marks a msgid for the web UI's catalog without translating it here."""
    return text


PHRASES: dict[str, str] = {
    # intake: parsing, customer, routing
    "tag_ignored": N_("subject tag ignored: {error}"),
    "parsed": N_("parsed by {parser} as {source}/{kind}"),
    "known_customer": N_("known customer #{customer} by {how}"),
    "maybe_same_customer": N_("possibly the same person as customer #{customer} (name {score}%)"),
    "location_unknown": N_("vehicle location unknown; routing by the mailbox's ({location})"),
    "assigned_to": N_("to {user}: {reason}"),
    "to_pool": N_("to the pool ({user}): {reason}"),
    "not_assigned": N_("not assigned: {reason}"),
    "notification_queued": N_("notification to {user} queued"),
    "pool_notice_queued": N_("pool notice to {count} users queued"),
    "followup_attached": N_("new mail of the customer attached (inbound {inbound})"),
    "followup_notice_queued": N_("follow-up notice to {user} queued"),
    "trade_in_cc_queued": N_("core data as PDF to {to} queued"),
    "acknowledgement_queued": N_("acknowledgement to the prospect queued"),
    # distribution: the steps of a decision (a ``reason`` chain)
    "rolling": N_("rolling distribution"),
    "group": N_("group {group}"),
    "next_in_turn": N_("{rotation}: next in turn"),
    "next_in_turn_passing": N_("{rotation}: next in turn (passed over: {skipped})"),
    "absent": N_("{user} absent until {until_on}"),
    "absent_no_substitute": N_("{user} absent until {until_on}, no substitute"),
    "absent_substitute_unavailable": N_(
        "{user} absent until {until_on}, substitute {substitute} cannot take leads"
    ),
    "absent_substitute_loop": N_(
        "{user} absent until {until_on}, substitute chain loops back to {substitute}"
    ),
    "absent_substitute": N_("{user} absent until {until_on} → substitute {substitute}"),
    "everyone_absent": N_("everyone in {rotation} is absent; {user} is next in turn"),
    "substitute": N_("substitute"),
    "followup_owner": N_("follow-up of a known customer → his salesperson, outside the rotation"),
    "followup_owner_gone": N_("follow-up: previous salesperson {user} can no longer take leads"),
    "no_group_matches": N_(
        "no distribution group matches (source {source}, kind {kind}, make {make}, "
        "location {location})"
    ),
    "nobody_receives": N_("nobody in {rotation} receives {category} leads"),
    "pool_unavailable": N_("pool account {user} cannot take leads"),
    "pool_not_configured": N_("no pool account configured"),
    "pool_mode": N_("pool mode → pool account"),
    "pool_rotating_user": N_(
        "pool mode, but this user still receives leads: rotating with the pool"
    ),
    "fallback_user": N_("fallback user"),
    "fallback_absent": N_("fallback user {user} absent until {until_on}"),
    "fallback_inactive": N_("fallback user {user} is not an active user"),
    "no_fallback": N_("no fallback user configured"),
    "admin_account": N_("admin account"),
    "nobody_can_take": N_("nobody can take the lead"),
    # what users do to a lead
    "moved_from": N_("from {previous} to {user}"),
    "moved_from_nobody": N_("from nobody to {user}"),
    "target_absent": N_("{user} is absent until {until_on}"),
    "note": N_("note: {note}"),
    "api_note": N_("note via {integration}: {note}"),
    "notice_queued": N_("notice to {user} queued"),
    "taken_by": N_("taken from the pool by {user}"),
    "deleted_was": N_("deleted (was {status})"),
    "handed_over": N_("taken over by the call centre of {source} (their lead {reference})"),
    "created_by_hand": N_("entered by hand by {user} (origin {source})"),
    "imported_by": N_("imported by {user} from {file}"),
    "customer_new": N_("new customer #{customer}"),
    "customer_kept": N_("existing customer #{customer}, data kept as it was"),
    "customer_updated": N_("existing customer #{customer}, fields taken over: {fields}"),
    "kept_by_creator": N_("kept by {user}, who entered it"),
    "lead_opened": N_("opened by the salesperson for the first time"),
    "stage_changed": N_("status {previous_status} → {status}"),
    "contact_logged": N_("contact logged: {channel}"),
    "completion": N_("reason: {completion}"),
    "resubmission_on": N_("resubmission on {when_at}"),
    "due_moved": N_("due date moved from {before_at} to {after_at}"),
    "due_set": N_("due date set to {after_at}"),
    "clock_restarted": N_("stage 1 restarted for the new owner"),
    "qualified_junk": N_("qualified junk: no escalation"),
    "qualified_target": N_("qualified {qualification}: processing target {target_at}"),
    "target_missed_queued": N_("processing target {target_at} missed: notice to {to} queued"),
    "contact_not_reached": N_("{channel}: customer not reached; try again on {follow_up_at}"),
    "contact_left_message": N_("{channel}: message left; try again on {follow_up_at}"),
    "oem_lead_linked": N_(
        "own lead of {source} (their lead {reference}); linked to the customer's open lead #{lead}"
    ),
    "oem_lead_link_back": N_(
        "a new lead of {source} for this customer (their lead {reference}) is its own lead, "
        "linked to this one"
    ),
    "handed_back_owner": N_("handed back from the call centre by {user} to {owner}"),
    "handed_back_distribution": N_("handed back from the call centre by {user} for distribution"),
    "reopened_unanswered": N_("reopened; not answered yet: stage 1 restarted"),
    "reopened_answered": N_("reopened; already answered: no escalation"),
    "was_closed": N_("was closed: {completion}"),
    "customer_changed": N_("customer {field}: {old} -> {new}"),
    "vehicle_changed": N_("vehicle {field}: {old} -> {new}"),
    "trade_in_changed": N_("trade-in {field}: {old} -> {new}"),
    # replies and escalation
    "answered_directly": N_("answered directly by {user} (lead mailbox in copy)"),
    "answered_by_mail": N_("answered by mail from {user}"),
    "answered_again": N_("answered by mail from {user} (further answer)"),
    "answered_from_sent": N_("answered from {user}'s mail client (Sent folder, to {to})"),
    "relayed_to": N_("answer relayed to {to}"),
    "relay_undelivered": N_("mail to {to} not delivered: {bounce}"),
    "answer_taken_back": N_("no answer reached the customer: unanswered again, stage 1 restarted"),
    "bounce_notice_queued": N_("notice of the undelivered mail to {user} queued"),
    "followup_no_text": N_("the mail has no message text: nobody notified"),
    "customer_replied": N_("customer {customer} replied: {subject}"),
    "rung_queued": N_("{purpose} to {to} queued"),
    "rung_no_assignee": N_("{purpose} due, but the assignee is no longer active"),
    "stage2_nobody": N_("stage 2 due, but nobody to tell: no supervisor and no admin address"),
    # administration
    "outbox_resend": N_("{purpose} mail {outbox} queued again by {user}"),
    "reprocess_queued": N_("mail {inbound} queued for processing again"),
}

# Every wording a phrase may use: the protocol's, plus tables other modules register
# (e.g. the settings warnings of mailgate.dealer_settings).
WORDINGS: dict[str, str] = dict(PHRASES)


def register(table: Mapping[str, str]) -> None:
    """Make another module's wordings (msgids marked with ``N_``) usable as phrases."""
    for code, text in table.items():
        if WORDINGS.setdefault(code, text) != text:
            raise PhraseError(f"phrase code {code!r} is registered twice with other words")


JOINERS = {"reason": " → "}
DEFAULT_JOINER = "; "
ENGLISH_TIME = "%d.%m.%Y %H:%M"


class PhraseError(ValueError):
    """A phrase code that does not exist, or parameters that do not fit its wording."""


@dataclass(frozen=True)
class Phrase:
    """One worded fact of a protocol line: a code and the values that fill it."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code}
        for key, value in self.params.items():
            data[key] = [p.to_json() for p in value] if _is_chain(value) else value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Phrase:
        params = {
            key: [cls.from_json(p) for p in value] if _is_json_chain(value) else value
            for key, value in data.items()
            if key != "code"
        }
        return cls(str(data["code"]), params)


def phrase(code: str, **params: Any) -> Phrase:
    """A phrase, checked against its wording now rather than when someone reads it."""
    wording = WORDINGS.get(code)
    if wording is None:
        raise PhraseError(f"unknown protocol phrase {code!r}")
    wanted = placeholders(wording)
    if set(params) != wanted:
        raise PhraseError(f"phrase {code!r} takes {sorted(wanted)}, got {sorted(params)}")
    values = {key: _plain(key, value) for key, value in params.items()}
    return Phrase(code, values)


def note(text: str) -> list[Phrase]:
    """A user's free-text note as a phrase of its own (nothing when empty)."""
    return [phrase("note", note=text.strip())] if text.strip() else []


def placeholders(wording: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(wording) if name}


Wording = Callable[[str], str]
Formatter = Callable[[str, Any], str]


def render(p: Phrase, wording: Wording, value: Formatter) -> str:
    """``p`` in the words ``wording`` gives for an English msgid, values by ``value``."""
    english_text = WORDINGS.get(p.code, p.code)
    template = wording(english_text)
    args: dict[str, str] = {}
    for key, raw in p.params.items():
        if _is_chain(raw):
            args[key] = JOINERS.get(key, DEFAULT_JOINER).join(
                render(x, wording, value) for x in raw
            )
        else:
            args[key] = value(key, raw)
    try:
        return template.format_map(_Missing(args))
    except (ValueError, IndexError):  # a broken translation: the English never is
        return english_text.format_map(_Missing(args))


def render_all(phrases: Iterable[Phrase], wording: Wording, value: Formatter) -> str:
    return DEFAULT_JOINER.join(render(p, wording, value) for p in phrases)


def english_value(tz: ZoneInfo | None = None) -> Formatter:
    """Values as the English ``detail`` column shows them (times in the dealer's zone)."""

    def value(key: str, raw: Any) -> str:
        if raw is None:
            return "–"
        if key.endswith("_at") and isinstance(raw, str):
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                return raw
            return (moment.astimezone(tz) if tz else moment).strftime(ENGLISH_TIME)
        return str(raw)

    return value


def english(phrases: Sequence[Phrase], tz: ZoneInfo | None = None) -> str:
    return render_all(phrases, lambda text: text, english_value(tz))


def row(
    lead_id: int,
    at: datetime,
    actor: str,
    action: str,
    phrases: Sequence[Phrase],
    tz: ZoneInfo | None = None,
) -> dict[str, Any]:
    """The ``protocol_entry`` values for one line (for Core inserts)."""
    return {
        "lead_id": lead_id,
        "at": at,
        "actor": actor,
        "action": action,
        "detail": english(phrases, tz),
        "params": [p.to_json() for p in phrases],
    }


def phrases_of(params: Any) -> list[Phrase] | None:
    """The phrases stored in a row's ``params`` (``None`` for rows from before phrases)."""
    if not isinstance(params, list) or not params:
        return None
    try:
        return [Phrase.from_json(p) for p in params]
    except (KeyError, TypeError, AttributeError):
        return None


# --- reading old rows ----------------------------------------------------------------------


def legacy_phrases(detail: str) -> list[Phrase] | None:
    """The phrase an English ``detail`` written before phrases existed says, when one fits it whole.

    Used once by the migration that introduced ``params``: what fits becomes
    translatable; a line that fits no wording keeps its English text.
    """
    for code, pattern in _LEGACY_PATTERNS:
        found = pattern.fullmatch(detail)
        if found:
            return [Phrase(code, found.groupdict())]
    return None


def _legacy_pattern(wording: str) -> re.Pattern[str]:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(wording):
        parts.append(re.escape(literal))
        if name:
            parts.append(f"(?P<{name}>.+?)")
    return re.compile("".join(parts), re.DOTALL)


# Specific wordings first: "{reason}"-only phrases would swallow everything.
_LEGACY_PATTERNS = sorted(
    ((code, _legacy_pattern(text)) for code, text in PHRASES.items() if placeholders(text)),
    key=lambda item: -len(PHRASES[item[0]].replace("{", "").replace("}", "")),
)


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _is_chain(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, Phrase) for v in value)


def _is_json_chain(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and "code" in v for v in value)


def _plain(key: str, value: Any) -> Any:
    """JSON-ready values: times as ISO text, chains as lists of phrases."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple) and _is_chain(value):
        return list(value)
    if _is_chain(value) or isinstance(value, str | int | float | bool) or value is None:
        return value
    raise PhraseError(f"parameter {key!r} of a phrase must be text, a number, a time or phrases")
