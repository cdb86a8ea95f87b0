"""The command line is quiet and honest (issue 22, item 4).

Why: every command that opened the database printed about 20 lines of Alembic
INFO logging, burying the one warning that matters; ``--help`` printed a
docstring's reStructuredText markup; ``mailgate info`` and mailgate.example.toml
disagreed about the relay defaults.  These tests run the real CLI as a process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from mailgate import config
from mailgate.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "mailgate.example.toml"
# reStructuredText / Sphinx markup that --help would print literally.
MARKUP = ("``", ":func:", ":class:", ":data:", ":mod:", ":meth:")


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m mailgate ARGS`` on a fresh SQLite installation in ``root`` at INFO level."""
    cfg = root / "mailgate.toml"
    if not cfg.exists():
        cfg.write_text(
            f'[database]\nurl = "sqlite:///{root / "mailgate.sqlite3"}"\n[log]\nlevel = "INFO"\n'
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["MAILGATE_CONFIG"] = str(cfg)
    return subprocess.run(
        [sys.executable, "-m", "mailgate", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
    )


def test_alembic_info_lines_only_with_verbose(tmp_path: Path) -> None:
    quiet = run_cli(tmp_path, "db", "upgrade")
    assert quiet.returncode == 0, quiet.stderr
    assert "alembic" not in quiet.stderr
    assert quiet.stderr.strip().splitlines() == [
        quiet.stderr.strip().splitlines()[-1]
    ] and quiet.stderr.startswith("database at revision ")

    (tmp_path / "mailgate.sqlite3").unlink()
    verbose = run_cli(tmp_path, "db", "upgrade", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO alembic." in verbose.stderr


def test_mailgates_own_info_lines_stay(tmp_path: Path) -> None:
    """Only the library is quieted: mailgate's own INFO lines still reach the log."""
    import io
    import logging

    from mailgate.logs import configure_logging

    stream = io.StringIO()
    try:
        configure_logging("INFO", "text", stream)
        logging.getLogger("alembic.runtime.plugins").info("setup plugin x")
        logging.getLogger("alembic.runtime.migration").warning("a real problem")
        logging.getLogger("mailgate.worker").info("processed 3 mails")
    finally:
        configure_logging("WARNING", "text")
    text = stream.getvalue()
    assert "setup plugin" not in text
    assert "a real problem" in text and "processed 3 mails" in text


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and every sub-(sub-)command parser under it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += _parsers(sub)
    return found


def test_help_texts_carry_no_markup() -> None:
    everything = _parsers(build_parser())
    assert len(everything) > 25  # every command and subcommand was reached
    for parser in everything:
        text = parser.format_help()
        for mark in MARKUP:
            assert mark not in text, f"{parser.prog} --help shows {mark!r}"
    top = run_cli_help()
    assert "dealership" in top and "``" not in top


def run_cli_help() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mailgate", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_info_shows_the_defaults_the_code_uses(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "info")
    assert result.returncode == 0, result.stderr
    assert "alembic" not in result.stderr
    info = json.loads(result.stdout)
    relay = config.RelaySettings()
    assert info["relay"]["port"] == relay.port == 25
    assert info["relay"]["security"] == relay.security == "none"
    assert info["effective"]["relay"].startswith("none: outgoing mails are recorded")
    assert info["effective"]["smtp"].startswith("127.0.0.1:2525, greeting as ")
    for name, cls in config._SECTION_CLASSES.items():
        for f in fields(cls):
            if name == "database" and f.name == "url":
                continue
            assert info[name][f.name] == _jsonish(f.default), (name, f.name)


def test_info_with_the_example_file_shows_the_example_values(tmp_path: Path) -> None:
    (tmp_path / "mailgate.toml").write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(
            'url = ""', f'url = "sqlite:///{tmp_path / "mailgate.sqlite3"}"', 1
        )
    )
    result = run_cli(tmp_path, "info")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["relay"]["port"], info["relay"]["security"]) == (587, "starttls")
    assert info["effective"]["relay"].startswith("none:")  # host is empty in the example


@pytest.mark.parametrize("section", sorted(config._SECTION_CLASSES))
def test_example_says_so_where_it_differs_from_the_built_in_default(section: str) -> None:
    """A key the example sets to something other than the default has a comment saying so."""
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    defaults = {f.name: f.default for f in fields(config._SECTION_CLASSES[section])}
    for key, value in example.get(section, {}).items():
        assert key in defaults, f"[{section}] {key} is not a config key"
        default = _jsonish(defaults[key])
        if value == default or (isinstance(default, float) and value == int(default)):
            continue
        at = next(
            i
            for i, line in enumerate(lines)
            if line.startswith(f"{key} ") and _section_of(lines, i) == section
        )
        block = "\n".join(lines[max(0, at - 4) : at + 1])
        assert "built-in default" in block and str(default) in block, (section, key)


def _section_of(lines: list[str], index: int) -> str:
    for line in reversed(lines[: index + 1]):
        if line.startswith("[") and line.rstrip().endswith("]"):
            return line.strip("[] ")
    return ""


def _jsonish(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def test_the_demo_summary_is_one_readable_line() -> None:
    from mailgate.cli import demo_summary

    assert demo_summary({"discarded": 2, "processed": 10}) == (
        "12 demo mails stored: 10 became leads, "
        "2 discarded (bounces and auto-replies are recognised)"
    )
    assert demo_summary({"received": 1}) == "1 demo mails stored: 1 received"


def test_settings_export_of_an_empty_database_is_a_commented_template(tmp_path: Path) -> None:
    """Nothing imported yet: every key with its default and what it means, valid TOML."""
    from mailgate import dealer_settings

    result = run_cli(tmp_path, "settings", "export")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    text = result.stdout
    document = tomllib.loads(text)
    dealer_settings.validate(document)
    for section, keys in dealer_settings.SCHEMA.items():
        assert list(document[section]) == list(keys), section
    lines = text.splitlines()
    addresses = lines.index("addresses = []")
    assert lines[addresses - 1].startswith("# ") and "550" in "\n".join(lines[addresses - 3 :])
    assert "# [[users]]" in lines and '# role = "admin"' in lines

    (tmp_path / "dealer.toml").write_text(
        '[dealer]\naddresses = ["leads@autohaus.example"]\n'
        '[[users]]\nemail = "anna@autohaus.example"\n'
    )
    assert run_cli(tmp_path, "settings", "import", "dealer.toml").returncode == 0
    stored = run_cli(tmp_path, "settings", "export").stdout
    assert "leads@autohaus.example" in stored and "# " not in stored


def test_serve_at_the_default_level_logs_one_line_per_received_mail(tmp_path: Path) -> None:
    """Not aiosmtpd's eight lines per mail (every command, the customer's addresses).

    Why: at the default INFO level they took a third of ``serve``'s intake during a
    burst (issue 18) and wrote envelope addresses into the log for every mail.
    """
    import smtplib

    from tests.intake_load import generate_mails, stop
    from tests.procs import make_install, wait_for_port

    install = make_install(tmp_path / "install")
    install.config.write_text(
        install.config.read_text().replace('level = "WARNING"', 'level = "INFO"')
    )
    proc = install.start("smtpd")
    try:
        wait_for_port(install.smtp_port, 60)
        with smtplib.SMTP("127.0.0.1", install.smtp_port, timeout=30) as smtp:
            for raw in generate_mails(3):
                smtp.sendmail("kundin.privat@kunden.example", ["leads@autohaus.example"], raw)
    finally:
        stop(proc)
    log = (install.root / "serve.log").read_text(encoding="utf-8")
    assert log.count("stored inbound") == 3
    assert "kundin.privat@kunden.example" not in log
    assert "mail.log" not in log and "MAIL FROM" not in log
