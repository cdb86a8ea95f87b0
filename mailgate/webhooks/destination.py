"""Where a webhook may be sent: the guard against server-side request forgery (SSRF).

A webhook URL is typed by an admin of the web UI, but the POST leaves from the
server, inside the dealership's network: without a guard it reaches the
router's admin page, the cloud metadata service (169.254.169.254) or a
database port on localhost.  So a destination is checked on the *addresses the
name resolves to*, not on its spelling, and the sender connects to exactly
the addresses checked here (:mod:`.transport`), so a DNS answer that changes
between check and connect (rebinding) reaches nothing new.

An address is allowed when :func:`is_public_address` says so — after
unwrapping the IPv4 address hidden in IPv4-mapped, NAT64 and 6to4 IPv6
addresses — or when the operator's allowlist (``[webhooks] allow_private``
in the config file: addresses, networks, host names) names it.  The allowlist
belongs to the host operator, not to the web UI's admins, on purpose.

Spellings that resolvers read differently from people (``2130706433``,
``0x7f.1``, ``0177.0.0.1``, user info before an ``@``) are refused before any
lookup: they have no honest use in a webhook URL.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}
# Why refused (:attr:`DestinationRefused.code`); the web UI says each in words.
SCHEME, MALFORMED, USERINFO, NUMERIC, INTERNAL, UNRESOLVED = (
    "scheme",
    "malformed",
    "userinfo",
    "numeric",
    "internal",
    "unresolved",
)
REASONS = (SCHEME, MALFORMED, USERINFO, NUMERIC, INTERNAL, UNRESOLVED)

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are IPv4
# Not global in IANA's special-purpose registries, though Python 3.11's is_global says so.
NOT_GLOBAL = (
    ipaddress.IPv4Network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.IPv4Network("192.88.99.0/24"),  # deprecated 6to4 relay anycast
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215 local-use NAT64
    ipaddress.IPv6Network("fec0::/10"),  # deprecated site-local
    ipaddress.IPv6Network("3fff::/20"),  # RFC 9637 documentation
    ipaddress.IPv6Network("5f00::/16"),  # RFC 9602 SRv6 SIDs
)
# inet_aton() reads each part of a host as decimal, octal (0…) or hex (0x…), 1 to 4 parts.
_NUMERIC_PART = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class DestinationRefused(ValueError):
    """A webhook URL that must not be sent to; ``code`` is one of :data:`REASONS`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """A checked destination: connect only to ``addresses``, speak to ``host``."""

    scheme: str
    host: str  # ASCII, lower case, no trailing dot; an IPv6 literal without brackets
    port: int
    path: str  # the request target: path and query
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Allowlist:
    """Destinations the operator declared internal but allowed (config ``allow_private``)."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()

    def allows_name(self, host: str) -> bool:
        return host in self.names

    def allows_address(self, address: IPAddress) -> bool:
        candidates = {address, unwrap(address)}
        return any(
            a in net for a in candidates for net in self.networks if a.version == net.version
        )


EMPTY_ALLOWLIST = Allowlist()


def parse_allowlist(entries: Iterable[str]) -> Allowlist:
    """Addresses, networks (CIDR) and host names; ValueError names a malformed entry."""
    networks: list[IPNetwork] = []
    names: set[str] = set()
    for entry in entries:
        text = str(entry).strip()
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            pass
        else:
            if network.prefixlen == 0:  # a switch that turns the guard off, not an allowlist
                raise ValueError(f"{entry!r} would allow every address; name the receivers")
            networks.append(network)
            continue
        try:
            name = normalise_host(text)
        except DestinationRefused:
            raise ValueError(f"not an address, network or host name: {entry!r}") from None
        if _is_numeric(name) or "/" in text:
            raise ValueError(f"not an address, network or host name: {entry!r}")
        names.add(name)
    return Allowlist(tuple(networks), frozenset(names))


@cache
def allowlist_from(entries: tuple[str, ...]) -> Allowlist:
    """:func:`parse_allowlist`, once per distinct setting (the sender asks every pass)."""
    return parse_allowlist(entries)


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries to (mapped, NAT64, 6to4), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def is_public_address(address: IPAddress) -> bool:
    """A globally routable unicast address (after :func:`unwrap`).

    ``is_global`` alone lets multicast and some reserved IPv6 ranges through,
    so the other properties are asked as well.
    """
    address = unwrap(address)
    return not (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
        or any(address in net for net in NOT_GLOBAL if address.version == net.version)
    )


def normalise_host(host: str) -> str:
    """ASCII (IDNA), lower case, without the trailing dot of a fully qualified name.

    IDNA maps full-width and circled digits and ideographic dots to ASCII, so
    a spelled-out address is checked as the address the resolver will see.
    """
    if not host:
        raise DestinationRefused(MALFORMED, "no host name")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise DestinationRefused(MALFORMED, "the host name is not valid") from None
    ascii_host = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    if not _HOST_NAME.fullmatch(ascii_host):
        raise DestinationRefused(MALFORMED, "the host name is not valid")
    return ascii_host


def _is_numeric(host: str) -> bool:
    """Would ``inet_aton()`` read ``host`` as an IPv4 address (in any of its spellings)?"""
    parts = host.split(".")
    return 1 <= len(parts) <= 4 and all(_NUMERIC_PART.fullmatch(p) for p in parts)


def _literal(host: str) -> IPAddress | None:
    """The address in an IP-literal host; refuses numeric hosts not written as a.b.c.d."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.replace("%25", "%"))
        except ValueError:
            raise DestinationRefused(MALFORMED, "the IPv6 address is not valid") from None
    if not _is_numeric(host):
        return None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        raise DestinationRefused(
            NUMERIC, "write an IPv4 address as four decimal numbers (a.b.c.d)"
        ) from None


def parse_url(url: str) -> Target:
    """The parts of a webhook URL the sender needs, or :class:`DestinationRefused`.

    No addresses yet: see :func:`check_destination`.
    """
    if len(url) > MAX_URL_LENGTH or _BAD_CHARS.search(url):
        raise DestinationRefused(MALFORMED, "not a valid URL")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. "[1.2.3.4]", an unbalanced "["
        raise DestinationRefused(MALFORMED, "not a valid URL") from None
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise DestinationRefused(SCHEME, "the URL must be an http:// or https:// address")
    if "@" in parts.netloc:
        raise DestinationRefused(USERINFO, "no user name or password in the URL")
    try:
        port = parts.port
    except ValueError:
        raise DestinationRefused(MALFORMED, "the port is not valid") from None
    if port == 0 or hostname is None:
        raise DestinationRefused(MALFORMED, "no host name or no valid port")
    if "[" in parts.netloc and ":" not in hostname:  # brackets hold IPv6 only
        raise DestinationRefused(MALFORMED, "not a valid IPv6 address")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not target.isascii():
        raise DestinationRefused(MALFORMED, "percent-encode the path (ASCII only)")
    scheme = parts.scheme.lower()
    host = normalise_host(hostname) if ":" not in hostname else hostname
    return Target(scheme, host, port or DEFAULT_PORTS[scheme], target)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (the one DNS lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen[str(sockaddr[0])] = None
    return list(seen)


def _is_local_name(host: str) -> bool:
    """RFC 6761: ``localhost`` and every name under it are loopback, whatever DNS says."""
    return host == "localhost" or host.endswith(".localhost")


def check_destination(url: str, allowlist: Allowlist, *, lookup: bool = True) -> Target:
    """The checked :class:`Target` of ``url``, or :class:`DestinationRefused`.

    Every address the name resolves to must be allowed: one private answer
    among public ones is how a rebinding attack starts.  With ``lookup=False``
    only the URL and a literal address are checked (no DNS).
    """
    target = parse_url(url)
    host = target.host
    literal = _literal(host)
    if literal is not None:
        addresses = [str(literal)]
    elif _is_local_name(host) and not allowlist.allows_name(host):
        raise DestinationRefused(INTERNAL, f"{host} is this server")
    elif not lookup:
        return target
    else:
        try:
            addresses = resolve(host, target.port)
        except (OSError, UnicodeError):
            raise DestinationRefused(UNRESOLVED, f"{host} cannot be resolved") from None
        if not addresses:
            raise DestinationRefused(UNRESOLVED, f"{host} cannot be resolved")
    if not allowlist.allows_name(host):
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not is_public_address(address) and not allowlist.allows_address(address):
                raise DestinationRefused(INTERNAL, f"{host} is an internal address")
    return Target(target.scheme, host, target.port, target.path, tuple(addresses))
