"""IMAP intake: poll the dealer's existing mailboxes (IDLE where offered).

``rules`` holds the pure decisions (cursor, batches, backoff), ``settings``
turns ``[[imap]]`` dealer settings into typed mailboxes, ``state`` keeps the
cursor, status and import keys in the database, ``poller`` talks IMAP.
"""
