"""IMAP intake benchmark: draining a backlog from a real, local Dovecot.

One run, the same generated mails in both measurements:

(a) baseline: a bare imapclient loop over the same folder — UID SEARCH, then
    ``UID FETCH (BODY.PEEK[] INTERNALDATE)`` in batches of 100 and nothing else (no database,
    no flags): the most any poller can get out of this server;
(b) mailgate's poller (``fetch_mailbox``): per batch a size check, the fetch,
    one committed transaction with mails + import keys (SQLite, WAL,
    synchronous=FULL), ``\\Seen`` flags and the cursor.

Prints mails/s for both and their ratio.  Needs root and Dovecot (see
tests/dovecot.py).

    python bench/imap.py [--mails 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from mailgate import db  # noqa: E402
from mailgate.imap.fetch import fetch_mailbox  # noqa: E402
from mailgate.imap.rules import parse_after_import  # noqa: E402
from mailgate.imap.settings import Mailbox  # noqa: E402
from mailgate.imap.tuning import Tuning  # noqa: E402
from tests.dovecot import dovecot_available, start_dovecot  # noqa: E402
from tests.mails import inquiry  # noqa: E402


def baseline(port: int, password: str, expected: int) -> float:
    started = time.perf_counter()
    client = IMAPClient("127.0.0.1", port, ssl=False)
    client.login("anna", password)
    client.select_folder("INBOX", readonly=True)
    uids = sorted(client.search(["UID", "1:*"]))
    fetched = 0
    for start in range(0, len(uids), 100):
        fetched += len(client.fetch(uids[start : start + 100], ["BODY.PEEK[]", "INTERNALDATE"]))
    client.logout()
    assert fetched == expected, (fetched, expected)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reason = dovecot_available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="mailgate-bench-imap-"))
    server = start_dovecot(root)  # its parent must be reachable by the dovecot user
    try:
        template = inquiry(0)
        for n in range(args.mails):
            server.deliver("anna", template.replace(b"inquiry-0@", b"inquiry-%d@" % n))
        base_seconds = baseline(server.port, server.users["anna"], args.mails)
        url = f"sqlite:///{root / 'bench.sqlite3'}"
        engine = db.create_db_engine(url)
        db.upgrade(engine)
        factory = db.make_session_factory(engine)
        mailbox = Mailbox(
            name="bench",
            host="127.0.0.1",
            port=server.port,
            security="none",
            username="anna",
            password=server.users["anna"],
            after_import=parse_after_import("flag"),
        )
        started = time.perf_counter()
        report = fetch_mailbox(factory, mailbox, Tuning(max_per_pass=500))
        seconds = time.perf_counter() - started
        engine.dispose()
        assert report.error is None and report.imported == args.mails, report
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    figures = {
        "mails": args.mails,
        "baseline_mails_per_s": round(args.mails / base_seconds, 1),
        "mailgate_mails_per_s": round(args.mails / seconds, 1),
        "ratio": round(base_seconds / seconds, 3),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"backlog of {args.mails} mails from a local Dovecot")
        print(f"  (a) bare imapclient fetch:  {figures['baseline_mails_per_s']:8.1f} mails/s")
        print(f"  (b) mailgate poller:        {figures['mailgate_mails_per_s']:8.1f} mails/s")
        print(f"  ratio (b)/(a):              {figures['ratio']:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
