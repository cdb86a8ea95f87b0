"""The after-import action on the server: flag as seen, move, or delete.

Runs only once the mails are committed (see :mod:`mailgate.imap.fetch`), and
is safe to repeat: a crash after it and before the cursor moves makes the
next pass do it again on the same UIDs.

Deleting without UIDPLUS
------------------------
Removing a message in IMAP takes two steps: flag it ``\\Deleted``, then
EXPUNGE.  With UIDPLUS, ``UID EXPUNGE <uids>`` removes exactly ours.  Without
it, a plain EXPUNGE removes *every* ``\\Deleted`` message of the folder,
including ones a person marked deleted in their mail client and may still
want back (Thunderbird and others show such mail struck through, undeletable,
until someone expunges).  mailgate must not make that decision for them.

So without UIDPLUS (also for ``move`` without MOVE, which is COPY + delete):

1. ours get ``\\Deleted`` plus the keyword ``$MailgateImported``;
2. ``SEARCH DELETED`` and ``SEARCH DELETED KEYWORD $MailgateImported``: if
   every ``\\Deleted`` message is ours, EXPUNGE;
3. otherwise ours stay flagged and the EXPUNGE waits: every later pass
   (:func:`sweep`) checks again and expunges once the others are gone (the
   person expunged or undeleted them).

The keyword is what lets a later pass, even after a restart, tell our leftovers
from someone else's; it costs no database state.  A server that allows no new
keywords (no ``\\*`` in PERMANENTFLAGS) gets step 2 with only the messages of
the current batch counted as ours, so leftovers wait for whoever expunges next.
The remaining race, another client setting ``\\Deleted`` between our SEARCH
and EXPUNGE (milliseconds), is accepted: that message was being deleted anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from imapclient import IMAPClient

from mailgate.imap.connection import Folder
from mailgate.imap.rules import expunge_is_safe
from mailgate.imap.settings import Mailbox

log = logging.getLogger("mailgate.imap")
SEEN, FLAGGED, DELETED = b"\\Seen", b"\\Flagged", b"\\Deleted"
IMPORTED = b"$MailgateImported"


def apply_action(client: IMAPClient, mailbox: Mailbox, uids: list[int], folder: Folder) -> None:
    """The after-import action, run only once the mails are committed."""
    if not uids:
        return
    action = mailbox.after_import
    if action.action == "flag":
        client.add_flags(uids, [SEEN])
        return
    if action.action == "move":
        if not client.folder_exists(action.folder):
            client.create_folder(action.folder)
        if client.has_capability("MOVE"):
            client.move(uids, action.folder)
            return
        client.copy(uids, action.folder)
    if client.has_capability("UIDPLUS"):
        client.delete_messages(uids)
        client.uid_expunge(uids)
        return
    client.add_flags(uids, [DELETED, IMPORTED] if folder.keywords_allowed else [DELETED])
    _expunge_if_only_ours(client, mailbox, uids, folder)


def sweep(client: IMAPClient, mailbox: Mailbox, folder: Folder) -> None:
    """Expunge our leftovers of earlier passes once no one else's are flagged ``\\Deleted``."""
    if not _removes(client, mailbox) or not folder.keywords_allowed:
        return
    _expunge_if_only_ours(client, mailbox, [], folder, quiet=True)


def _removes(client: IMAPClient, mailbox: Mailbox) -> bool:
    """Whether this mailbox's action ends in a plain EXPUNGE on this server."""
    action = mailbox.after_import.action
    if action == "flag" or client.has_capability("UIDPLUS"):
        return False
    return action == "delete" or not client.has_capability("MOVE")


def _expunge_if_only_ours(
    client: IMAPClient,
    mailbox: Mailbox,
    marked: Sequence[int],
    folder: Folder,
    *,
    quiet: bool = False,
) -> None:
    deleted = client.search(["DELETED"])
    if not deleted:
        return
    ours = set(marked)
    if folder.keywords_allowed:
        ours |= set(client.search(["DELETED", "KEYWORD", IMPORTED.decode()]))
    if expunge_is_safe(deleted, ours):
        client.expunge()
        return
    if quiet:  # the sweep of every pass: said once when the batch was marked
        return
    log.info(
        "%s: %d message(s) of someone else are marked deleted in %s; ours stay flagged "
        "\\Deleted until they are gone (the server lacks UIDPLUS)",
        mailbox.name,
        len(set(deleted) - ours),
        mailbox.folder,
    )
