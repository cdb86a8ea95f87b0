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


class InsecureConnection(RuntimeError):
    """The settings or the server would have the password sent unprotected; nothing was sent."""


class LockLost(RuntimeError):
    """The database session holding the mailbox's poller lock is gone; polling stops."""


class TrustError(RuntimeError):
    """The ``ca_file`` of a mailbox cannot be used; the message says why."""


def describe_error(exc: BaseException, mailbox: Mailbox) -> str:
    """One sentence, no traceback, naming what to check."""
    where = f"{mailbox.host}:{mailbox.port}"
    if isinstance(exc, CredentialError):
        return str(exc)
    if isinstance(exc, FolderMissing | InsecureConnection | LockLost | TrustError):
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
        return f"certificate verify failed for {where}: {_certificate_problem(exc, mailbox)}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed with {where} (check the security setting ssl/starttls): {exc.reason}"
    if isinstance(exc, TimeoutError | socket.timeout):
        if mailbox.security == "starttls" and mailbox.port == 993:
            # The classic mix-up: 993 waits for a TLS handshake, STARTTLS for a greeting.
            return (
                f'no answer from {where} in time: port 993 is for security = "ssl"; '
                "STARTTLS is normally on port 143"
            )
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


# OpenSSL's X509_V_ERR_* codes (x509_vfy.h) that a dealer actually meets.
_UNKNOWN_ISSUER = {2, 19, 20, 21}  # issuer not found / untrusted root in chain / ...
_SELF_SIGNED, _EXPIRED, _NOT_YET_VALID = 18, 10, 9
_NAME_MISMATCH = {62, 64}  # host name / IP address mismatch


def _certificate_problem(exc: ssl.SSLCertVerificationError, mailbox: Mailbox) -> str:
    """What is wrong with the server's certificate, and what to do about it."""
    code = exc.verify_code
    if mailbox.ca_file:
        trust = f"the ca_file {mailbox.ca_file}"
        fix = "ca_file must hold the CA that signed it, or the server's own certificate"
    else:
        trust = "this machine's trusted authorities"
        fix = "for a private CA or a self-signed server, set ca_file to its certificate, a PEM file"
    if code == _SELF_SIGNED:
        return f"the server shows a self-signed certificate that is not in {trust} ({fix})"
    if code in _UNKNOWN_ISSUER:
        return f"the server's certificate is signed by an authority not in {trust} ({fix})"
    if code in _NAME_MISMATCH:
        return (
            f"the server's certificate is not made out for {mailbox.host} "
            "(use the host name the certificate names)"
        )
    if code == _EXPIRED:
        return "the server's certificate has expired (the mail provider must renew it)"
    if code == _NOT_YET_VALID:
        return "the server's certificate is not valid yet (check this machine's clock)"
    return f"{exc.verify_message or exc.reason} (the connection was not used)"
