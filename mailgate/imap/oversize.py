"""Messages over the size limit: left on the server, and the admin told once.

They are never fetched (RFC822.SIZE is checked first).  The admin mail goes
through the outbox with an idempotency key built from the mailbox, the
Message-ID (or UIDVALIDITY:UID) and the size, so neither a repeated pass nor a
UIDVALIDITY reset sends it twice.
"""

from __future__ import annotations

import hashlib
import logging
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from imapclient import IMAPClient
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.imap import state
from mailgate.imap.rules import Cursor, oversize_key
from mailgate.imap.settings import Mailbox

log = logging.getLogger("mailgate.imap")
_HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT FROM DATE)]"
_HEADER_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT FROM DATE)]"


def report_oversize(
    client: IMAPClient,
    factory: sessionmaker[Session],
    mailbox: Mailbox,
    limit: int,
    cursor: Cursor,
    uids: list[int],
    sizes: dict[int, int],
) -> None:
    """Tell the admin once per message (outbox key survives UIDVALIDITY resets)."""
    from mailgate.dealer_settings import load_dealer_config
    from mailgate.outbound.outbox import enqueue_template

    headers = client.fetch(uids, [_HEADER_ITEM])
    parser = BytesHeaderParser(policy=default_policy)
    keys = []
    with session_scope(factory) as session:
        dealer = load_dealer_config(session)
        for uid in uids:
            head = parser.parsebytes(bytes(headers.get(uid, {}).get(_HEADER_KEY, b"")))
            message_id = str(head.get("Message-ID", "") or "").strip()
            identity = message_id or f"{cursor.uidvalidity}:{uid}"
            digest = hashlib.sha256(f"{mailbox.name}|{identity}|{sizes[uid]}".encode()).hexdigest()
            keys.append(oversize_key(mailbox.name, cursor.uidvalidity or 0, uid))
            log.warning(
                "%s: message UID %s is %d bytes, over the limit of %d; left on the server",
                mailbox.name,
                uid,
                sizes[uid],
                limit,
            )
            if not dealer.admin_address:
                continue
            enqueue_template(
                session,
                dealer,
                key=f"imap-oversize:{digest[:40]}",
                purpose="imap_oversize",
                template="imap_oversize",
                language=dealer.language,
                context={
                    "mailbox": mailbox.name,
                    "folder": mailbox.folder,
                    "size_mb": f"{sizes[uid] / 1024 / 1024:.1f}",
                    "limit_mb": f"{limit / 1024 / 1024:.1f}",
                    "subject": str(head.get("Subject", "") or ""),
                    "sender": str(head.get("From", "") or ""),
                    "date": str(head.get("Date", "") or ""),
                },
                to=[("", dealer.admin_address)],
            )
        state.remember_oversize(session, mailbox.name, mailbox.folder, keys)
