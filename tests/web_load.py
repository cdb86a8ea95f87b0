"""Logged-in salespeople clicking in the web UI while a burst of mail arrives.

Shared by ``tests/test_web_under_load.py`` (asserts no request fails) and
``bench/web_under_load.py`` (prints latencies and the longest write-lock hold).
Everything goes over real sockets to a real ``mailgate serve``: the web
requests through ``http.client`` with the session cookie and the CSRF token a
browser would send, the mails through ``smtplib`` on a few connections, as an
MTA delivers a marketplace batch.
"""

from __future__ import annotations

import http.client
import json
import re
import smtplib
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import InboundMail, InboundStatus, Lead

from .mails import LEAD_ADDRESS, inquiry
from .webui_helpers import PASSWORD, ensure_user

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@dataclass
class Request:
    """One timed web request: what, the HTTP status, seconds, and when it started."""

    kind: str
    status: int
    seconds: float
    started: float
    body: str = ""
    location: str = ""

    @property
    def failed(self) -> bool:
        """A login and a logged contact both redirect, but not back to the login page."""
        return self.status != 302 or self.location in ("", "-") or "/login" in self.location


class WebClient:
    """A browser with one cookie jar: GET for the form's CSRF token, POST the form."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def _call(
        self, method: str, path: str, body: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """(status, body, Location) of one request on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Host": f"127.0.0.1:{self.port}"}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            data = None
            if body is not None:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            page = response.read().decode("utf-8", "replace")
            return response.status, page, response.headers.get("Location", "")
        finally:
            conn.close()

    def token(self, path: str) -> str:
        status, page, _ = self._call("GET", path)
        match = TOKEN.search(page)
        assert match, f"no CSRF token on {path} ({status}): {page[:300]}"
        return match.group(1) or match.group(2)

    def timed_post(self, kind: str, path: str, form: dict[str, str]) -> Request:
        started = time.monotonic()
        status, body, location = self._call("POST", path, form)
        return Request(kind, status, time.monotonic() - started, started, body[:2000], location)

    def login(self, email: str, password: str = PASSWORD) -> Request:
        self.cookies.clear()
        token = self.token("/login")
        form = {"email": email, "password": password, "csrf_token": token}
        return self.timed_post("login", "/login", form)

    def log_contact(self, lead_id: int, note: str) -> Request:
        started = time.monotonic()
        status, page, location = self._call("GET", f"/leads/{lead_id}")
        match = TOKEN.search(page)
        if match is None:  # not logged in (a failed login) or an error page: counts as failed
            seconds = time.monotonic() - started
            return Request("contact", status or 0, seconds, started, page[:2000], location or "-")
        form = {"channel": "phone", "note": note, "csrf_token": match.group(1) or match.group(2)}
        return self.timed_post("contact", f"/leads/{lead_id}/contact", form)


def prepare_salespeople(
    factory: sessionmaker[Session], smtp_port: int, count: int, timeout: float = 60
) -> dict[str, int]:
    """``count`` salespeople with passwords, each owning one lead that came in by mail."""
    ensure_user(factory, "ada@autohaus.example", "admin")  # set-up is done: /login answers
    emails = [f"verkauf{i}@autohaus.example" for i in range(1, count + 1)]
    ids = [ensure_user(factory, email, "salesperson") for email in emails]
    send_burst(smtp_port, list(range(900_001, 900_001 + count)), connections=1)
    leads = wait_for_leads(factory, count, timeout)
    with factory() as session:
        for lead_id, user_id in zip(leads, ids, strict=True):
            session.execute(update(Lead).where(Lead.id == lead_id).values(assignee_id=user_id))
        session.commit()
    return dict(zip(emails, leads, strict=True))


def wait_for_leads(factory: sessionmaker[Session], count: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        with factory() as session:
            leads = list(session.scalars(select(Lead.id).order_by(Lead.id)))
        if len(leads) >= count:
            return leads[:count]
        assert time.monotonic() < deadline, f"{len(leads)} of {count} leads after {timeout}s"
        time.sleep(0.2)


def backlog(factory: sessionmaker[Session]) -> int:
    """Stored mails the worker has not finished yet."""
    with factory() as session:
        return (
            session.scalar(
                select(func.count(InboundMail.id)).where(
                    InboundMail.status.in_([InboundStatus.RECEIVED, InboundStatus.PROCESSING])
                )
            )
            or 0
        )


def send_burst(port: int, numbers: list[int], connections: int = 3) -> list[int]:
    """Deliver one inquiry per number over ``connections`` SMTP sessions; the non-250 codes."""
    refused: list[int] = []

    def deliver(part: list[int]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for n in part:
                try:
                    smtp.sendmail("form@kunden.example", [LEAD_ADDRESS], inquiry(n))
                except smtplib.SMTPResponseException as exc:
                    refused.append(exc.smtp_code)

    threads = [
        threading.Thread(target=deliver, args=(numbers[i::connections],))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return refused


@dataclass
class WebLoad:
    """Salespeople logging in and logging contacts, ``per_person`` rounds each, in parallel."""

    port: int
    leads: dict[str, int]  # salesperson's e-mail -> a lead they own
    per_person: int
    pause: float = 0.0  # seconds between one person's rounds (think time)
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _person(self, email: str, lead_id: int) -> None:
        client = WebClient(self.port)
        for n in range(self.per_person):
            for call in (
                lambda: client.login(email),
                lambda n=n: client.log_contact(lead_id, f"Rückruf {n}"),
            ):
                request = call()
                with self._lock:
                    self.requests.append(request)
            time.sleep(self.pause)

    def run(self) -> list[Request]:
        threads = [
            threading.Thread(target=self._person, args=(email, lead))
            for email, lead in self.leads.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.requests


def during(load: Callable[[], object], burst: Callable[[], object]) -> float:
    """Run ``burst`` in a thread while ``load`` runs here; returns when both are done."""
    started = time.monotonic()
    thread = threading.Thread(target=burst)
    thread.start()
    load()
    thread.join()
    return time.monotonic() - started


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def summary(requests: list[Request]) -> str:
    seconds = [r.seconds for r in requests]
    failed = [r for r in requests if r.failed]
    codes = sorted({r.status for r in failed})
    return (
        f"{len(failed)} of {len(requests)} failed {codes or ''} "
        f"p50 {percentile(seconds, 50) * 1000:.0f} ms p95 {percentile(seconds, 95) * 1000:.0f} ms"
    )


def lock_holds(
    log_path: Path, since: float = 0.0, key: str = "write_lock_ms"
) -> list[tuple[float, float, str]]:
    """(unix time, ms, thread) of each write-lock hold ``mailgate.db`` logged (JSON logs).

    ``key="write_lock_wait_ms"``: how long web writes waited for the lock instead.
    """
    from datetime import datetime

    holds = []
    for line in log_path.read_text(errors="replace").splitlines():
        if f'"{key}"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        at = datetime.fromisoformat(record["time"]).timestamp()
        if at >= since:
            holds.append((at, float(record[key]), str(record.get("holder", ""))))
    return holds
