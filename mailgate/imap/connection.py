"""Opening an IMAP connection: transport security, trust, login, folder selection.

All the security decisions of the IMAP intake sit here, on purpose, in the
last code that runs before a password leaves the machine:

* ``security = "ssl"`` (implicit TLS, port 993) or ``"starttls"`` (port 143,
  upgraded before login).  ``"none"`` is refused unless the host is this
  machine; the settings validation says so too, but a :class:`Mailbox` can be
  built in code, so it is checked again here.
* The certificate is always verified, chain *and* host name; there is no
  switch to turn that off.  A dealer whose server has a private CA or a
  self-signed certificate sets ``ca_file`` (PEM) instead: then exactly the
  certificates in that file are trusted for this mailbox, not the system store.
* A server that does not offer STARTTLS when it was asked for is refused; the
  connection never carries on in plain text.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailgate.imap.errors import FolderMissing, InsecureConnection, TrustError
from mailgate.imap.rules import is_loopback
from mailgate.imap.settings import Mailbox, read_secret


@dataclass(frozen=True)
class Folder:
    """What ``SELECT`` told us about the folder that matters to the poller."""

    uidvalidity: int
    keywords_allowed: bool  # PERMANENTFLAGS has \* : new keywords may be set


def tls_context(mailbox: Mailbox) -> ssl.SSLContext:
    """A verifying TLS context: the system trust store, or only the mailbox's ``ca_file``.

    The file is read here (not by OpenSSL) so a missing or malformed file is
    reported as such, not as a puzzling handshake failure.  For an explicitly
    trusted file, Python 3.13's VERIFY_X509_STRICT is relaxed: self-signed
    certificates of appliances often lack the extensions it insists on, and
    the dealer has pinned that very certificate (host name is still checked).
    """
    if not mailbox.ca_file:
        return ssl.create_default_context()
    path = Path(mailbox.ca_file).expanduser()
    try:
        pem = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise TrustError(f"cannot read the ca_file {path}: {exc.strerror}") from exc
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise TrustError(f"the ca_file {path} holds no PEM certificate (BEGIN CERTIFICATE)")
    try:
        context = ssl.create_default_context(cadata=pem)
    except ssl.SSLError as exc:
        raise TrustError(f"the ca_file {path} holds no usable certificate: {exc.reason}") from exc
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    return context


def connect(mailbox: Mailbox, timeout: float) -> IMAPClient:
    """Open, secure and log in; the caller closes.  Raises on any failure."""
    if mailbox.security not in ("ssl", "starttls") and not is_loopback(mailbox.host):
        raise InsecureConnection(
            f'security = "{mailbox.security}" would send the password for {mailbox.username} '
            f"in clear text to {mailbox.host}; plain IMAP is only allowed on this machine "
            '(use "ssl" or "starttls")'
        )
    context = tls_context(mailbox) if mailbox.security in ("ssl", "starttls") else None
    secret = read_secret(mailbox)
    client = IMAPClient(
        mailbox.host,
        mailbox.port,
        ssl=mailbox.security == "ssl",
        ssl_context=context,
        timeout=timeout,
    )
    # INTERNALDATE with its offset, not converted to naive local time.
    client.normalise_times = False
    try:
        if mailbox.security == "starttls":
            if not client.has_capability("STARTTLS"):
                raise InsecureConnection(
                    f"{mailbox.host}:{mailbox.port} does not offer STARTTLS; not logging in "
                    'without encryption (check the port, or use security = "ssl")'
                )
            client.starttls(context)
        if mailbox.uses_oauth2:
            client.oauth2_login(mailbox.username, secret)
        else:
            client.login(mailbox.username, secret)
    except BaseException:
        close_quietly(client)
        raise
    return client


def close_quietly(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        with contextlib.suppress(Exception):
            client.shutdown()


def select(client: IMAPClient, folder: str) -> Folder:
    """Select the folder read-write."""
    try:
        info = client.select_folder(folder)
    except IMAPClientError as exc:
        if not client.folder_exists(folder):
            raise FolderMissing(f"the folder {folder!r} does not exist on the server") from exc
        raise
    permanent = info.get(b"PERMANENTFLAGS", ())
    return Folder(int(info[b"UIDVALIDITY"]), b"\\*" in permanent)
