"""A throw-away, unprivileged Dovecot IMAP server for tests.

Follows ../shared/recipes/dovecot-test-server.md: its own config, base and
state directories and maildirs in a temp dir, listening on a free loopback
port; mail is owned by the ``dovecot`` user because Dovecot refuses root.
"""

from __future__ import annotations

import datetime
import ipaddress
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
from typing import Any

from .conftest import free_port

USERS = {"anna": "geheim-anna", "ben": "geheim-ben"}


@dataclass
class Dovecot:
    """One running Dovecot master; ``stop``/``start`` keep port and mail.

    ``cert``/``key`` (PEM files) switch TLS on: STARTTLS on ``port`` and
    implicit TLS on ``imaps_port``.  ``capability`` replaces the CAPABILITY
    list announced after login (Dovecot's ``imap_capability``), to play a
    server without some extension.
    """

    root: Path
    port: int
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    cert: Path | None = None
    key: Path | None = None
    imaps_port: int = 0
    capability: str = ""

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
        if self.cert and self.key:
            tls = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.key}\n"
            imaps = f"address = 127.0.0.1\n    port = {self.imaps_port}"
        else:
            tls, imaps = "ssl = no\n", "port = 0"
        capability = f"imap_capability = {self.capability}\n" if self.capability else ""
        self.config.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{tls}{capability}disable_plaintext_auth = no
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
    {imaps}
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


def start_dovecot(root: Path, **options: Any) -> Dovecot:
    """Start a Dovecot in ``root``; ``options`` as for :class:`Dovecot` (TLS, capability)."""
    if options.get("cert"):
        options.setdefault("imaps_port", free_port())
    server = Dovecot(root, free_port(), **options)
    server.write_config()
    server.start()
    return server


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS-speaking test server.

    ``ca`` is what a dealer would put in ``ca_file``: the private CA that
    signed ``cert``, or for a self-signed server the certificate itself.
    """

    ca: Path
    cert: Path
    key: Path


def make_tls_files(
    directory: Path, *, self_signed: bool = False, ca_name: str = "Autohaus Test-CA"
) -> TlsFiles:
    """A server certificate for 127.0.0.1 (and imap.autohaus.example), valid for a day.

    Generated with ``cryptography`` (a test dependency) so every run has fresh
    keys and no certificate is checked in.  EC P-256 keys: fast to make.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def pem(path: Path, cert: x509.Certificate) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    server_key = ec.generate_private_key(ec.SECP256R1())
    subject = name("imap.autohaus.example")
    if self_signed:
        issuer, issuer_key = subject, server_key
    else:
        issuer, issuer_key = name(ca_name), ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(issuer)
            .issuer_name(issuer)
            .public_key(issuer_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key()), critical=False
            )
            .sign(issuer_key, hashes.SHA256())
        )
    server = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("imap.autohaus.example"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=self_signed, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    key = directory / "server.key"
    key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    cert = pem(directory / "server.pem", server)
    ca = cert if self_signed else pem(directory / "ca.pem", ca_cert)
    return TlsFiles(ca=ca, cert=cert, key=key)
