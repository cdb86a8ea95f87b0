"""IMAP over TLS against a real Dovecot with a certificate made in the test.

Implicit TLS (port 993 style) and STARTTLS, trusted through the mailbox's
``ca_file`` (a private CA, or the server's own self-signed certificate), and
every way trust can fail: one plain-words status, no login, no plain fallback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap.fetch import fetch_mailbox
from mailgate.imap.poller import Poller
from mailgate.imap.tuning import Tuning
from mailgate.models import ImapState

from .dovecot import Dovecot, make_tls_files
from .imap_helpers import (
    ca_of,
    count_stored,
    dovecot,  # noqa: F401 - fixture
    dovecot_with,  # noqa: F401 - fixture
    flags_in,
    logins,
    mailbox_for,
    wait_until,
)
from .mails import inquiry

Start = Callable[..., Dovecot]


def _port(server: Dovecot, security: str) -> int:
    return server.imaps_port if security == "ssl" else server.port


@pytest.mark.parametrize(
    ("security", "self_signed"),
    [("ssl", False), ("starttls", False), ("ssl", True), ("starttls", True)],
)
def test_tls_with_ca_file_imports_with_verification_on(
    dovecot_with: Start,  # noqa: F811
    dealer: sessionmaker[Session],
    security: str,
    self_signed: bool,
) -> None:
    server = dovecot_with(tls=True, self_signed=self_signed)
    mailbox = mailbox_for(
        server, security=security, port=_port(server, security), ca_file=str(ca_of(server))
    )
    server.deliver("anna", inquiry(1))
    report = fetch_mailbox(dealer, mailbox, Tuning(socket_timeout=10))
    assert (report.error, report.imported) == (None, 1)
    [login] = logins(server)
    assert ", TLS," in login  # Dovecot saw the password only inside TLS
    assert flags_in(server) == [{b"\\Seen"}]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_untrusted_certificates_fail_in_plain_words_and_never_log_in(
    dovecot_with: Start,  # noqa: F811
    dealer: sessionmaker[Session],
    tmp_path: Path,
    security: str,
) -> None:
    server = dovecot_with(tls=True)
    server.deliver("anna", inquiry(1))
    where = f"127.0.0.1:{_port(server, security)}"
    other_ca = make_tls_files(tmp_path / "andere", ca_name="Fremde CA").ca

    def error(**changes: object) -> str | None:
        mailbox = mailbox_for(server, security=security, port=_port(server, security), **changes)
        report = fetch_mailbox(dealer, mailbox, Tuning(socket_timeout=10))
        assert report.imported == 0
        return report.error

    assert error() == (
        f"certificate verify failed for {where}: the server's certificate is signed by an "
        "authority not in this machine's trusted authorities (for a private CA or a "
        "self-signed server, set ca_file to its certificate, a PEM file)"
    )
    assert error(ca_file=str(other_ca)) == (
        f"certificate verify failed for {where}: the server's certificate is signed by an "
        f"authority not in the ca_file {other_ca} (ca_file must hold the CA that signed it, "
        "or the server's own certificate)"
    )
    wrong_name = error(host="localhost", ca_file=str(ca_of(server)))
    assert wrong_name == (
        f"certificate verify failed for localhost:{_port(server, security)}: the server's "
        "certificate is not made out for localhost (use the host name the certificate names)"
    )
    missing = tmp_path / "fehlt.pem"
    assert error(ca_file=str(missing)) == (
        f"cannot read the ca_file {missing}: No such file or directory"
    )
    not_pem = server.root / "tls" / "server.key"
    assert error(ca_file=str(not_pem)) == (
        f"the ca_file {not_pem} holds no PEM certificate (BEGIN CERTIFICATE)"
    )
    assert logins(server) == []  # the password never went out, not even in plain
    assert count_stored(dealer) == 0 and flags_in(server) == [set()]
    with dealer() as session:
        state = session.get(ImapState, ("postfach-anna", "INBOX"))
    assert state is not None and state.last_error is not None  # the status page shows it
    assert state.last_error.startswith("the ca_file ") and state.last_success_at is None


def test_starttls_not_offered_is_refused_without_sending_the_password(
    dovecot: Dovecot,  # noqa: F811 - this one speaks no TLS at all
    dealer: sessionmaker[Session],
) -> None:
    dovecot.deliver("anna", inquiry(1))
    report = fetch_mailbox(dealer, mailbox_for(dovecot, security="starttls"), Tuning())
    assert report.error == (
        f"127.0.0.1:{dovecot.port} does not offer STARTTLS; not logging in without "
        'encryption (check the port, or use security = "ssl")'
    )
    assert logins(dovecot) == [] and "no auth attempts" in dovecot.log()
    assert count_stored(dealer) == 0

    wrong_mode = fetch_mailbox(dealer, mailbox_for(dovecot, security="ssl"), Tuning())
    assert wrong_mode.error is not None
    assert wrong_mode.error.startswith(
        f"TLS failed with 127.0.0.1:{dovecot.port} (check the security setting ssl/starttls)"
    )
    assert logins(dovecot) == []


def test_plain_imap_is_refused_off_this_machine(
    dealer: sessionmaker[Session],
) -> None:
    """Even a Mailbox built in code (bypassing settings validation) never sends in clear."""
    mailbox = mailbox_for(
        _Unreachable(),  # type: ignore[arg-type]
        host="imap.autohaus.example",
        security="none",
    )
    report = fetch_mailbox(dealer, mailbox, Tuning())
    assert report.error == (
        'security = "none" would send the password for anna in clear text to '
        "imap.autohaus.example; plain IMAP is only allowed on this machine "
        '(use "ssl" or "starttls")'
    )


class _Unreachable:
    """Stands in for a server that must never be contacted."""

    port = 143
    users = {"anna": "geheim-anna"}


def test_self_signed_server_without_ca_file_is_named_as_such(
    dovecot_with: Start,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    server = dovecot_with(tls=True, self_signed=True)
    mailbox = mailbox_for(server, security="ssl", port=server.imaps_port)
    report = fetch_mailbox(dealer, mailbox, Tuning(socket_timeout=10))
    assert report.error == (
        f"certificate verify failed for 127.0.0.1:{server.imaps_port}: the server shows a "
        "self-signed certificate that is not in this machine's trusted authorities (for a "
        "private CA or a self-signed server, set ca_file to its certificate, a PEM file)"
    )
    assert logins(server) == []


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_idle_over_implicit_tls_delivers_a_new_mail(
    dovecot_with: Start,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    """IDLE waits on the TLS socket; a mail arriving meanwhile is fetched within seconds."""
    server = dovecot_with(tls=True)
    mailbox = mailbox_for(
        server, security="ssl", port=server.imaps_port, ca_file=str(ca_of(server)), interval=300.0
    )
    stop = threading.Event()
    tuning = Tuning(idle_slice=0.2, backoff_base=0.2, backoff_cap=1.0, socket_timeout=10)
    thread = threading.Thread(target=Poller(dealer, mailbox, tuning, stop).run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: len(logins(server)) == 1, 10)
        time.sleep(0.5)  # past the first (empty) pass, into IDLE
        server.deliver("anna", inquiry(1))
        started = time.monotonic()
        assert wait_until(lambda: count_stored(dealer) == 1, 5)
        assert time.monotonic() - started < 2.0
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert all(", TLS," in line for line in logins(server))
