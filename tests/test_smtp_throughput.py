"""Throughput sanity, RELIABILITY.md G.2 row P10 (long tier).

Postfix's own load generator, ``smtp-source -s 4 -m 2000 -l 20000``, delivers to
mailgate on loopback (SQLite, ``synchronous=FULL``), with the worker and the sender
processing alongside: once to the all-in-one ``mailgate serve``, once to the split
roles (``smtpd``, ``worker``, ``sender`` as three processes, README "Deployment").
The gate is *0 errors* and every acknowledged mail stored; the rate is recorded, not
gated: the first run on a machine writes the baseline (``$MAILGATE_BASELINE_DIR``,
default ``~/.cache/mailgate``), later runs print their ratio to it, so a slowdown
shows without a flaky timing assertion.  The two figures differ because the one
process's worker and sender threads share the GIL with the listener.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailgate import db
from mailgate.models import InboundMail

from .conftest import long_tier, require_service
from .mails import LEAD_ADDRESS
from .procs import make_install, wait_for_port

SESSIONS, MESSAGES, LENGTH = 4, 2000, 20000  # the row's smtp-source -s 4 -m 2000 -l 20000
TARGET_RATE = 50.0  # msg/s, recorded against, not asserted (RELIABILITY.md P10)

pytestmark = pytest.mark.skipif(not long_tier(), reason="long tier: set MAILGATE_LONG=1")


def _smtp_source() -> str | None:
    return shutil.which("smtp-source") or (
        "/usr/sbin/smtp-source" if os.access("/usr/sbin/smtp-source", os.X_OK) else None
    )


def _record(name: str, rate: float) -> str:
    """Compare with this machine's baseline (written by the first run); return the figure's tail."""
    folder = Path(os.environ.get("MAILGATE_BASELINE_DIR", Path.home() / ".cache" / "mailgate"))
    path = folder / f"p10-{name}-baseline.json"
    if path.exists():
        baseline = json.loads(path.read_text())
        return (
            f"baseline {baseline['rate']:.1f} msg/s of {baseline['when']}, "
            f"ratio {rate / baseline['rate']:.2f}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rate": rate, "when": datetime.now(UTC).isoformat()}))
    return f"first run on this machine: baseline written to {path}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("roles", [("serve",), ("smtpd", "worker", "sender")], ids="+".join)
def test_p10_smtp_source_load_has_no_errors_and_every_mail_is_stored(
    tmp_path: Path, roles: tuple[str, ...]
) -> None:
    source = _smtp_source()
    if source is None:
        require_service("smtp-source", "Postfix's smtp-source is not installed")
        return
    install = make_install(tmp_path / "p10")
    procs = [install.start(role, log_name=f"{role}.log") for role in roles]
    try:
        wait_for_port(install.smtp_port)
        started = time.monotonic()
        result = subprocess.run(
            [
                source,
                *("-s", str(SESSIONS), "-m", str(MESSAGES), "-l", str(LENGTH)),
                *("-f", "form@kunden.example", "-t", LEAD_ADDRESS, "-M", "client.example"),
                *("-S", "P10 throughput"),
                f"127.0.0.1:{install.smtp_port}",
            ],
            capture_output=True,
            timeout=840,
        )
        seconds = time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    # smtp-source exits non-zero and complains on stderr at the first unexpected reply
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert not result.stderr.strip(), result.stderr.decode(errors="replace")

    engine = db.create_db_engine(install.db_url)
    try:
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(InboundMail))
            smallest = conn.scalar(select(func.min(InboundMail.size)))
    finally:
        engine.dispose()
    assert stored == MESSAGES  # every 250 is a stored mail, none twice
    assert smallest is not None and smallest >= LENGTH  # the whole payload, not a truncated one

    rate = MESSAGES / seconds
    verdict = "meets" if rate >= TARGET_RATE else "BELOW"
    name = "+".join(roles)
    print(
        f"FIGURE P10 {name}: smtp-source -s {SESSIONS} -m {MESSAGES} -l {LENGTH}: 0 errors, "
        f"{stored}/{MESSAGES} stored, {rate:.1f} msg/s ({verdict} the {TARGET_RATE:.0f} msg/s "
        f"target) in {seconds:.1f} s; {_record(name, rate)}"
    )
