"""IMAP intake: poll the dealer's existing mailboxes (IDLE where offered).

``rules`` holds the pure decisions (cursor, batches, backoff, expunge safety),
``settings`` turns ``[[imap]]`` dealer settings into typed mailboxes, ``state``
keeps the cursor, status and import keys in the database.  ``connection`` opens
and secures a session (TLS, trust, login), ``fetch`` runs one pass (with
``actions`` and ``oversize`` as its server-side steps), ``poller`` loops with
IDLE, ``service`` runs one poller per mailbox; ``errors`` puts failures in words.
``sent_folder`` (with ``sent_mail``, ``sent_record``, ``sent_watch``) reads the
salespeople's own Sent folders, read-only, to count answers sent past the
tracking address.
"""
