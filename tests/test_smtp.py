"""The SMTP listener against a real socket, driven by smtplib and raw dialogues."""

from __future__ import annotations

import hashlib
import smtplib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import SmtpSettings
from mailgate.ingest.smtp import IntakeHandler, SmtpThread, accepts_recipient
from mailgate.models import InboundMail, InboundRaw

from .mails import LEAD_ADDRESS, inquiry


@dataclass
class Listener:
    port: int
    factory: sessionmaker[Session]
    stored_ids: list[int]

    def count(self) -> int:
        with self.factory() as session:
            return session.scalar(select(func.count()).select_from(InboundMail)) or 0

    def raws(self) -> list[bytes]:
        with self.factory() as session:
            return list(session.scalars(select(InboundRaw.raw).order_by(InboundRaw.inbound_id)))


def start_listener(factory: sessionmaker[Session], **overrides: Any) -> tuple[SmtpThread, Listener]:
    store = overrides.pop("store_batch", None)
    settings = SmtpSettings(port=0, **overrides)
    stored: list[int] = []
    extra = {"store_batch": store} if store else {}
    handler = IntakeHandler(factory, settings, on_stored=stored.append, **extra)
    thread = SmtpThread(handler, settings).start()
    return thread, Listener(thread.port, factory, stored)


@pytest.fixture
def listener(dealer: sessionmaker[Session]) -> Iterator[Listener]:
    thread, info = start_listener(dealer, max_message_size=64 * 1024)
    yield info
    thread.stop()


def client(port: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, timeout=10)


def test_accepted_mail_is_stored_byte_identical(listener: Listener) -> None:
    raw = inquiry(1)
    raw = raw.replace(b"Nachricht:", b"..leading dot line\r\nNachricht:")
    with client(listener.port) as smtp:
        smtp.ehlo("portal.example")
        code, reply = smtp.docmd("MAIL FROM:<noreply@autohaus-web.example>")
        assert code == 250
        assert smtp.docmd(f"RCPT TO:<{LEAD_ADDRESS}>")[0] == 250
        refused = smtp.data(raw)
        assert refused[0] == 250 and b"queued as" in refused[1]
    stored = listener.raws()
    assert len(stored) == 1
    # smtplib dot-stuffs the leading dot; the listener must undo exactly that
    assert hashlib.sha256(stored[0]).hexdigest() == hashlib.sha256(raw).hexdigest()
    assert listener.stored_ids and listener.count() == 1


def test_plus_tag_sub_address_is_accepted(listener: Listener) -> None:
    with client(listener.port) as smtp:
        smtp.sendmail("a@kunden.example", ["leads+Ab3_x-Y@autohaus.example"], inquiry(2))
    assert listener.count() == 1


RELAY_VECTORS = [
    "victim@foreign.example",
    "leads@autohaus.example.foreign.example",
    '"leads@foreign.example"@autohaus.example',
    "leads%foreign.example@autohaus.example",
    "foreign.example!leads@autohaus.example",
    "@autohaus.example:leads@foreign.example",
    "leads@[127.0.0.1]",
    "postmaster",
    "postmaster@autohaus.example",
    "leads@autohaus.example@foreign.example",
    "leads+@autohaus.example",
    "leads+a b@autohaus.example",
    "leeds@autohaus.example",
    "",
]


@pytest.mark.parametrize("address", RELAY_VECTORS)
def test_recipient_allowlist_refuses_relay_vectors(address: str) -> None:
    assert not accepts_recipient(address, frozenset({"leads@autohaus.example"}))


def test_unknown_recipients_get_550_and_nothing_is_stored(listener: Listener) -> None:
    """Part of P4 (the full open-relay battery is in test_smtp_abuse.py)."""
    with client(listener.port) as smtp:
        smtp.ehlo("relay-tester.example")
        for address in RELAY_VECTORS[:10]:
            smtp.docmd("MAIL FROM:<tester@foreign.example>")
            code, reply = smtp.docmd(f"RCPT TO:<{address}>")
            assert 500 <= code < 600, (address, code, reply)
            smtp.docmd("RSET")
        assert smtp.docmd("MAIL FROM:<tester@foreign.example>")[0] == 250
        assert smtp.docmd("RCPT TO:<victim@foreign.example>")[0] == 550
        assert smtp.docmd("DATA")[0] == 503  # no valid recipient: no DATA
    assert listener.count() == 0


def test_recipient_cap_gives_452_for_the_excess(listener: Listener) -> None:
    """Part of P3 (the RCPT flood is in test_smtp_abuse.py)."""
    with client(listener.port) as smtp:
        smtp.ehlo("portal.example")
        smtp.docmd("MAIL FROM:<a@kunden.example>")
        codes = [smtp.docmd(f"RCPT TO:<leads+t{i}@autohaus.example>")[0] for i in range(12)]
        assert codes == [250] * 10 + [452, 452]
        assert smtp.data(inquiry(3))[0] == 250
    assert listener.count() == 1


def test_oversize_gets_552_and_the_connection_stays_usable(listener: Listener) -> None:
    """Part of P1 (memory bound and 10 overruns in test_smtp_abuse.py)."""
    with client(listener.port) as smtp:
        smtp.ehlo("portal.example")
        code, _ = smtp.docmd("MAIL FROM:<a@kunden.example> SIZE=999999999")
        assert code == 552
        smtp.docmd("RSET")
        smtp.docmd("MAIL FROM:<a@kunden.example>")
        smtp.docmd(f"RCPT TO:<{LEAD_ADDRESS}>")
        code, _ = smtp.data(inquiry(4, padding=200 * 1024))
        assert code == 552
        smtp.docmd("RSET")
        assert smtp.sendmail("a@kunden.example", [LEAD_ADDRESS], inquiry(5)) == {}
    assert listener.count() == 1


def _failing_store(factory: sessionmaker[Session], mails: Any) -> Any:
    """Inserts, then dies before the commit, like a full disk or a lost connection."""
    with factory() as session:
        for mail in mails:
            raw = mail.raw
            row = InboundMail(channel="smtp", size=len(raw), sha256="x", envelope_to=[])
            row.raw_record = InboundRaw(raw=raw)
            session.add(row)
        session.flush()
        raise OSError("disk full: /var/lib/mailgate/secret-path")


def test_store_failure_answers_451_without_internals(dealer: sessionmaker[Session]) -> None:
    """Part of S1 (the 500-message fault injection is in test_smtp_faults.py)."""
    thread, info = start_listener(dealer, store_batch=_failing_store)
    try:
        with client(info.port) as smtp:
            smtp.ehlo("portal.example")
            smtp.docmd("MAIL FROM:<a@kunden.example>")
            smtp.docmd(f"RCPT TO:<{LEAD_ADDRESS}>")
            code, reply = smtp.data(inquiry(6))
        assert code == 451
        assert b"disk" not in reply and b"secret" not in reply and b"OSError" not in reply
        assert info.count() == 0
    finally:
        thread.stop()


def raw_dialogue(port: int, payload: bytes, wait: float = 1.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        time.sleep(wait)
        sock.settimeout(2)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except TimeoutError:
            pass
    return b"".join(chunks)


@pytest.mark.parametrize(
    "end", [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\r\n.\n"]
)
def test_smuggling_sequences_do_not_split_a_message(listener: Listener, end: bytes) -> None:
    """Part of P5 (all smtpsmug variants are in test_smtp_abuse.py)."""
    smuggled = (
        b"MAIL FROM:<evil@foreign.example>\r\nRCPT TO:<" + LEAD_ADDRESS.encode() + b">\r\n"
        b"DATA\r\nSubject: smuggled\r\n\r\nsecond message\r\n"
    )
    payload = (
        b"EHLO attacker.example\r\nMAIL FROM:<a@kunden.example>\r\n"
        b"RCPT TO:<" + LEAD_ADDRESS.encode() + b">\r\nDATA\r\n"
        b"Subject: first\r\nMessage-ID: <first@kunden.example>\r\n\r\nfirst message"
        + end
        + smuggled
        + b".\r\nQUIT\r\n"
    )
    raw_dialogue(listener.port, payload)
    stored = listener.raws()
    assert len(stored) == 1
    assert b"second message" in stored[0]  # one message, with the smuggled text inside it


def test_connection_cap_answers_421(dealer: sessionmaker[Session]) -> None:
    """Part of P8 (the slowloris scenario is in test_smtp_abuse.py)."""
    thread, info = start_listener(dealer, max_connections=2)
    try:
        held = [socket.create_connection(("127.0.0.1", info.port), timeout=5) for _ in range(2)]
        for sock in held:
            assert sock.recv(1024).startswith(b"220")
        with socket.create_connection(("127.0.0.1", info.port), timeout=5) as extra:
            assert extra.recv(1024).startswith(b"421")
        for sock in held:
            sock.close()
        time.sleep(0.3)
        with client(info.port) as smtp:  # capacity is back once they are gone
            assert smtp.sendmail("a@kunden.example", [LEAD_ADDRESS], inquiry(7)) == {}
    finally:
        thread.stop()


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_session_time_limit_closes_a_trickling_client(dealer: sessionmaker[Session]) -> None:
    """Part of P8 (the slowloris scenario is in test_smtp_abuse.py)."""
    thread, info = start_listener(dealer, session_timeout=1, idle_timeout=30)
    try:
        with socket.create_connection(("127.0.0.1", info.port), timeout=5) as sock:
            sock.recv(1024)
            started = time.monotonic()
            data = b""
            while time.monotonic() - started < 5:
                try:
                    sock.sendall(b"N")  # one byte at a time, never a full command
                except OSError:
                    break
                chunk = sock.recv(1024) if _readable(sock) else b""
                data += chunk
                if b"421" in data:
                    break
                time.sleep(0.2)
            assert b"421" in data
            assert time.monotonic() - started < 3
    finally:
        thread.stop()


def _readable(sock: socket.socket) -> bool:
    import select as select_module

    return bool(select_module.select([sock], [], [], 0)[0])


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.autohaus.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_starttls_with_configured_certificate(dealer: sessionmaker[Session], tmp_path: Any) -> None:
    """Part of P6: with require_starttls nothing works in plaintext (test_smtp_abuse.py)."""
    import ssl

    cert, key = _self_signed(tmp_path)
    thread, info = start_listener(dealer, tls_cert=cert, tls_key=key, require_starttls=True)
    try:
        with client(info.port) as smtp:
            smtp.ehlo("portal.example")
            assert smtp.has_extn("starttls")
            code, _ = smtp.docmd("MAIL FROM:<a@kunden.example>")
            assert code == 530  # nothing works in plaintext when TLS is required
            context = ssl.create_default_context(cafile=cert)
            context.check_hostname = False
            smtp.starttls(context=context)
            smtp.ehlo("portal.example")
            assert smtp.sendmail("a@kunden.example", [LEAD_ADDRESS], inquiry(20)) == {}
        assert info.count() == 1
    finally:
        thread.stop()


def test_pipelined_command_after_starttls_is_not_executed(
    dealer: sessionmaker[Session], tmp_path: Any
) -> None:
    """STARTTLS injection: plaintext bytes sent after STARTTLS must be discarded (part of P6)."""
    import ssl

    cert, key = _self_signed(tmp_path)
    thread, info = start_listener(dealer, tls_cert=cert, tls_key=key)
    try:
        sock = socket.create_connection(("127.0.0.1", info.port), timeout=5)
        read_reply(sock)
        sock.sendall(b"EHLO x.example\r\n")
        read_reply(sock)
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
        assert read_reply(sock).startswith(b"220")
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        tls = context.wrap_socket(sock)
        tls.sendall(b"EHLO x.example\r\n")
        read_reply(tls)
        tls.sendall(b"RCPT TO:<leads@autohaus.example>\r\n")
        reply = read_reply(tls)
        assert reply.startswith(b"503"), reply  # the injected MAIL FROM never happened
        tls.close()
    finally:
        thread.stop()


def read_reply(sock: socket.socket) -> bytes:
    """One complete (possibly multi-line) SMTP reply."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
        last = data.rstrip(b"\r\n").split(b"\r\n")[-1]
        if data.endswith(b"\r\n") and len(last) >= 4 and last[3:4] == b" ":
            return data
