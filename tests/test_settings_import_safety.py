"""Settings imports that would lock everybody out or wipe the configuration (issue 16, 1 and 5).

An import replaces everything: users missing from the file are deactivated,
missing addresses are gone.  So the admin who can log in must survive every
import, an empty or cut-off file must not pass for a dealership, and a file
that is no settings file at all must fail with one line -- on the CLI (a real
process, both databases) and in the web UI.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import SettingsError, export_settings, import_settings
from mailgate.models import User, UserRole
from mailgate.settings_import import (
    MAX_BYTES,
    IncompleteDocument,
    import_document,
    plan_import,
    read_document,
)

from .conftest import DEALER_TOML
from .procs import Install, make_install
from .settings_documents import ADMIN, ADMIN_ENTRY, MINIMAL
from .webui_helpers import PASSWORD, csrf_token, ensure_user, logged_in, web_app

DEALER_ONLY = DEALER_TOML[: DEALER_TOML.index("[distribution]")]  # cut before the users
# Files that are not settings files; each must fail with one line and change nothing.
GARBAGE: dict[str, bytes] = {
    "empty": b"",
    "only a comment": b"# autohaus.toml\n",
    "cut before the users": DEALER_ONLY.encode(),
    "cut in a string": DEALER_TOML[: DEALER_TOML.index("Anna") + 2].encode(),
    "latin-1": DEALER_TOML.replace("Beispiel", "Bäckerstraße").encode("latin-1"),
    "utf-16": DEALER_TOML.encode("utf-16"),
    "binary": bytes(range(256)) * 64,
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "deep arrays": b"a=" + b"[" * 100_000,
    "deep inline tables": b"a=" + b"{b=" * 100_000,
    "closed deep arrays": b"a=" + b"[" * 500 + b"]" * 500,
    "deep dotted table": b"[" + b".".join([b"a"] * 5000) + b"]\nx = 1\n",
    "huge": b"# padding\n" * (MAX_BYTES // 10 + 1),
}


def snapshot(factory: sessionmaker[Session]) -> tuple[str, list[tuple[str, str, bool]]]:
    """Everything an import could change: the export and every user's role and state."""
    with factory() as session:
        users = session.execute(select(User.email, User.role, User.active).order_by(User.email))
        return export_settings(session), [tuple(row) for row in users]


# --- the last admin --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (MINIMAL, f"deactivate {ADMIN} (not in [[users]])"),
        (MINIMAL + ADMIN_ENTRY.replace('"admin"\n', '"supervisor"\n'), f"demote {ADMIN}"),
        (MINIMAL + ADMIN_ENTRY + "active = false\n", f"deactivate {ADMIN} (active = false)"),
        # Another admin instead: he has no password yet, so nobody could log in.
        (MINIMAL + ADMIN_ENTRY.replace(ADMIN, "neu@autohaus.example"), f"deactivate {ADMIN}"),
    ],
)
def test_an_import_never_takes_the_last_admin(
    dealer: sessionmaker[Session], document: str, says: str
) -> None:
    ensure_user(dealer, ADMIN, "admin")
    before = snapshot(dealer)
    with db.session_scope(dealer) as session, pytest.raises(SettingsError) as refused:
        import_settings(session, document)
    message = str(refused.value)
    assert says in message and "no active admin who can log in" in message
    assert "chef@autohaus.example" in message  # whom else it would deactivate
    assert snapshot(dealer) == before


def test_an_import_that_keeps_an_admin_goes_through(dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, ADMIN, "admin")
    ensure_user(dealer, "zweit@autohaus.example", "admin")
    with db.session_scope(dealer) as session:  # one of two admins may go
        import_settings(session, MINIMAL + ADMIN_ENTRY.replace(ADMIN, "zweit@autohaus.example"))
    with db.session_scope(dealer) as session:  # and the one left may be kept
        import_settings(session, MINIMAL + ADMIN_ENTRY.replace(ADMIN, "zweit@autohaus.example"))
    with dealer() as session:
        active = dict(session.execute(select(User.email, User.role).where(User.active)).all())
    assert active == {"anna@autohaus.example": "salesperson", "zweit@autohaus.example": "admin"}


# --- empty, cut off, not a settings file ------------------------------------------------------


def test_an_incomplete_document_is_refused_unless_allowed(dealer: sessionmaker[Session]) -> None:
    before = snapshot(dealer)
    cases = [
        ({}, "addresses"),
        ({"dealer": {"name": "Autohaus"}}, "addresses"),
        ({"dealer": {"addresses": ["leads@autohaus.example"]}}, "users"),
        (
            {
                "dealer": {"addresses": ["leads@autohaus.example"]},
                "users": [{"email": "anna@autohaus.example", "active": False}],
            },
            "users",
        ),
    ]
    for document, what in cases:
        with db.session_scope(dealer) as session, pytest.raises(IncompleteDocument) as refused:
            import_document(session, document)
        assert refused.value.what == what
    assert snapshot(dealer) == before
    with db.session_scope(dealer) as session:  # said explicitly: allowed
        import_document(session, {}, allow_empty_addresses=True, allow_no_users=True)
    with dealer() as session:
        assert not session.scalars(select(User).where(User.active)).all()


def test_a_file_cut_off_anywhere_never_wipes_the_dealership(dealer: sessionmaker[Session]) -> None:
    """Every prefix of a real settings file: refused, or still with addresses and users."""
    whole = (DEALER_TOML + ADMIN_ENTRY).encode()
    ensure_user(dealer, ADMIN, "admin")
    for end in range(0, len(whole), 7):
        try:
            with dealer() as session:
                plan = plan_import(session, read_document(whole[:end]))
        except SettingsError:
            continue
        assert plan.clean["dealer"]["addresses"] and plan.clean["users"], end


@pytest.mark.parametrize("name", GARBAGE)
def test_garbage_is_one_clear_error(name: str) -> None:
    with pytest.raises(SettingsError) as refused:
        document = read_document(GARBAGE[name])
        plan_import_offline(document)
    assert "\n" not in str(refused.value)


def plan_import_offline(document: dict) -> None:
    """The database-free part of an import: validation and the completeness check."""
    from mailgate.dealer_settings import validate
    from mailgate.settings_import import check_complete

    check_complete(validate(document))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_read_document_answers_any_bytes_with_a_document_or_a_settings_error(data: bytes) -> None:
    try:
        assert isinstance(read_document(data), dict)
    except SettingsError as exc:
        assert str(exc) and "\n" not in str(exc)


# --- the CLI, as a real process ----------------------------------------------------------------


def _with_admin(install: Install) -> None:
    """The admin made on the server, with a password (he can log in)."""
    env = {**install.env(), "MAILGATE_ADMIN_PASSWORD": PASSWORD}
    made = subprocess.run(
        [sys.executable, "-m", "mailgate", "users", "create-admin", "--email", ADMIN],
        capture_output=True,
        env=env,
        cwd=install.root,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr.decode()


CHANGED = f"""
[dealer]
name = "Autohaus Beispiel & Söhne"
timezone = "Europe/Berlin"
language = "de"
from_name = "Autohaus Beispiel Verkauf"
addresses = ["leads@autohaus.example", "neu@autohaus.example"]
admin_address = "admin@autohaus.example"
unassigned_notice_to = "zentrale@autohaus.example"

[hours]
mon = ["08:00-12:00"]

[distribution]
fallback_user = "anna@autohaus.example"

[[users]]
email = "anna@autohaus.example"
name = "Anna Schmidt-Berger"
role = "salesperson"

[[users]]
email = "bert@autohaus.example"
name = "Bert Neu"

[[users]]
email = "{ADMIN}"
name = "{ADMIN}"
role = "admin"
receives_leads = false
"""


def test_cli_dry_run_prints_the_diff_and_changes_nothing(tmp_path: Path, db_url: str) -> None:
    install = make_install(tmp_path / "inst", db_url)
    _with_admin(install)
    before = install.run("settings", "export").stdout
    (tmp_path / "changed.toml").write_text(CHANGED)
    dry = install.run("settings", "import", "--dry-run", str(tmp_path / "changed.toml"))
    assert dry.returncode == 0, dry.stderr.decode()
    lines = dry.stdout.decode().splitlines()
    assert "users added: bert@autohaus.example (salesperson)" in lines
    assert "users deactivated: chef@autohaus.example (not in [[users]])" in lines
    assert "lead addresses added: neu@autohaus.example" in lines
    assert "lead addresses removed: service@autohaus.example" in lines
    assert "hours changed: mon (closed) -> 08:00-12:00" in lines
    changed = next(line for line in lines if line.startswith("users changed: "))
    assert 'anna@autohaus.example (name "Anna Schmidt" -> "Anna Schmidt-Berger"' in changed
    assert "supervisor" in changed  # her supervisor (chef) is not in the file
    other = next(line for line in lines if line.startswith("other changes: "))
    assert 'dealer.name "Autohaus Beispiel" -> "Autohaus Beispiel & Söhne"' in other
    assert b"nothing was changed" in dry.stderr
    assert install.run("settings", "export").stdout == before
    # The same file for real: the diff on stderr, and the change made.
    real = install.run("settings", "import", str(tmp_path / "changed.toml"))
    assert real.returncode == 0 and b"users added: bert@autohaus.example" in real.stderr
    assert b"no password yet" not in real.stderr  # the admin has one
    assert b"neu@autohaus.example" in install.run("settings", "export").stdout


def test_cli_refuses_the_minimal_file_that_drops_the_admin(tmp_path: Path, db_url: str) -> None:
    install = make_install(tmp_path / "inst", db_url)
    _with_admin(install)
    before = install.run("settings", "export").stdout
    (tmp_path / "minimal.toml").write_text(MINIMAL)
    for extra in (("--dry-run",), ()):
        result = install.run("settings", "import", *extra, str(tmp_path / "minimal.toml"))
        assert result.returncode == 1
        error = result.stderr.decode()
        assert f"deactivate {ADMIN}" in error and "Traceback" not in error
    assert f"users deactivated: chef@autohaus.example (not in [[users]]); {ADMIN}" in (
        install.run(
            "settings", "import", "--dry-run", str(tmp_path / "minimal.toml")
        ).stdout.decode()
    )
    assert install.run("settings", "export").stdout == before


CLI_GARBAGE = ("empty", "cut before the users", "latin-1", "binary", "deep arrays", "huge")


def test_cli_gives_one_line_for_files_that_are_no_settings(tmp_path: Path) -> None:
    install = make_install(tmp_path / "inst")
    before = install.run("settings", "export").stdout
    for name in CLI_GARBAGE:
        path = tmp_path / f"{name.replace(' ', '-')}.toml"
        path.write_bytes(GARBAGE[name])
        result = install.run("settings", "import", str(path))
        error = result.stderr.decode(errors="replace").strip()
        assert result.returncode == 1, (name, error)
        assert error.startswith("mailgate: ") and "\n" not in error, (name, error)
        assert "Traceback" not in error
    assert install.run("settings", "export").stdout == before
    missing = install.run("settings", "import", str(tmp_path / "nowhere.toml"))
    assert missing.returncode == 1 and b"cannot read" in missing.stderr
    # Said explicitly, an import without addresses goes through (e.g. an intake-less test box).
    no_addresses = tmp_path / "no-addresses.toml"
    no_addresses.write_text(DEALER_TOML.replace('addresses = ["', 'old = ["').replace("old", "#"))
    refused = install.run("settings", "import", str(no_addresses))
    assert refused.returncode == 1 and b"--allow-empty-addresses" in refused.stderr
    allowed = install.run("settings", "import", "--allow-empty-addresses", str(no_addresses))
    assert allowed.returncode == 0, allowed.stderr.decode()
    # An imported admin closes the web set-up: the import says how he gets a password.
    (tmp_path / "with-admin.toml").write_text(MINIMAL + ADMIN_ENTRY)
    imported = install.run("settings", "import", str(tmp_path / "with-admin.toml"))
    assert imported.returncode == 0, imported.stderr.decode()
    assert f"mailgate users set-password --email {ADMIN}".encode() in imported.stderr


# --- the web UI's upload -----------------------------------------------------------------------


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin")
    return web_app(dealer)


def upload(client: FlaskClient, data: bytes, **boxes: str) -> tuple[int, str]:
    token = csrf_token(client, "/settings/transfer")
    form = {"csrf_token": token, "file": (io.BytesIO(data), "settings.toml"), **boxes}
    answer = client.post("/settings/transfer", data=form, content_type="multipart/form-data")
    return answer.status_code, answer.get_data(as_text=True)


def file_errors(html: str) -> str:
    match = re.search(r'<ul class="errors" id="file-errors">(.*?)</ul>', html, re.S)
    return match.group(1) if match else ""


@pytest.mark.parametrize("name", GARBAGE)
def test_web_upload_of_garbage_is_a_form_error(
    app: Flask, dealer: sessionmaker[Session], name: str
) -> None:
    client = logged_in(app, ADMIN)
    before = snapshot(dealer)
    status, html = upload(client, GARBAGE[name])
    assert status == 200, name
    assert file_errors(html).strip() and "Nichts wurde importiert" in html
    assert snapshot(dealer) == before


def test_web_upload_without_addresses_or_users_needs_the_box(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    client = logged_in(app, ADMIN)
    before = snapshot(dealer)
    with dealer() as session:
        document = tomllib.loads(export_settings(session))
    document["dealer"]["addresses"] = []
    text = export_from(document)
    status, html = upload(client, text.encode())
    assert status == 200 and "keine Lead-Adressen" in file_errors(html)
    assert snapshot(dealer) == before
    status, html = upload(client, text.encode(), allow_empty_addresses="y")
    assert status == 302
    with dealer() as session:
        assert tomllib.loads(export_settings(session))["dealer"]["addresses"] == []
        admin = session.scalar(select(User).where(User.email == ADMIN))
        assert admin is not None and admin.active and admin.role == UserRole.ADMIN


def export_from(document: dict) -> str:
    from mailgate.dealer_settings import SCHEMA
    from mailgate.toml_writer import dump_settings_toml

    return dump_settings_toml(document, SCHEMA)
