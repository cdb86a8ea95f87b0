"""Which dialog of the lead page opens again after a refused action, and with which errors.

Every action posts to its own endpoint and redirects back to the lead (the
POST/redirect/GET the tests and the browser's back button rely on).  A form
error or a refusal is flashed at the top of the page as before; in addition
the page reopens the dialog the user was working in, with the same messages
inside it, so the user corrects the value where it was typed.  The note lives
in the session for exactly one page view of that lead.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import session

# endpoint (without "lead.") -> the dialog on the lead page that holds its form
DIALOG_OF = {
    "contact": "dlg-contact",
    "stage": "dlg-status",
    "qualification": "dlg-status",
    "resubmission": "dlg-followup",
    "due": "dlg-followup",
    "reassign": "dlg-forward",
    "close": "dlg-close",
    "delete": "dlg-delete",
}
KEY = "lead_dialog"
MAX_MESSAGES = 10


def reopen(lead_id: int, endpoint: str, messages: Iterable[str]) -> None:
    """Ask the next view of ``lead_id`` to open the dialog of ``endpoint`` with ``messages``."""
    dialog = DIALOG_OF.get(endpoint.rpartition(".")[2])
    if dialog is None:
        return
    session[KEY] = {
        "lead": lead_id,
        "dialog": dialog,
        "messages": [str(m)[:500] for m in messages][:MAX_MESSAGES],
    }


def pending(lead_id: int) -> tuple[str | None, list[str]]:
    """The dialog to open on this view of ``lead_id`` and its messages (used up once read)."""
    note = session.get(KEY)
    if not isinstance(note, dict) or note.get("lead") != lead_id:
        return None, []
    session.pop(KEY, None)
    dialog = note.get("dialog")
    messages = note.get("messages")
    if dialog not in DIALOG_OF.values() or not isinstance(messages, list):
        return None, []
    return str(dialog), [str(m) for m in messages]
