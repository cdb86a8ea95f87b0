"""Golden SMTP transcripts (RELIABILITY.md G.2 row P9), Exim style.

``tests/fixtures/smtp/transcripts.txt`` holds ~40 scripted dialogues: ``C:``
lines are sent (consecutive ones pipelined in one write, each ending CRLF),
``S:`` lines are the exact reply lines expected back (the first block is the
greeting), ``S: <close>`` expects the server to close the connection.  In
expected lines ``{ID}`` stands for a number (the inbound id of a stored
mail) and ``{x*N}`` in any line for N times ``x``.  Each dialogue runs on
a fresh connection to a listener named ``mx.autohaus.example`` with a 1 MB
size cap; after the last reply the server must have nothing more to say (a
dialogue that does not end in ``<close>`` fails if anything else arrives).

The expected replies were recorded once and then reviewed line by line
against RFC 5321; a change in any reply is a protocol change and must be
reviewed the same way.  To re-record after a deliberate change::

    python -m tests.test_smtp_transcripts   # rewrites the S: lines, then review the diff
"""

from __future__ import annotations

import re
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings

from .conftest import DEALER_TOML
from .test_smtp import start_listener

FIXTURE = Path(__file__).parent / "fixtures" / "smtp" / "transcripts.txt"
HOSTNAME = "mx.autohaus.example"
CLOSE = "<close>"
_REPEAT = re.compile(r"\{(.)\*(\d+)\}")


@dataclass
class Dialogue:
    name: str
    steps: list[tuple[str, list[str]]] = field(default_factory=list)  # ("C"|"S", lines)


def expand(line: str) -> str:
    return _REPEAT.sub(lambda m: m[1] * int(m[2]), line)


def parse(text: str) -> list[Dialogue]:
    dialogues: list[Dialogue] = []
    for raw in text.splitlines():
        if raw.startswith("=== "):
            dialogues.append(Dialogue(raw[4:].strip()))
        elif raw[:2] in ("C:", "S:"):
            kind, line = raw[0], raw[3:] if len(raw) > 2 else ""
            steps = dialogues[-1].steps
            if steps and steps[-1][0] == kind:
                steps[-1][1].append(line)
            else:
                steps.append((kind, [line]))
        elif raw.strip() and not raw.startswith("#"):
            raise ValueError(f"bad fixture line: {raw!r}")
    return dialogues


class Reader:
    """Reads reply lines off a socket; ``None`` once the server has closed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.eof = False  # the server closed (as opposed to: it went quiet)

    def line(self) -> str | None:
        while b"\r\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self) -> list[str] | None:
        """One complete reply (all lines of a multi-line one)."""
        lines = []
        while True:
            line = self.line()
            if line is None:
                return lines or None
            lines.append(line)
            if line[3:4] != "-":
                return lines


def play(port: int, blocks: list[tuple[list[str], int]]) -> list[tuple[str, list[str]]]:
    """Send each block of client lines and read the given number of replies after it.

    Returns the transcript as seen: the greeting, each client block and the
    replies to it, then whatever the server still sent before it closed or went
    quiet, and ``<close>`` if it closed.
    """
    seen: list[tuple[str, list[str]]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        reader = Reader(sock)
        seen.append(("S", reader.reply() or [CLOSE]))
        closed = seen[-1][1] == [CLOSE]
        for lines, wanted in blocks:
            if closed:
                break
            try:
                sock.sendall(b"".join(expand(line).encode() + b"\r\n" for line in lines))
            except OSError:
                pass
            seen.append(("C", lines))
            replies: list[str] = []
            for _ in range(wanted):
                reply = reader.reply()
                if reply is None:
                    replies.append(CLOSE)
                    closed = True
                    break
                replies += reply
            if replies:
                seen.append(("S", replies))
        if not closed:
            sock.settimeout(0.3)
            rest = []
            while (line := reader.line()) is not None:
                rest.append(line)
            if reader.eof:
                rest.append(CLOSE)
            if rest:
                if seen[-1][0] == "S":
                    seen[-1][1].extend(rest)
                else:
                    seen.append(("S", rest))
    return seen


def fixture_blocks(dialogue: Dialogue) -> list[tuple[list[str], int]]:
    """Client blocks of a recorded dialogue, each with the number of replies it expects."""
    steps = dialogue.steps
    blocks = []
    for index, (kind, lines) in enumerate(steps):
        if kind == "C":
            after = steps[index + 1][1] if index + 1 < len(steps) else []
            blocks.append((lines, sum(1 for x in after if x == CLOSE or x[3:4] != "-")))
    return blocks


def command_blocks(dialogue: Dialogue) -> list[tuple[list[str], int]]:
    """For recording: one block per command, DATA content up to the dot as one block."""
    blocks: list[tuple[list[str], int]] = []
    content: list[str] | None = None
    lines = [line for kind, block in dialogue.steps if kind == "C" for line in block]
    for index, line in enumerate(lines):
        if content is not None:
            content.append(line)
            if line == ".":
                blocks.append((content, 1))
                content = None
            continue
        blocks.append(([line], 1))
        if line.upper() == "DATA" and "." in lines[index + 1 :]:
            content = []  # a DATA that is refused (503) has no content in the script
    return blocks


def matches(expected: str, actual: str) -> bool:
    pattern = re.escape(expand(expected)).replace(re.escape("{ID}"), r"\d+")
    return re.fullmatch(pattern, actual) is not None


def render(dialogue: Dialogue, seen: list[tuple[str, list[str]]]) -> str:
    out = [f"=== {dialogue.name}"]
    for kind, lines in seen:
        for line in lines:
            if kind == "S":
                line = re.sub(r"queued as \d+", "queued as {ID}", line)
            out.append(f"{kind}: {line}".rstrip() if line else f"{kind}:")
    return "\n".join(out)


def _listener_dealer(path: Path) -> sessionmaker[Session]:
    engine = db.create_db_engine(f"sqlite:///{path / 'transcripts.sqlite3'}")
    db.upgrade(engine)
    factory = db.make_session_factory(engine)
    with db.session_scope(factory) as session:
        import_settings(session, DEALER_TOML)
    return factory


@pytest.fixture(scope="module")
def golden_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    factory = _listener_dealer(tmp_path_factory.mktemp("transcripts"))
    thread, info = start_listener(factory, max_message_size=1024 * 1024, hostname=HOSTNAME)
    yield info.port
    thread.stop()
    factory.kw["bind"].dispose()


def test_p9_golden_transcripts_match_100_percent(golden_port: int) -> None:
    """P9: ~40 scripted dialogues compared with the reviewed expected replies.

    Target: 100 % of dialogues match line for line (greeting, every reply, the
    close).
    """
    dialogues = parse(FIXTURE.read_text())
    assert len(dialogues) >= 40
    failures = []
    for dialogue in dialogues:
        seen = play(golden_port, fixture_blocks(dialogue))
        expected = [(k, [expand(x) for x in lines]) for k, lines in dialogue.steps]
        ok = len(seen) == len(expected) and all(
            k1 == k2
            and len(l1) == len(l2)
            and all(
                matches(e, a) if k1 == "S" else e == expand(a) for e, a in zip(l2, l1, strict=True)
            )
            for (k1, l1), (k2, l2) in zip(seen, expected, strict=True)
        )
        if not ok:
            failures.append(
                f"{render(dialogue, dialogue.steps)}\n--- seen:\n{render(dialogue, seen)}"
            )
    matched = len(dialogues) - len(failures)
    print(f"FIGURE P9 golden transcripts matching: {matched}/{len(dialogues)}")
    assert not failures, "\n\n".join(failures)


def regenerate() -> None:
    """Re-record every dialogue's replies into the fixture (then review the diff!)."""
    dialogues = parse(FIXTURE.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        factory = _listener_dealer(Path(tmp))
        thread, info = start_listener(factory, max_message_size=1024 * 1024, hostname=HOSTNAME)
        try:
            blocks = []
            for dialogue in dialogues:
                recorded = any(kind == "S" for kind, _ in dialogue.steps)
                plan = fixture_blocks(dialogue) if recorded else command_blocks(dialogue)
                blocks.append(render(dialogue, play(info.port, plan)))
        finally:
            thread.stop()
    header = [line for line in FIXTURE.read_text().splitlines() if line.startswith("#")]
    FIXTURE.write_text("\n".join(header) + "\n\n" + "\n\n".join(blocks) + "\n")


if __name__ == "__main__":
    regenerate()
