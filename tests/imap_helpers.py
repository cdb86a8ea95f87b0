"""Shared pieces of the IMAP tests: a Dovecot per test, mailboxes, server-side checks."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap.rules import parse_after_import
from mailgate.imap.settings import Mailbox
from mailgate.models import InboundMail

from .conftest import require_service
from .dovecot import Dovecot, dovecot_available, make_tls_files, start_dovecot


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    reason = dovecot_available()
    if reason:
        require_service("Dovecot", reason)
    # Not pytest's tmp_path: its parents are mode 0700 and the dovecot user
    # must reach the passwd file and the maildirs.
    root = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-"))
    server = start_dovecot(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot_with() -> Iterator[Callable[..., Dovecot]]:
    """Start Dovecots with options (``tls=TlsFiles``, ``self_signed``, ``capability``)."""
    reason = dovecot_available()
    if reason:
        require_service("Dovecot", reason)
    started: list[Dovecot] = []

    def start(**options: Any) -> Dovecot:
        root = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-"))
        if options.pop("tls", False):
            files = make_tls_files(root / "tls", self_signed=options.pop("self_signed", False))
            options.update(cert=files.cert, key=files.key)
        server = start_dovecot(root, **options)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)


def ca_of(server: Dovecot) -> Path:
    """The file a dealer would give as ``ca_file`` for this server."""
    ca = server.root / "tls" / "ca.pem"
    return ca if ca.exists() else server.root / "tls" / "server.pem"


def logins(server: Dovecot, user: str = "anna") -> list[str]:
    """Dovecot's log lines of successful logins of ``user`` (they name TLS if used)."""
    return [line for line in server.log().splitlines() if f"Login: user=<{user}>" in line]


def mailbox_for(server: Dovecot, user: str = "anna", **changes: object) -> Mailbox:
    after = str(changes.pop("after_import", "flag"))
    values: dict[str, object] = {
        "name": f"postfach-{user}",
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "username": user,
        "password": server.users[user],
        "after_import": parse_after_import(after),
        "interval": 60.0,
    }
    values.update(changes)
    return Mailbox(**values)  # type: ignore[arg-type]


def imap_toml(server: Dovecot, user: str, name: str, password: str | None = None) -> str:
    return (
        f'\n[[imap]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {server.port}\n'
        f'security = "none"\nusername = "{user}"\n'
        f'password = "{password or server.users[user]}"\ninterval = "60s"\n'
    )


def client_for(server: Dovecot, user: str = "anna") -> IMAPClient:
    client = IMAPClient("127.0.0.1", server.port, ssl=False, timeout=10)
    client.login(user, server.users[user])
    return client


def flags_in(server: Dovecot, folder: str = "INBOX", user: str = "anna") -> list[set[bytes]]:
    """The flags of every message in the folder, in UID order."""
    client = client_for(server, user)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        data = client.fetch(uids, ["FLAGS"]) if uids else {}
        return [set(data[uid][b"FLAGS"]) - {b"\\Recent"} for uid in sorted(data)]
    finally:
        client.logout()


def count_stored(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(InboundMail)) or 0


def distinct_stored(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count(func.distinct(InboundMail.sha256)))) or 0


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()
