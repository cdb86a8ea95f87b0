"""Helpers for tests that run mailgate as a real process (CLI, serve, crash tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .conftest import DEALER_TOML, free_port


@dataclass
class Install:
    """A throw-away installation: config file, data dir, dealer settings imported."""

    root: Path
    config: Path
    smtp_port: int
    web_port: int
    db_url: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MAILGATE_CONFIG"] = str(self.config)
        env.pop("MAILGATE_DATABASE__URL", None)
        return env

    def at_default_log_level(self) -> Install:
        """Drop the quiet ``[log]`` of the test config: the service logs as a user's does.

        Why: benches of ``serve`` measure what users run, and the default level
        (INFO) once cost a third of the intake (aiosmtpd's per-command lines).
        """
        self.config.write_text(self.config.read_text().replace('[log]\nlevel = "WARNING"\n', ""))
        return self

    def run(
        self, *args: str, stdin: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "mailgate", *args],
            input=stdin,
            capture_output=True,
            env=self.env(),
            cwd=self.root,
            timeout=timeout,
        )

    def start(self, *args: str, log_name: str = "serve.log") -> subprocess.Popen[bytes]:
        log = open(self.root / log_name, "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", "mailgate", *args],
            stdout=log,
            stderr=log,
            env=self.env(),
            cwd=self.root,
        )


def make_install(
    root: Path, db_url: str | None = None, *, web: bool = False, extra: str = ""
) -> Install:
    root.mkdir(parents=True, exist_ok=True)
    smtp_port, web_port = free_port(), free_port()
    db_url = db_url or f"sqlite:///{root / 'mailgate.sqlite3'}"
    config = root / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f"[smtp]\nport = {smtp_port}\n"
        f"[web]\nenabled = {'true' if web else 'false'}\nport = {web_port}\n"
        "[worker]\npoll_interval = 0.2\n"
        "[sender]\npoll_interval = 0.5\n"
        '[log]\nlevel = "WARNING"\n' + extra
    )
    install = Install(root, config, smtp_port, web_port, db_url)
    (root / "dealer.toml").write_text(DEALER_TOML)
    result = install.run("settings", "import", str(root / "dealer.toml"))
    assert result.returncode == 0, result.stderr.decode()
    return install


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")
