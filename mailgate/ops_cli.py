"""``mailgate doctor`` and ``mailgate backup``: the operator's commands.

Kept out of :mod:`mailgate.cli` (which only registers them) so the command
line module stays a list of thin wrappers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mailgate.config import Settings


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    doctor = sub.add_parser(
        "doctor",
        parents=[common],
        help="check the deployment end to end and say what to fix",
        description="Checks database, SMTP port, relay, IMAP logins, MX, clock and disk. "
        "Exit 0 when nothing must be fixed, 1 otherwise.",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object per check")
    doctor.set_defaults(handler=cmd_doctor)
    backup = sub.add_parser(
        "backup",
        parents=[common],
        help="consistent backup of the database while mailgate runs",
        description="SQLite: online backup API, checked; PostgreSQL: pg_dump --format=custom.",
    )
    backup.add_argument(
        "-o",
        "--output",
        type=Path,
        help="backup file (default: mailgate-<UTC time>.sqlite3|.pgdump in the current folder)",
    )
    backup.set_defaults(handler=cmd_backup)


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.doctor import FAIL, format_report, run_doctor

    checks = run_doctor(settings)
    if args.json:
        for check in checks:
            print(json.dumps(check.as_dict(), ensure_ascii=False))
    else:
        print(format_report(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.backup import BackupError, backup, default_name

    target = args.output or Path(default_name(settings.database_url))
    try:
        result = backup(settings.database_url, target)
    except BackupError as exc:
        print(f"mailgate backup: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"backup": str(result.path), "size": result.size, "kind": result.kind}))
    return 0
