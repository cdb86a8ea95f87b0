"""The newcomer's path (issue 21, "done when"): from ``mailgate serve`` on an empty database
to receiving and answering a real inquiry, in the browser only — no TOML file.

A real ``mailgate serve`` (SMTP listener, worker, sender, web UI) on a fresh SQLite
database, with nothing imported; the relay is an aiosmtpd sink.  Over HTTP, as a browser
would (CSRF tokens from the pages, cookies): the set-up link from the log creates the
admin, the checklist says what is missing, the general page takes the dealer name and a
lead address, the "send test mail" button reaches the sink.  Then a real SMTP client: the
inquiry that got 550 before is accepted with 250, becomes a lead in the list, and the
admin's answer from the lead page reaches the customer through the relay.
"""

from __future__ import annotations

import re
import smtplib
import time
from pathlib import Path

import requests
from aiosmtpd.controller import Controller

from .conftest import free_port
from .mails import inquiry
from .procs import Install, wait_for_port
from .test_sender import Sink
from .webui_helpers import PASSWORD, TOKEN

LEAD = "anfragen@autohaus-neu.example"
ADMIN = "chefin@autohaus-neu.example"
CUSTOMER = "kunde1@kunden.example"


def _token(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _send_inquiry(port: int) -> tuple[int, bytes]:
    """RCPT TO the lead address; (code, message) of the RCPT answer, DATA only after 250."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("mx.kunden.example")
        smtp.mail("noreply@autohaus-web.example")
        code, message = smtp.rcpt(LEAD)
        if code == 250:
            data = inquiry(1).replace(b"leads@autohaus.example", LEAD.encode())
            assert smtp.data(data)[0] == 250
        return code, message


def test_newcomer_receives_and_answers_an_inquiry_without_a_toml_file(tmp_path: Path) -> None:
    sink = Sink()
    relay_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=relay_port)
    controller.start()
    smtp_port, web_port = free_port(), free_port()
    config = tmp_path / "mailgate.toml"  # the process configuration only: ports and relay
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mailgate.sqlite3"}"\n'
        f"[smtp]\nport = {smtp_port}\n"
        f"[web]\nport = {web_port}\n"
        f'[relay]\nhost = "127.0.0.1"\nport = {relay_port}\ntimeout = 5\n'
        "[worker]\npoll_interval = 0.2\n[sender]\npoll_interval = 0.5\n"
        '[log]\nlevel = "WARNING"\n'
    )
    install = Install(tmp_path, config, smtp_port, web_port, "")
    proc = install.start("serve")
    try:
        wait_for_port(web_port, 60)
        wait_for_port(smtp_port, 60)
        log = tmp_path / "serve.log"
        setup_url = _wait(
            lambda: re.search(r"Set-up: open (\S+)", log.read_text(errors="replace")),
            30,
            "the set-up link in the log",
        ).group(1)
        web = f"http://127.0.0.1:{web_port}"
        assert setup_url.startswith(web)

        # before anything is set up, mailgate refuses the inquiry (finding 1)
        code, _ = _send_inquiry(smtp_port)
        assert code == 550

        browser = requests.Session()
        page = browser.get(setup_url, timeout=10)
        assert page.status_code == 200
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        assert token
        created = browser.post(
            setup_url,
            data={
                "csrf_token": _token(page.text),
                "token": token.group(1),
                "name": "Clara Chefin",
                "email": ADMIN,
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
            timeout=30,
        )
        # the new admin lands on the set-up checklist, which says what is missing
        assert created.status_code == 200 and created.url == f"{web}/setup/checklist"
        checklist = created.text
        assert "Einrichtungs-Checkliste" in checklist and "Noch keine Lead-Adresse" in checklist
        assert f"127.0.0.1:{relay_port}" in checklist  # the relay from the configuration

        general = browser.get(f"{web}/settings/", timeout=10).text
        suggestion = re.search(r'id="base_url"[^>]*value="([^"]+)"', general)
        assert suggestion and suggestion.group(1) == web  # from the listener, not the Host
        saved = browser.post(
            f"{web}/settings/",
            data={
                "csrf_token": _token(general),
                "name": "Autohaus Neu",
                "addresses": LEAD,
                "admin_address": ADMIN,
                "country": "DE",
                "from_name": "",
                "unassigned_notice_to": "",
                "trade_in_cc": "",
                "reply_mode": "relay",
                "language": "de",
                "timezone": "Europe/Berlin",
                "base_url": suggestion.group(1),
                "send_mails": "y",
            },
            timeout=30,
        )
        assert saved.status_code == 200 and "Gespeichert" in saved.text, saved.text[-2000:]

        checklist = browser.get(f"{web}/setup/checklist", timeout=10)
        tested = browser.post(
            f"{web}/setup/test-mail", data={"csrf_token": _token(checklist.text)}, timeout=30
        )
        assert f"Testmail an {ADMIN} über 127.0.0.1:{relay_port} versendet" in tested.text
        assert any(ADMIN in rcpts for _, rcpts, _ in sink.received)

        # the same inquiry now: accepted (the listener may read the addresses a moment late)
        _wait(lambda: _send_inquiry(smtp_port)[0] == 250, 20, "250 for the lead address")
        listing = _wait(
            lambda: (
                (text := browser.get(f"{web}/leads", timeout=10).text)
                and "Erika Musterfrau" in text
                and text
            ),
            30,
            "the lead in the list",
        )
        lead_id = re.search(r'href="/leads/(\d+)"', listing)
        assert lead_id, "no link to the lead"
        lead_page = browser.get(f"{web}/leads/{lead_id.group(1)}", timeout=10).text
        key = re.search(r'name="key"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="key"', lead_page)
        assert key, "no answer form on the lead page"
        answered = browser.post(
            f"{web}/leads/{lead_id.group(1)}/answer",
            data={
                "csrf_token": _token(lead_page),
                "key": key.group(1) or key.group(2),
                "subject": "",
                "body": "Guten Tag, der Golf ist noch da. Probefahrt am Samstag?",
            },
            timeout=30,
        )
        assert answered.status_code == 200
        _wait(
            lambda: any(CUSTOMER in rcpts for _, rcpts, _ in sink.received),
            30,
            "the answer at the customer (through the relay)",
        )
        answer = next(raw for _, rcpts, raw in sink.received if CUSTOMER in rcpts)
        assert b"Probefahrt am Samstag" in answer
        assert proc.poll() is None, "serve stopped"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except Exception:  # noqa: BLE001 - a stuck serve must not outlive the test
            proc.kill()
            proc.wait(10)
        controller.stop()
