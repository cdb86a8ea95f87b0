"""Running mailgate's long-lived roles: all in one process (``serve``) or one each.

``mailgate serve`` runs the SMTP listener on the main asyncio loop and the
IMAP pollers, the worker, the outbox sender and the web UI in threads.  SIGTERM or SIGINT stops
intake first (no new 250s), then lets the worker and sender finish their
current pass, so a clean shutdown never leaves a half-processed mail (and an
unclean one is recovered by the worker's leases anyway).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db, wakeup
from mailgate.config import Settings
from mailgate.ingest.smtp import IntakeHandler, start_smtp_server
from mailgate.startup_checks import (
    LONG_LIVED,
    SchedulerLock,
    StartupRefused,
    check_database,
    claim_scheduler,
    wait_for,
)

log = logging.getLogger("mailgate.service")
__all__ = ["Runtime", "StartupRefused", "open_database", "serve"]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    scheduler_lock: SchedulerLock | None = None  # SQLite: held, or waited on as a standby

    @staticmethod
    def wake_worker() -> None:
        """A mail was stored in this process: the worker starts on it at once."""
        wakeup.channel(wakeup.INBOUND).notify()

    @staticmethod
    def wake_all() -> None:
        for name in (wakeup.INBOUND, wakeup.OUTBOX):
            wakeup.channel(name).notify()

    def start_thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)


def open_database(
    settings: Settings, *, migrate: bool = True
) -> tuple[Engine, sessionmaker[Session]]:
    """Engine + session factory; migrates and checks durability before anything runs."""
    engine = db.create_db_engine(settings.database_url)
    if migrate:
        db.upgrade(engine)
    try:
        check_database(engine, settings)
    except StartupRefused:
        engine.dispose()
        raise
    return engine, db.make_session_factory(engine)


def serve(
    settings: Settings,
    *,
    roles: tuple[str, ...] = ("smtp", "imap", "worker", "sender", "scheduler", "web"),
) -> int:
    """Run the given roles until SIGTERM/SIGINT; returns the exit code."""
    engine, factory = open_database(settings)
    from mailgate.base_url import adopt_at_start

    adopt_at_start(factory, settings)  # [web] base_url, deprecated: into the dealer setting
    try:
        lock = claim_scheduler(settings, LONG_LIVED) if "scheduler" in roles else None
    except StartupRefused:
        engine.dispose()
        raise
    runtime = Runtime(settings, engine, factory, scheduler_lock=lock)
    try:
        return asyncio.run(_serve_async(runtime, roles))
    finally:
        engine.dispose()
        if lock is not None:
            lock.release()


async def _serve_async(runtime: Runtime, roles: tuple[str, ...]) -> int:
    from mailgate.outbound.send import run_sender
    from mailgate.webhooks.sender import run_webhook_sender as run_webhooks
    from mailgate.worker import run_worker

    settings, factory = runtime.settings, runtime.factory
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)

    web = reader = None
    if "web" in roles and settings.web.enabled:
        from mailgate.webui import create_app
        from mailgate.webui.server import WebThread

        # The web UI's own engine: a request that only reads never takes SQLite's
        # write lock away from SMTP intake; one that writes waits for it (db.py).
        reader = db.create_db_engine(settings.database_url, reader=True)
        web_factory = db.make_session_factory(reader)
        web = WebThread(create_app(web_factory, settings), settings.web.host, settings.web.port)
        web.start()
        log.info("web UI on http://%s:%s", settings.web.host, settings.web.port)
        announce_setup(factory, settings, getattr(web.server, "effective_port", settings.web.port))
    if "worker" in roles:
        from mailgate.worker import warm_up

        await asyncio.to_thread(warm_up)  # before intake opens: see the SMTP note below
        runtime.start_thread("worker", lambda: run_worker(factory, settings, runtime.stop))
    if "sender" in roles:
        runtime.start_thread("sender", lambda: run_sender(factory, settings, runtime.stop))
        runtime.start_thread("webhooks", lambda: run_webhooks(factory, settings, runtime.stop))
    if "scheduler" in roles:
        runtime.start_thread("scheduler", lambda: _run_scheduler(runtime))
    # SMTP last: the web UI's imports and the worker's warm-up (GIL-heavy) are
    # done or under way by the time sessions arrive, so the listener is not
    # starved right after a restart.
    server = None
    if "smtp" in roles and settings.smtp.enabled:
        handler = IntakeHandler(factory, settings.smtp, on_stored=lambda _id: runtime.wake_worker())
        server = await start_smtp_server(handler, settings.smtp)
    if "imap" in roles:
        # Started after the SMTP listener, importing in its own thread: a restart
        # must accept SMTP mail again as fast as it did without IMAP.
        runtime.start_thread("imap", lambda: _run_imap(runtime))
    log.info("mailgate running (%s); database %s", ", ".join(roles), db_label(settings))
    if server is not None:
        warn_if_unconfigured(factory)

    await stopped.wait()
    log.info("shutting down")
    if server is not None:
        server.close()
        handler.close()
    runtime.stop.set()
    runtime.wake_all()
    for thread in runtime.threads:
        await asyncio.to_thread(thread.join, 30)
    if web is not None:
        web.stop()
    if reader is not None:
        reader.dispose()
    log.info("stopped cleanly")
    return 0


def _run_scheduler(runtime: Runtime) -> None:
    from mailgate.escalation.scheduler import run_scheduler

    lock = runtime.scheduler_lock
    if lock is not None and not lock.held and not wait_for(lock, runtime.stop, LONG_LIVED):
        return  # stopped while standing by
    run_scheduler(runtime.factory, runtime.stop, runtime.settings.scheduler.poll_interval)


def _run_imap(runtime: Runtime) -> None:
    from mailgate.imap.service import run_imap

    run_imap(runtime.factory, runtime.settings, runtime.stop, on_stored=runtime.wake_worker)


def announce_setup(factory: sessionmaker[Session], settings: Settings, port: int) -> None:
    """While no admin was ever created, print the one-time set-up link (with a fresh token).

    A warning in the log (which goes to the console, stderr), printed there
    directly if the log level hides warnings.  Only whoever reads it can
    create the first admin on /setup.
    """
    from mailgate.setup_lock import issue_setup_token, setup_url

    try:
        with db.session_scope(factory) as session:
            token = issue_setup_token(session)
    except SQLAlchemyError:
        log.warning("set-up link not issued: database unreachable", exc_info=True)
        return
    if token is None:
        return
    line = f"Set-up: open {setup_url(settings.web.host, port, token)} to create the first admin"
    if log.isEnabledFor(logging.WARNING):
        log.warning("%s", line)
    else:  # [log] level = "ERROR" must not hide the only way in
        print(line, file=sys.stderr, flush=True)


def warn_if_unconfigured(factory: sessionmaker[Session]) -> None:
    """A fresh database has no lead addresses, so SMTP refuses every recipient: say so."""
    from mailgate.dealer_settings import load_dealer_config

    with factory() as session:
        addresses = load_dealer_config(session).addresses
    if not addresses:
        log.warning(
            "no lead addresses configured: the SMTP listener refuses every recipient. "
            "Enter them in the web UI (Settings -> General; the set-up checklist at "
            "/setup/checklist lists every step), or import them: mailgate settings import FILE.toml"
        )


def db_label(settings: Settings) -> str:
    from mailgate.config import mask_url

    return mask_url(settings.database_url)
