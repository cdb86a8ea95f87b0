"""Webhooks as SSRF (issue 16, item 8): internal destinations are refused when a URL is saved
and at every delivery attempt, after DNS, without connecting; the sender connects to the
address it checked (rebinding); redirects are not followed; the operator's allowlist lets a
receiver inside the network through; a failure is stored as a short class, never the socket's
text.  Database tests run on SQLite and PostgreSQL.

A loopback listener stands in for the internal service an attacker aims at: it records every
connection, so "refused" means "nothing reached it", not only "an error was stored".
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import ConfigError, Settings, WebhookSettings, load_settings
from mailgate.models import OutboxMail, Webhook, WebhookDelivery
from mailgate.webhooks import emit as emit_module
from mailgate.webhooks import failures, transport
from mailgate.webhooks.admin import WebhookError, create_webhook, queue_test_event, update_webhook
from mailgate.webhooks.destination import (
    INTERNAL,
    NUMERIC,
    DestinationRefused,
    check_destination,
    parse_allowlist,
)
from mailgate.webhooks.sender import deliver_pass

from .conftest import free_port
from .test_webui_lead import ADA, team_fixture  # noqa: F401 - fixture
from .webui_helpers import logged_in, post, web_app

PAGE = "/settings/integrations"
PUBLIC_IP = "93.184.215.14"  # a global unicast address (never connected to: see `connections`)
# (URL template, why) - ``{port}`` is the port of the loopback listener the URL aims at.
HOSTILE = [
    ("http://127.0.0.1:{port}/", "loopback"),
    ("http://127.0.0.2:{port}/", "loopback, not 127.0.0.1"),
    ("http://localhost:{port}/", "localhost"),
    ("http://LOCALHOST.:{port}/", "localhost, upper case, trailing dot"),
    ("http://api.localhost:{port}/", "a name under localhost"),
    ("http://127.0.0.1.:{port}/", "trailing dot"),
    ("http://2130706433:{port}/", "decimal"),
    ("http://0x7f.1:{port}/", "hex, two parts"),
    ("http://0x7f000001:{port}/", "hex"),
    ("http://017700000001:{port}/", "octal"),
    ("http://0177.0.0.1:{port}/", "octal part"),
    ("http://127.1:{port}/", "short form"),
    ("http://①②⑦.0.0.1:{port}/", "circled digits (IDNA maps them)"),
    ("http://127。0。0。1:{port}/", "ideographic full stops"),
    ("http://0.0.0.0:{port}/", "unspecified (Linux connects it to localhost)"),
    ("http://[::]:{port}/", "unspecified IPv6"),
    ("http://[::1]:{port}/", "IPv6 loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped"),
    ("http://[::ffff:7f00:1]:{port}/", "IPv4-mapped, hex"),
    ("http://[64:ff9b::7f00:1]:{port}/", "NAT64 of loopback"),
    ("http://[2002:7f00:1::1]:{port}/", "6to4 of loopback"),
    ("http://evil.example@127.0.0.1:{port}/", "user info"),
    ("http://127.0.0.1:{port}@evil.example/", "user info, the other way round"),
    ("http://127.0.0.1:{port}\\@evil.example/", "backslash"),
    ("http://127.0.0.1%09:{port}/", "percent-encoded tab in the host"),
    ("http://[127.0.0.1]:{port}/", "IPv4 in brackets"),
    ("http://[::1:{port}/", "unbalanced bracket"),
    ("http://[v1.7f000001]:{port}/", "IPvFuture"),
    ("http://127.0.0.1:{port}:80/", "two ports"),
    ("http:///127.0.0.1:{port}/", "empty authority"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "metadata, IPv4-mapped"),
    ("http://[64:ff9b::a9fe:a9fe]/", "metadata, NAT64"),
    ("http://[fe80::1]/", "IPv6 link-local"),
    ("http://[fe80::1%25eth0]/", "IPv6 link-local with zone"),
    ("http://[fd00::1]/", "IPv6 unique local"),
    ("http://10.0.0.5/", "RFC 1918"),
    ("http://172.16.0.1/", "RFC 1918"),
    ("http://192.168.178.1/", "RFC 1918 (the router)"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "IPv6 multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
    ("gopher://127.0.0.1:{port}/", "scheme"),
    ("file:///etc/passwd", "scheme"),
]


def hostile(port: int) -> list[str]:
    return [url.format(port=port) for url, _why in HOSTILE]


# --- the loopback service an attacker aims at, and what the sender connects to -------------


class Listener:
    """A TCP listener that records every connection and answers ``answer`` (None: nothing)."""

    def __init__(self, host: str = "127.0.0.1", answer: bytes | None = b"") -> None:
        self.server = socket.create_server((host, 0))
        self.port = self.server.getsockname()[1]
        self.answer = answer
        self.accepted: list[tuple[str, int]] = []
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.server.accept()
            except OSError:
                return
            self.accepted.append(peer)
            if self.answer is None:
                self.held.append(conn)  # never answers: the client's timeout decides
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread
        except OSError:
            pass
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def listener() -> Iterator[Callable[..., Listener]]:
    made: list[Listener] = []

    def make(host: str = "127.0.0.1", answer: bytes | None = b"") -> Listener:
        made.append(Listener(host, answer))
        return made[-1]

    yield make
    for item in made:
        item.close()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the sender connects to; a non-loopback one is refused at once (this
    machine has no way out, and the test must not depend on one)."""
    calls: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address: tuple[str, int], *args: object, **kwargs: object) -> object:
        calls.append((str(address[0]), int(address[1])))
        if not ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
            raise ConnectionRefusedError(111, f"Connection refused to {address[0]}:{address[1]}")
        return real(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return calls


@dataclass
class FakeDns:
    """Answers for chosen names, in turn (the last one repeats; [] is "no such name");
    other names go to the real resolver."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)  # every host looked up, real ones too

    def set(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = list(answers)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: object, port: object, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        name = str(host)
        fake.asked.append(name)
        if name not in fake.answers:
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        queue = fake.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        result = []
        for address in addresses:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    emit_module.forget_webhooks()
    yield
    emit_module.forget_webhooks()


def allowing(*entries: str) -> Settings:
    return Settings(webhooks=WebhookSettings(allow_private=entries))


def raw_hook(factory: sessionmaker[Session], url: str) -> int:
    """A webhook row as the database may hold it: saved before this guard, or by a name whose
    DNS answer changed since; with one test event queued."""
    with db.session_scope(factory) as session:
        hook = Webhook(name=url[:64], url=url, secret="s" * 32, events=["lead.created"])
        session.add(hook)
        session.flush()
        queue_test_event(session, hook.id)
        return hook.id


def outcomes(factory: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    with factory() as session:
        rows = session.execute(
            select(Webhook.url, WebhookDelivery.status, WebhookDelivery.last_error).join(
                Webhook, Webhook.id == WebhookDelivery.webhook_id
            )
        ).all()
    return {row.url: (row.status, row.last_error) for row in rows}


# --- the policy, without a database ----------------------------------------------------------


@pytest.mark.parametrize(("url", "why"), HOSTILE, ids=[why for _url, why in HOSTILE])
def test_hostile_url_is_refused_before_any_lookup_of_it(url: str, why: str, dns: FakeDns) -> None:
    with pytest.raises(DestinationRefused):
        check_destination(url.format(port=8080), parse_allowlist([]))
    assert dns.asked == []


def test_a_public_name_resolving_inside_is_refused(dns: FakeDns) -> None:
    dns.set("crm.example", ["127.0.0.1"])
    dns.set("mixed.example", [PUBLIC_IP, "10.0.0.5"])  # one private answer is enough
    dns.set("metadata.example", ["::ffff:169.254.169.254"])
    dns.set("nat64.example", ["64:ff9b::a00:5"])
    dns.set("fine.example", [PUBLIC_IP, "2606:4700::1111"])
    for name in ("crm.example", "mixed.example", "metadata.example", "nat64.example"):
        with pytest.raises(DestinationRefused) as refused:
            check_destination(f"https://{name}/hook", parse_allowlist([]))
        assert refused.value.code == INTERNAL, name
    target = check_destination("https://FINE.example./hook?x=1#frag", parse_allowlist([]))
    assert (target.host, target.port, target.path) == ("fine.example", 443, "/hook?x=1")
    assert target.addresses == (PUBLIC_IP, "2606:4700::1111")


NON_PUBLIC = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
NON_PUBLIC_V6 = [
    ipaddress.ip_network(n)
    for n in (
        "::1/128",
        "::/128",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
        "2001:db8::/32",
    )
]


def _in(networks: list) -> st.SearchStrategy:  # type: ignore[type-arg]
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(
            type(net.network_address)
        )
    )


def _spellings(address: ipaddress.IPv4Address) -> list[str]:
    n = int(address)
    high, low = n >> 16, n & 0xFFFF
    return [
        str(address),
        f"[::ffff:{address}]",
        f"[::ffff:{high:x}:{low:x}]",
        f"[64:ff9b::{high:x}:{low:x}]",
        f"[2002:{high:x}:{low:x}::1]",
        str(n),
        hex(n),
        f"0{n:o}",
        ".".join(f"0{int(part):o}" for part in str(address).split(".")),
    ]


@given(_in(NON_PUBLIC))
def test_every_spelling_of_an_internal_ipv4_address_is_refused(
    address: ipaddress.IPv4Address,
) -> None:
    for host in _spellings(address):
        with pytest.raises(DestinationRefused) as refused:
            check_destination(f"http://{host}:8080/x", parse_allowlist([]), lookup=False)
        assert refused.value.code in (INTERNAL, NUMERIC), host


@given(_in(NON_PUBLIC_V6))
def test_internal_ipv6_addresses_are_refused(address: ipaddress.IPv6Address) -> None:
    with pytest.raises(DestinationRefused):
        check_destination(f"http://[{address}]/", parse_allowlist([]), lookup=False)


@given(st.integers(0, 2**32 - 1))
def test_an_ipv4_address_is_only_ever_taken_as_a_b_c_d(n: int) -> None:
    """2130706433, 0x7f000001 and 017700000001 are 127.0.0.1 to the resolver: refused whatever
    address they spell, public ones too (no honest use)."""
    for host in (str(n), hex(n), f"0{n:o}"):
        with pytest.raises(DestinationRefused) as refused:
            check_destination(f"http://{host}/", parse_allowlist([]), lookup=False)
        assert refused.value.code == NUMERIC


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/",
        "https://1.1.1.1:8443/hook",
        f"http://{PUBLIC_IP}:65535/",
        "http://[2606:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",  # mapped, but public
        "http://[64:ff9b::808:808]/",  # NAT64 of a public address
    ],
)
def test_public_addresses_and_any_port_pass(url: str) -> None:
    assert check_destination(url, parse_allowlist([])).addresses


def test_the_allowlist_names_addresses_networks_and_hosts(dns: FakeDns) -> None:
    allow = parse_allowlist(["10.0.0.5", "192.168.10.0/24", "crm.intern.example."])
    dns.set("crm.intern.example", ["10.9.9.9"])
    dns.set("crm.intern.example.evil.example", ["10.9.9.9"])
    dns.set("dms.example", ["192.168.10.20"])
    for url in (
        "http://10.0.0.5:8080/",
        "http://[::ffff:10.0.0.5]/",
        "http://192.168.10.77/",
        "https://CRM.intern.example/hook",
        "https://dms.example/",  # a name resolving to an allowed network
    ):
        assert check_destination(url, allow).addresses, url
    for url in (
        "http://10.0.0.6/",
        "http://192.168.11.1/",
        "http://crm.intern.example.evil.example/",
        "http://127.0.0.1/",
        "http://169.254.169.254/",
    ):
        with pytest.raises(DestinationRefused):
            check_destination(url, allow)
    for bad in (
        "http://10.0.0.5/",
        "10.0.0.5:80",
        "not a host",
        "0x7f.1",
        "10.0.0.0/33",
        "0.0.0.0/0",
        "::/0",
    ):
        with pytest.raises(ValueError):
            parse_allowlist([bad])


def test_the_allowlist_is_an_operator_setting(tmp_path: Path) -> None:
    config = tmp_path / "mailgate.toml"
    config.write_text('[webhooks]\nallow_private = ["10.0.0.5", "crm.intern.example"]\n')
    settings = load_settings(str(config), environ={})
    assert settings.webhooks.allow_private == ("10.0.0.5", "crm.intern.example")
    from_env = load_settings(
        None, environ={"MAILGATE_WEBHOOKS__ALLOW_PRIVATE": "10.0.0.0/8, crm.intern.example"}
    )
    assert from_env.webhooks.allow_private == ("10.0.0.0/8", "crm.intern.example")
    assert load_settings(None, environ={}).webhooks.allow_private == ()
    config.write_text('[webhooks]\nallow_private = ["http://10.0.0.5/"]\n')
    with pytest.raises(ConfigError, match="allow_private"):
        load_settings(str(config), environ={})


# --- saving --------------------------------------------------------------------------------


def test_hostile_urls_are_refused_when_saved(dealer: sessionmaker[Session], dns: FakeDns) -> None:
    dns.set("crm.example", ["127.0.0.1"])
    with db.session_scope(dealer) as session:
        public = create_webhook(session, "https://8.8.8.8/hook", ["lead.created"]).id
    for url in [*hostile(8080), "https://crm.example/hook"]:
        with dealer() as session:
            with pytest.raises(WebhookError):
                create_webhook(session, url, ["lead.created"])
            with pytest.raises(WebhookError):
                update_webhook(
                    session, public, url=url, events=["lead.created"], name="", active=True
                )
            session.rollback()
    with dealer() as session:
        assert session.scalars(select(Webhook.url)).all() == ["https://8.8.8.8/hook"]


# --- sending -------------------------------------------------------------------------------


def test_hostile_urls_are_refused_at_send_time_without_connecting(
    dealer: sessionmaker[Session],
    listener: Callable[..., Listener],
    connections: list[tuple[str, int]],
    dns: FakeDns,
) -> None:
    """URLs already in the database (saved before the guard) reach nothing."""
    target = listener()
    dns.set("crm.example", ["127.0.0.1"])
    urls = [*hostile(target.port), f"http://crm.example:{target.port}/hook"]
    for url in urls:
        raw_hook(dealer, url)
    report = deliver_pass(dealer, Settings(), timeout=2)
    assert report.dead == len(urls)
    assert connections == [] and target.accepted == []
    stored = outcomes(dealer)
    assert {error for _status, error in stored.values()} <= {
        failures.NOT_ALLOWED,
        failures.INVALID_URL,
    }
    assert stored[f"http://crm.example:{target.port}/hook"] == ("dead", failures.NOT_ALLOWED)
    assert stored["http://169.254.169.254/latest/meta-data/"] == ("dead", failures.NOT_ALLOWED)


def test_a_name_not_resolving_yet_is_saved_then_checked_at_every_attempt(
    dealer: sessionmaker[Session],
    listener: Callable[..., Listener],
    connections: list[tuple[str, int]],
    dns: FakeDns,
) -> None:
    """The receiver's DNS entry may come after the webhook: saved, retried while the name does
    not resolve, and refused once it resolves inside."""
    inside = listener()
    url = f"http://soon.example:{inside.port}/hook"
    dns.set("soon.example", [], [], ["127.0.0.1"])  # at saving, the first try, the second
    with db.session_scope(dealer) as session:
        queue_test_event(session, create_webhook(session, url, ["lead.created"]).id)
    assert deliver_pass(dealer, Settings(), timeout=2).retried == 1
    assert outcomes(dealer)[url] == ("pending", failures.NOT_RESOLVED)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert deliver_pass(dealer, Settings(), now=later, timeout=2).dead == 1
    assert outcomes(dealer)[url] == ("dead", failures.NOT_ALLOWED)
    assert connections == [] and inside.accepted == []


class Redirector:
    """An allowed HTTP receiver that answers every POST with a redirect to ``location``."""

    def __init__(self, status: int, location: str) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.hits += 1
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_an_internal_address_is_not_followed(
    dealer: sessionmaker[Session],
    listener: Callable[..., Listener],
    connections: list[tuple[str, int]],
    status: int,
) -> None:
    inside = listener("127.0.0.2")  # not on the allowlist, which names 127.0.0.1 only
    hops = [
        Redirector(status, "http://169.254.169.254/latest/meta-data/iam/"),
        Redirector(status, f"http://127.0.0.2:{inside.port}/admin"),
        Redirector(status, f"http://localhost:{inside.port}/admin"),
    ]
    try:
        for hop in hops:
            raw_hook(dealer, hop.url)
        report = deliver_pass(dealer, allowing("127.0.0.1"), timeout=2)
    finally:
        for hop in hops:
            hop.close()
    assert report.dead == 3 and [hop.hits for hop in hops] == [1, 1, 1]
    assert inside.accepted == []
    assert {host for host, _port in connections} == {"127.0.0.1"}
    assert set(outcomes(dealer).values()) == {("dead", f"HTTP {status}")}


def test_rebinding_between_check_and_connect_reaches_nothing_new(
    dealer: sessionmaker[Session],
    listener: Callable[..., Listener],
    connections: list[tuple[str, int]],
    dns: FakeDns,
) -> None:
    """The name answers a public address to the check and loopback to every later lookup:
    the socket goes to the checked address; the next attempt checks again and stops."""
    inside = listener()
    dns.set("rebind.example", [PUBLIC_IP], ["127.0.0.1"])
    url = f"http://rebind.example:{inside.port}/hook"
    raw_hook(dealer, url)
    first = deliver_pass(dealer, Settings(), timeout=2)
    assert first.retried == 1
    assert connections == [(PUBLIC_IP, inside.port)]  # the checked answer, not a new lookup
    assert outcomes(dealer)[url] == ("pending", failures.REFUSED)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert deliver_pass(dealer, Settings(), now=later, timeout=2).dead == 1
    assert outcomes(dealer)[url] == ("dead", failures.NOT_ALLOWED)
    assert connections == [(PUBLIC_IP, inside.port)] and inside.accepted == []


class Receiver:
    """An HTTP(S) receiver on loopback recording the Host header (and the TLS server name)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.hosts: list[str] = []
        self.server_names: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.hosts.append(self.headers["Host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: outer.server_names.append(name)  # type: ignore[assignment,func-returns-value]
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_allowlisted_loopback_receiver_works_end_to_end(
    dealer: sessionmaker[Session], dns: FakeDns
) -> None:
    receiver = Receiver()
    dns.set("crm.intern.example", ["127.0.0.1"])
    try:
        with db.session_scope(dealer) as session:
            for url in (
                f"http://127.0.0.1:{receiver.port}/hook",
                f"http://crm.intern.example:{receiver.port}/hook",
            ):
                allowlist = parse_allowlist(["127.0.0.1", "crm.intern.example"])
                hook = create_webhook(session, url, ["lead.created"], allowlist=allowlist)
                queue_test_event(session, hook.id)
        with pytest.raises(WebhookError):  # the allowlist is the operator's, not a default
            with dealer() as session:
                create_webhook(session, f"http://127.0.0.1:{receiver.port}/x", ["lead.created"])
        assert deliver_pass(dealer, allowing("127.0.0.1", "crm.intern.example")).sent == 2
    finally:
        receiver.close()
    # pinned to the checked address, but the request is for the name
    assert sorted(receiver.hosts) == sorted(
        [f"127.0.0.1:{receiver.port}", f"crm.intern.example:{receiver.port}"]
    )


def _certificates(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for ``name``: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def subject(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(subject("test CA"))
        .issuer_name(subject("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject(name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_https_is_pinned_but_checks_the_certificate_of_the_name(
    dealer: sessionmaker[Session], dns: FakeDns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = _certificates(tmp_path, "crm.intern.example")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(ca))
    monkeypatch.setattr(transport, "_tls_context", lambda: client_tls)
    dns.set("crm.intern.example", ["127.0.0.1"])
    receiver = Receiver(server_tls)
    by_name = f"https://crm.intern.example:{receiver.port}/hook"
    by_address = f"https://127.0.0.1:{receiver.port}/hook"  # the certificate does not name it
    try:
        raw_hook(dealer, by_name)
        raw_hook(dealer, by_address)
        report = deliver_pass(dealer, allowing("127.0.0.1", "crm.intern.example"), timeout=5)
    finally:
        receiver.close()
    assert (report.sent, report.retried) == (1, 1)
    assert receiver.server_names[0] == "crm.intern.example"  # SNI: the name, not the address
    assert receiver.hosts == [f"crm.intern.example:{receiver.port}"]
    stored = outcomes(dealer)
    assert stored[by_name][0] == "sent"
    assert stored[by_address] == ("pending", failures.TLS)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (None, failures.TIMEOUT),
        (b"SSH-2.0-OpenSSH_9.6\r\n", failures.PROTOCOL),
        (
            b"HTTP/1.1 500 Internal error of db01.intern:5432\r\nContent-Length: 0\r\n\r\n",
            "HTTP 500",
        ),
    ],
    ids=["silent", "not-http", "http-500"],
)
def test_the_stored_error_is_a_short_class_not_the_socket_text(
    dealer: sessionmaker[Session],
    listener: Callable[..., Listener],
    answer: bytes | None,
    expected: str,
) -> None:
    service = listener(answer=answer)
    closed_port = free_port()  # nothing listens there: "connection refused"
    urls = {
        f"http://127.0.0.1:{service.port}/hook": expected,
        f"http://127.0.0.1:{closed_port}/hook": failures.REFUSED,
    }
    for url in urls:
        raw_hook(dealer, url)
    assert deliver_pass(dealer, allowing("127.0.0.1"), timeout=0.5).retried == 2
    stored = outcomes(dealer)
    for url, error in urls.items():
        assert stored[url] == ("pending", error)
    for _status, error in stored.values():
        assert error is not None and failures.is_known(error) and len(error) < 40
        for leak in (str(service.port), str(closed_port), "Errno", "5432", "db01", "SSH", "111"):
            assert leak not in error


def test_a_dead_delivery_tells_the_admin_the_class_only(dealer: sessionmaker[Session]) -> None:
    raw_hook(dealer, f"http://127.0.0.1:{free_port()}/hook")
    settings = allowing("127.0.0.1")
    moment = dt.datetime.now(dt.UTC)
    for _ in range(settings.sender.max_attempts):
        deliver_pass(dealer, settings, now=moment, timeout=1)
        moment += dt.timedelta(days=1)
    with dealer() as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.last_error) == ("dead", failures.REFUSED)
        notice = session.scalar(select(OutboxMail).where(OutboxMail.purpose == "delivery_failure"))
    assert notice is not None and notice.raw is not None
    assert b"connection refused" in notice.raw and b"Errno" not in notice.raw


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (socket.gaierror(-2, "Name or service not known"), failures.NOT_RESOLVED),
        (TimeoutError("timed out"), failures.TIMEOUT),
        (ConnectionRefusedError(111, "Connection refused"), failures.REFUSED),
        (ssl.SSLCertVerificationError("certificate verify failed"), failures.TLS),
        (OSError(113, "No route to host 10.0.0.7"), failures.UNREACHABLE),
        (ConnectionResetError(104, "Connection reset by peer"), failures.UNREACHABLE),
    ],
)
def test_network_errors_map_to_classes(error: BaseException, expected: str) -> None:
    assert failures.error_class(error) == expected and failures.is_known(expected)


def test_every_class_and_refusal_has_words_in_the_ui() -> None:
    """The registries agree (the module asserts this too, but not under ``python -O``)."""
    from mailgate.webhooks.admin import EVENTS_MISSING
    from mailgate.webhooks.destination import REASONS
    from mailgate.webui.settings.integrations import FAILURE_LABELS, HOOK_ERRORS

    assert set(FAILURE_LABELS) == set(failures.ERROR_CLASSES)
    assert set(HOOK_ERRORS) == {*REASONS, EVENTS_MISSING}
    assert not failures.is_known("receiver unreachable: URLError: [Errno 111]")


# --- the web UI ----------------------------------------------------------------------------


@pytest.fixture
def app(team: sessionmaker[Session]) -> Flask:  # noqa: F811 - team is the imported fixture
    return web_app(team)


def _create(client: object, url: str) -> tuple[int, str]:
    answer = post(
        client, f"{PAGE}/webhooks", {"hook-url": url, "hook-event": "lead.created"}, page=PAGE
    )  # type: ignore[arg-type]
    return answer.status_code, answer.get_data(as_text=True)


def test_the_form_refuses_internal_destinations_in_german(
    app: Flask, team: sessionmaker[Session], dns: FakeDns
) -> None:
    dns.set("crm.example", ["10.0.0.5"])
    admin = logged_in(app, ADA)
    expected = {
        "http://169.254.169.254/latest/meta-data/": "internes Netz",
        "http://localhost:5432/": "internes Netz",
        "http://[::ffff:127.0.0.1]/": "internes Netz",
        "https://crm.example/hook": "internes Netz",  # by its DNS answer
        "http://2130706433/": "vier Dezimalzahlen",
        "http://0x7f.1/": "vier Dezimalzahlen",
        "http://user:pw@127.0.0.1/": "Benutzernamen",
        "ftp://crm.example/": "mit http:// oder https://",
    }
    for url, words in expected.items():
        status, html = _create(admin, url)
        assert status == 400 and words in html, url
        assert f'value="{url}"' in html.replace("&amp;", "&")  # nothing typed is lost
    with team() as session:
        assert session.scalars(select(Webhook)).all() == []
        hook = create_webhook(session, "https://8.8.8.8/in", ["lead.created"])
        session.commit()
        hook_id = hook.id
    edit = f"{PAGE}/webhooks/{hook_id}"
    refused = post(admin, edit, {"hook-url": "http://10.1.2.3:8080/", "hook-event": "lead.created"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "internes Netz" in html
    assert 'value="http://10.1.2.3:8080/"' in html
    with team() as session:
        assert session.get(Webhook, hook_id).url == "https://8.8.8.8/in"  # type: ignore[union-attr]


def test_the_operators_allowlist_lets_an_internal_receiver_be_saved(
    team: sessionmaker[Session], dns: FakeDns
) -> None:
    dns.set("crm.intern.example", ["10.0.0.5"])
    app = web_app(team, allowing("crm.intern.example", "192.168.10.0/24"))
    admin = logged_in(app, ADA)
    assert _create(admin, "https://crm.intern.example/hook")[0] == 200
    assert _create(admin, "http://192.168.10.7:8080/hook")[0] == 200
    assert _create(admin, "http://192.168.11.7/hook")[0] == 400
    with team() as session:
        assert sorted(session.scalars(select(Webhook.url))) == [
            "http://192.168.10.7:8080/hook",
            "https://crm.intern.example/hook",
        ]


def test_the_overview_shows_the_class_in_words_never_the_raw_text(
    app: Flask, team: sessionmaker[Session]
) -> None:
    legacy = "receiver unreachable: URLError: [Errno 111] Connection refused (10.0.0.7:5432)"
    errors = [failures.NOT_ALLOWED, "HTTP 503", failures.TIMEOUT, legacy]
    for n, error in enumerate(errors):
        hook_id = raw_hook(team, f"https://crm{n}.example/hook")
        with db.session_scope(team) as session:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == hook_id)
                .values(status="dead", attempts=1, last_error=error)
            )
    router = raw_hook(team, "http://192.168.178.1/admin")  # saved before the guard
    admin = logged_in(app, ADA)
    tested = post(admin, f"{PAGE}/webhooks/{router}/test", page=PAGE)
    assert tested.status_code == 302
    with team() as session:  # no test event for it: it could only be refused
        queued = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == router)
        ).all()
        assert len(queued) == 1  # the one raw_hook queued, none from the button
    html = admin.get(PAGE).get_data(as_text=True)
    assert "internes Netz" in html  # the flashed reason
    assert html.count('class="due due-overdue hook-refused"') == 1
    row = html.split("http://192.168.178.1/admin", 1)[1].split("</td>", 1)[0]
    assert "Ziel nicht erlaubt (interne Adresse)" in row
    for words in (
        "Letzte Zustellung",
        "aufgegeben: Ziel nicht erlaubt (interne Adresse)",
        "aufgegeben: HTTP-Status 503",
        "aufgegeben: Zeitüberschreitung",
        "aufgegeben: Fehler (ohne Details)",
    ):
        assert words in html, words
    assert "Errno" not in html and "5432" not in html
