"""Cheap, spoof-aware sender signals shared by the ``matches`` functions.

A platform is recognised by a *real* domain-suffix match (``mobile.de`` and
``x.mobile.de`` but never ``mobile.de.evil.example`` or ``notmobile.de``), and
a mail whose trusted ``Authentication-Results`` show a DKIM or DMARC failure is
not believed to come from any platform at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .message import MailView

# The lookbehind starts a match only where a run of address characters starts:
# without it, 60 KB of dots took seconds (each position rescanned the run).
_ADDRESS = re.compile(r"(?<![\w.+'=-])[\w.+'=-]+@[\w.-]+")


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")


def domain_matches(address: str, suffixes: Iterable[str]) -> bool:
    """True if the address's domain is one of ``suffixes`` or a subdomain of one."""
    domain = domain_of(address)
    return any(domain == s or domain.endswith("." + s) for s in suffixes)


def sender_addresses(view: MailView) -> list[str]:
    """From, Sender and Reply-To addresses, in that order."""
    found = [a for _, a in view.from_addresses]
    sender = view.header("Sender")
    if sender:
        found += [a for a in _ADDRESS.findall(sender)]
    found += [a for _, a in view.reply_to]
    return found


def sent_by(view: MailView, suffixes: Iterable[str]) -> bool:
    """True if From or Sender is at one of the platform domains (Reply-To does not count)."""
    suffixes = tuple(suffixes)
    candidates = [a for _, a in view.from_addresses]
    sender = view.header("Sender")
    if sender:
        candidates += _ADDRESS.findall(sender)
    return any(domain_matches(a, suffixes) for a in candidates)


_RESULT = re.compile(r"\b(dkim|dmarc|spf)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_HEADER_D = re.compile(r"\bheader\.[di]\s*=\s*\"?(?:[^\s;\"@]*@)?([a-z0-9.-]+)", re.IGNORECASE)


def authentication_failed(view: MailView, trusted_authserv_ids: frozenset[str]) -> str | None:
    """The failing check (``dkim=fail``, ``spf=fail``) in our own Authentication-Results, or None.

    Only the *topmost* header whose authserv-id (the first token) the dealer
    trusts counts: anyone can write an ``Authentication-Results`` header into
    a mail, even one naming the dealer's MX, but the MX prepends its own above
    everything the sender wrote (RFC 8601 sections 5 and 7.1).  A DKIM pass
    excuses a DKIM failure only if the passing signature is aligned with the
    From domain; a pass for the sender's own throw-away domain proves nothing
    about a mail that claims to come from a platform.
    """
    if not trusted_authserv_ids:
        return None
    try:
        values = view.message.get_all("Authentication-Results") or []
    except Exception:  # noqa: BLE001 - unreadable header: no verdict
        return None
    trusted = {t.lower() for t in trusted_authserv_ids}
    from_domains = [domain_of(a) for _, a in view.from_addresses]
    for value in values:
        text = str(value)
        authserv = text.split(";", 1)[0].strip().split()[0].lower() if text.strip() else ""
        if authserv in trusted:
            return _verdict(text, from_domains)
    return None


def _verdict(text: str, from_domains: list[str]) -> str | None:
    passed: set[str] = set()
    failed: list[str] = []
    for method, result, props in _RESULT.findall(text):
        method, result = method.lower(), result.lower()
        if result == "pass":
            signer = _HEADER_D.search(props)
            if method != "dkim" or not signer or _aligned(signer.group(1), from_domains):
                passed.add(method)
        elif result in ("fail", "permerror"):
            failed.append(f"{method}={result}")
    real_failures = [f for f in failed if f.split("=")[0] not in passed]
    return real_failures[0] if real_failures else None


def _aligned(signer: str, from_domains: list[str]) -> bool:
    """Relaxed DKIM alignment, approximated without a public-suffix list."""
    signer = signer.lower().rstrip(".")
    return any(
        d == signer or d.endswith("." + signer) or signer.endswith("." + d) for d in from_domains
    )
