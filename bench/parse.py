"""Parse benchmark: ``mailgate parse`` logic against the bare standard library.

One run, one corpus: the golden fixtures in ``tests/fixtures/mails`` (every
source, encoding and pitfall) plus generated 3-20 KB inquiries (plain, QP and
base64 bodies), shuffled.  Measured on exactly the same bytes:

(a) bare stdlib: ``email.message_from_bytes(policy=default)`` + ``get_body()``
    + ``get_content()`` — the least any parser must do;
(b) mailgate: ``parse_raw`` (shape caps, MIME load, non-lead check, forward
    unwrapping, registry pick, source parser, finalize);
(c) mail-parser (the library the design card names): ``parse_from_bytes`` +
    its ``text_plain``/``text_html`` — measured to justify not building on it.

Prints mails/s (median of 3 rounds) and the ratio b/a (target >= 0.40).

    python bench/parse.py [--generated 1500] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import generate_mails  # noqa: E402

from mailgate.parsers import parse_raw  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mails"


def corpus(generated: int, seed: int = 11) -> list[bytes]:
    """Fixtures (repeated to weigh as much as the generated part) plus generated mails."""
    fixtures = [p.read_bytes() for p in sorted(FIXTURES.glob("*/*.eml"))]
    mails = generate_mails(generated, seed=seed)
    if fixtures:
        mails += fixtures * max(1, generated // len(fixtures))
    random.Random(seed).shuffle(mails)
    return mails


def bare_stdlib(raw: bytes) -> None:
    msg = message_from_bytes(raw, policy=policy.default)
    try:
        body = msg.get_body(("plain", "html"))
        if body is not None:
            body.get_content()
    except (LookupError, ValueError, AttributeError):
        pass  # the baseline may give up on a broken mail; mailgate may not


def mailgate_parse(raw: bytes) -> None:
    parse_raw(raw)


def mail_parser(raw: bytes) -> None:
    import mailparser

    try:
        parsed = mailparser.parse_from_bytes(raw)
        _ = parsed.text_plain, parsed.text_html
    except Exception:  # noqa: BLE001 - counted as done: we measure speed, not robustness
        pass


def rate(func: Callable[[bytes], None], mails: list[bytes], rounds: int = 3) -> float:
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in mails:
            func(raw)
        results.append(len(mails) / (time.perf_counter() - started))
    return statistics.median(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=1500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    mails = corpus(args.generated)
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.CRITICAL)  # mail-parser logs every defect it meets
    stdlib = rate(bare_stdlib, mails)
    ours = rate(mailgate_parse, mails)
    theirs = rate(mail_parser, mails)
    figures = {
        "mails": len(mails),
        "stdlib_per_s": round(stdlib, 1),
        "mailgate_per_s": round(ours, 1),
        "mail_parser_per_s": round(theirs, 1),
        "mailgate_vs_stdlib": round(ours / stdlib, 3),
        "mail_parser_vs_stdlib": round(theirs / stdlib, 3),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"corpus: {len(mails)} mails (fixtures + generated)")
        print(f"(a) bare stdlib parse + get_body : {stdlib:8.1f} mails/s")
        print(f"(b) mailgate parse_raw           : {ours:8.1f} mails/s")
        print(f"(c) mail-parser parse_from_bytes : {theirs:8.1f} mails/s")
        print(f"ratio b/a: {ours / stdlib:.2f} (target >= 0.40); c/a: {theirs / stdlib:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
