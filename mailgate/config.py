"""Process-level settings: where to listen, which database, which relay.

These are the knobs an operator sets once per installation (a TOML file plus
``MAILGATE_<SECTION>__<KEY>`` environment variables, and ``*_FILE`` variants for
secrets).  Everything a dealer edits day to day lives in the database instead
(see :mod:`mailgate.dealer_settings`).  Settings are passed around explicitly as
a :class:`Settings` object; there are no module-level globals.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_NAME = "mailgate.toml"
ENV_PREFIX = "MAILGATE_"


class ConfigError(ValueError):
    """A configuration value is missing, malformed or contradictory."""


@dataclass(frozen=True)
class DatabaseSettings:
    """Which database mailgate stores everything in."""

    # SQLAlchemy URL, e.g. "postgresql://mailgate:secret@db.internal/mailgate" (needs the
    # postgres extra); empty: the SQLite file mailgate.sqlite3 in [paths] data_dir.
    url: str = ""
    # Start even when a start-up check fails (mailgate.startup_checks): durability,
    # a second scheduler on one SQLite file.  For tests and emergencies only.
    allow_unsafe: bool = False
    allow_unsafe_durability: bool = False  # the older name; either one overrides

    @property
    def unsafe_allowed(self) -> bool:
        return self.allow_unsafe or self.allow_unsafe_durability


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP listener that receives inquiry mails (part of serve, or mailgate smtpd)."""

    enabled: bool = True  # run the listener in serve; off when mail comes by pipe or IMAP only
    host: str = "127.0.0.1"  # listen address; "0.0.0.0" to accept from other hosts (as the MX)
    port: int = 2525  # 25 when mailgate itself is the MX
    hostname: str = ""  # name in the greeting; empty: the machine's FQDN
    max_message_size: int = 25 * 1024 * 1024  # bytes; larger mails get 552 before parsing
    max_connections: int = 50  # concurrent sessions; when all are taken, see max_connections_per_ip
    # Slots one client address (IPv6: one /64) keeps when the listener is full and
    # another client needs one; while slots are free one address may use them all
    # (Postfix in front of mailgate delivers in parallel from one address).
    max_connections_per_ip: int = 10
    max_recipients: int = 10  # per message; more get 452
    session_timeout: int = 600  # seconds a whole connection may last (slowloris)
    idle_timeout: int = 60  # seconds between two commands; most pause inside DATA
    command_timeout: float = 30.0  # seconds from a command line's first byte to its end
    min_data_rate: int = 500  # bytes/s DATA must average once idle_timeout is used up
    tls_cert: str = ""  # PEM certificate (chain) file; with tls_key, STARTTLS is offered
    tls_key: str = ""  # PEM private key file for tls_cert
    # Answer 530 to mail transactions before STARTTLS (needs tls_cert and tls_key).
    require_starttls: bool = False


@dataclass(frozen=True)
class WebSettings:
    """The web UI and the REST API (part of serve)."""

    enabled: bool = True  # run the web UI and the API in serve
    host: str = "127.0.0.1"  # listen address; put a reverse proxy with TLS in front
    port: int = 8025  # listen port of the web UI and the API
    # Signs sessions, CSRF tokens and links in mails; set it (secret_key_file) so they
    # survive a restart and are the same on every instance.
    secret_key: str = ""
    # Deprecated alias of the dealer setting ``[dealer] base_url`` (the one base URL,
    # shared by every process and instance): copied there once at start-up.
    base_url: str = ""
    # Host names the web UI answers to besides the base URL's and the listen
    # addresses (another Host header gets 400: no links built from a forged Host).
    allowed_hosts: tuple[str, ...] = ()
    # Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For/-Proto/-Host are
    # believed; from any other peer those headers are dropped.
    trusted_proxies: tuple[str, ...] = ()
    # The dealership's logo beside its name in the web UI's header: an image file (PNG, JPEG,
    # WebP or SVG, at most 512 KB); empty: the mailgate mark.
    logo: str = ""


@dataclass(frozen=True)
class RelaySettings:
    """The SMTP server that sends mailgate's mails (notifications, reminders, notices)."""

    host: str = ""  # empty: outgoing mails are recorded but not sent
    port: int = 25  # submission servers usually want 587 (starttls) or 465 (ssl)
    security: str = "none"  # "none", "starttls" or "ssl" (implicit TLS)
    username: str = ""  # empty: no login
    password: str = ""
    timeout: int = 30  # seconds per connection attempt and command


@dataclass(frozen=True)
class WorkerSettings:
    """The worker that turns stored mails into leads."""

    poll_interval: float = 2.0  # seconds between DB polls for stranded mails
    batch_size: int = 50  # mails claimed per pass
    lease_seconds: int = 120  # a claim older than this is considered abandoned
    max_attempts: int = 5  # solo claims before a mail that kills workers is marked failed


@dataclass(frozen=True)
class SenderSettings:
    """The outbox sender: delivers mails through the relay and webhook events."""

    poll_interval: float = 2.0  # seconds between passes over the outbox
    retry_base_seconds: int = 60  # first wait after a 4xx or connection error; doubles each time
    retry_max_seconds: int = 3600  # the longest wait between two attempts
    max_attempts: int = 12  # then the mail is dead and the admin is told


@dataclass(frozen=True)
class SchedulerSettings:
    """The escalation scheduler: reminders, stage 1 and stage 2 mails."""

    # Seconds between two escalation passes: a due reminder leaves at most about
    # two of these late (one pass missed by a crash, the next one sends it).
    poll_interval: float = 30.0


@dataclass(frozen=True)
class WebhookSettings:
    """Where webhook events may be delivered."""

    # Destinations that may be internal (loopback, private, link-local): addresses,
    # CIDR networks, host names.  Everything else must resolve to public addresses
    # (mailgate.webhooks.destination).  Env: comma-separated.
    allow_private: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathSettings:
    """Where mailgate keeps its files."""

    data_dir: str = "."  # the SQLite database and its lock file; relative to the working dir


@dataclass(frozen=True)
class LogSettings:
    """Log lines on stderr (journald under systemd)."""

    level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR
    format: str = "text"  # text | json (one JSON object per line, with inbound_id)


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    web: WebSettings = field(default_factory=WebSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    sender: SenderSettings = field(default_factory=SenderSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    log: LogSettings = field(default_factory=LogSettings)
    source: str = "built-in defaults"  # where the settings came from, for ``mailgate info``

    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data_dir).expanduser()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'mailgate.sqlite3').resolve()}"

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database=replace(self.database, url=url))


_SECTION_CLASSES = {
    "database": DatabaseSettings,
    "smtp": SmtpSettings,
    "web": WebSettings,
    "relay": RelaySettings,
    "worker": WorkerSettings,
    "sender": SenderSettings,
    "scheduler": SchedulerSettings,
    "webhooks": WebhookSettings,
    "paths": PathSettings,
    "log": LogSettings,
}
SECRET_KEYS = {("web", "secret_key"), ("relay", "password"), ("database", "url")}


def find_config_file(explicit: str | None, environ: dict[str, str]) -> Path | None:
    """``--config`` wins, then ``MAILGATE_CONFIG``, then ``./mailgate.toml`` if present."""
    if explicit:
        return Path(explicit)
    if environ.get("MAILGATE_CONFIG"):
        return Path(environ["MAILGATE_CONFIG"])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_settings(
    config_file: str | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Build :class:`Settings` from defaults, the TOML file and the environment."""
    env = dict(os.environ if environ is None else environ)
    path = find_config_file(config_file, env)
    raw: dict[str, dict[str, Any]] = {}
    source = "built-in defaults"
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        source = str(path.resolve())
    _merge_environment(raw, env)
    sections: dict[str, Any] = {}
    for name, values in raw.items():
        cls = _SECTION_CLASSES.get(name)
        if cls is None:
            raise ConfigError(f"unknown config section [{name}]")
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build_section(name, cls, values)
    settings = Settings(**sections, source=source)
    _validate(settings)
    return settings


def _merge_environment(raw: dict[str, dict[str, Any]], env: dict[str, str]) -> None:
    """Apply ``MAILGATE_SECTION__KEY`` and ``MAILGATE_SECTION__KEY_FILE`` variables."""
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in _SECTION_CLASSES:
            continue
        raw.setdefault(section, {})[key] = value


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key.endswith("_file") and key[: -len("_file")] in known:
            real_key = key[: -len("_file")]
            try:
                value = Path(str(value)).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"[{section}] {key}: cannot read {value}: {exc}") from exc
            key = real_key
        if key not in known:
            raise ConfigError(f"unknown config key [{section}] {key}")
        default = known[key].default
        kwargs[key] = _coerce(section, key, value, type(default))
    return cls(**kwargs)


def _coerce(section: str, key: str, value: Any, target: type) -> Any:
    """Environment values arrive as strings; TOML values already have types."""
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if target is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if target is float:
            return float(value)
        if target is tuple:
            return _string_list(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        kind = "a list of strings" if target is tuple else target.__name__
        raise ConfigError(f"[{section}] {key} must be {kind}, got {value!r}") from exc


def _string_list(value: Any) -> tuple[str, ...]:
    """A TOML list of strings, or (environment) one string of comma-separated items."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value)
    raise ValueError(value)


_HOST_NAME = re.compile(r"^\.?[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$")


def parse_networks(section: str, key: str, values: tuple[str, ...]) -> tuple[Any, ...]:
    """IP addresses / CIDR networks; anything else (or "everyone") is a clear error."""
    networks = []
    for value in values:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ConfigError(
                f"[{section}] {key}: {value!r} is not an IP address or network "
                '(e.g. "10.0.0.5" or "10.0.0.0/24")'
            ) from exc
        if network.prefixlen == 0:
            raise ConfigError(
                f"[{section}] {key}: {value!r} would trust every address, so anyone could "
                "forge X-Forwarded-For; name the proxy's own address"
            )
        networks.append(network)
    return tuple(networks)


def _check_host_name(section: str, key: str, value: str) -> None:
    bare = value.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return
    except ValueError:
        pass
    if not _HOST_NAME.match(value) or ".." in value:
        raise ConfigError(
            f'[{section}] {key}: {value!r} is not a host name (e.g. "leads.autohaus.example", '
            "no scheme, port or path; a leading dot allows every subdomain)"
        )


def check_base_url(where: str, value: str) -> str:
    """An absolute http(s) URL without query or fragment; returns an error text or ''."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return f"{where}: not a URL: {value!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{where} must start with https:// or http:// and name a host: {value!r}"
    if parts.query or parts.fragment or parts.username or parts.password or port == 0:
        return f"{where} must not carry a query, fragment or user name: {value!r}"
    return ""


# The image types ``[web] logo`` may be, by file suffix, with the type it is served as.
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}


def _validate_web(web: WebSettings) -> None:
    parse_networks("web", "trusted_proxies", web.trusted_proxies)
    if web.logo and Path(web.logo).suffix.lower() not in LOGO_TYPES:
        raise ConfigError("[web] logo must be a .png, .jpg, .jpeg, .webp or .svg file")
    for host in web.allowed_hosts:
        _check_host_name("web", "allowed_hosts", host)
    if web.base_url:
        problem = check_base_url("[web] base_url", web.base_url)
        if problem:
            raise ConfigError(problem)


def _validate(settings: Settings) -> None:
    _validate_web(settings.web)
    if settings.relay.security not in {"none", "starttls", "ssl"}:
        raise ConfigError('[relay] security must be "none", "starttls" or "ssl"')
    if bool(settings.smtp.tls_cert) != bool(settings.smtp.tls_key):
        raise ConfigError("[smtp] tls_cert and tls_key must be set together")
    if settings.smtp.require_starttls and not settings.smtp.tls_cert:
        raise ConfigError("[smtp] require_starttls needs tls_cert and tls_key")
    for section, key in (("smtp", "port"), ("web", "port"), ("relay", "port")):
        port = getattr(getattr(settings, section), key)
        if not 0 <= port <= 65535:
            raise ConfigError(f"[{section}] {key} out of range: {port}")
    if settings.log.format not in {"text", "json"}:
        raise ConfigError('[log] format must be "text" or "json"')
    if settings.smtp.max_message_size < 1024:
        raise ConfigError("[smtp] max_message_size must be at least 1024 bytes")
    for key in ("max_connections", "max_connections_per_ip", "min_data_rate"):
        if getattr(settings.smtp, key) < 1:
            raise ConfigError(f"[smtp] {key} must be at least 1")
    for key in ("session_timeout", "idle_timeout", "command_timeout"):
        if getattr(settings.smtp, key) <= 0:
            raise ConfigError(f"[smtp] {key} must be more than 0 seconds")
    if settings.scheduler.poll_interval <= 0:
        raise ConfigError("[scheduler] poll_interval must be more than 0 seconds")
    _validate_webhooks(settings.webhooks)


def _validate_webhooks(webhooks: WebhookSettings) -> None:
    from mailgate.webhooks.destination import parse_allowlist

    try:
        parse_allowlist(webhooks.allow_private)
    except ValueError as exc:
        raise ConfigError(f"[webhooks] allow_private: {exc}") from exc


def describe(settings: Settings) -> dict[str, Any]:
    """Settings as a dict for ``mailgate info``, secrets masked."""
    out: dict[str, Any] = {"config": settings.source}
    for name in _SECTION_CLASSES:
        section = getattr(settings, name)
        values = {}
        for f in fields(section):
            value = getattr(section, f.name)
            if (name, f.name) in SECRET_KEYS and value and f.name != "url":
                value = "***"
            values[f.name] = value
        out[name] = values
    out["database"]["url"] = mask_url(settings.database_url)
    return out


def mask_url(url: str) -> str:
    """Hide the password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a broken URL is still shown, minus nothing secret
        return "<unparseable database url>"
