"""The first-admin set-up page: once ever, only with the token the service printed (issue 16.1).

The attack: create the admin, import a minimal settings file that does not
list him (the README's own order), and /setup was open again for anybody.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import SettingsError, import_settings
from mailgate.models import AppSecret, User, UserRole
from mailgate.setup_lock import (
    ADMIN_CREATED,
    TOKEN_PREFIX,
    admin_ever_created,
    claim_setup_token,
    issue_setup_token,
    setup_open,
    setup_url,
)
from mailgate.webui.accounts import first_admin

from .procs import Install, make_install, wait_for_port
from .settings_documents import ADMIN, MINIMAL
from .webui_helpers import PASSWORD, csrf_token, ensure_user, post, setup_token, web_app

REFUSED = "Dieser Einrichtungslink fehlt, ist ungültig oder wurde schon benutzt."


def admin_form(token: str, email: str = ADMIN) -> dict[str, object]:
    return {
        "name": "Ada Admin",
        "email": email,
        "password": PASSWORD,
        "confirm": PASSWORD,
        "token": token,
    }


def create_admin_on_the_page(client: FlaskClient, token: str, email: str = ADMIN) -> TestResponse:
    return post(client, f"/setup?token={token}", admin_form(token, email))


def admins(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(User.email).where(User.role == UserRole.ADMIN)))


def without_forms(html: str) -> str:
    """The page minus its forms (the language switch carries a fresh CSRF token and the URL)."""
    return re.sub(r"<form.*?</form>", "", html, flags=re.S)


def test_the_attack_chain_ends_at_a_closed_door(dealer: sessionmaker[Session]) -> None:
    app = web_app(dealer)
    made = create_admin_on_the_page(app.test_client(), setup_token(dealer))
    assert made.status_code == 302 and admins(dealer) == [ADMIN]
    # Step 2 of the chain: the minimal file without the admin is refused, naming him.
    with db.session_scope(dealer) as session, pytest.raises(SettingsError) as refused:
        import_settings(session, MINIMAL)
    assert ADMIN in str(refused.value) and "deactivate" in str(refused.value)
    with dealer() as session:
        admin = session.scalar(select(User).where(User.email == ADMIN))
        assert admin is not None and admin.active and admin.role == UserRole.ADMIN
    # Even with every admin deactivated and demoted some other way, set-up stays closed.
    with db.session_scope(dealer) as session:
        session.execute(update(User).values(active=False, role=UserRole.SALESPERSON))
        assert issue_setup_token(session) is None  # the service prints no link either
    attacker = app.test_client()
    assert attacker.get("/login").status_code == 200  # no redirect to the set-up page
    assert attacker.get("/setup").status_code == 404
    csrf = csrf_token(attacker, "/login")
    tried = attacker.post("/setup", data={**admin_form("x"), "csrf_token": csrf})
    assert tried.status_code == 404
    assert admins(dealer) == []


def test_setup_wants_the_printed_token_and_says_nothing_about_a_wrong_one(
    dealer: sessionmaker[Session],
) -> None:
    app = web_app(dealer)
    client = app.test_client()
    token = setup_token(dealer)
    missing = client.get("/setup")
    assert missing.status_code == 403 and REFUSED in missing.get_data(True)
    with dealer() as session:
        digest = session.scalar(select(AppSecret.value).where(AppSecret.name.like("setup.token.%")))
        stored = [v for v in session.scalars(select(AppSecret.value))]
    assert token not in stored  # only its hash is kept
    wrong = [
        "",
        "x",
        token[:-1],
        token + "A",
        token[1:] + token[0],
        token.swapcase(),
        str(digest),  # the stored hash is not the token
        "ä" * 43,
        "A" * 5000,
        " " + token,
    ]
    for bad in wrong:
        answer = client.get("/setup", query_string={"token": bad})
        assert answer.status_code == 403, bad
        assert without_forms(answer.get_data(True)) == without_forms(missing.get_data(True))
        posted = client.post(
            "/setup",
            data={**admin_form(bad), "csrf_token": csrf_token(client, "/setup")},
        )
        assert posted.status_code == 403 and REFUSED in posted.get_data(True)
    assert admins(dealer) == []
    page = client.get(f"/setup?token={token}")
    assert page.status_code == 200
    assert f'name="token" value="{token}"' in page.get_data(True)


def test_no_guessed_token_opens_the_page(dealer: sessionmaker[Session]) -> None:
    setup_token(dealer)  # a real one exists
    client = web_app(dealer).test_client()

    @settings(max_examples=60, deadline=None)
    @given(guess=st.text(max_size=200))
    def probe(guess: str) -> None:
        answer = client.get("/setup", query_string={"token": guess})
        # 400: the web UI refuses a NUL anywhere in a request before any view sees it.
        assert answer.status_code == (400 if "\x00" in guess else 403)

    probe()
    assert admins(dealer) == []


def test_the_token_is_used_up_with_the_first_admin(dealer: sessionmaker[Session]) -> None:
    token, other = setup_token(dealer), setup_token(dealer)  # e.g. two processes printed one
    app = web_app(dealer)
    late = app.test_client()
    late_csrf = csrf_token(late, f"/setup?token={token}")  # had the form open already
    assert create_admin_on_the_page(app.test_client(), token).status_code == 302
    for used in (token, other):
        assert app.test_client().get(f"/setup?token={used}").status_code == 404
    second = late.post(
        f"/setup?token={token}",
        data={**admin_form(token, "mallory@autohaus.example"), "csrf_token": late_csrf},
    )
    assert second.status_code == 404
    assert admins(dealer) == [ADMIN]
    with dealer() as session:
        names = list(session.scalars(select(AppSecret.name)))
    assert ADMIN_CREATED in names and not [n for n in names if n.startswith(TOKEN_PREFIX)]


def test_a_claimed_token_cannot_be_claimed_again(factory: sessionmaker[Session]) -> None:
    with db.session_scope(factory) as session:
        token = issue_setup_token(session)
    with db.session_scope(factory) as session:
        assert claim_setup_token(session, token)
    with db.session_scope(factory) as session:
        assert not claim_setup_token(session, token)
        assert setup_open(session)  # nobody was created: still open, for a new token only


def test_two_requests_racing_with_one_token_make_one_admin(
    dealer: sessionmaker[Session], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request passes the token check, then all claim at the same instant."""
    racers = 4
    at_the_line = threading.Barrier(racers, timeout=30)
    real_claim = first_admin.claim_setup_token

    def claim_together(session: Session, token: str | None) -> bool:
        at_the_line.wait()
        return real_claim(session, token)

    monkeypatch.setattr(first_admin, "claim_setup_token", claim_together)
    reader = db.create_db_engine(db_url, reader=True)  # as `mailgate serve` runs the web UI
    try:
        app = web_app(db.make_session_factory(reader))
        token = setup_token(dealer)
        clients = [app.test_client() for _ in range(racers)]
        tokens = [csrf_token(c, f"/setup?token={token}") for c in clients]

        def attempt(n: int) -> int:
            form = {**admin_form(token, f"admin{n}@autohaus.example"), "csrf_token": tokens[n]}
            return clients[n].post(f"/setup?token={token}", data=form).status_code

        with ThreadPoolExecutor(racers) as pool:
            codes = sorted(pool.map(attempt, range(racers)))
    finally:
        reader.dispose()
    assert codes == [302] + [403] * (racers - 1)
    assert len(admins(dealer)) == 1


def _create_admin_by_cli(factory: sessionmaker[Session], db_url: str, tmp_path: Path) -> None:
    from mailgate.users_cli import cmd_create_admin

    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    args = argparse.Namespace(email=ADMIN, name="Ada", password_file=secret)
    assert cmd_create_admin(args, Settings().with_database_url(db_url)) == 0


def _create_admin_by_import(factory: sessionmaker[Session], db_url: str, tmp_path: Path) -> None:
    admin = f'\n[[users]]\nemail = "{ADMIN}"\nrole = "admin"\n'
    with db.session_scope(factory) as session:
        import_settings(session, MINIMAL + admin)


def _create_admin_on_the_page(factory: sessionmaker[Session], db_url: str, _tmp: Path) -> None:
    assert (
        create_admin_on_the_page(web_app(factory).test_client(), setup_token(factory)).status_code
        == 302
    )


@pytest.mark.parametrize(
    "create", [_create_admin_by_cli, _create_admin_by_import, _create_admin_on_the_page]
)
def test_every_way_of_making_an_admin_closes_setup_for_good(
    dealer: sessionmaker[Session], db_url: str, tmp_path: Path, create: Any
) -> None:
    with db.session_scope(dealer) as session:
        outstanding = issue_setup_token(session)
        assert setup_open(session) and outstanding
    create(dealer, db_url, tmp_path)
    with db.session_scope(dealer) as session:
        assert session.get(AppSecret, ADMIN_CREATED) is not None  # the flag, not just the row
        session.execute(update(User).values(role=UserRole.SALESPERSON, active=False))
    with db.session_scope(dealer) as session:
        assert admin_ever_created(session) and not setup_open(session)
        assert not claim_setup_token(session, outstanding)  # tokens went with the set-up
    assert web_app(dealer).test_client().get(f"/setup?token={outstanding}").status_code == 404


def test_a_database_from_before_the_flag_counts_as_set_up(
    dealer: sessionmaker[Session], engine: Any
) -> None:
    """An admin row alone closes set-up, and the migration writes the flag for such databases."""
    ensure_user(dealer, ADMIN, "admin")  # directly, as databases before the flag got them
    with db.session_scope(dealer) as session:
        session.execute(AppSecret.__table__.delete().where(AppSecret.name == ADMIN_CREATED))
    with dealer() as session:
        assert not setup_open(session) and session.get(AppSecret, ADMIN_CREATED) is None
    with engine.begin() as conn:
        config = db._alembic_config(engine)
        config.attributes["connection"] = conn
        command.downgrade(config, "0014_sent_folder")
        command.upgrade(config, "head")
    with db.session_scope(dealer) as session:
        assert session.get(AppSecret, ADMIN_CREATED) is not None
        session.execute(update(User).values(role=UserRole.SALESPERSON))
    with dealer() as session:
        assert not setup_open(session)


def test_old_tokens_are_pruned_but_recent_ones_stay_valid(factory: sessionmaker[Session]) -> None:
    with db.session_scope(factory) as session:
        tokens = [issue_setup_token(session) for _ in range(15)]
    with factory() as session:
        count = session.scalar(select(func.count()).where(AppSecret.name.startswith(TOKEN_PREFIX)))
        assert count == 10
    with db.session_scope(factory) as session:
        assert claim_setup_token(session, tokens[-1])


def test_setup_url_names_a_reachable_address() -> None:
    assert setup_url("0.0.0.0", 8025, "t") == "http://127.0.0.1:8025/setup?token=t"
    assert setup_url("::", 8025, "t") == "http://127.0.0.1:8025/setup?token=t"
    assert setup_url("::1", 80, "t") == "http://[::1]:80/setup?token=t"
    assert setup_url("leads.autohaus.example", 8025, "t").startswith("http://leads.autohaus")


def test_serve_prints_the_setup_link_and_it_works(tmp_path: Path, db_url: str) -> None:
    """The real ``mailgate serve``: the link it prints opens the form; nothing else does."""
    install = make_install(tmp_path / "inst", db_url, web=True)  # its log level is WARNING
    log = install.root / "serve.log"
    proc = install.start("serve")
    try:
        wait_for_port(install.web_port)
        line = _wait_for_line(log, "Set-up: open ")
        match = re.search(r"(http://127\.0\.0\.1:(\d+)/setup\?token=([\w-]+))", line)
        assert match and int(match.group(2)) == install.web_port, line
        with urllib.request.urlopen(match.group(1), timeout=10) as page:  # noqa: S310
            assert page.status == 200 and "Administratorkonto anlegen" in page.read().decode()
        base = f"http://127.0.0.1:{install.web_port}/setup"
        for url in (base, f"{base}?token={match.group(3)[:-2]}"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url, timeout=10)  # noqa: S310
            assert refused.value.code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    engine = db.create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = " ".join(conn.scalars(select(AppSecret.value)))
    finally:
        engine.dispose()
    assert match.group(3) not in stored  # only its hash is in the database
    # Once an admin exists (here made on the server), the next start prints no link.
    created = _run_with_password(install, "users", "create-admin", "--email", ADMIN)
    assert created.returncode == 0, created.stderr.decode()
    log.write_text("")
    proc = install.start("serve")
    try:
        wait_for_port(install.smtp_port)  # the SMTP listener starts after the web UI's link
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Set-up:" not in log.read_text()


def _run_with_password(install: Install, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**install.env(), "MAILGATE_ADMIN_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "mailgate", *args],
        capture_output=True,
        env=env,
        cwd=install.root,
        timeout=60,
        check=False,
    )


def _wait_for_line(log: Path, marker: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if marker in line:
                return line
        time.sleep(0.2)
    raise AssertionError(f"{marker!r} not in the log: {log.read_text(errors='replace')[-2000:]}")
