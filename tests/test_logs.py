"""Structured logs: one JSON object per line, with the inbound id on every line about a mail."""

from __future__ import annotations

import io
import json
import logging
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailgate import pipeline
from mailgate.config import Settings, SmtpSettings
from mailgate.ingest.smtp import IntakeHandler, SmtpThread
from mailgate.ingest.store import store_raw
from mailgate.logs import InboundIdFilter, JsonFormatter, configure_logging, inbound_context
from mailgate.worker import process_pending

from .mails import LEAD_ADDRESS, inquiry


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """JSON log lines of the ``mailgate`` loggers into a buffer (pytest's own logging kept)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(InboundIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("mailgate")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def parsed(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_the_inbound_id(
    json_lines: io.StringIO,
) -> None:
    log = logging.getLogger("mailgate.test")
    log.info("before")
    with inbound_context(42):
        log.warning("about mail %d", 42)
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            log.exception("failed")
    log.info("named", extra={"inbound_id": 7, "peer": ("127.0.0.1", 25)})
    lines = parsed(json_lines)
    assert [line["message"] for line in lines] == ["before", "about mail 42", "failed", "named"]
    assert "inbound_id" not in lines[0]
    assert lines[1]["inbound_id"] == 42 and lines[2]["inbound_id"] == 42
    assert lines[3]["inbound_id"] == 7 and lines[3]["peer"] == ["127.0.0.1", 25]
    assert "ValueError: boom" in lines[2]["exc_info"]  # the traceback stays on its line
    assert len(json_lines.getvalue().splitlines()) == 4
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert line["time"].endswith("+00:00") and line["logger"] == "mailgate.test"


def test_configure_logging_text_and_json() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        text, as_json = io.StringIO(), io.StringIO()
        configure_logging("INFO", "text", text)
        with inbound_context(5):
            logging.getLogger("mailgate.x").info("hello")
        configure_logging("WARNING", "json", as_json)
        logging.getLogger("mailgate.x").info("dropped: below WARNING")
        logging.getLogger("mailgate.x").warning("kept")
        assert " INFO mailgate.x [inbound 5]: hello" in text.getvalue()
        assert [line["message"] for line in parsed(as_json)] == ["kept"]
        with pytest.raises(ValueError):
            configure_logging("INFO", "xml")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_worker_lines_about_a_mail_carry_its_inbound_id(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, json_lines: io.StringIO
) -> None:
    """A pipeline stage's log line and the worker's failure line both name the mail."""
    mail_id = store_raw(
        dealer, inquiry(1), channel="smtp", envelope_to=[LEAD_ADDRESS], envelope_from=None
    ).id

    def noisy(job: pipeline.Job) -> None:
        logging.getLogger("mailgate.pipeline").warning("looking at this mail")

    def broken(job: pipeline.Job) -> None:
        logging.getLogger("mailgate.pipeline").warning("about to fail")
        raise KeyError("bug")

    monkeypatch.setattr("mailgate.worker.PREPARE_STAGES", (noisy, *pipeline.PREPARE_STAGES))
    monkeypatch.setattr("mailgate.worker.DB_STAGES", (broken,))
    process_pending(dealer, Settings())
    about = {line["message"]: line for line in parsed(json_lines)}
    assert about["looking at this mail"]["inbound_id"] == mail_id
    assert about["about to fail"]["inbound_id"] == mail_id
    failed = f"inbound {mail_id} failed: KeyError: 'bug'"
    assert about[failed]["inbound_id"] == mail_id and about[failed]["level"] == "ERROR"


def test_smtp_stored_line_carries_the_inbound_id_of_the_250(
    dealer: sessionmaker[Session], json_lines: io.StringIO
) -> None:
    settings = SmtpSettings(port=0)
    thread = SmtpThread(IntakeHandler(dealer, settings), settings).start()
    try:
        with smtplib.SMTP("127.0.0.1", thread.port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("form@kunden.example")
            smtp.rcpt(LEAD_ADDRESS)
            code, reply = smtp.data(inquiry(2))
    finally:
        thread.stop()
    assert code == 250
    queued = int(reply.decode().rsplit(" ", 1)[1])
    stored = [line for line in parsed(json_lines) if line["message"].startswith("stored inbound")]
    assert len(stored) == 1 and stored[0]["inbound_id"] == queued
    assert stored[0]["logger"] == "mailgate.smtp"


def test_log_format_json_from_the_command_line_and_the_settings(tmp_path: Path) -> None:
    """``--log-format json`` and ``[log] format = "json"``: every log line is a JSON object."""
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "m.sqlite3"}"\n')
    env = dict(os.environ, MAILGATE_CONFIG=str(config), MAILGATE_LOG__LEVEL="INFO")
    env.pop("MAILGATE_DATABASE__URL", None)
    # --verbose: Alembic's INFO lines (quiet by default) are the sample of logged lines.
    command = [sys.executable, "-m", "mailgate", "db", "upgrade", "--verbose"]
    for extra, extra_env in (
        ([], {"MAILGATE_LOG__FORMAT": "json"}),
        (["--log-format", "json"], {}),
    ):
        result = subprocess.run(
            command + extra, env=env | extra_env, capture_output=True, timeout=60
        )
        assert result.returncode == 0, result.stderr.decode()
        lines = result.stderr.decode().splitlines()
        logged = [json.loads(line) for line in lines if line.startswith("{")]
        assert logged and all(line["level"] == "INFO" for line in logged)
        assert [line for line in lines if not line.startswith("{")] == [
            "database at revision " + lines[-1].rsplit(" ", 1)[1]  # the command's own output
        ]
    bad = subprocess.run(
        command, env=env | {"MAILGATE_LOG__FORMAT": "xml"}, capture_output=True, timeout=60
    )
    assert bad.returncode == 78 and b'[log] format must be "text" or "json"' in bad.stderr
