"""Speed to lead (issue 18, item 3): from an inquiry's 250 to the notification at the relay.

A real ``mailgate serve`` (default poll intervals of 2 s, so only the wake-ups
can make it fast) with a real SMTP relay (aiosmtpd in this process, stamping
arrivals on the client's clock), the dealer open around the clock:

* steady: 10 inquiries a second for 5 s.  Target p99 <= 300 ms; asserted with
  a margin for a loaded 2-core CI machine (p99 < 600 ms, none later than 1.5 s).
  Before the wake-ups, p50 was 1.07 s and p99 1.93 s (the sender polled every 2 s);
* burst: 100 inquiries over 10 connections.  Intake comes first, so these
  notifications wait for the burst; asserted only that every one arrives.

On SQLite and on PostgreSQL (where the sender is woken by LISTEN/NOTIFY too).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .lead_timing import (
    RelaySink,
    install_with_relay,
    latencies,
    relay_hop,
    send_burst,
    send_steady,
    wait_for_arrivals,
)
from .procs import wait_for_port

RATE = 10.0  # inquiries per second
STEADY = 50
BURST = 100
TARGET_P99 = 0.300
ASSERTED_P99 = 2 * TARGET_P99  # margin for a loaded CI machine (see the module docstring)
ASSERTED_MAX = 1.5


@pytest.mark.timeout(300)
@pytest.mark.run_alone  # asserts latencies: not beside other tests
def test_notification_reaches_the_relay_within_300_ms(tmp_path: Path, db_url: str) -> None:
    with RelaySink() as sink:
        install = install_with_relay(tmp_path / "speed", sink.port, db_url)
        proc = install.start("serve")
        try:
            wait_for_port(install.smtp_port, 60)
            warm = list(range(1, 4))  # first mails pay for connections and caches
            send_steady(install.smtp_port, warm, RATE)
            assert len(wait_for_arrivals(sink, warm, 30)) >= len(warm), "warm-up never arrived"

            steady_numbers = list(range(100, 100 + STEADY))
            sent = send_steady(install.smtp_port, steady_numbers, RATE)
            steady = latencies(sent, wait_for_arrivals(sink, steady_numbers, 30))
            load = os.getloadavg()[0]

            burst_numbers = list(range(1000, 1000 + BURST))
            started = time.monotonic()
            burst_sent = send_burst(install.smtp_port, burst_numbers)
            acked_in = time.monotonic() - started
            burst = latencies(burst_sent, wait_for_arrivals(sink, burst_numbers, 120))
            hop = relay_hop(sink.port)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0

    backend = db_url.split(":")[0]
    print(
        f"FIGURE speed to lead ({backend}, serve, relay aiosmtpd): steady {RATE:.0f} mails/s: "
        f"{steady.line()}, target p99 <= {TARGET_P99 * 1000:.0f} ms; burst of {BURST} over 10 "
        f"connections (acknowledged in {acked_in:.1f} s): {burst.line()}; the relay hop alone "
        f"p50 {hop.p(50) * 1000:.1f} ms; load average {load:.1f}"
    )
    assert not sent.refused and not burst_sent.refused, (sent.refused, burst_sent.refused)
    assert steady.missing == 0 and len(steady.values) == STEADY, steady.line()
    assert burst.missing == 0 and len(burst.values) == BURST, burst.line()
    assert steady.p(99) < ASSERTED_P99, steady.line()
    assert steady.max < ASSERTED_MAX, steady.line()
