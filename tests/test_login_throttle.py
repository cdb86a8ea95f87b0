"""Issue 16 item 7: login throttling per (account, client) with growing delays, ceilings
against spraying that do not lock out colleagues behind the same NAT address, no
address picked by the client itself, and no account enumeration by timing.

The attack: 30 failures from the dealership's one NAT address locked out every
salesperson, correct passwords included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from mailgate import db
from mailgate.base_url import set_base_url
from mailgate.config import Settings, WebSettings
from mailgate.models import LoginFailure, OutboxMail, User, utcnow
from mailgate.webui import passwords
from mailgate.webui.accounts import devices, throttle
from mailgate.webui.passwords import hash_password

from .webui_helpers import PASSWORD, ensure_user, web_app

ANNA, BERT, CHEF, ADMIN = (
    "anna@autohaus.example",
    "bert@autohaus.example",
    "chef@autohaus.example",
    "admin@autohaus.example",
)
NAT = "203.0.113.10"  # the dealership's one public address
WRONG = "geraten-geraten-1"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Clock:
    """The login view's clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("mailgate.webui.accounts.views.utcnow", clock)
    return clock


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    for email, role in ((ANNA, "salesperson"), (BERT, "salesperson"), (CHEF, "supervisor")):
        ensure_user(dealer, email, role)
    ensure_user(dealer, ADMIN, "admin")
    return web_app(dealer)


def browser(app: Flask, ip: str = NAT, **environ: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": ip, **environ})
    return client


def attempt(client: FlaskClient, email: str, password: str) -> TestResponse:
    page = client.get("/login").get_data(as_text=True)
    match = TOKEN.search(page)
    assert match, page[:300]
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": match.group(1)}
    )


def failures_of(factory: sessionmaker[Session], email: str) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).where(LoginFailure.email == email)) or 0


def retry_after(response: TestResponse) -> int:
    assert response.status_code == 429, response.status_code
    return int(response.headers["Retry-After"])


def test_delays_grow_for_the_attacked_pair_only(app: Flask, clock: Clock) -> None:
    guesser = browser(app)
    for _ in range(throttle.FREE_FAILURES):
        assert attempt(guesser, ANNA, WRONG).status_code == 401
    waits = []
    for _ in range(12):
        waits.append(retry_after(attempt(guesser, ANNA, PASSWORD)))  # right password, too
        clock.advance(timedelta(seconds=waits[-1]))
        assert attempt(guesser, ANNA, WRONG).status_code == 401
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]  # capped at 15 min
    locked = attempt(guesser, ANNA, WRONG)
    assert "Bitte in 15 Minuten erneut versuchen" in locked.get_data(as_text=True)
    # Only the pair waits: the same account from elsewhere, and colleagues from here, do not.
    assert attempt(browser(app, "198.51.100.20"), ANNA, PASSWORD).status_code == 302
    assert attempt(browser(app), BERT, PASSWORD).status_code == 302


def test_forty_failures_against_one_colleague_lock_out_nobody_else(
    app: Flask, dealer: sessionmaker[Session], clock: Clock
) -> None:
    guesser = browser(app)
    failed = 0
    while failed < 40:
        response = attempt(guesser, ANNA, f"{WRONG}-{failed}")
        if response.status_code == 429:
            clock.advance(timedelta(seconds=retry_after(response)))
            continue
        assert response.status_code == 401
        failed += 1
    assert failures_of(dealer, ANNA) == 40
    # Every colleague behind the same NAT address logs in with his password at once.
    for colleague in (BERT, CHEF, ADMIN):
        assert attempt(browser(app), colleague, PASSWORD).status_code == 302, colleague


def test_a_burst_of_failures_from_the_nat_address_locks_out_no_colleague(
    app: Flask, dealer: sessionmaker[Session], clock: Clock
) -> None:
    """The state a guesser leaves (several instances, or before a restart): 40 recent
    failures for Anna from the shop's address.  Colleagues there log in all the same."""
    with db.session_scope(dealer) as session:
        for n in range(40):
            at = clock.now - timedelta(seconds=n)
            session.add(LoginFailure(email=ANNA, ip=NAT, at=at))
    for colleague in (BERT, CHEF, ADMIN):
        assert attempt(browser(app), colleague, PASSWORD).status_code == 302, colleague
    assert attempt(browser(app), ANNA, PASSWORD).status_code == 429  # the attacked pair waits


def test_spoofed_forwarded_for_from_an_untrusted_peer_neither_resets_nor_evades(
    app: Flask, dealer: sessionmaker[Session], clock: Clock
) -> None:
    for n in range(throttle.FREE_FAILURES):
        guesser = browser(app, HTTP_X_FORWARDED_FOR=f"10.66.0.{n}", HTTP_X_REAL_IP=f"10.66.1.{n}")
        assert attempt(guesser, ANNA, WRONG).status_code == 401
    fresh = browser(app, HTTP_X_FORWARDED_FOR="10.77.0.1", HTTP_FORWARDED="for=10.77.0.2")
    assert attempt(fresh, ANNA, WRONG).status_code == 429
    with dealer() as session:
        assert set(session.scalars(select(LoginFailure.ip))) == {NAT}


def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    dealer: sessionmaker[Session], clock: Clock
) -> None:
    for email, role in ((ANNA, "salesperson"), (BERT, "salesperson"), (ADMIN, "admin")):
        ensure_user(dealer, email, role)
    app = web_app(dealer, Settings(web=WebSettings(trusted_proxies=("127.0.0.1",))))
    for _ in range(throttle.FREE_FAILURES):
        attacker = browser(app, "127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.66")
        assert attempt(attacker, ANNA, WRONG).status_code == 401
    # The proxy's other clients are different addresses, not one throttled proxy.
    colleague = browser(app, "127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert attempt(colleague, ANNA, PASSWORD).status_code == 302
    # The attacker cannot start afresh by prefixing his own X-Forwarded-For entry.
    again = browser(app, "127.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.66")
    assert attempt(again, ANNA, WRONG).status_code == 429


def spray(app: Flask, ip: str, accounts: int) -> None:
    sprayer = browser(app, ip)
    for n in range(accounts):
        assert attempt(sprayer, f"user{n}@autohaus.example", "Sommer2026!").status_code == 401


def test_spraying_hits_the_address_ceiling_but_known_browsers_log_in(
    app: Flask, dealer: sessionmaker[Session], clock: Clock
) -> None:
    anna_pc = browser(app)
    assert attempt(anna_pc, ANNA, PASSWORD).status_code == 302  # a good history
    assert anna_pc.get_cookie(devices.COOKIE) is not None
    spray(app, NAT, throttle.ADDRESS_CEILING)
    # A new browser from the sprayed address: even a right password waits (a sprayed
    # guess that happens to be right must not get through) ...
    new_pc = browser(app)
    assert attempt(new_pc, BERT, PASSWORD).status_code == 429
    # ... but Anna's browser, which logged in before, is let through at once.
    fresh_session = browser(app)
    fresh_session.set_cookie(devices.COOKIE, anna_pc.get_cookie(devices.COOKIE).value)
    assert attempt(fresh_session, ANNA, PASSWORD).status_code == 302
    # A device cookie is for its accounts only, and a forged one is no cookie.
    stolen = browser(app)
    stolen.set_cookie(devices.COOKIE, anna_pc.get_cookie(devices.COOKIE).value)
    assert attempt(stolen, BERT, PASSWORD).status_code == 429
    forged = browser(app)
    forged.set_cookie(devices.COOKIE, anna_pc.get_cookie(devices.COOKIE).value[:-3] + "abc")
    assert attempt(forged, ANNA, PASSWORD).status_code == 429
    # Elsewhere nothing changed; an hour later the address is free again.
    assert attempt(browser(app, "198.51.100.30"), BERT, PASSWORD).status_code == 302
    clock.advance(throttle.CEILING_WINDOW)
    assert attempt(browser(app), BERT, PASSWORD).status_code == 302


def test_a_known_browser_has_its_own_delays(
    app: Flask, dealer: sessionmaker[Session], clock: Clock
) -> None:
    anna_pc = browser(app)
    assert attempt(anna_pc, ANNA, PASSWORD).status_code == 302
    cookie = anna_pc.get_cookie(devices.COOKIE).value
    # The guesser on the same address exhausts the pair (Anna, NAT) ...
    guesser = browser(app)
    for _ in range(throttle.FREE_FAILURES):
        attempt(guesser, ANNA, WRONG)
    assert attempt(guesser, ANNA, PASSWORD).status_code == 429
    # ... which is not Anna's browser: it counts under its own key.
    own = browser(app)
    own.set_cookie(devices.COOKIE, cookie)
    for _ in range(throttle.FREE_FAILURES):
        assert attempt(own, ANNA, "vertippt-vertippt").status_code == 401
    assert attempt(own, ANNA, PASSWORD).status_code == 429  # typing wrong slows her, too
    clock.advance(timedelta(seconds=1))
    assert attempt(own, ANNA, PASSWORD).status_code == 302


def test_a_distributed_attack_on_one_account_hits_its_ceiling(
    app: Flask, dealer: sessionmaker[Session], clock: Clock
) -> None:
    for n in range(throttle.ACCOUNT_CEILING):
        assert attempt(browser(app, f"10.{n // 250}.{n % 250}.1"), BERT, WRONG).status_code == 401
    assert attempt(browser(app, "198.51.100.99"), BERT, PASSWORD).status_code == 429
    assert attempt(browser(app, "198.51.100.99"), ANNA, PASSWORD).status_code == 302


def test_reset_requests_are_limited_and_slow_down_no_login(
    app: Flask, dealer: sessionmaker[Session], clock: Clock
) -> None:
    with db.session_scope(dealer) as session:
        set_base_url(session, "https://leads.autohaus.example")
    client = browser(app)
    for _ in range(throttle.FREE_FAILURES + 3):
        page = client.get("/password/forgot").get_data(as_text=True)
        token = TOKEN.search(page).group(1)  # type: ignore[union-attr]
        assert (
            client.post("/password/forgot", data={"email": ANNA, "csrf_token": token}).status_code
            == 302
        )
    with dealer() as session:
        mails = session.scalar(select(func.count()).where(OutboxMail.purpose == "password_reset"))
        requests = session.scalar(
            select(func.count()).where(
                LoginFailure.ip == f"reset|{NAT}", LoginFailure.email == ANNA
            )
        )
    # Only the first few requests queue a mail (the same second's link is one mail): no
    # mail bombing of the account.
    assert requests == throttle.RESET_PER_ACCOUNT and 1 <= (mails or 0) <= requests
    assert attempt(browser(app), ANNA, PASSWORD).status_code == 302


# --- timing: unknown accounts cost a real Argon2 verification ----------------------------


class SpyHasher:
    """Wraps the real PasswordHasher and records which hashes were verified."""

    def __init__(self, real: passwords.PasswordHasher) -> None:
        self.real, self.verified = real, []

    def verify(self, stored: str, password: str) -> bool:
        self.verified.append(stored)
        return self.real.verify(stored, password)

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[SpyHasher]:
    spy = SpyHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", spy)
    yield spy


def parameters(argon2_hash: str) -> str:
    """``$argon2id$v=19$m=65536,t=3,p=4``: everything that decides the cost."""
    return "$".join(argon2_hash.split("$")[:4])


@pytest.mark.parametrize(
    "who",
    ["unknown", "deactivated", "without password", "broken hash"],
)
def test_accounts_that_cannot_log_in_still_cost_a_real_verification(
    app: Flask, dealer: sessionmaker[Session], spy: SpyHasher, who: str
) -> None:
    email = "nobody@autohaus.example" if who == "unknown" else BERT
    with db.session_scope(dealer) as session:
        bert = session.scalar(select(User).where(User.email == BERT))
        assert bert is not None
        if who == "deactivated":
            bert.active = False
        elif who == "without password":
            bert.password_hash = None
        elif who == "broken hash":
            bert.password_hash = "$argon2id$kaputt"
    answer = attempt(browser(app), email, PASSWORD)
    assert answer.status_code == 401
    assert "E-Mail-Adresse oder Passwort ist falsch." in answer.get_data(as_text=True)
    dummy = passwords._dummy_hash()
    assert spy.verified[-1] == dummy  # the same Argon2 work as for a real account
    assert parameters(dummy) == parameters(hash_password("irgendwas-1234"))


def test_a_known_account_is_verified_against_its_own_hash(
    app: Flask, dealer: sessionmaker[Session], spy: SpyHasher
) -> None:
    with dealer() as session:
        stored = session.scalar(select(User.password_hash).where(User.email == BERT))
    assert attempt(browser(app), BERT, WRONG).status_code == 401
    assert spy.verified == [stored]


def test_delay_schedule_is_pure() -> None:
    delays: Callable[[int], timedelta] = throttle.delay_after
    assert [delays(n).total_seconds() for n in range(8)] == [0, 0, 0, 0, 0, 1, 2, 4]
    assert delays(10_000) == throttle.MAX_DELAY


def test_a_login_without_failures_writes_nothing(sqlite_dealer: sessionmaker[Session]) -> None:
    """While the write lock is held (a burst of mail being stored), a plain login still passes.

    The web UI's engine waits up to 5 s for the lock; a login that wrote would wait
    that long and then fail.  One with failures to forget does wait: checked too.
    """
    import sqlite3
    import time

    from mailgate.webui import create_app

    ensure_user(sqlite_dealer, ANNA, "salesperson")
    ensure_user(sqlite_dealer, ADMIN, "admin")  # set-up done: /login answers
    path = sqlite_dealer.kw["bind"].url.database
    reader = db.create_db_engine(f"sqlite:///{path}", reader=True, busy_timeout_ms=1500)
    app = create_app(db.make_session_factory(reader), Settings())
    app.config["TESTING"] = True
    guesser = browser(app, "198.51.100.30")
    assert attempt(guesser, ANNA, WRONG).status_code == 401  # this pair has a failure to forget
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert attempt(browser(app), ANNA, PASSWORD).status_code == 302
        assert time.monotonic() - started < 1.0  # did not wait for the lock
        waited = time.monotonic()
        response = attempt(guesser, ANNA, PASSWORD)
        assert time.monotonic() - waited >= 1.4  # its DELETE waited for the lock ...
        assert response.status_code == 503  # ... and says "try again", no 500
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        reader.dispose()
    assert failures_of(sqlite_dealer, ANNA) == 1  # nothing half-done
