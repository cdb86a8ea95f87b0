"""The ``mailgate`` command line as a real process: pipe intake, listings, serve."""

from __future__ import annotations

import json
import signal
import smtplib
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate.parsers.model import KINDS, is_valid_source

from .mails import LEAD_ADDRESS, bounce, inquiry
from .procs import Install, make_install, wait_for_port


@pytest.fixture
def install(tmp_path: Path) -> Install:
    return make_install(tmp_path / "inst")


def jsonl(output: bytes) -> list[dict]:
    return [json.loads(line) for line in output.decode().splitlines() if line.strip()]


def test_ingest_from_stdin_stores_and_processes(install: Install) -> None:
    result = install.run("ingest", stdin=inquiry(1, name="Jonas Beispiel"))
    assert result.returncode == 0, result.stderr.decode()
    leads = jsonl(install.run("leads", "--json").stdout)
    assert len(leads) == 1
    lead = leads[0]
    assert lead["customer"]["name"] == "Jonas Beispiel"
    assert lead["assignee"] == "anna@autohaus.example"
    assert lead["status"] == "assigned" and lead["due_state"] in {"ok", "soon", "overdue"}
    outbox = jsonl(install.run("outbox", "--json").stdout)
    assert [m["purpose"] for m in outbox] == ["notification"]
    assert outbox[0]["to"] == ["anna@autohaus.example"]


def test_ingest_files_and_exit_code_for_unusable_input(install: Install, tmp_path: Path) -> None:
    good, junk = tmp_path / "good.eml", tmp_path / "junk.eml"
    good.write_bytes(inquiry(2))
    junk.write_bytes(b"\x00\x01 this is not a mail at all")
    result = install.run("ingest", str(good), str(junk))
    assert result.returncode == 65
    assert b"unusable input" in result.stderr
    assert len(jsonl(install.run("leads", "--json").stdout)) == 1
    assert install.run("ingest", stdin=b"").returncode == 65


def test_ingest_answers_tempfail_when_the_database_is_unreachable(tmp_path: Path) -> None:
    install = make_install(tmp_path / "inst2")
    install.config.write_text(
        install.config.read_text().replace(
            install.db_url, "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2"
        )
    )
    result = install.run("ingest", stdin=inquiry(3))
    assert result.returncode == 75, result.stderr.decode()


def test_ingest_of_a_bounce_is_stored_and_discarded(install: Install) -> None:
    assert install.run("ingest", stdin=bounce(1)).returncode == 0
    rows = jsonl(install.run("inbound", "--json").stdout)
    assert rows[0]["status"] == "discarded" and "bounce" in rows[0]["status_reason"]
    assert jsonl(install.run("leads", "--json").stdout) == []


def test_parse_prints_one_json_object_per_file(install: Install, tmp_path: Path) -> None:
    files = []
    for n, raw in enumerate([inquiry(4), b"\xff\xfe garbage", bounce(2)]):
        path = tmp_path / f"m{n}.eml"
        path.write_bytes(raw)
        files.append(str(path))
    result = install.run("parse", *files, "--json")
    assert result.returncode == 0
    objects = jsonl(result.stdout)
    assert [o["file"] for o in objects] == files
    assert objects[0]["is_lead"] and objects[0]["customer"]["email"] == "kunde4@kunden.example"
    assert objects[0]["vehicle"]["price"] == 38450.0
    assert not objects[1]["is_lead"] and not objects[2]["is_lead"]
    expected = {
        "file",
        "parser",
        "source",
        "kind",
        "is_lead",
        "customer",
        "vehicle",
        "trade_in",
        "message",
        "confidence",
        "warnings",
        "non_lead_reason",  # beyond the contract: why a mail is not a lead
    }
    assert all(set(o) == expected for o in objects)
    assert all(is_valid_source(o["source"]) and o["kind"] in KINDS for o in objects)


def test_info_names_config_and_database(install: Install) -> None:
    info = json.loads(install.run("info").stdout)
    assert info["config"] == str(install.config.resolve())
    assert info["database"]["url"].startswith("sqlite:///")
    assert info["database"]["revision"] is not None
    assert info["database"]["durability_problems"] == []


def test_settings_export_round_trips(install: Install, tmp_path: Path) -> None:
    exported = install.run("settings", "export").stdout
    assert b'addresses = ["leads@autohaus.example", "service@autohaus.example"]' in exported
    (tmp_path / "again.toml").write_bytes(exported)
    assert install.run("settings", "import", str(tmp_path / "again.toml")).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[dealer]\nadresses = []\n")
    result = install.run("settings", "import", str(bad))
    assert result.returncode == 1 and b"unknown key dealer.adresses" in result.stderr


def test_serve_receives_over_smtp_serves_web_and_stops_on_sigterm(tmp_path: Path) -> None:
    install = make_install(tmp_path / "serve", web=True)
    proc = install.start("serve")
    try:
        wait_for_port(install.smtp_port)
        wait_for_port(install.web_port)
        with smtplib.SMTP("127.0.0.1", install.smtp_port, timeout=10) as smtp:
            smtp.sendmail("form@kunden.example", [LEAD_ADDRESS], inquiry(9, name="Lena Muster"))
        deadline = time.monotonic() + 15
        leads: list[dict] = []
        while time.monotonic() < deadline and not leads:
            leads = jsonl(install.run("leads", "--json").stdout)
            time.sleep(0.2)
        assert leads and leads[0]["customer"]["name"] == "Lena Muster"
        with urllib.request.urlopen(f"http://127.0.0.1:{install.web_port}/healthz", timeout=5) as r:
            assert json.loads(r.read())["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, (install.root / "serve.log").read_text()
    assert "stopped cleanly" in (install.root / "serve.log").read_text() or code == 0


FIXTURES = Path(__file__).parent / "fixtures" / "mails"


@pytest.mark.parametrize(
    ("fixture", "name", "email", "phrase"),
    [
        (
            "website/cf7-de-utf8-qp.eml",
            "Lieselotte Müller-Lüdenscheidt",
            "l.mueller@kunden.example",
            "Probefahrt mit dem Tiguan",
        ),
        (
            "generic/outlook-cp1252-8bit.eml",
            "Jürgen Weiß",
            "j.weiss@kunden.example",
            "Grüße aus Fürth",
        ),
    ],
)
def test_fixture_mails_through_the_pipe_become_leads(
    install: Install, fixture: str, name: str, email: str, phrase: str
) -> None:
    raw = (FIXTURES / fixture).read_bytes()
    assert (
        install.run(
            "ingest", "--from", "sender@x.example", "--to", LEAD_ADDRESS, stdin=raw
        ).returncode
        == 0
    )
    [lead] = jsonl(install.run("leads", "--json").stdout)
    assert lead["customer"]["name"] == name and lead["customer"]["email"] == email
    parsed = jsonl(install.run("parse", str(FIXTURES / fixture)).stdout)[0]
    assert phrase in parsed["message"]
    [row] = jsonl(install.run("inbound", "--json").stdout)
    assert row["status"] == "processed" and row["size"] == len(raw)


def test_worker_sender_tick_and_reprocess_commands(install: Install, tmp_path: Path) -> None:
    mail = tmp_path / "a.eml"
    mail.write_bytes(inquiry(31))
    # `ingest` stores and processes; `reprocess` runs the stored mail again
    assert install.run("ingest", str(mail)).returncode == 0
    result = install.run("reprocess", "1")
    assert result.returncode == 0
    assert json.loads(result.stdout)["requeued"] == 1
    assert jsonl(install.run("inbound", "--json").stdout)[0]["status"] == "processed"
    assert len(jsonl(install.run("leads", "--json").stdout)) == 1  # no second lead
    assert json.loads(install.run("worker", "--once").stdout)["claimed"] == 0
    # no relay configured: the notification is recorded, not sent
    assert json.loads(install.run("sender", "--once").stdout)["suppressed"] == 1
    # days later, unanswered: stage 1 (no hours set: the clock runs continuously),
    # recorded but not sent; the supervisor's stage 2 counts from the moment stage 1
    # actually left (seed 002 / issue 20 #3), so it waits for a later tick
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    ticked = json.loads(install.run("tick", "--now", later).stdout)
    assert ticked["escalation"]["mails"] == {"stage1": 1}
    assert (ticked["sent"], ticked["dead"], ticked["suppressed"]) == (0, 0, 1)
    much_later = (datetime.now(UTC) + timedelta(days=6)).isoformat(timespec="seconds")
    ticked = json.loads(install.run("tick", "--now", much_later).stdout)
    assert ticked["escalation"]["mails"] == {"stage2": 1}
    assert (ticked["sent"], ticked["dead"], ticked["suppressed"]) == (0, 0, 1)
    again = json.loads(install.run("tick", "--now", "2026-12-01T09:05:00+01:00").stdout)
    assert again["escalation"]["mails"] == {} and again["suppressed"] == 0
    assert install.run("tick", "--now", "2026-12-01T09:00").returncode == 2  # no offset
    assert install.run("reprocess").returncode == 2
