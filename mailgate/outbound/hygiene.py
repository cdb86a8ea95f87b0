"""The last filter before a mail leaves for a customer: no mailgate link, ever.

Signed action links (``/m/<token>``) act without a login — whoever holds one
can mark a lead contacted or take it from the pool — and every other page of
mailgate's web UI (under the dealer's base URL: lead pages, password reset,
the pool) is for staff only.  A salesperson's answer can carry them in a
quote the quote stripper did not recognise, in a forwarded block, or pasted
by hand; Outlook's "Safe Links" even hide them percent-encoded inside
another URL.  So every mail composed for a customer passes through
:func:`scrub_text` / :func:`scrub_html` after rendering, whatever produced its
text; the relay's quote stripping (:mod:`mailgate.escalation.quotes`) is the
first line of defence, this is the second.

The base URL belongs to mailgate alone (its web UI serves ``/`` there), so
any link under it is one of ours; links to the dealer's public website stay.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote, urlsplit

# purposes of mails that go to a customer (or someone outside the dealership)
CUSTOMER_PURPOSES = frozenset({"relay_to_customer", "acknowledgement", "answer_from_lead_page"})

_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]{1,15}://|\bwww\.)[^\s<>\"'`]+", re.IGNORECASE)
# a signed link's token: base64url(claims) "." base64url(mac), see mailgate.signed_links
_SIGNED = re.compile(r"/m/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
_ANCHOR = re.compile(
    r"<a\b[^>]*?\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>",
    re.IGNORECASE | re.DOTALL,
)
_EMPTY_BRACKETS = re.compile(r"<\s*>|\(\s*\)|\[\s*\]")
_DECODE_ROUNDS = 3  # Safe Links inside a redirector: encoded twice at most in practice


def _base(base_url: str) -> str:
    """``leads.autohaus.example/mailgate``: host and path of the base URL, no scheme."""
    if not base_url:
        return ""
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if not host:
        return ""
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path.rstrip('/')}".lower()


def is_action_link(url: str, base_url: str) -> bool:
    """Whether ``url`` leads into mailgate: a signed link anywhere, or any page under the base URL.

    The URL is percent-decoded a few times first, so a link wrapped by a
    redirector (``safelinks…?url=https%3A%2F%2Fleads…%2Fm%2F…``) is found too.
    """
    decoded = html.unescape(url)
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(decoded)
    if _SIGNED.search(decoded):
        return True
    base = _base(base_url)
    if not base:
        return False
    lowered = decoded.lower()
    start = lowered.find(base)
    while start != -1:
        before = lowered[start - 1] if start else ""
        after = lowered[start + len(base) : start + len(base) + 1]
        if before in ("", "/", "@") and after in ("", "/", "?", "#", "&", ":"):
            return True
        start = lowered.find(base, start + 1)
    return False


def scrub_text(text: str, base_url: str) -> str:
    """``text`` without any mailgate link (the URL is removed, the words around it stay)."""

    def replace(match: re.Match[str]) -> str:
        url = match.group(0)
        return "" if is_action_link(url, base_url) else url

    cleaned = _URL.sub(replace, text)
    base = _base(base_url)
    if base:  # the base URL written without a scheme: leads.autohaus.example/leads/7
        tail = r"(?:[/?#][^\s<>\"'`]*|(?![\w.-]))"
        bare = re.compile(rf"(?<![\w.-]){re.escape(base)}{tail}", re.IGNORECASE)
        cleaned = bare.sub("", cleaned)
    return _EMPTY_BRACKETS.sub("", cleaned) if cleaned != text else text


def scrub_html(markup: str, base_url: str) -> str:
    """HTML without mailgate links: such anchors become their text, bare URLs go."""

    def unwrap(match: re.Match[str]) -> str:
        href = next(g for g in match.groups()[:3] if g is not None)
        return match.group(4) if is_action_link(href, base_url) else match.group(0)

    return scrub_text(_ANCHOR.sub(unwrap, markup), base_url)


def has_action_link(text: str, base_url: str) -> bool:
    """Whether any mailgate link is left in ``text`` (tests and a last check use it)."""
    return any(is_action_link(m.group(0), base_url) for m in _URL.finditer(text))
