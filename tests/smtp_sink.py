"""Postfix's ``smtp-sink`` as a misbehaving relay (RELIABILITY.md rows O1-O3).

The sink throws mails away after answering, or misbehaves on command: ``-r`` /
``-f`` answer 4xx / 5xx to the named commands, ``-Q`` answers 421 and hangs up,
``-q`` hangs up without a word, ``-W cmd:delay`` answers late.  With ``-d``
every transaction the sink received (also the ones it then dropped) is dumped
to a file, which is what the tests count duplicates in: what reached the relay,
not what mailgate believes it sent.
"""

from __future__ import annotations

import email
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .conftest import free_port, require_service
from .procs import wait_for_port

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


@dataclass
class SmtpSink:
    """One running ``smtp-sink`` process; :meth:`stop` ends it."""

    port: int
    dumps: Path
    process: subprocess.Popen[bytes]

    def messages(self) -> list[email.message.Message]:
        """Every transaction the sink received DATA for (dump files, oldest first)."""
        found = []
        for path in sorted(self.dumps.iterdir()):
            if path.is_file():
                found.append(email.message_from_bytes(path.read_bytes()))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.dumps.is_symlink():
            shutil.rmtree(self.dumps.resolve(), ignore_errors=True)


def start_sink(dumps: Path, faults: Sequence[str] = ()) -> SmtpSink:
    """Start ``smtp-sink`` on a free loopback port with the given fault options.

    Run as root (CI), smtp-sink insists on dropping privileges (``-u``), and
    ``nobody`` cannot enter pytest's private tmp_path: the dumps then go to a
    world-writable directory of their own, ``dumps`` becomes a link to it and
    :meth:`SmtpSink.stop` removes it.
    """
    if not os.access(SMTP_SINK, os.X_OK):
        require_service(
            "smtp-sink", "Postfix's smtp-sink is not installed (apt-get install postfix)"
        )
    command = [SMTP_SINK]
    if os.geteuid() == 0:
        shared = Path(tempfile.mkdtemp(prefix="mailgate-smtp-sink-"))
        shared.chmod(0o777)
        dumps.symlink_to(shared, target_is_directory=True)
        command += ["-u", "nobody"]
    else:
        dumps.mkdir(parents=True)
    # %s (epoch seconds) + the sink's random suffix: names sort by arrival second.
    command += ["-d", f"{dumps.resolve()}/%s.", *faults]
    port = free_port()
    command += [f"127.0.0.1:{port}", "64"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=10)
    except TimeoutError:
        process.kill()
        raise AssertionError(f"smtp-sink did not start: {process.communicate()[1]!r}") from None
    return SmtpSink(port, dumps, process)
