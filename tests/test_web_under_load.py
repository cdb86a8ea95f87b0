"""The web UI keeps answering while a burst of mail arrives (issue 18, item 1).

A real ``mailgate serve`` on the default SQLite database (and on PostgreSQL):
450 inquiries over three SMTP connections while four logged-in salespeople log
in and log contacts on their leads.  Before the fix, on SQLite, 40 of these 80
requests answered 500 "database is locked" (every login: it reads, checks the
password, then writes, and SQLite refuses a reading transaction the write lock
at once if anyone committed meanwhile).  Crash tier: about 50 s per database on
a busy machine.
"""

from __future__ import annotations

import signal
from pathlib import Path

from mailgate import db

from .procs import make_install, wait_for_port
from .web_load import WebLoad, during, prepare_salespeople, send_burst, summary

BURST = 450
PEOPLE = 4
ROUNDS = 10  # a login and a logged contact per round: 80 requests


def test_no_web_request_fails_during_a_mail_burst(tmp_path: Path, db_url: str) -> None:
    install = make_install(tmp_path / "load", db_url, web=True)
    engine = db.create_db_engine(install.db_url)
    factory = db.make_session_factory(engine)
    proc = install.start("serve")
    try:
        wait_for_port(install.smtp_port)
        wait_for_port(install.web_port)
        leads = prepare_salespeople(factory, install.smtp_port, PEOPLE)
        load = WebLoad(install.web_port, leads, ROUNDS)
        refused: list[int] = []
        numbers = list(range(1, BURST + 1))
        during(load.run, lambda: refused.extend(send_burst(install.smtp_port, numbers)))
        failed = [r for r in load.requests if r.failed]
        backend = db_url.split(":")[0]
        print(f"FIGURE web under load ({backend}, {BURST} mails): {summary(load.requests)}")
        assert len(load.requests) == PEOPLE * ROUNDS * 2
        assert not failed, [(r.kind, r.status, r.body[:200]) for r in failed[:5]]
        assert not refused, f"SMTP refused {len(refused)} mails: {sorted(set(refused))}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        engine.dispose()
