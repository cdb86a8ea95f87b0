"""Intake: every channel (SMTP, pipe, IMAP) ends in :func:`store.store_raw`."""
