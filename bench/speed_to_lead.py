"""Speed to lead: from an inquiry's 250 to its notification's arrival at the relay (issue 18).

What users run: one ``mailgate serve`` (default poll intervals), a real SMTP
relay (an aiosmtpd sink in this process, so the 250 and the arrival are
stamped on one clock), the dealer open around the clock.  Two phases in one run:

(1) steady: ``--rate`` inquiries a second for ``--seconds``;
(2) burst: ``--burst`` inquiries over 10 connections as fast as they are taken.

Printed per phase: p50, p99 and max, and as ratios: p99 against the target
(300 ms) and against the baseline of the same run, the relay hop alone (this
client handing a mail straight to the relay: what no mail server can beat).

    python bench/speed_to_lead.py [--rate 10] [--seconds 10] [--burst 200]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import _drop, _scratch_database  # noqa: E402
from tests.lead_timing import (  # noqa: E402
    Latencies,
    RelaySink,
    install_with_relay,
    latencies,
    relay_hop,
    send_burst,
    send_steady,
    wait_for_arrivals,
)
from tests.procs import wait_for_port  # noqa: E402

TARGET_P99 = 0.300


def _figures(lat: Latencies) -> dict[str, Any]:
    return {
        "p50_ms": round(lat.p(50) * 1000, 1),
        "p99_ms": round(lat.p(99) * 1000, 1),
        "max_ms": round(lat.max * 1000, 1),
        "mails": len(lat.values),
        "missing": lat.missing,
    }


def measure(args: argparse.Namespace, workdir: Path, db_url: str | None) -> dict[str, Any]:
    with RelaySink() as sink:
        install = install_with_relay(workdir / "install", sink.port, db_url)
        proc = install.start("serve")
        try:
            wait_for_port(install.smtp_port, 60)
            warm = [1, 2, 3]
            send_steady(install.smtp_port, warm, args.rate)
            wait_for_arrivals(sink, warm, 30)
            hop = relay_hop(sink.port, 50)
            steady_numbers = list(range(100, 100 + int(args.rate * args.seconds)))
            sent = send_steady(install.smtp_port, steady_numbers, args.rate)
            steady = latencies(sent, wait_for_arrivals(sink, steady_numbers, 60))
            steady_load = os.getloadavg()[0]
            burst_numbers = list(range(100_000, 100_000 + args.burst))
            started = time.monotonic()
            burst_sent = send_burst(install.smtp_port, burst_numbers)
            acked = time.monotonic() - started
            burst = latencies(burst_sent, wait_for_arrivals(sink, burst_numbers, 300))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return {
        "database": "postgresql" if db_url else "sqlite",
        "rate": args.rate,
        "relay_hop": _figures(hop),
        "steady": _figures(steady) | {"load_average": round(steady_load, 2)},
        "burst": _figures(burst)
        | {"acknowledged_s": round(acked, 2), "load_average": round(os.getloadavg()[0], 2)},
        "refused": len(sent.refused) + len(burst_sent.refused),
    }


def report(result: dict[str, Any]) -> None:
    hop = result["relay_hop"]
    print(
        f"speed to lead: mailgate serve on {result['database']}, 250 -> arrival at the relay "
        f"(baseline: the relay hop alone, p50 {hop['p50_ms']:.1f} ms p99 {hop['p99_ms']:.1f} ms)"
    )
    print(f"{'':34}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'p99/target':>12}{'p99/hop':>9}")
    for key, label in (
        ("steady", f"steady {result['rate']:.0f} mails/s"),
        ("burst", f"burst of {result['burst']['mails']}"),
    ):
        row = result[key]
        print(
            f"{label:34}{row['p50_ms']:>9.0f}{row['p99_ms']:>9.0f}{row['max_ms']:>9.0f}"
            f"{row['p99_ms'] / (TARGET_P99 * 1000):>11.2f}x"
            f"{row['p99_ms'] / max(hop['p99_ms'], 0.1):>8.0f}x"
            f"  ({row['missing']} missing, load average {row['load_average']:.1f})"
        )
    verdict = "met" if result["steady"]["p99_ms"] <= TARGET_P99 * 1000 else "NOT met"
    print(f"target (steady p99 <= {TARGET_P99 * 1000:.0f} ms): {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--database-url", help="a PostgreSQL server: a scratch database on it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailgate-speed-") as tmp:
        scratch = _scratch_database(args.database_url) if args.database_url else None
        try:
            result = measure(args, Path(tmp), scratch)
        finally:
            if scratch:
                _drop(args.database_url, scratch)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
