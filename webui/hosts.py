"""Which requests the web UI believes: the Host it answers to and the proxies it trusts.

Two WSGI layers in front of Flask, outermost first:

* :class:`TrustedProxies` - ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port``/``-Prefix``
  are believed only when the immediate peer is one of ``[web] trusted_proxies``
  (werkzeug's ProxyFix, with the hop count of the trusted proxies in the chain);
  from anyone else they are removed, so a client cannot pick its own address for
  the login throttle or its own host name.
* :class:`HostGuard` - a ``Host`` (after the trusted proxy's ``X-Forwarded-Host``)
  that is not the base URL's host, a listen address or one of ``[web]
  allowed_hosts`` gets a plain 400 before any page runs (the equivalent of Flask's
  ``TRUSTED_HOSTS``, which cannot follow a base URL that lives in the database and
  compares IPv6 literals and upper-case names wrongly).

Links in mails never come from the Host header anyway (:mod:`mailgate.base_url`);
the guard closes what is left: DNS rebinding, cache poisoning, and pages whose
absolute URLs would otherwise name the attacker's host.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.http import parse_list_header
from werkzeug.middleware.proxy_fix import ProxyFix

from mailgate.base_url import host_of, stored_base_url
from mailgate.config import Settings, parse_networks

log = logging.getLogger("mailgate.webui")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_LISTEN = ("", "0.0.0.0", "::")  # noqa: S104  # nosec B104  # names to skip, not a bind
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)
UNGUARDED_PATHS = ("/healthz",)  # load balancers probe by IP address; it tells nothing
BASE_URL_TTL = 10.0  # seconds: another instance's change of the base URL arrives this late


class BaseUrlCache:
    """The dealer's base URL, re-read at most every :data:`BASE_URL_TTL` seconds.

    The host guard runs before Flask has a request (and a session); a database
    that does not answer keeps the last known value instead of failing requests.
    """

    def __init__(self, factory: sessionmaker[Session], ttl: float = BASE_URL_TTL) -> None:
        self._factory, self._ttl = factory, ttl
        self._value, self._read_at = "", float("-inf")
        self._lock = threading.Lock()

    def get(self) -> str:
        # Only the due check is under the lock: one thread reads the database while the
        # others keep answering with the last value (a slow database must not queue every
        # request, /static included, behind one read).
        with self._lock:
            if time.monotonic() - self._read_at < self._ttl:
                return self._value
            self._read_at = time.monotonic()
        try:
            with self._factory() as session:
                value = stored_base_url(session)
        except SQLAlchemyError:
            log.warning("web UI: cannot read the base URL, using the last known", exc_info=True)
            return self._value
        with self._lock:
            self._value = value
        return value

    def forget(self) -> None:
        """Read again on next use (after the settings were saved here)."""
        with self._lock:
            self._read_at = float("-inf")


def normalise_host(host: str) -> str | None:
    """``Host`` header value -> lower-case host name without port; None when malformed."""
    host = host.strip().lower()
    if not host or any(c in host for c in " /\\@?#"):
        return None
    if host.startswith("["):  # IPv6 literal, maybe with a port
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
    name, _, port = host.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def static_hosts(settings: Settings) -> frozenset[str]:
    """Listen addresses and ``[web] allowed_hosts`` (the part that is not in the database)."""
    names = {*LOOPBACK_HOSTS, *(h.lower() for h in settings.web.allowed_hosts)}
    if settings.web.host not in WILDCARD_LISTEN:
        names.add(settings.web.host.lower().strip("[]"))
    return frozenset(_canonical(n) for n in names)


def _canonical(entry: str) -> str:
    """An allowed-host entry as :func:`normalise_host` gives request hosts."""
    try:
        return str(ipaddress.ip_address(entry.strip("[]")))
    except ValueError:
        return entry.rstrip(".")


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Exact names; an entry with a leading dot also allows its subdomains."""
    name = normalise_host(host)
    if name is None:
        return False
    for entry in allowed:
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif name == entry:
            return True
    return False


class HostGuard:
    """400 for a Host header the web UI does not answer to."""

    def __init__(self, app: WSGIApp, settings: Settings, base_url: BaseUrlCache) -> None:
        self.app, self.base_url = app, base_url
        self.fixed = static_hosts(settings)

    def allowed(self) -> frozenset[str]:
        own = host_of(self.base_url.get())
        return self.fixed | {own} if own else self.fixed

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # No Host header at all (HTTP/1.0): the server's own name; an empty one is refused.
        host = environ["HTTP_HOST"] if "HTTP_HOST" in environ else environ.get("SERVER_NAME", "")
        if environ.get("PATH_INFO") in UNGUARDED_PATHS or host_allowed(host, self.allowed()):
            return self.app(environ, start_response)
        log.info("refused a request for host %r from %s", host[:100], environ.get("REMOTE_ADDR"))
        body = (
            b"400 Bad Request: this server does not answer to that host name.\n"
            b"(Administrators: set the dealer's base_url or [web] allowed_hosts.)\n"
        )
        start_response(
            "400 Bad Request",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:4711"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:4711"
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    """ProxyFix for requests from a trusted proxy; forwarding headers dropped from others."""

    def __init__(self, app: WSGIApp, networks: tuple[Network, ...]) -> None:
        self.app, self.networks = app, networks
        self._fixes: dict[int, ProxyFix] = {}

    def trusted(self, value: str | None) -> bool:
        address = _address(value or "")
        return address is not None and any(address in net for net in self.networks)

    def hops(self, forwarded_for: str) -> int:
        """How many X-Forwarded-For entries, from the right, to go back to reach the client:
        one per trusted proxy in the chain, so a client's own entries are never believed."""
        values = parse_list_header(forwarded_for)
        count = 1
        for value in reversed(values[1:]):
            if not self.trusted(value):
                break
            count += 1
        return min(count, max(len(values), 1))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self.trusted(environ.get("REMOTE_ADDR")):
            for name in FORWARDED_HEADERS:
                environ.pop(name, None)
            return self.app(environ, start_response)
        hops = self.hops(environ.get("HTTP_X_FORWARDED_FOR", ""))
        fix = self._fixes.get(hops)
        if fix is None:
            # Proto, host, port and prefix as the nearest (trusted) proxy saw them.
            fix = ProxyFix(self.app, x_for=hops, x_proto=1, x_host=1, x_port=1, x_prefix=1)
            self._fixes[hops] = fix
        return fix(environ, start_response)


def wrap(app: Any, settings: Settings, base_url: BaseUrlCache) -> None:
    """Put both layers around ``app.wsgi_app`` (the documented place for WSGI middleware)."""
    networks = parse_networks("web", "trusted_proxies", settings.web.trusted_proxies)
    app.wsgi_app = TrustedProxies(HostGuard(app.wsgi_app, settings, base_url), networks)
