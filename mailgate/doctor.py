"""``mailgate doctor``: checks a deployment end to end and says what to fix.

Each check is a small function returning :class:`Check` results (ok / warn /
fail, what was found, what to do); :func:`run_doctor` runs them in order.  They
only look: nothing is created, migrated or sent (the relay check ends with
QUIT, before MAIL FROM), and every network step has a timeout, so the doctor
answers within seconds even when half the deployment is down.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import RelaySettings, Settings, SmtpSettings

OK, WARN, FAIL = "ok", "warn", "fail"
NET_TIMEOUT = 5.0  # seconds for any one connection or DNS look-up
RESERVED_DOMAINS = ("example", "test", "invalid", "localhost", "local")  # RFC 2606 / 6761
MIB = 1024 * 1024


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` ok / warn / fail; ``fix`` says what to do when not ok."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# --- database -------------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def open_engine(url: str) -> Engine:
    """An engine that fails fast: PostgreSQL gets a connect timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        url = parsed.update_query_dict({"connect_timeout": str(int(NET_TIMEOUT))}).render_as_string(
            hide_password=False
        )
    return db.create_db_engine(url, pool_size=1)


def check_database(engine: Engine, url: str) -> list[Check]:
    """Reachable, migrated to the newest revision, durable."""
    from alembic.script import ScriptDirectory

    from mailgate.config import mask_url

    try:
        revision = db.current_revision(engine)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
        return [
            Check(
                "database",
                FAIL,
                f"cannot reach {mask_url(url)}: {type(exc).__name__}: {_first_line(exc)}",
                "check [database] url, that the server runs and accepts this user",
            )
        ]
    found = [Check("database", OK, f"reachable: {mask_url(url)}")]
    head = ScriptDirectory.from_config(db._alembic_config(engine)).get_current_head()
    if revision != head:
        found.append(
            Check(
                "migrations",
                FAIL,
                f"schema at revision {revision or 'none'}, this mailgate needs {head}",
                "run: mailgate db upgrade (serve also migrates on start)",
            )
        )
        return found
    found.append(Check("migrations", OK, f"schema at the newest revision ({head})"))
    problems = db.check_durability(engine)
    if problems:
        found.append(
            Check(
                "durability",
                FAIL,
                "; ".join(problems),
                "SQLite: leave the pragmas to mailgate; PostgreSQL: fsync = on and "
                "synchronous_commit = on (server, database and role settings)",
            )
        )
    else:
        found.append(Check("durability", OK, "commits are durable (a 250 is on disk)"))
    return found


def check_dealer(factory: sessionmaker[Session]) -> list[Check]:
    """Lead addresses configured (else SMTP refuses every recipient)."""
    from mailgate.dealer_settings import load_dealer_config

    with factory() as session:
        addresses = load_dealer_config(session).addresses
    if not addresses:
        return [
            Check(
                "lead addresses",
                FAIL,
                "no lead addresses: the SMTP listener refuses every recipient",
                "enter them in the web UI (Settings -> General) "
                "or import them: mailgate settings import FILE.toml",
            )
        ]
    return [Check("lead addresses", OK, ", ".join(addresses))]


def check_base_url(factory: sessionmaker[Session], legacy: str = "") -> list[Check]:
    """The one base URL for links in mails (password reset, staff mails), and the
    deprecated ``[web] base_url``."""
    from mailgate.base_url import WHAT_TO_SET, stored_base_url
    from mailgate.models import DealerSetting

    with factory() as session:
        current = stored_base_url(session)
        row = session.get(DealerSetting, "dealer")
        raw = (row.data or {}).get("base_url", "") if row is not None else ""
    found = []
    if legacy:
        found.append(
            Check(
                "[web] base_url",
                WARN,
                f"deprecated process setting ({legacy}); the base URL is the dealer setting "
                "base_url now (serve copies it there once when that is empty)",
                "add base_url to the [dealer] section of the settings file, remove it from [web]",
            )
        )
    if current:
        secure = current.startswith("https://")
        found.append(
            Check(
                "base URL",
                OK if secure else WARN,
                f"links in mails point to {current}"
                + ("" if secure else " (http: passwords and session cookies travel unencrypted)"),
                "serve the web UI over https (a reverse proxy) and set base_url to the https URL",
            )
        )
    elif raw:
        found.append(
            Check(
                "base URL",
                FAIL,
                f"dealer setting base_url is not a usable http(s) URL: {raw!r}; "
                "mails carry no links and password reset is off",
                WHAT_TO_SET,
            )
        )
    else:
        found.append(
            Check(
                "base URL",
                WARN,
                "no base URL: mails carry no links, password reset and invitation mails are off",
                WHAT_TO_SET,
            )
        )
    return found


# --- SMTP listener and relay ------------------------------------------------------------


def check_smtp_port(smtp: SmtpSettings) -> Check:
    """mailgate answers on the port, or the port is free for it to listen on."""
    if not smtp.enabled:
        return Check("smtp port", OK, "SMTP listener disabled ([smtp] enabled = false)")
    where = f"{smtp.host}:{smtp.port}"
    probe_host = "127.0.0.1" if smtp.host in ("0.0.0.0", "") else smtp.host  # noqa: S104  # nosec B104  # probe, no bind
    probe_host = "::1" if probe_host == "::" else probe_host
    try:
        with socket.create_connection((probe_host, smtp.port), timeout=NET_TIMEOUT) as sock:
            banner = sock.recv(512).decode("ascii", "replace").strip()
    except ConnectionRefusedError:
        banner = None
    except OSError as exc:
        return Check("smtp port", WARN, f"cannot probe {where}: {exc}", "check [smtp] host")
    if banner is not None:
        if "mailgate" in banner:
            return Check("smtp port", OK, f"mailgate answers on {where}{_exposure(smtp.host)}")
        return Check(
            "smtp port",
            FAIL,
            f"another program listens on {where}: {banner[:80]!r}",
            "stop it or set [smtp] port to a free port",
        )
    try:
        with socket.socket(socket.AF_INET6 if ":" in smtp.host else socket.AF_INET) as sock:
            sock.bind((smtp.host, smtp.port))
    except PermissionError:
        return Check(
            "smtp port",
            FAIL,
            f"{where} needs privileges to listen on",
            "use a port above 1023 behind a local Postfix, or grant CAP_NET_BIND_SERVICE",
        )
    except OSError as exc:
        return Check("smtp port", FAIL, f"cannot listen on {where}: {exc}", "check [smtp] host")
    return Check(
        "smtp port", WARN, f"nothing answers on {where}; the port is free", "start: mailgate serve"
    )


def _exposure(host: str) -> str:
    if host in ("127.0.0.1", "::1", "localhost"):
        return " (this machine only: a local MTA must relay to it)"
    return ""


def check_relay(relay: RelaySettings, timeout: float = NET_TIMEOUT) -> Check:
    """Connect, EHLO, STARTTLS and log in as the sender would; QUIT before any mail."""
    if not relay.host:
        return Check(
            "relay",
            WARN,
            "no relay: notifications are recorded in the outbox but not sent",
            "set [relay] host (and port, security, username, password)",
        )
    where = f"{relay.host}:{relay.port}"
    steps = ["connected"]
    timeout = min(timeout, relay.timeout)
    try:
        from mailgate.outbound.send import open_relay  # the sender's own way to connect

        smtp = open_relay(relay, timeout)
        try:
            smtp.ehlo()
            if relay.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                steps.append("STARTTLS")
            if relay.username:
                smtp.login(relay.username, relay.password)
                steps.append(f"logged in as {relay.username}")
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except smtplib.SMTPAuthenticationError as exc:
        return Check(
            "relay",
            FAIL,
            f"{where} refused the login: {exc.smtp_code} {_text(exc.smtp_error)}",
            "check [relay] username and password",
        )
    except smtplib.SMTPNotSupportedError as exc:
        return Check("relay", FAIL, f"{where}: {exc}", "check [relay] security and port")
    except ssl.SSLError as exc:
        return Check(
            "relay", FAIL, f"TLS with {where} failed: {exc}", "check [relay] security and port"
        )
    except (smtplib.SMTPException, OSError) as exc:
        return Check(
            "relay",
            FAIL,
            f"cannot reach the relay {where}: {type(exc).__name__}: {exc}",
            "check [relay] host and port, and that a firewall lets this machine out",
        )
    return Check("relay", OK, f"{where}: {', '.join(steps)}")


# --- IMAP ---------------------------------------------------------------------------------


def check_imap(mailboxes: Sequence[Any], timeout: float = NET_TIMEOUT) -> list[Check]:
    """Log in to every enabled ``[[imap]]`` mailbox (and log out: nothing is read)."""
    from mailgate.imap.connection import close_quietly, connect
    from mailgate.imap.errors import describe_error

    if not mailboxes:
        return [Check("imap", OK, "no IMAP mailboxes configured (mail arrives by SMTP only)")]
    found = []
    for mailbox in mailboxes:
        name = f"imap {mailbox.name}"
        try:
            client = connect(mailbox, timeout)
        except Exception as exc:  # noqa: BLE001 - described in words below
            found.append(
                Check(
                    name,
                    FAIL,
                    describe_error(exc, mailbox),
                    "fix the mailbox in the settings (web UI or mailgate settings import)",
                )
            )
            continue
        close_quietly(client)
        found.append(
            Check(name, OK, f"logged in as {mailbox.username} at {mailbox.host}:{mailbox.port}")
        )
    return found


# --- DNS ------------------------------------------------------------------------------------


def check_mx(addresses: Sequence[str], timeout: float = NET_TIMEOUT) -> list[Check]:
    """Where mail for each lead domain goes: a hint, never a failure (DNS may lie inward)."""
    domains = sorted({a.rpartition("@")[2].lower() for a in addresses if "@" in a})
    return [mx_hint(domain, timeout) for domain in domains]


def mx_hint(domain: str, timeout: float = NET_TIMEOUT) -> Check:
    name = f"mx {domain}"
    if domain.rpartition(".")[2] in RESERVED_DOMAINS:
        return Check(
            name,
            WARN,
            f"{domain} is a reserved example domain: no mail from outside will ever reach it",
            "use the dealership's real lead addresses",
        )
    try:
        import dns.exception
        import dns.resolver
    except ImportError:  # pragma: no cover - dnspython comes with email-validator
        return _address_hint(name, domain, timeout)
    resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    try:
        answer = resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        return Check(name, WARN, f"{domain} does not exist in DNS", "check the lead addresses")
    except dns.resolver.NoAnswer:
        return Check(
            name,
            WARN,
            f"{domain} has no MX record (senders fall back to its A record)",
            "publish an MX record pointing at this host or at the MTA that relays to mailgate",
        )
    except dns.exception.DNSException as exc:
        return Check(name, WARN, f"could not check MX: {type(exc).__name__}", "check DNS by hand")
    hosts = sorted((r.preference, str(r.exchange).rstrip(".")) for r in answer)  # type: ignore[attr-defined]
    listed = ", ".join(f"{host} ({pref})" for pref, host in hosts)
    return Check(
        name,
        OK,
        f"MX: {listed}; make sure these deliver to mailgate (directly or via a local relay)",
    )


def _address_hint(name: str, domain: str, timeout: float) -> Check:
    """Without dnspython: does the name resolve at all?  Bounded by ``timeout``."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        found = pool.submit(socket.getaddrinfo, domain, 25).result(timeout=timeout)
    except (OSError, concurrent.futures.TimeoutError) as exc:
        return Check(name, WARN, f"could not check MX; {domain} does not resolve: {exc}")
    finally:
        pool.shutdown(wait=False)
    return Check(name, WARN, f"could not check MX; {domain} resolves to {found[0][4][0]}")


# --- clock, time zone, disk -------------------------------------------------------------------


def check_clock(engine: Engine | None, dealer_zone: Any, now: datetime | None = None) -> Check:
    """The dealer's zone, and this machine's clock against the database server's."""
    now = now or datetime.now(UTC)
    local = now.astimezone(dealer_zone)
    detail = f"dealer time {local:%Y-%m-%d %H:%M} {dealer_zone} (UTC{local:%z})"
    if engine is not None and engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            server = conn.execute(text("SELECT now()")).scalar()
        skew = abs((server - datetime.now(UTC)).total_seconds())
        if skew > 60:
            return Check(
                "clock",
                WARN,
                f"{detail}; this machine and the database differ by {skew:.0f} s",
                "run time synchronisation (chrony / systemd-timesyncd) on both hosts",
            )
        detail += f"; database clock within {skew:.1f} s"
    return Check("clock", OK, detail)


def evaluate_disk(path: Path, free: int, total: int) -> Check:
    """Pure: fail under 100 MiB or 2 % free, warn under 1 GiB or 10 %."""
    share = free / total if total else 0.0
    detail = f"{free / MIB:,.0f} MiB free of {total / MIB:,.0f} MiB ({share:.0%}) at {path}"
    fix = "free space or move [paths] data_dir; a full disk makes SMTP answer 4xx"
    if free < 100 * MIB or share < 0.02:
        return Check("disk", FAIL, detail, fix)
    if free < 1024 * MIB or share < 0.10:
        return Check("disk", WARN, detail, fix)
    return Check("disk", OK, detail)


def check_disk(path: Path) -> Check:
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return evaluate_disk(path, usage.free, usage.total)


# --- all together --------------------------------------------------------------------------------


def run_doctor(settings: Settings) -> list[Check]:
    """Every check, in the order an operator fixes things."""
    url = settings.database_url
    found: list[Check] = []
    path = sqlite_path(url)
    if path is not None and not path.exists():
        found.append(
            Check(
                "database",
                FAIL,
                f"no database file at {path}",
                "run: mailgate db upgrade (or check [paths] data_dir / [database] url)",
            )
        )
        engine = None
    else:
        engine = open_engine(url)
        found += check_database(engine, url)
    usable = any(c.name == "migrations" and c.status == OK for c in found)
    found.append(check_smtp_port(settings.smtp))
    found.append(check_relay(settings.relay))
    if engine is not None and usable:
        found += _dealer_checks(engine, db.make_session_factory(engine), settings)
    else:
        found.append(
            Check(
                "dealer settings",
                WARN,
                "not checked (lead addresses, IMAP logins, MX, clock): the database is not usable",
                "fix the database first, then run mailgate doctor again",
            )
        )
    found.append(check_disk(path.parent if path else settings.data_dir))
    if engine is not None:
        engine.dispose()
    return found


def _dealer_checks(
    engine: Engine, factory: sessionmaker[Session], settings: Settings
) -> list[Check]:
    from mailgate.dealer_settings import load_dealer_config
    from mailgate.imap.settings import load_mailboxes

    found = check_dealer(factory)
    found += check_base_url(factory, settings.web.base_url)
    with factory() as session:
        dealer = load_dealer_config(session)
        mailboxes = load_mailboxes(session)
    found += check_imap(mailboxes)
    found += check_mx(dealer.addresses)
    found.append(check_clock(engine, dealer.timezone))
    found += check_templates(dealer.template_dir)
    return found


def check_templates(template_dir: Path | None) -> list[Check]:
    """The dealer's own mail templates still pass the sandbox check (else the packaged go out).

    A file can break after it was saved (edited on disk); the sender then falls
    back to the packaged template and logs it, and this says which file to fix.
    """
    from mailgate.outbound.compose import check_overrides

    if template_dir is None:
        return []
    problems = check_overrides(template_dir)
    if not problems:
        return [Check("mail templates", OK, f"own templates in {template_dir} pass the check")]
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return [
        Check(
            "mail templates",
            WARN,
            "; ".join(problems[:3]) + more,
            "fix them under Settings > Mail templates; until then the packaged ones are sent",
        )
    ]


def format_report(checks: Sequence[Check]) -> str:
    """Aligned lines, the fix indented under each problem, and a verdict."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        lines.append(f"{check.status.upper():4}  {check.name:{width}}  {check.detail}")
        if check.fix and check.status != OK:
            lines.append(f"{'':4}  {'':{width}}  -> {check.fix}")
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    lines.append(f"{failed} to fix, {warned} to look at, {len(checks) - failed - warned} fine")
    return "\n".join(lines)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
