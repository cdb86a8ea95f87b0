"""Two ``mailgate serve`` processes on one PostgreSQL database behave as one system (issue 8).

Real processes, real SMTP and HTTP: mails delivered to either instance become exactly one
lead each (the same mail delivered to both too), the rotation stays fair across both, no
notification or reminder is queued twice, and the web UI of either instance shows leads the
other one took in.  Crash tier: about 20 s.
"""

from __future__ import annotations

import http.cookiejar
import re
import signal
import smtplib
import time
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select, update

from mailgate import db
from mailgate.models import Lead, OutboxMail, User, utcnow

from .conftest import _truncate_all
from .distribution_helpers import team_toml
from .mails import LEAD_ADDRESS, inquiry
from .procs import Install, make_install, wait_for_port
from .webui_helpers import PASSWORD, ensure_user

MAILS = 60


def _send(port: int, numbers: list[int]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        for n in numbers:
            smtp.sendmail("form@kunden.example", [LEAD_ADDRESS], inquiry(n, name=f"Kunde {n}"))


def _web_login(install: Install, email: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{install.web_port}"
    page = opener.open(f"{base}/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert token, "no CSRF token on the login page"
    data = urllib.parse.urlencode(
        {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    ).encode()
    opener.open(f"{base}/login", data=data, timeout=10).read()
    return opener


def test_two_instances_on_one_postgresql_are_one_system(tmp_path: Path, pg_server_url: str) -> None:
    engine = db.create_db_engine(pg_server_url)
    db.upgrade(engine)
    _truncate_all(engine)
    first = make_install(tmp_path / "a", pg_server_url, web=True)
    second = make_install(tmp_path / "b", pg_server_url, web=True)
    team = tmp_path / "team.toml"
    team.write_text(team_toml())
    assert first.run("settings", "import", str(team)).returncode == 0
    factory = db.make_session_factory(engine)
    ensure_user(factory, "ada@autohaus.example", "admin")
    procs = [first.start("serve"), second.start("serve")]
    try:
        for install in (first, second):
            wait_for_port(install.smtp_port)
            wait_for_port(install.web_port)
        numbers = list(range(1, MAILS + 1))
        with ThreadPoolExecutor(4) as pool:  # two clients per instance
            jobs = [
                pool.submit(_send, inst.smtp_port, numbers[i::4])
                for i, inst in enumerate((first, second, first, second))
            ]
            for job in jobs:
                job.result()
        twice = inquiry(MAILS + 1, name="Doppelt Zugestellt")
        for install in (first, second):  # the same mail through both doors: one lead
            with smtplib.SMTP("127.0.0.1", install.smtp_port, timeout=20) as smtp:
                smtp.sendmail("form@kunden.example", [LEAD_ADDRESS], twice)
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline:
            with factory() as session:
                count = session.scalar(select(func.count(Lead.id))) or 0
            if count >= MAILS + 1:
                break
            time.sleep(0.5)
        time.sleep(2)  # anything still in flight would make a second lead now
        with factory() as session:
            leads = list(session.scalars(select(Lead)))
            owners = Counter(
                session.scalar(select(User.email).where(User.id == lead.assignee_id))
                for lead in leads
            )
            notifications = Counter(
                session.scalars(
                    select(OutboxMail.lead_id).where(OutboxMail.purpose == "notification")
                )
            )
        assert len(leads) == MAILS + 1 and len({lead.inbound_id for lead in leads}) == MAILS + 1
        print(f"FIGURE multi-instance: {len(leads)} leads from {MAILS + 1} distinct mails")
        shares = sorted(owners.values())
        assert len(owners) == 3 and shares[-1] - shares[0] <= 1, owners  # fair across both
        assert notifications and max(notifications.values()) == 1  # each told once

        # Reminders: both schedulers see every lead due now; each reminder is queued once.
        with db.session_scope(factory) as session:
            past = utcnow()
            session.execute(update(Lead).values(soon_at=past, next_due_at=past))
        deadline = time.monotonic() + 30
        reminders: Counter[int | None] = Counter()
        while time.monotonic() < deadline and len(reminders) < len(leads):
            with factory() as session:
                reminders = Counter(
                    session.scalars(
                        select(OutboxMail.lead_id).where(OutboxMail.purpose == "reminder")
                    )
                )
            time.sleep(0.5)
        assert len(reminders) == len(leads) and max(reminders.values()) == 1
        print(f"FIGURE multi-instance: duplicate reminders 0 of {len(reminders)}")

        # The web UI of either instance shows a lead the other one may have taken in.
        for install in (first, second):
            opener = _web_login(install, "ada@autohaus.example")
            page = (
                opener.open(f"http://127.0.0.1:{install.web_port}/leads?q=Doppelt", timeout=10)
                .read()
                .decode()
            )
            assert "Doppelt Zugestellt" in page
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
        engine.dispose()
    assert codes == [0, 0], [(i.root / "serve.log").read_text()[-2000:] for i in (first, second)]
