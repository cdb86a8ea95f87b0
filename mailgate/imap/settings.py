"""Typed IMAP mailboxes from the ``[[imap]]`` dealer settings, and their secrets.

The dealer settings validate the keys (``mailgate.dealer_settings``); this
module turns one entry into a :class:`Mailbox` and fetches its credential at
connect time (a password file or an OAuth2 token command may change while the
service runs, e.g. a token refreshed every hour).
"""

from __future__ import annotations

import shlex
import subprocess  # nosec B404  # runs the admin's own configured token command
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mailgate.imap.rules import AfterImport, parse_after_import

TOKEN_COMMAND_TIMEOUT = 30


class CredentialError(RuntimeError):
    """The password or token could not be read; the message says why, in plain words."""


@dataclass(frozen=True)
class Mailbox:
    """One ``[[imap]]`` entry, validated."""

    name: str
    host: str
    port: int
    security: str  # ssl | starttls | none
    username: str
    password: str = ""
    password_file: str = ""
    oauth2_token_command: str = ""
    oauth2_token_file: str = ""
    folder: str = "INBOX"
    interval: float = 60.0
    after_import: AfterImport = AfterImport("flag")
    location: str = ""
    enabled: bool = True
    ca_file: str = ""  # PEM; trusted instead of the system store (private CA, self-signed)

    @property
    def uses_oauth2(self) -> bool:
        return bool(self.oauth2_token_command or self.oauth2_token_file)

    @property
    def label(self) -> str:
        """What ``InboundMail.mailbox`` records: which account and folder a mail came from."""
        return f"{self.name}/{self.folder}"[:255]


def mailbox_from_entry(entry: dict[str, Any]) -> Mailbox:
    """A :class:`Mailbox` from one validated ``[[imap]]`` table."""
    from mailgate.dealer_settings import parse_duration

    return Mailbox(
        name=entry["name"],
        host=entry["host"],
        port=entry["port"],
        security=entry["security"],
        username=entry["username"],
        password=entry["password"],
        password_file=entry["password_file"],
        oauth2_token_command=entry["oauth2_token_command"],
        oauth2_token_file=entry["oauth2_token_file"],
        folder=entry["folder"],
        interval=parse_duration(entry["interval"]).total_seconds(),
        after_import=parse_after_import(entry["after_import"]),
        location=entry["location"],
        enabled=entry["enabled"],
        ca_file=entry.get("ca_file", ""),
    )


def load_mailboxes(session: Session, *, enabled_only: bool = True) -> list[Mailbox]:
    from mailgate.dealer_settings import stored_document

    mailboxes = [mailbox_from_entry(e) for e in stored_document(session)["imap"]]
    return [m for m in mailboxes if m.enabled or not enabled_only]


def read_secret(mailbox: Mailbox) -> str:
    """The password or OAuth2 access token, read now (files and tokens change)."""
    if mailbox.oauth2_token_command:
        try:
            result = subprocess.run(  # nosec B603  # argv from the admin's config, no shell
                shlex.split(mailbox.oauth2_token_command),
                capture_output=True,
                timeout=TOKEN_COMMAND_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CredentialError(f"the OAuth2 token command could not run: {exc}") from exc
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise CredentialError(
                f"the OAuth2 token command failed (exit {result.returncode}) {detail[0]}".strip()
            )
        token = result.stdout.decode(errors="replace").strip()
        if not token:
            raise CredentialError("the OAuth2 token command printed no token")
        return token
    path = mailbox.oauth2_token_file or mailbox.password_file
    if path:
        what = "OAuth2 token file" if mailbox.oauth2_token_file else "password file"
        try:
            secret = Path(path).expanduser().read_text().strip("\r\n")
        except OSError as exc:
            raise CredentialError(f"cannot read the {what} {path}: {exc.strerror}") from exc
        if not secret:
            raise CredentialError(f"the {what} {path} is empty")
        return secret
    return mailbox.password
