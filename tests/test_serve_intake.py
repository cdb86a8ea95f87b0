"""Intake first (issue 18, item 2): ``mailgate serve`` takes a burst near the durable ceiling.

The ceiling is a bare aiosmtpd handler committing raw bytes to SQLite
(``synchronous=FULL``); the candidate is the real ``mailgate serve`` (listener,
worker, sender, web UI in one process, as the README starts it) with its worker
processing the backlog.  Same mails, same client, 10 connections, measured
alternately in this run (tests/intake_load.py).  Before the worker stepped
aside for intake, serve took 0.30-0.37x of the ceiling.

Target >= 0.8x; asserted >= 0.6x, a margin for a loaded 2-core CI machine,
where the ceiling's fsyncs and the service's CPU drift apart.  Afterwards the
worker must drain the backlog: every mail processed, at a rate printed in the
FIGURE line beside the worker alone on the same mails in this run (both parse
in-process: a service starts its parser processes after 30 s).  Asserted: at
least half the worker-alone rate (the sender and the web UI share the
process); a worker still stepping aside after the burst would miss it by far.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest

from .intake_load import burst_against, generate_mails, measure_bare, stop, worker_alone
from .procs import make_install, wait_for_port

MAILS = 400
CONNECTIONS = 10
ROUNDS = 2
TARGET_RATIO = 0.8
ASSERTED_RATIO = 0.6
DRAIN_SHARE = 0.5  # of the worker alone


@pytest.mark.timeout(600)
@pytest.mark.run_alone  # compares throughput: not beside other tests
def test_serve_acknowledges_a_burst_near_the_durable_ceiling(tmp_path: Path) -> None:
    mails = generate_mails(MAILS)
    ceilings, bursts, alone = [], [], []
    for n in range(ROUNDS):
        alone.append(worker_alone(mails[:200], tmp_path))
        ceilings.append(measure_bare(mails, CONNECTIONS, tmp_path)[0])
        install = make_install(tmp_path / f"serve-{n}", web=True).at_default_log_level()
        proc = install.start("serve")
        try:
            wait_for_port(install.smtp_port, 60)
            wait_for_port(install.web_port, 60)
            bursts.append(burst_against(install.smtp_port, install.db_url, mails, CONNECTIONS))
        finally:
            assert stop(proc) == 0
    ceiling = statistics.median(ceilings)
    rate = statistics.median(b.mails_per_s for b in bursts)
    drain = statistics.median(b.drain_rate for b in bursts)
    worker = statistics.median(alone)
    ratio = rate / ceiling
    print(
        f"FIGURE intake first (sqlite, serve, {MAILS} mails over {CONNECTIONS} connections, worker "
        f"running): {rate:.0f} mails/s against a ceiling of {ceiling:.0f} = {ratio:.2f}x (target "
        f"{TARGET_RATIO}x); runs {[round(b.mails_per_s) for b in bursts]} vs "
        f"{[round(c) for c in ceilings]}; left at the last 250 "
        f"{[b.backlog_at_end for b in bursts]}, drained at "
        f"{[round(b.drain_rate) for b in bursts]} mails/s = {drain / worker:.2f}x the worker "
        f"alone ({[round(w) for w in alone]} mails/s); load average {os.getloadavg()[0]:.1f}"
    )
    assert ratio >= ASSERTED_RATIO, f"serve took {ratio:.2f}x of the durable ceiling"
    assert drain >= DRAIN_SHARE * worker, f"drained at {drain:.0f}, worker alone {worker:.0f}/s"
