"""Reply tracking, the pure part: tracking addresses, finding the lead a mail answers.

A notification's Reply-To is a per-lead *tracking address* on the lead
mailbox's domain, ``leads+<lead id>-<token>@autohaus.example``: the salesperson
answers from Outlook, Thunderbird or a phone, the answer comes back to us, and
we know which lead it answers without trusting anything the sender wrote.  The
token is 128 random bits compared in constant time; the lead id in front only
says which stored token to compare with.  The ``[Lead 123]`` subject tag is the
fallback for clients that drop the sub-address; without the token it never
counts: such a mail becomes a "possible answer" note on the lead
(:mod:`.authenticity`, ``THREATS.md``).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .quotes import own_words

__all__ = ["own_words"]  # moved to .quotes; kept importable here

SUBJECT_TAG = re.compile(r"\[Lead (\d{1,12})\]")


@dataclass(frozen=True)
class ReplyTarget:
    """The lead a mail answers, and how we know: ``address`` (token) or ``subject`` (tag)."""

    lead_id: int
    token: str | None
    via: str


def tracking_address(lead_address: str, lead_id: int, token: str) -> str:
    """``leads@autohaus.example`` + lead 42 -> ``leads+42-<token>@autohaus.example``."""
    local, _, domain = lead_address.rpartition("@")
    return f"{local}+{lead_id}-{token}@{domain}"


def notification_reply_to(
    mode: str,
    lead_address: str,
    lead_id: int,
    token: str,
    customer_name: str | None,
    customer_email: str | None,
    *,
    user_id: int | None = None,
) -> list[tuple[str, str]]:
    """Where the salesperson's "Reply" goes.

    ``relay`` (default): only the tracking address, shown with the customer's
    name, so the answer passes through us and is relayed.  ``cc``: the
    customer *and* the tracking address, so the answer goes straight out and
    we get a copy that counts as the response.  ``user_id``: the one user the
    mail is for (the assignee); the address then carries that user's token
    (:func:`.authenticity.assignee_token`), bound to the lead *and* him.
    """
    if user_id is not None:
        from .authenticity import assignee_token

        token = assignee_token(token, user_id)
    tracking = tracking_address(lead_address, lead_id, token)
    if mode == "cc" and customer_email:
        return [(customer_name or "", customer_email), ("Lead-Tracking", tracking)]
    return [(customer_name or "", tracking)]


def find_target(
    recipients: Iterable[str], subject: str | None, dealer_addresses: frozenset[str]
) -> ReplyTarget | None:
    """The lead this mail is addressed to (tracking address first, then the subject tag)."""
    for address in recipients:
        local, at, domain = address.strip().strip("<>").rpartition("@")
        base, plus, tag = local.partition("+")
        if not (at and plus) or f"{base}@{domain}".lower() not in dealer_addresses:
            continue
        id_text, dash, token = tag.partition("-")
        if id_text.isdigit() and dash and token:
            return ReplyTarget(int(id_text), token, "address")
    match = SUBJECT_TAG.search(subject or "")
    if match:
        return ReplyTarget(int(match.group(1)), None, "subject")
    return None


def token_matches(given: str | None, stored: str | None) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the token."""
    if not given or not stored:
        return False
    return hmac.compare_digest(given.encode("utf-8"), stored.encode("utf-8"))


def without_tag(subject: str | None) -> str:
    """The subject the customer sees: our internal ``[Lead 123]`` tag removed."""
    return " ".join(SUBJECT_TAG.sub(" ", subject or "").split())


def with_tag(subject: str | None, lead_id: int) -> str:
    """The subject staff see: the ``[Lead 123]`` tag added once."""
    text = " ".join((subject or "").split())
    return text if f"[Lead {lead_id}]" in text else f"[Lead {lead_id}] {text}".strip()


def quote(text: str | None, limit: int = 4000) -> str:
    """``> ``-quoted text for the bottom of a relayed mail."""
    body = (text or "").strip()[:limit]
    return "\n".join(f"> {line}".rstrip() for line in body.splitlines())
