"""Turning connection and protocol failures into words a dealer can act on.

The settings page shows the last error of each mailbox; "LoginError: b'[AUTH]
Authentication failed.'" helps nobody at a car dealership, "the server
rejected the user name or password" does.
"""

from __future__ import annotations

import socket
import ssl

from imapclient.exceptions import IMAPClientError, LoginError

from mailgate.imap.settings import CredentialError, Mailbox


class FolderMissing(RuntimeError):
    """The configured folder does not exist on the server."""


def describe_error(exc: BaseException, mailbox: Mailbox) -> str:
    """One sentence, no traceback, naming what to check."""
    where = f"{mailbox.host}:{mailbox.port}"
    if isinstance(exc, CredentialError):
        return str(exc)
    if isinstance(exc, FolderMissing):
        return str(exc)
    if isinstance(exc, LoginError):
        if mailbox.uses_oauth2:
            return (
                f"login failed: {where} rejected the OAuth2 token for {mailbox.username} "
                "(expired, or the app lacks IMAP permission)"
            )
        return f"login failed: {where} rejected the user name or password for {mailbox.username}"
    if isinstance(exc, socket.gaierror):
        return f"the server name {mailbox.host} cannot be found (check the host)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where} (wrong port, or the server is down)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the TLS certificate of {where} is not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed with {where} (check the security setting ssl/starttls): {exc.reason}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {where} in time (network or server problem)"
    if isinstance(exc, ConnectionError | EOFError):
        return f"the connection to {where} was lost; reconnecting"
    if isinstance(exc, IMAPClientError):
        text = str(exc)
        if "socket error" in text or "EOF" in text:
            return f"the connection to {where} was lost; reconnecting"
        return f"the server {where} refused a command: {text[:300]}"
    if isinstance(exc, OSError):
        return f"network error talking to {where}: {exc.strerror or exc}"
    return f"unexpected error with {where}: {type(exc).__name__}: {str(exc)[:300]}"
