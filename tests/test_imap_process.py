"""IMAP intake as real processes: SIGKILL between store and flag, ``mailgate fetch``, serve."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from mailgate import db
from mailgate.models import InboundMail, Lead

from .conftest import DEALER_TOML
from .dovecot import Dovecot
from .imap_helpers import (
    client_for,
    dovecot,  # noqa: F401 - fixture
    flags_in,
    imap_toml,
    wait_until,
)
from .mails import inquiry
from .procs import Install, make_install

# Runs the real fetch, but dies by SIGKILL the moment the mails are committed
# and before the after-import action touches the server.
KILL_AFTER_STORE = textwrap.dedent(
    """
    import os, signal, sys
    from mailgate import db
    from mailgate.config import load_settings
    from mailgate.imap import fetch

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    fetch.apply_action = die
    settings = load_settings(sys.argv[1])
    engine = db.create_db_engine(settings.database_url)
    fetch.fetch_now(db.make_session_factory(engine), settings)
    """
)


def _install(tmp_path: Path, db_url: str, server: Dovecot) -> Install:
    install = make_install(tmp_path / "inst", db_url)
    (install.root / "dealer.toml").write_text(DEALER_TOML + imap_toml(server, "anna", "verkauf"))
    result = install.run("settings", "import", str(install.root / "dealer.toml"))
    assert result.returncode == 0, result.stderr.decode()
    return install


def _stored(db_url: str) -> list[str | None]:
    engine = db.create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(InboundMail.message_id).order_by(InboundMail.id)))
    finally:
        engine.dispose()


def test_sigkill_between_store_and_flag_leaves_each_mail_once(
    dovecot: Dovecot,  # noqa: F811
    db_url: str,
    tmp_path: Path,
) -> None:
    """I1 at its sharpest instant: SIGKILL after the commit, before the flag; re-fetch dedupes."""
    install = _install(tmp_path, db_url, dovecot)
    for n in range(3):
        dovecot.deliver("anna", inquiry(n))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_STORE, str(install.config)],
        env=install.env(),
        cwd=install.root,
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert len(_stored(db_url)) == 3  # committed before the kill
    assert flags_in(dovecot) == [set(), set(), set()]  # but never flagged

    result = install.run("fetch")
    assert result.returncode == 0, result.stderr.decode()
    [line] = [json.loads(x) for x in result.stdout.decode().splitlines()]
    assert line == {
        "mailbox": "verkauf",
        "imported": 0,
        "duplicates": 3,
        "oversize": 0,
        "error": None,
    }
    assert _stored(db_url) == [f"<inquiry-{n}@autohaus-web.example>" for n in range(3)]
    assert flags_in(dovecot) == [{b"\\Seen"}] * 3


def test_fetch_command_imports_processes_and_reports_errors(
    dovecot: Dovecot,  # noqa: F811
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    install = _install(tmp_path, sqlite_url, dovecot)
    dovecot.deliver("anna", inquiry(7))
    result = install.run("fetch", "--mailbox", "verkauf")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["imported"] == 1
    engine = db.create_db_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.scalar(select(InboundMail.status)) == "processed"  # a lead, not just bytes
        assert conn.scalar(select(Lead.id)) is not None
    engine.dispose()

    missing = install.run("fetch", "--mailbox", "gibtsnicht")
    assert missing.returncode == 1
    assert "no IMAP mailbox named 'gibtsnicht'" in missing.stderr.decode()

    dovecot.stop()
    down = install.run("fetch")
    assert down.returncode == 1
    assert json.loads(down.stdout)["error"] == (
        f"connection refused by 127.0.0.1:{dovecot.port} (wrong port, or the server is down)"
    )


def test_serve_runs_the_pollers_beside_smtp(
    dovecot: Dovecot,  # noqa: F811
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    install = _install(tmp_path, sqlite_url, dovecot)
    process = install.start("serve")
    try:
        from .procs import wait_for_port

        wait_for_port(install.smtp_port)
        client = client_for(dovecot)
        client.append("INBOX", inquiry(9))
        client.logout()
        engine = db.create_db_engine(sqlite_url)
        try:

            def lead_exists() -> bool:
                with engine.connect() as conn:
                    return conn.scalar(select(Lead.id)) is not None

            assert wait_until(lead_exists, 20, step=0.2), (install.root / "serve.log").read_text()
        finally:
            engine.dispose()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    assert flags_in(dovecot) == [{b"\\Seen"}]
