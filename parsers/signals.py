"""Spoof-aware sender evidence shared by the ``matches`` functions and the registry.

Where it sits: every source parser's ``matches`` asks here whether a mail was
really *sent* by a platform, and the registry asks whether it only *pretends*
to be (FORMATS.md 1.4 and 8).  Domains are compared as registrable domains
(the public suffix list shipped in the ``publicsuffixlist`` package, never
fetched at run time): ``kontakt.mobile.de`` is mobile.de, while
``mobile.de.evil.example``, ``mobile-de.support-center.example`` and
``autoscout24-payments.example`` are look-alikes -- a domain that merely
*contains* a platform's name is a phishing signal, not a platform signal.
A mail whose trusted ``Authentication-Results`` show a DKIM or DMARC failure
is not believed to come from any platform at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from .message import MailView

# The lookbehind starts a match only where a run of address characters starts:
# without it, 60 KB of dots took seconds (each position rescanned the run).
_ADDRESS = re.compile(r"(?<![\w.+'=-])[\w.+'=-]+@[\w.-]+")

# The platforms' own registrable domains (what sends their mail and relays).
PLATFORM_DOMAINS: dict[str, tuple[str, ...]] = {
    "mobile.de": ("mobile.de",),
    "kleinanzeigen": ("kleinanzeigen.de", "ebay-kleinanzeigen.de"),
    "autoscout24": tuple(
        f"autoscout24.{tld}"
        for tld in (
            "com",
            "de",
            "at",
            "ch",
            "nl",
            "be",
            "fr",
            "it",
            "es",
            "lu",
            "pl",
            "net",
            "bg",
            "cz",
            "hr",
            "hu",
            "ro",
            "se",
            "com.tr",
            "com.ua",
            "ru",
        )
    ),  # fmt: skip
}
# What a look-alike borrows: the platform's name with separators and digit
# homoglyphs folded away ("mobile-de", "mobile.de.", "autosc0ut24").
_BRAND_TOKENS: dict[str, tuple[str, ...]] = {
    "mobile.de": ("mobilede",),
    "kleinanzeigen": ("kleinanzeigen",),
    "autoscout24": ("autoscout24", "autoscout"),
}
# Real organisations whose folded names happen to contain a token.
_NOT_LOOKALIKES = frozenset({"t-mobile.de", "t-mobile.at", "t-mobile.com", "t-mobile.nl"})
# Display names a platform's system mail uses; a person is never called this.
_PLATFORM_DISPLAY = re.compile(
    r"^\W*(?:mobile\W?de|(?:ebay\W?)?kleinanzeigen|autoscout\W?24)\b", re.IGNORECASE
)
_HOMOGLYPHS = str.maketrans({"0": "o", "1": "l", "|": "l", "$": "s"})


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")


@lru_cache(maxsize=4096)
def registrable_domain(domain: str) -> str:
    """``kontakt.mobile.de`` -> ``mobile.de``; ``foo.co.uk`` -> ``foo.co.uk``.

    The organisational domain of RFC 7489: one label below the public suffix.
    A bare public suffix (``de``) or a single label is returned as it is.
    """
    domain = domain.strip().strip(".").lower()
    if not domain or len(domain) > 253:
        return domain
    try:
        found = _psl().privatesuffix(domain)
    except Exception:  # noqa: BLE001 - a strange label is no reason to fail a mail
        found = None
    return found or domain


@lru_cache(maxsize=1)
def _psl():  # type: ignore[no-untyped-def]
    """The shipped public suffix list; loaded once (~60 ms), never downloaded."""
    try:
        from publicsuffixlist import PublicSuffixList
    except ImportError:  # pragma: no cover - the package is a declared dependency
        return _FallbackSuffixes()
    return PublicSuffixList()


class _FallbackSuffixes:
    """Two labels, three under a country's generic second level (``co.uk``).

    Only used if ``publicsuffixlist`` is missing from an installation: close
    enough for the platforms' and dealers' domains, which are all plain
    ``name.tld`` or ``name.co.tld``.
    """

    _SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gv", "or", "gov", "edu"})

    def privatesuffix(self, domain: str) -> str | None:
        labels = domain.split(".")
        if len(labels) < 2:
            return None
        take = 3 if len(labels[-1]) == 2 and labels[-2] in self._SECOND_LEVEL else 2
        return ".".join(labels[-take:]) if len(labels) >= take else None


# Loaded with the module (~60 ms once), not on the first mail: a parse is timed per mail.
_psl()


def same_organisation(a: str, b: str) -> bool:
    """True if two domains share their registrable domain (relaxed DMARC alignment)."""
    if not a or not b:
        return False
    return registrable_domain(a) == registrable_domain(b)


def domain_matches(address: str, suffixes: Iterable[str]) -> bool:
    """True if the address's domain is one of ``suffixes`` or a subdomain of one."""
    domain = domain_of(address)
    return any(domain == s or domain.endswith("." + s) for s in suffixes)


@lru_cache(maxsize=4096)
def platform_of(address: str) -> str | None:
    """The platform whose registrable domain the address is at, or None."""
    domain = registrable_domain(domain_of(address))
    for platform, domains in PLATFORM_DOMAINS.items():
        if domain in domains:
            return platform
    return None


@lru_cache(maxsize=4096)
def imitated_platform(address: str) -> str | None:
    """The platform a *non*-platform address borrows the name of (in its domain), or None.

    ``noreply@mobile.de.kontakt-center.example``, ``x@autoscout24-payments.example``,
    ``a@notautoscout24.be`` and ``a@autosc0ut24.example`` imitate; ``a@mobile.de``
    does not, and neither does a customer at ``t-mobile.de``.
    """
    domain = domain_of(address)
    if not domain or platform_of(address):
        return None
    if registrable_domain(domain) in _NOT_LOOKALIKES:
        return None
    return _brand_in(domain)


def _brand_in(text: str) -> str | None:
    folded = _fold(text)
    for platform, tokens in _BRAND_TOKENS.items():
        if any(token in folded for token in tokens):
            return platform
    return None


_SERVICE_WORDS = (
    "service", "support", "team", "kundendienst", "noreply", "info", "payment", "zahlung",
    "security", "sicherheit", "verify", "konto", "account", "haendler", "dealer", "kontakt",
)  # fmt: skip


def _local_claim(local: str) -> bool:
    """A local part that speaks for a platform: ``autoscout24@``, ``mobilede.kundenservice@``.

    A customer's own ``max.autoscout24@`` (a mailbox for car hunting) is no claim.
    """
    folded = _fold(local)
    for tokens in _BRAND_TOKENS.values():
        for token in tokens:
            if folded.startswith(token):
                return True
            if token in folded and any(word in folded for word in _SERVICE_WORDS):
                return True
    return False


@lru_cache(maxsize=4096)
def _fold(text: str) -> str:
    """Lower case, accents and digit homoglyphs folded, separators dropped."""
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", plain.translate(_HOMOGLYPHS))


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


def recipient_domains(view: MailView) -> set[str]:
    """Registrable domains the mail was addressed to: the dealer's own, in practice."""
    found: set[str] = set()
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        for address in _ADDRESS.findall(view.header(name) or ""):
            found.add(registrable_domain(domain_of(address)))
    found.discard("")
    return found


def lookalike_reason(view: MailView, own_domains: Iterable[str] = ()) -> str | None:
    """Why the mail pretends to come from a platform it was not sent by, or None.

    Evidence, any one of which suffices:

    - a From/Sender/Reply-To/Return-Path domain that contains a platform's
      name without being one of its domains (``mobile-de.support-center.example``);
    - a platform's name as the From display name or local part of an address
      that is neither the platform's nor the dealer's own (``AutoScout24
      <autoscout24@freemail.example>``; a dealer may well keep a mailbox
      ``mobilede@`` that forwards leads);
    - a Reply-To at a platform on a mail the platform did not send (a
      platform never hands its relay to a third party's mail).

    ``own_domains`` are the dealer's registrable domains; the recipients' are
    added, since a dealer's own forwarding rules send from the dealer's domain.
    """
    own = {registrable_domain(d) for d in own_domains} | recipient_domains(view)
    from_addresses = [a for _, a in view.from_addresses]
    sender = view.header("Sender") or ""
    return_path = view.header("Return-Path") or ""
    envelope = from_addresses + _ADDRESS.findall(sender) + _ADDRESS.findall(return_path)
    checked = envelope + [a for _, a in view.reply_to]
    if any(platform_of(a) for a in from_addresses):
        # a platform's own mail may bounce via its mail provider's domain
        # ("mobile-de.bounces.esp.example"); a forged From is the MX's verdict to catch
        checked = from_addresses + [a for _, a in view.reply_to]
    for address in checked:
        platform = imitated_platform(address)
        if platform and registrable_domain(domain_of(address)) not in own:
            return f"look-alike: {domain_of(address)} imitates {platform}"
    if any(platform_of(a) for a in envelope):
        return None
    for display, address in view.from_addresses:
        if registrable_domain(domain_of(address)) in own:
            continue
        local = address.rpartition("@")[0]
        if _PLATFORM_DISPLAY.match(display or "") or _local_claim(local):
            claimed = _brand_in(display or "") or _brand_in(local)
            return f"look-alike: {address} claims to be {claimed} without its domain"
    for _, address in view.reply_to:
        platform = platform_of(address)
        if platform and not any(registrable_domain(domain_of(a)) in own for a in envelope):
            return f"look-alike: Reply-To at {platform} on a mail {platform} did not send"
    return None


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
    text = _trusted_results(view, trusted_authserv_ids)
    if text is None:
        return None
    return _verdict(text, [domain_of(a) for _, a in view.from_addresses])


def authenticated_platform(view: MailView, trusted_authserv_ids: frozenset[str]) -> str | None:
    """The platform whose aligned DKIM signature or DMARC pass our own MX recorded, or None.

    The strongest sender evidence there is: From at the platform *and* the
    dealer's MX verified that the platform signed it.
    """
    text = _trusted_results(view, trusted_authserv_ids)
    if text is None or _verdict(text, [domain_of(a) for _, a in view.from_addresses]):
        return None
    for method, result, props in _RESULT.findall(text):
        if result.lower() != "pass" or method.lower() not in ("dkim", "dmarc"):
            continue
        signer = _HEADER_D.search(props)
        for _, address in view.from_addresses:
            platform = platform_of(address)
            if platform and (signer is None or _aligned(signer.group(1), [domain_of(address)])):
                return platform
    return None


def _trusted_results(view: MailView, trusted_authserv_ids: frozenset[str]) -> str | None:
    """The topmost Authentication-Results header written by a trusted authserv-id."""
    if not trusted_authserv_ids:
        return None
    try:
        values = view.message.get_all("Authentication-Results") or []
    except Exception:  # noqa: BLE001 - unreadable header: no verdict
        return None
    trusted = {t.lower() for t in trusted_authserv_ids}
    for value in values:
        text = str(value)
        authserv = text.split(";", 1)[0].strip().split()[0].lower() if text.strip() else ""
        if authserv in trusted:
            return text
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
    """Relaxed DKIM alignment (RFC 7489 3.1.1): the same organisational domain."""
    signer = signer.lower().rstrip(".")
    return any(same_organisation(signer, d) for d in from_domains)
