"""The poller's pure decisions, the ``[[imap]]`` settings and the plain-words errors."""

from __future__ import annotations

import socket
import ssl
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from imapclient.exceptions import LoginError

from mailgate.dealer_settings import SettingsError, validate
from mailgate.imap.errors import FolderMissing, describe_error
from mailgate.imap.fetch import fetch_mailbox
from mailgate.imap.rules import (
    AfterImport,
    Cursor,
    advance,
    backoff_delay,
    count_today,
    is_loopback,
    parse_after_import,
    pending_uids,
    received_time,
    resolve_cursor,
    size_batches,
    split_oversize,
)
from mailgate.imap.settings import CredentialError, Mailbox, mailbox_from_entry, read_secret
from mailgate.imap.tuning import Tuning

from .dovecot import Dovecot
from .imap_helpers import dovecot, mailbox_for  # noqa: F401 - fixture


def test_cursor_is_kept_for_the_same_uidvalidity_and_reset_for_another() -> None:
    assert resolve_cursor(None, 7) == (Cursor(7, 0), False)
    assert resolve_cursor(Cursor(7, 42), 7) == (Cursor(7, 42), False)
    assert resolve_cursor(Cursor(7, 42), 8) == (Cursor(8, 0), True)


def test_pending_uids_filters_the_star_quirk_and_caps_the_pass() -> None:
    # "UID SEARCH 43:*" answers 42 when 42 is the highest UID (RFC 3501 6.4.8)
    assert pending_uids([42], Cursor(7, 42), 10) == ([], False)
    assert pending_uids([50, 43, 44, 43], Cursor(7, 42), 10) == ([43, 44, 50], False)
    assert pending_uids(range(1, 101), Cursor(7, 0), 30) == (list(range(1, 31)), True)


def test_cursor_only_moves_forward_and_oversize_is_split_off() -> None:
    assert advance(Cursor(7, 10), [3, 12, 11]) == Cursor(7, 12)
    assert advance(Cursor(7, 10), []) == Cursor(7, 10)
    assert split_oversize({1: 100, 2: 5000, 3: 4000}, 4000) == ([1, 3], [2])
    sizes = {1: 60, 2: 50, 3: 10, 4: 200, 5: 1}
    assert size_batches([1, 2, 3, 4, 5], sizes, 100) == [[1], [2, 3], [4], [5]]


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    low = [backoff_delay(n, base=2, cap=300, jitter=0.0) for n in range(1, 12)]
    high = [backoff_delay(n, base=2, cap=300, jitter=0.999) for n in range(1, 12)]
    assert low[:4] == [1, 2, 4, 8]  # half the step is fixed
    assert all(h < 2 * lo for lo, h in zip(low, high, strict=True))
    assert max(high) <= 300 and low[-1] == 150


def test_after_import_loopback_and_daily_counter() -> None:
    assert parse_after_import("move: Erledigt") == AfterImport("move", "Erledigt")
    assert parse_after_import("delete") == AfterImport("delete")
    for bad in ("move:", "archive", ""):
        with pytest.raises(ValueError):
            parse_after_import(bad)
    assert all(is_loopback(h) for h in ("localhost", "127.0.0.1", "::1", "[::1]", "127.3.2.1"))
    assert not any(is_loopback(h) for h in ("imap.provider.example", "10.0.0.1", "localhost.ex"))
    assert count_today("2026-11-29", 5, "2026-11-30", 2) == ("2026-11-30", 2)
    assert count_today("2026-11-30", 5, "2026-11-30", 2) == ("2026-11-30", 7)


def _imap_doc(**entry: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "verkauf", "host": "imap.provider.example"}
    base["username"] = "leads@autohaus.example"
    base.update(entry)
    return {"imap": [base]}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"security": "none"}, 'imap[0].security = "none" sends the password in clear text'),
        ({"after_import": "archive"}, "imap[0].after_import must be"),
        ({"password": "x", "password_file": "/f"}, "give only one of password, password_file"),
        ({"name": "mit leerzeichen"}, "imap[0].name must be"),
        ({"interval": "1s"}, "imap[0].interval must be at least 5s"),
        ({"port": 0}, "imap[0].port must be between"),
        ({"tls": "yes"}, "unknown key imap[0].tls"),
    ],
)
def test_imap_settings_are_validated_with_the_key_named(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(_imap_doc(**entry))


def test_valid_entry_becomes_a_mailbox_with_defaults() -> None:
    doc = validate(_imap_doc(security="none", host="localhost", after_import="move:Erledigt"))
    mailbox = mailbox_from_entry(doc["imap"][0])
    assert (mailbox.port, mailbox.folder, mailbox.interval) == (993, "INBOX", 60.0)
    assert mailbox.after_import == AfterImport("move", "Erledigt")
    doc2 = {"imap": [doc["imap"][0], {**doc["imap"][0]}]}
    with pytest.raises(SettingsError, match="duplicate mailbox 'verkauf'"):
        validate(doc2)


def _mailbox(**changes: object) -> Mailbox:
    values: dict[str, object] = {
        "name": "verkauf",
        "host": "imap.provider.example",
        "port": 993,
        "security": "ssl",
        "username": "leads@autohaus.example",
    }
    values.update(changes)
    return Mailbox(**values)  # type: ignore[arg-type]


def test_ca_file_setting_reaches_the_mailbox() -> None:
    doc = validate(_imap_doc(ca_file="/etc/mailgate/autohaus-ca.pem"))
    assert mailbox_from_entry(doc["imap"][0]).ca_file == "/etc/mailgate/autohaus-ca.pem"
    assert mailbox_from_entry(validate(_imap_doc())["imap"][0]).ca_file == ""


def test_received_time_is_internaldate_in_utc_capped_at_now() -> None:
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    berlin = datetime(2026, 11, 27, 9, 15, tzinfo=timezone(timedelta(hours=1)))
    assert received_time(berlin, now) == datetime(2026, 11, 27, 8, 15, tzinfo=UTC)
    assert received_time(berlin, now).tzinfo == UTC  # type: ignore[union-attr]
    assert received_time(now + timedelta(hours=3), now) == now
    assert received_time(datetime(2026, 11, 27, 9, 15), now) is None  # naive: no offset known
    assert received_time(None, now) is None


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


def test_certificate_errors_say_what_is_wrong() -> None:
    box = _mailbox()
    expired = describe_error(_verify_error(10, "certificate has expired"), box)
    assert expired == (
        "certificate verify failed for imap.provider.example:993: the server's certificate "
        "has expired (the mail provider must renew it)"
    )
    odd = describe_error(_verify_error(23, "certificate revoked"), box)
    assert odd.startswith("certificate verify failed for imap.provider.example:993: ")
    assert "certificate revoked" in odd


def test_secrets_come_from_file_token_file_or_command(tmp_path: Path) -> None:
    secret = tmp_path / "imap.secret"
    secret.write_text("s3cret\n")
    assert read_secret(_mailbox(password_file=str(secret))) == "s3cret"
    assert read_secret(_mailbox(oauth2_token_file=str(secret))) == "s3cret"
    command = f"{sys.executable} -c \"print('ya29.token')\""
    assert read_secret(_mailbox(oauth2_token_command=command)) == "ya29.token"
    assert read_secret(_mailbox(password="direkt")) == "direkt"
    with pytest.raises(CredentialError, match="cannot read the password file"):
        read_secret(_mailbox(password_file=str(tmp_path / "fehlt")))
    failing = f"{sys.executable} -c \"import sys; sys.exit('refresh token revoked')\""
    with pytest.raises(CredentialError, match="token command failed.*refresh token revoked"):
        read_secret(_mailbox(oauth2_token_command=failing))


def test_errors_are_described_in_plain_words() -> None:
    box = _mailbox()
    assert describe_error(LoginError("b'[AUTH] failed'"), box) == (
        "login failed: imap.provider.example:993 rejected the user name or password "
        "for leads@autohaus.example"
    )
    assert "OAuth2 token" in describe_error(LoginError("x"), _mailbox(oauth2_token_file="/t"))
    assert describe_error(socket.gaierror(-2, "Name or service not known"), box) == (
        "the server name imap.provider.example cannot be found (check the host)"
    )
    assert "no answer from" in describe_error(TimeoutError(), box)
    assert describe_error(TimeoutError(), _mailbox(security="starttls")) == (
        'no answer from imap.provider.example:993 in time: port 993 is for security = "ssl"; '
        "STARTTLS is normally on port 143"
    )
    assert describe_error(FolderMissing("the folder 'X' does not exist"), box) == (
        "the folder 'X' does not exist"
    )


def test_xoauth2_and_missing_folder_against_dovecot(
    dovecot: Dovecot,  # noqa: F811
    dealer,  # type: ignore[no-untyped-def]
) -> None:
    """Dovecot here offers no XOAUTH2: the token is sent and refused, in plain words."""
    command = f"{sys.executable} -c \"print('ya29.token')\""
    oauth = mailbox_for(dovecot, password="", oauth2_token_command=command)
    report = fetch_mailbox(dealer, oauth, Tuning())
    assert report.error is not None and "OAuth2 token for anna" in report.error
    missing = fetch_mailbox(dealer, mailbox_for(dovecot, folder="Gibtsnicht"), Tuning())
    assert missing.error == "the folder 'Gibtsnicht' does not exist on the server"
