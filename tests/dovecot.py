"""A throw-away, unprivileged Dovecot IMAP server for tests.

Follows ../shared/recipes/dovecot-test-server.md: its own config, base and
state directories and maildirs in a temp dir, listening on a free loopback
port; mail is owned by the ``dovecot`` user because Dovecot refuses root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .conftest import free_port

USERS = {"anna": "geheim-anna", "ben": "geheim-ben"}


@dataclass
class Dovecot:
    """One running Dovecot master; ``stop``/``start`` keep port and mail."""

    root: Path
    port: int
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "master.pid"

    def write_config(self) -> None:
        account = pwd.getpwnam("dovecot")
        lines = []
        for user, password in self.users.items():
            home = self.root / "home" / user
            (home / "Maildir").mkdir(parents=True, exist_ok=True)
            lines.append(f"{user}:{{PLAIN}}{password}:{account.pw_uid}:{account.pw_gid}::{home}")
        passwd = self.root / "passwd"
        passwd.write_text("\n".join(lines) + "\n")
        for path in [self.root, *self.root.rglob("*")]:
            if path.is_relative_to(self.root / "home") or path == self.root / "home":
                os.chown(path, account.pw_uid, account.pw_gid)
        self.root.chmod(0o755)
        self.config.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
        )

    def start(self) -> None:
        # No captured pipes: the daemon would inherit them and run() would wait forever.
        result = subprocess.run(
            [dovecot_binary() or "dovecot", "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"dovecot failed to start: {self.log()}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"dovecot did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """Stop the master and all its children: every client connection is cut.

        Dovecot's master alone is not enough; its ``imap`` processes outlive it
        and keep serving connected clients, which is not what a restart is.
        """
        if not self.pid_file.exists():
            return
        pid = int(self.pid_file.read_text().split()[0])
        children = _descendants(pid)
        for target, sig in [(pid, signal.SIGTERM), *((c, signal.SIGKILL) for c in children)]:
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        for child in _descendants(pid) + children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, user: str, raw: bytes, folder: str = "") -> None:
        """Drop a mail straight into the maildir, as an MTA's local delivery would."""
        account = pwd.getpwnam("dovecot")
        base = self.root / "home" / user / "Maildir"
        if folder:
            base = base / f".{folder}"
        for sub in ("tmp", "new", "cur"):
            (base / sub).mkdir(parents=True, exist_ok=True)
            os.chown(base / sub, account.pw_uid, account.pw_gid)
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.test"
        tmp = base / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, account.pw_uid, account.pw_gid)
        tmp.rename(base / "new" / name)


def _descendants(pid: int) -> list[int]:
    """Child processes (recursively) of ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


def dovecot_binary() -> str | None:
    # /usr/sbin is not on every user's PATH
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def dovecot_available() -> str | None:
    """None when Dovecot can run here, else the reason it cannot."""
    if dovecot_binary() is None:
        return "the dovecot binary is not installed (Debian package dovecot-imapd)"
    try:
        pwd.getpwnam("dovecot")
    except KeyError:
        return "the system user 'dovecot' does not exist"
    if os.geteuid() != 0:
        return "the test server must start as root (it hands the mail to the dovecot user)"
    return None


def start_dovecot(root: Path) -> Dovecot:
    server = Dovecot(root, free_port())
    server.write_config()
    server.start()
    return server
