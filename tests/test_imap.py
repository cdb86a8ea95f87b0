"""IMAP intake against a real Dovecot: exactly once, after-import actions, limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.db import session_scope
from mailgate.dealer_settings import import_settings, load_dealer_config
from mailgate.escalation.ladder import initial_due_times
from mailgate.imap.fetch import fetch_mailbox, fetch_now
from mailgate.imap.state import import_mails, mailbox_status
from mailgate.imap.tuning import Tuning
from mailgate.ingest.store import RawMail
from mailgate.models import ImapState, InboundMail, Lead, OutboxMail, utcnow
from mailgate.worker import process_pending

from .conftest import DEALER_TOML
from .dovecot import Dovecot
from .imap_helpers import (
    client_for,
    count_stored,
    distinct_stored,
    dovecot,  # noqa: F401 - fixture
    flags_in,
    imap_toml,
    mailbox_for,
)
from .mails import inquiry

SEEN, FLAGGED = b"\\Seen", b"\\Flagged"


def test_new_mails_are_imported_once_and_flagged(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    mailbox = mailbox_for(dovecot)
    for n in range(3):
        dovecot.deliver("anna", inquiry(n))
    report = fetch_mailbox(dealer, mailbox, Tuning())
    assert (report.error, report.imported, report.duplicates) == (None, 3, 0)
    assert flags_in(dovecot) == [{SEEN}, {SEEN}, {SEEN}]
    with dealer() as session:
        rows = session.scalars(select(InboundMail).order_by(InboundMail.id)).all()
        assert [r.message_id for r in rows] == [
            f"<inquiry-{n}@autohaus-web.example>" for n in range(3)
        ]
        assert {(r.channel, r.mailbox) for r in rows} == {("imap", "postfach-anna/INBOX")}
        assert rows[0].raw.replace(b"\r\n", b"\n") == inquiry(0).replace(b"\r\n", b"\n")

    again = fetch_mailbox(dealer, mailbox, Tuning())
    assert (again.imported, again.duplicates) == (0, 0)  # the cursor, not dedupe, skips them
    dovecot.deliver("anna", inquiry(3))
    assert fetch_mailbox(dealer, mailbox, Tuning()).imported == 1
    assert count_stored(dealer) == 4


def test_received_at_is_the_servers_internaldate_for_mail_lead_and_escalation(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    """Imported three days late (mailgate was down): the customer still waited since Friday."""
    arrived = datetime(2026, 11, 27, 9, 15, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    client = client_for(dovecot)
    client.append("INBOX", inquiry(1), msg_time=arrived)
    # A server clock running ahead must not push any deadline out.
    client.append("INBOX", inquiry(2), msg_time=utcnow() + timedelta(days=2))
    client.logout()
    before = utcnow()
    assert fetch_mailbox(dealer, mailbox_for(dovecot), Tuning()).imported == 2
    after = utcnow()
    with dealer() as session:
        first, second = session.scalars(select(InboundMail).order_by(InboundMail.id)).all()
    assert first.received_at == arrived  # same instant; stored and returned in UTC
    assert first.received_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= second.received_at <= after

    process_pending(dealer, Settings())
    with dealer() as session:
        lead = session.scalars(select(Lead).where(Lead.inbound_id == first.id)).one()
        config = load_dealer_config(session)
    assert lead.received_at == arrived
    due = initial_due_times(
        config.calendar, config.escalation_times(lead.source, lead.kind), arrived
    )
    assert (lead.soon_at, lead.overdue_at, lead.stage2_at) == (
        due.soon_at,
        due.overdue_at,
        due.stage2_at,
    )


def _status(factory: sessionmaker[Session]) -> list:
    with factory() as session:
        return mailbox_status(session)


def test_move_and_delete_after_import(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    for n in range(2):
        dovecot.deliver("anna", inquiry(n))
    one_per_fetch = Tuning(fetch_budget=1)  # the memory budget splits every FETCH
    moved = fetch_mailbox(
        dealer, mailbox_for(dovecot, after_import="move:Importiert"), one_per_fetch
    )
    assert moved.imported == 2
    assert flags_in(dovecot) == []
    assert len(flags_in(dovecot, "Importiert")) == 2  # folder created on first use

    for n in range(2, 4):
        dovecot.deliver("ben", inquiry(n))
    deleted = fetch_mailbox(dealer, mailbox_for(dovecot, "ben", after_import="delete"), Tuning())
    assert deleted.imported == 2
    assert flags_in(dovecot, user="ben") == []
    assert count_stored(dealer) == 4


def test_refetch_after_crash_between_store_and_flag_stores_nothing_twice(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    """I1: the state a crash after the commit leaves: mails stored, not flagged, cursor at 0."""
    mailbox = mailbox_for(dovecot)
    raws = [inquiry(n) for n in range(3)]
    client = client_for(dovecot)
    for raw in raws:
        client.append("INBOX", raw)
    client.logout()
    stored, _ = import_mails(
        dealer, mailbox.name, [RawMail(r, "imap", mailbox=mailbox.label) for r in raws[:2]]
    )
    assert len(stored) == 2 and flags_in(dovecot) == [set(), set(), set()]

    report = fetch_mailbox(dealer, mailbox, Tuning())
    assert (report.imported, report.duplicates) == (1, 2)
    assert count_stored(dealer) == 3 and distinct_stored(dealer) == 3
    assert flags_in(dovecot) == [{SEEN}, {SEEN}, {SEEN}]


def test_changed_uidvalidity_resets_the_cursor_without_duplicates(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    """I2 (a recreated folder; INBOX with 100 mails: test_imap_faults.py)."""
    mailbox = mailbox_for(dovecot, folder="Anfragen")
    client = client_for(dovecot)
    client.create_folder("Anfragen")
    for n in range(2):
        client.append("Anfragen", inquiry(n))
    assert fetch_mailbox(dealer, mailbox, Tuning()).imported == 2
    with dealer() as session:
        before = session.get(ImapState, (mailbox.name, "Anfragen"))
        assert before is not None and before.last_uid == 2

    # The folder is deleted and recreated (e.g. the provider migrated it): new
    # UIDVALIDITY, UIDs start at 1 again, and the old mails come back.
    client.delete_folder("Anfragen")
    client.create_folder("Anfragen")
    for n in range(3):
        client.append("Anfragen", inquiry(n))
    client.logout()
    report = fetch_mailbox(dealer, mailbox, Tuning())
    assert (report.error, report.imported, report.duplicates) == (None, 1, 2)
    assert count_stored(dealer) == 3 and distinct_stored(dealer) == 3
    with dealer() as session:
        after = session.get(ImapState, (mailbox.name, "Anfragen"))
        assert after is not None
        assert after.uidvalidity != before.uidvalidity and after.last_uid == 3
    assert flags_in(dovecot, "Anfragen") == [{SEEN}, {SEEN}, {SEEN}]


def test_oversize_message_is_left_flagged_and_reported_once(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    mailbox = mailbox_for(dovecot)
    tuning = Tuning(max_message_size=4000)
    dovecot.deliver("anna", inquiry(1))
    dovecot.deliver("anna", inquiry(2, padding=10_000))
    report = fetch_mailbox(dealer, mailbox, tuning)
    assert (report.imported, report.oversize) == (1, 1)
    assert flags_in(dovecot) == [{SEEN}, {FLAGGED}]  # still there, flagged, unread

    assert fetch_mailbox(dealer, mailbox, tuning).oversize == 0  # not retried forever
    # Even a cursor reset (as after a UIDVALIDITY change) does not tell the admin again.
    with session_scope(dealer) as session:
        session.execute(delete(ImapState))
    assert fetch_mailbox(dealer, mailbox, tuning).oversize == 1
    with dealer() as session:
        notices = session.scalars(select(OutboxMail)).all()
        state = session.get(ImapState, (mailbox.name, "INBOX"))
    assert [(n.purpose, n.recipients) for n in notices] == [
        ("imap_oversize", ["admin@autohaus.example"])
    ]
    assert "Kontaktformular #2" in notices[0].subject
    assert state is not None and len(state.oversize_reported) == 1
    assert count_stored(dealer) == 1


def test_wrong_password_gives_a_clear_status_and_other_mailboxes_go_on(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    with session_scope(dealer) as session:
        import_settings(
            session,
            DEALER_TOML
            + imap_toml(dovecot, "ben", "service", password="falsch")
            + imap_toml(dovecot, "anna", "verkauf"),
        )
    dovecot.deliver("anna", inquiry(1))
    dovecot.deliver("ben", inquiry(2))
    reports = {r.mailbox: r for r in fetch_now(dealer, _settings())}
    assert reports["verkauf"].error is None and reports["verkauf"].imported == 1
    assert reports["service"].error == (
        f"login failed: 127.0.0.1:{dovecot.port} rejected the user name or password for ben"
    )
    statuses = {s.name: s for s in _status(dealer)}
    assert statuses["verkauf"].ok and statuses["verkauf"].imported_today == 1
    assert not statuses["service"].ok
    assert statuses["service"].last_error == reports["service"].error
    assert flags_in(dovecot, user="ben") == [set()]  # untouched


def test_backlog_of_2000_drains_completely_and_exactly_once(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    template = inquiry(0)  # building 2,000 with the email package is the slow part
    for n in range(2000):
        dovecot.deliver("anna", template.replace(b"inquiry-0@", b"inquiry-%d@" % n))
    tuning = Tuning(max_per_pass=500)
    report = fetch_mailbox(dealer, mailbox_for(dovecot), tuning)
    assert (report.error, report.imported, report.duplicates) == (None, 2000, 0)
    assert count_stored(dealer) == 2000 and distinct_stored(dealer) == 2000
    client = client_for(dovecot)
    client.select_folder("INBOX", readonly=True)
    assert client.search(["UNSEEN"]) == []
    client.logout()


def _settings():  # type: ignore[no-untyped-def]
    from mailgate.config import Settings

    return Settings()
