"""What a parser may know about the dealership it parses for.

Parsers are pure, so everything dealer-specific they need arrives here instead
of being read from the database: the dealer's own addresses (never the
customer's), the country whose numbering plan applies to phone numbers written
without a prefix, and which ``Authentication-Results`` headers to believe.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParseContext:
    """Dealer facts a parser may use; the defaults suit a German dealership."""

    dealer_addresses: frozenset[str] = frozenset()
    region: str = "DE"
    trusted_authserv_ids: frozenset[str] = frozenset()


DEFAULT_CONTEXT = ParseContext()
