"""Deleting after import on a server without UIDPLUS: someone else's \\Deleted mail survives.

Dovecot is told to announce a capability list without UIDPLUS and MOVE
(``imap_capability``), as some hosters' servers do.  The folder holds a
message mailgate has passed before (the mailbox ran with ``after_import =
"flag"`` until the dealer switched to deleting), which a person has now marked
as deleted, not expunged, in their mail client.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap.fetch import fetch_mailbox
from mailgate.imap.rules import expunge_is_safe
from mailgate.imap.tuning import Tuning

from .dovecot import Dovecot
from .imap_helpers import (
    client_for,
    count_stored,
    dovecot_with,  # noqa: F401 - fixture
    mailbox_for,
)
from .mails import inquiry

# Dovecot 2.3's list after login, minus UIDPLUS and MOVE.
WITHOUT_UIDPLUS = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE UNSELECT"
SEEN, DELETED = b"\\Seen", b"\\Deleted"
PRIVATE = (
    b"From: Carla Beispiel <carla@autohaus.example>\r\n"
    b"To: leads@autohaus.example\r\n"
    b"Subject: Notiz: Rueckruf Werkstatt\r\n"
    b"Message-ID: <notiz-1@autohaus.example>\r\n"
    b"\r\n"
    b"Bitte morgen zurueckrufen.\r\n"
)


def _messages(server: Dovecot, folder: str, user: str = "anna") -> dict[str, set[bytes]]:
    """Message-ID -> flags (without \\Recent) of every message in the folder."""
    client = client_for(server, user)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        data = (
            client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
        )
        result = {}
        for item in data.values():
            head = bytes(item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]).decode()
            result[head.split(":", 1)[1].strip()] = set(item[b"FLAGS"]) - {b"\\Recent"}
        return result
    finally:
        client.logout()


def _passed_before(server: Dovecot, dealer: sessionmaker[Session]) -> None:
    """The note arrives while the mailbox still runs with ``after_import = "flag"``."""
    client = client_for(server)
    client.append("INBOX", PRIVATE)
    client.logout()
    report = fetch_mailbox(dealer, mailbox_for(server, after_import="flag"), Tuning())
    assert (report.error, report.imported) == (None, 1)


def _set_private_deleted(server: Dovecot, user: str, deleted: bool) -> None:
    """What a mail client does on "delete" without expunging (or on "undelete")."""
    client = client_for(server, user)
    try:
        client.select_folder("INBOX")
        [uid] = client.search(["HEADER", "Message-ID", "notiz-1@autohaus.example"])
        if deleted:
            client.add_flags([uid], [DELETED])
        else:
            client.remove_flags([uid], [DELETED])
    finally:
        client.logout()


@pytest.mark.parametrize("after_import", ["delete", "move:Importiert"])
def test_without_uidplus_only_our_messages_are_expunged(
    dovecot_with: Callable[..., Dovecot],  # noqa: F811
    dealer: sessionmaker[Session],
    after_import: str,
) -> None:
    server = dovecot_with(capability=WITHOUT_UIDPLUS)
    client = client_for(server)
    assert not client.has_capability("UIDPLUS") and not client.has_capability("MOVE")
    client.logout()
    _passed_before(server, dealer)
    _set_private_deleted(server, "anna", deleted=True)
    for n in range(2):
        server.deliver("anna", inquiry(n))
    mailbox = mailbox_for(server, after_import=after_import)
    ours = {f"<inquiry-{n}@autohaus-web.example>" for n in range(2)}

    report = fetch_mailbox(dealer, mailbox, Tuning())
    assert (report.error, report.imported) == (None, 2)
    inbox = _messages(server, "INBOX")
    assert inbox["<notiz-1@autohaus.example>"] == {SEEN, DELETED}  # survived, theirs to undo
    assert {k for k, flags in inbox.items() if DELETED in flags} == {
        *ours,
        "<notiz-1@autohaus.example>",
    }
    assert all(b"$MailgateImported" in inbox[k] for k in ours)  # ours, waiting for the expunge

    # Their message is undeleted; the next pass (nothing new to import) expunges ours.
    _set_private_deleted(server, "anna", deleted=False)
    again = fetch_mailbox(dealer, mailbox, Tuning())
    assert (again.error, again.imported) == (None, 0)
    assert _messages(server, "INBOX") == {"<notiz-1@autohaus.example>": {SEEN}}
    if after_import.startswith("move:"):
        assert set(_messages(server, "Importiert")) == ours
    assert count_stored(dealer) == 3  # the note (from the "flag" days) and the two inquiries


def test_without_uidplus_and_no_foreign_deleted_mail_ours_go_at_once(
    dovecot_with: Callable[..., Dovecot],  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    server = dovecot_with(capability=WITHOUT_UIDPLUS)
    _passed_before(server, dealer)  # and not marked deleted by anyone
    server.deliver("anna", inquiry(1))
    report = fetch_mailbox(dealer, mailbox_for(server, after_import="delete"), Tuning())
    assert (report.error, report.imported) == (None, 1)
    assert _messages(server, "INBOX") == {"<notiz-1@autohaus.example>": {SEEN}}


def test_expunge_is_safe_only_when_every_deleted_message_is_ours() -> None:
    assert expunge_is_safe([3, 4], {3, 4, 5})
    assert expunge_is_safe([], set())
    assert not expunge_is_safe([2, 3], {3})
