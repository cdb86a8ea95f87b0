"""``mailgate doctor`` against real local things: SQLite/PostgreSQL, aiosmtpd, Dovecot, ports."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import RelaySettings, Settings, SmtpSettings
from mailgate.doctor import (
    FAIL,
    MIB,
    OK,
    WARN,
    Check,
    check_clock,
    check_database,
    check_dealer,
    check_imap,
    check_relay,
    check_smtp_port,
    evaluate_disk,
    format_report,
    mx_hint,
    open_engine,
    run_doctor,
)
from mailgate.ingest.smtp import IntakeHandler, SmtpThread

from .conftest import free_port
from .imap_helpers import dovecot, mailbox_for  # noqa: F401 - fixture
from .procs import make_install

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[int]:
    """A relay that wants a login (mailgate / geheim), plain text on loopback."""

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = auth_data.login == b"mailgate" and auth_data.password == b"geheim"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,  # loopback test only
    )
    controller.start()
    yield port
    controller.stop()


def test_database_checks_on_both_backends(engine: Engine, db_url: str) -> None:
    """Migrated and durable: three oks (SQLite and PostgreSQL)."""
    found = check_database(engine, db_url)
    assert [(c.name, c.status) for c in found] == [
        ("database", OK),
        ("migrations", OK),
        ("durability", OK),
    ]
    assert check_clock(engine, ZoneInfo("Europe/Berlin")).status == OK


def test_unmigrated_database_is_a_failure_with_the_command_to_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = db.create_db_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE unrelated (id INTEGER)")
        found = check_database(engine, url)
    finally:
        engine.dispose()
    assert found[-1].name == "migrations" and found[-1].status == FAIL
    assert "mailgate db upgrade" in found[-1].fix and "revision none" in found[-1].detail


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_unreachable_postgresql_fails_fast() -> None:
    url = f"postgresql://mailgate@127.0.0.1:{free_port()}/mailgate"
    engine = open_engine(url)
    started = time.monotonic()
    try:
        found = check_database(engine, url)
    finally:
        engine.dispose()
    assert time.monotonic() - started < 10
    assert [(c.name, c.status) for c in found] == [("database", FAIL)]
    assert "cannot reach postgresql://mailgate@127.0.0.1" in found[0].detail


def test_no_lead_addresses_is_a_failure(factory: sessionmaker[Session]) -> None:
    assert check_dealer(factory)[0].status == FAIL


def test_smtp_port_mailgate_listening_free_or_taken(dealer: sessionmaker[Session]) -> None:
    settings = SmtpSettings(port=0)
    thread = SmtpThread(IntakeHandler(dealer, settings), settings).start()
    try:
        found = check_smtp_port(SmtpSettings(port=thread.port))
        assert found.status == OK and "mailgate answers" in found.detail
    finally:
        thread.stop()
    free = check_smtp_port(SmtpSettings(port=free_port()))
    assert free.status == WARN and "free" in free.detail and "mailgate serve" in free.fix

    other = socket.create_server(("127.0.0.1", 0))
    port = other.getsockname()[1]

    def greet() -> None:
        conn, _ = other.accept()
        conn.sendall(b"220 other.example ESMTP Postfix\r\n")
        conn.close()

    greeter = threading.Thread(target=greet, daemon=True)
    greeter.start()
    try:
        taken = check_smtp_port(SmtpSettings(port=port))
    finally:
        other.close()
    assert taken.status == FAIL and "Postfix" in taken.detail and "[smtp] port" in taken.fix


def test_relay_reachable_login_refused_closed_or_unset(relay: int) -> None:
    good = RelaySettings(
        host="127.0.0.1", port=relay, security="none", username="mailgate", password="geheim"
    )
    assert check_relay(good) == Check(
        "relay", OK, f"127.0.0.1:{relay}: connected, logged in as mailgate"
    )
    wrong = check_relay(RelaySettings(**{**good.__dict__, "password": "falsch"}))
    assert wrong.status == FAIL and "refused the login: 535" in wrong.detail
    closed = check_relay(RelaySettings(host="127.0.0.1", port=free_port(), security="none"))
    assert closed.status == FAIL and "cannot reach the relay" in closed.detail
    assert check_relay(RelaySettings()).status == WARN


def test_imap_logins_against_dovecot(dovecot: Any) -> None:  # noqa: F811 - fixture
    good = mailbox_for(dovecot, "anna", name="anna")
    wrong = mailbox_for(dovecot, "ben", name="ben", password="falsch")
    closed = mailbox_for(dovecot, "anna", name="gone", port=free_port())
    found = {c.name: c for c in check_imap([good, wrong, closed], timeout=5)}
    assert found["imap anna"].status == OK and "logged in as anna" in found["imap anna"].detail
    assert found["imap ben"].status == FAIL and "password" in found["imap ben"].detail
    assert found["imap gone"].status == FAIL
    assert check_imap([])[0].status == OK


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_mx_hint_never_hangs_and_never_fails() -> None:
    reserved = mx_hint("autohaus.example")
    assert reserved.status == WARN and "reserved example domain" in reserved.detail
    started = time.monotonic()
    unknown = mx_hint("no-such-dealer-9f3c2.autohaus-mailgate-test", timeout=2)
    assert time.monotonic() - started < 4
    assert unknown.status == WARN  # no such domain, or DNS unreachable: a hint either way


def test_disk_thresholds_and_report_format() -> None:
    path = Path("/data")
    assert evaluate_disk(path, 50 * MIB, 100_000 * MIB).status == FAIL
    assert evaluate_disk(path, 500 * MIB, 1_000 * MIB).status == WARN
    assert evaluate_disk(path, 5_000 * MIB, 100_000 * MIB).status == WARN  # 5 %
    assert evaluate_disk(path, 50_000 * MIB, 100_000 * MIB).status == OK
    report = format_report(
        [Check("database", OK, "reachable"), Check("relay", FAIL, "refused", "check it")]
    )
    assert report.splitlines() == [
        "OK    database  reachable",
        "FAIL  relay     refused",
        "                -> check it",
        "1 to fix, 0 to look at, 1 fine",
    ]


def test_run_doctor_missing_database_says_to_create_it(tmp_path: Path) -> None:
    settings = Settings().with_database_url(f"sqlite:///{tmp_path / 'none.sqlite3'}")
    found = {c.name: c for c in run_doctor(settings)}
    assert found["database"].status == FAIL and "mailgate db upgrade" in found["database"].fix
    assert not (tmp_path / "none.sqlite3").exists()  # the doctor only looks
    assert found["dealer settings"].status == WARN


def test_doctor_command_end_to_end(tmp_path: Path, relay: int) -> None:
    """A healthy installation exits 0; a relay that is down makes it exit 1 saying so."""
    install = make_install(
        tmp_path / "doc",
        extra=f'[relay]\nhost = "127.0.0.1"\nport = {relay}\nsecurity = "none"\n'
        'username = "mailgate"\npassword = "geheim"\n',
    )
    healthy = install.run("doctor", "--json")
    checks = [json.loads(line) for line in healthy.stdout.decode().splitlines()]
    statuses = {c["name"]: c["status"] for c in checks}
    assert healthy.returncode == 0, healthy.stdout.decode()
    for name in ("database", "migrations", "durability", "relay", "lead addresses", "disk"):
        assert statuses[name] == OK, checks
    assert statuses["smtp port"] == WARN  # nothing listens yet: "start mailgate serve"
    assert statuses["mx autohaus.example"] == WARN
    assert statuses["clock"] == OK and statuses["imap"] == OK

    config = install.config.read_text().replace(f"port = {relay}", f"port = {free_port()}")
    install.config.write_text(config)
    broken = install.run("doctor")
    out = broken.stdout.decode()
    assert broken.returncode == 1
    assert "FAIL  relay" in out and "-> check [relay] host and port" in out
    assert out.splitlines()[-1].startswith("1 to fix")
