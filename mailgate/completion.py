"""Completion reasons: why a lead was closed, and whether that counts as won or lost.

The dealer can rename and hide reasons (settings ``[[completion_reasons]]``),
but the codes stay, so reports and the protocol keep their meaning when a label
changes.  Without a stored list the defaults below apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OUTCOMES = ("won", "lost", "other")


@dataclass(frozen=True)
class CompletionReason:
    code: str
    label: str
    outcome: str = "other"  # won | lost | other (reports: won/lost by source)
    hidden: bool = False  # no longer offered when closing; old leads keep it


DEFAULT_REASONS: tuple[CompletionReason, ...] = (
    CompletionReason("sold", "Fahrzeug verkauft", "won"),
    CompletionReason("appointment", "Termin vereinbart", "won"),
    CompletionReason("bought_elsewhere", "Woanders gekauft", "lost"),
    CompletionReason("no_interest", "Kein Interesse mehr", "lost"),
    CompletionReason("unreachable", "Kunde nicht erreichbar", "lost"),
    CompletionReason("vehicle_sold", "Fahrzeug bereits verkauft", "lost"),
    CompletionReason("duplicate", "Doppelte Anfrage", "other"),
    CompletionReason("junk", "Spam / keine echte Anfrage", "other"),
)


def completion_reasons(document: dict[str, Any]) -> list[CompletionReason]:
    """The dealer's reasons (settings document), or the defaults when none are stored."""
    stored = document.get("completion_reasons") or []
    if not stored:
        return list(DEFAULT_REASONS)
    return [
        CompletionReason(
            code=str(item["code"]),
            label=str(item.get("label") or item["code"]),
            outcome=str(item.get("outcome") or "other"),
            hidden=bool(item.get("hidden", False)),
        )
        for item in stored
    ]


def reason_by_code(document: dict[str, Any], code: str) -> CompletionReason | None:
    return next((r for r in completion_reasons(document) if r.code == code), None)


def reason_items(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The reasons as ``[[completion_reasons]]`` tables: what a settings page edits and saves.

    Starts from the defaults when the dealer has no list yet, so saving the
    page once turns the defaults into the dealer's own, editable list.
    """
    return [
        {"code": r.code, "label": r.label, "outcome": r.outcome, "hidden": r.hidden}
        for r in completion_reasons(document)
    ]
