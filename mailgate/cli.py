"""The ``mailgate`` command line: thin wrappers over the service functions.

``--help`` shows :data:`DESCRIPTION`, plain text (a docstring's reStructuredText
markup would be printed literally).

Every subcommand takes ``--config FILE`` (or ``MAILGATE_CONFIG``; else
``./mailgate.toml`` if present; else built-in defaults).  Output meant for tools
is JSON (one object per line where several are printed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailgate import __version__, db
from mailgate.config import ConfigError, Settings, describe, load_settings

log = logging.getLogger("mailgate.cli")

DESCRIPTION = (
    "mailgate receives inquiry mails for a car dealership, turns them into leads, "
    "distributes them to salespeople and escalates unanswered ones."
)
EPILOG = (
    "Every command takes --config FILE (else MAILGATE_CONFIG, else ./mailgate.toml, "
    "else built-in defaults); 'mailgate COMMAND --help' describes one command."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"mailgate: configuration error: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG
    from mailgate.logs import configure_logging

    configure_logging(
        settings.log.level,
        getattr(args, "log_format", None) or settings.log.format,
        verbose=getattr(args, "verbose", False),
    )
    try:
        return int(args.handler(args, settings) or 0)
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        from mailgate.dealer_settings import SettingsError
        from mailgate.service import StartupRefused

        if isinstance(exc, SettingsError | StartupRefused):
            print(f"mailgate: {exc}", file=sys.stderr)
            return 1
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailgate", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"mailgate {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="process settings (TOML)")
    common.add_argument(
        "--log-format", choices=("text", "json"), help="log lines as text or JSON ([log] format)"
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show the INFO lines of libraries (Alembic's migration set-up)",
    )
    sub = parser.add_subparsers(dest="command")

    def add(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        cmd.set_defaults(handler=handler)
        return cmd

    cmd = add("serve", cmd_serve, "run SMTP listener, worker, sender and web UI in one process")
    cmd.add_argument("--demo", action="store_true", help="run on a separate demo database")
    add("smtpd", cmd_smtpd, "run only the SMTP listener")
    cmd = add("worker", cmd_worker, "process stored mails")
    cmd.add_argument("--once", action="store_true", help="process until none is left, then exit")
    cmd = add("sender", cmd_sender, "deliver outbox mails through the relay")
    cmd.add_argument("--once", action="store_true", help="one pass, then exit")
    add("scheduler", cmd_scheduler, "run the escalation scheduler")
    cmd = add("ingest", cmd_ingest, "store mails from files or stdin, then process them")
    cmd.add_argument("files", nargs="*", type=Path)
    cmd.add_argument("--from", dest="envelope_from", help="envelope sender (MTA's $sender)")
    cmd.add_argument(
        "--to",
        dest="envelope_to",
        action="append",
        default=[],
        help="envelope recipient (MTA's $recipient); repeatable",
    )
    cmd = add("reprocess", cmd_reprocess, "run stored mails through the pipeline again")
    cmd.add_argument("ids", nargs="*", type=int)
    cmd.add_argument("--failed", action="store_true", help="all mails marked failed")
    cmd = add("parse", cmd_parse, "parse .eml files and print what would become a lead")
    cmd.add_argument("files", nargs="+", type=Path)
    cmd.add_argument("--json", action="store_true", help="JSON Lines (the default)")
    cmd.add_argument(
        "--explain",
        action="store_true",
        help="print each field with the reader that found it and the values that lost",
    )
    cmd = add("leads", cmd_leads, "list leads")
    cmd.add_argument("--json", action="store_true")
    cmd = add("outbox", cmd_outbox, "list outgoing mails")
    cmd.add_argument("--json", action="store_true")
    cmd = add("inbound", cmd_inbound, "list received mails with their status")
    cmd.add_argument("--json", action="store_true")
    cmd = add("settings", None, "import or export dealer settings (TOML)")
    settings_sub = cmd.add_subparsers(dest="settings_command")
    imp = settings_sub.add_parser("import", parents=[common], help="replace settings from FILE")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--dry-run", action="store_true", help="print what would change, change nothing"
    )
    imp.add_argument(
        "--allow-empty-addresses",
        action="store_true",
        help="import a file without [dealer] addresses (SMTP then refuses every lead mail)",
    )
    imp.add_argument(
        "--allow-no-users",
        action="store_true",
        help="import a file without active [[users]] (every user is deactivated)",
    )
    imp.set_defaults(handler=cmd_settings_import)
    exp = settings_sub.add_parser("export", parents=[common], help="print settings as TOML")
    exp.set_defaults(handler=cmd_settings_export)
    cmd = add("distribution", None, "check the lead distribution")
    dist_sub = cmd.add_subparsers(dest="distribution_command")
    sim = dist_sub.add_parser(
        "simulate", parents=[common], help="who would get the next N leads, and why (dry run)"
    )
    sim.add_argument("--leads", type=int, default=10, metavar="N")
    sim.add_argument("--date", help="ISO date (or datetime) to evaluate absences on")
    sim.add_argument("--source", default="website")
    sim.add_argument("--kind", default="inquiry")
    sim.add_argument("--make")
    sim.add_argument("--location")
    sim.set_defaults(handler=cmd_distribution_simulate)
    cmd = add("db", None, "database maintenance")
    db_sub = cmd.add_subparsers(dest="db_command")
    db_sub.add_parser("upgrade", parents=[common], help="apply migrations").set_defaults(
        handler=cmd_db_upgrade
    )
    from mailgate.users_cli import add_parser as add_users_parser

    add_users_parser(sub, common)
    from mailgate.ops_cli import add_parsers as add_ops_parsers

    add_ops_parsers(sub, common)
    cmd = add("fetch", cmd_fetch, "fetch new mail from the IMAP mailboxes now")
    cmd.add_argument("--mailbox", metavar="NAME", help="only this [[imap]] mailbox")
    add("info", cmd_info, "show the config file, database and every setting in effect")
    cmd = add("tick", cmd_tick, "one scheduler pass: escalate due leads, send due outbox mails")
    cmd.add_argument("--now", help="ISO datetime to use as the current time")
    cmd = add("timeline", cmd_timeline, "escalation schedule of a hypothetical lead (JSON)")
    cmd.add_argument("--received", required=True, help="ISO datetime (dealer's zone if no offset)")
    cmd.add_argument("--kind", default="inquiry")
    cmd.add_argument("--source", default="unknown")
    return parser


def _open(settings: Settings, migrate: bool = True) -> Any:
    from mailgate.service import open_database

    return open_database(settings, migrate=migrate)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.service import serve

    if args.demo:
        demo_db = settings.data_dir / "mailgate-demo.sqlite3"
        settings = settings.with_database_url(f"sqlite:///{demo_db.resolve()}")
        engine, factory = _open(settings)
        from mailgate.demo import seed_demo

        counts = seed_demo(factory, settings)
        engine.dispose()
        print(f"demo database {demo_db}: {demo_summary(counts)}", file=sys.stderr)
        settings = replace(settings, relay=replace(settings.relay, host=""))
    return serve(settings)


# How each inbound status reads in a sentence, in the pipeline's order.
_STATUS_WORDS = {
    "processed": "became leads",
    "discarded": "discarded (bounces and auto-replies are recognised)",
    "quarantined": "quarantined",
    "failed": "failed",
}


def demo_summary(counts: dict[str, int]) -> str:
    """``{"discarded": 2, "processed": 10}`` as a line people read.

    "12 demo mails stored: 10 became leads, 2 discarded (…)" instead of a dict's repr.
    """
    parts = [
        f"{counts[status]} {words}" for status, words in _STATUS_WORDS.items() if counts.get(status)
    ]
    parts += [f"{n} {status}" for status, n in counts.items() if status not in _STATUS_WORDS]
    return f"{sum(counts.values())} demo mails stored: {', '.join(parts) or 'none'}"


def cmd_smtpd(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.service import serve

    return serve(settings, roles=("smtp",))


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.service import serve
    from mailgate.worker import process_pending

    if not args.once:
        return serve(settings, roles=("worker",))
    engine, factory = _open(settings)
    report = process_pending(factory, settings)
    print(json.dumps({"claimed": report.claimed, "statuses": report.statuses}))
    engine.dispose()
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.service import serve

    return serve(settings, roles=("scheduler",))


def cmd_sender(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.outbound.send import send_pass
    from mailgate.service import serve
    from mailgate.webhooks.sender import deliver_pass

    if not args.once:
        return serve(settings, roles=("sender",))
    engine, factory = _open(settings)
    report = send_pass(factory, settings)
    hooks = deliver_pass(factory, settings)
    print(json.dumps(report.__dict__ | {"webhooks": hooks.__dict__}))
    engine.dispose()
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 stored, 75 temporary failure, 65 unusable input (worst code wins)."""
    from mailgate.ingest.pipe import EX_DATAERR, EX_OK, EX_TEMPFAIL, ingest_bytes
    from mailgate.worker import claim_ids, process_ids, worker_identity

    try:
        engine, factory = _open(settings)
    except Exception as exc:  # noqa: BLE001 - database down: the MTA must retry
        print(f"mailgate ingest: temporary failure: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    sources = (
        [(str(p), p.read_bytes()) for p in args.files]
        if args.files
        else [("<stdin>", sys.stdin.buffer.read())]
    )
    codes = []
    me = worker_identity()
    for name, raw in sources:
        result = ingest_bytes(
            factory,
            raw,
            max_size=settings.smtp.max_message_size,
            envelope_from=args.envelope_from,
            envelope_to=tuple(args.envelope_to),
        )
        print(f"{name}: {result.message}", file=sys.stderr)
        codes.append(result.code)
        if result.stored is not None:
            try:
                if claim_ids(factory, [result.stored.id], me, settings.worker):
                    process_ids(factory, [result.stored.id], me)
            except Exception:  # noqa: BLE001 - stored is what counts; the worker retries
                log.exception(
                    "processing inbound %s failed; it stays stored",
                    result.stored.id,
                    extra={"inbound_id": result.stored.id},
                )
    engine.dispose()
    for code in (EX_TEMPFAIL, EX_DATAERR):
        if code in codes:
            return code
    return EX_OK


def cmd_reprocess(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.worker import process_pending, reprocess

    if not args.ids and not args.failed:
        print("mailgate reprocess: give mail ids or --failed", file=sys.stderr)
        return 2
    engine, factory = _open(settings)
    count = reprocess(factory, args.ids, failed=args.failed)
    report = process_pending(factory, settings)
    print(json.dumps({"requeued": count, "statuses": report.statuses}))
    engine.dispose()
    return 0


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.parsers import parse_raw

    for path in args.files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            print(json.dumps({"file": str(path), "error": str(exc)}))
            continue
        lead = parse_raw(raw)
        if args.explain:
            from mailgate.parsers.explain import explain

            print(explain(lead, str(path)))
            continue
        print(json.dumps(lead.to_json(str(path)), ensure_ascii=False))
    return 0


def cmd_leads(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.escalation.ladder import due_state
    from mailgate.models import Lead, utcnow

    engine, factory = _open(settings)
    now = utcnow()
    with factory() as session:
        for lead in session.scalars(select(Lead).order_by(Lead.id)):
            customer = lead.customer
            print(
                json.dumps(
                    {
                        "id": lead.id,
                        "source": lead.source,
                        "kind": lead.kind,
                        "status": lead.status,
                        "assignee": lead.assignee.email if lead.assignee else None,
                        "customer": {
                            "name": customer.name if customer else None,
                            "email": customer.email if customer else None,
                            "phone": customer.phone if customer else None,
                        },
                        "received_at": lead.received_at.isoformat(),
                        "first_response_at": _iso(lead.first_response_at),
                        "next_due_at": _iso(lead.next_due_at),
                        "due_state": due_state(now, lead.soon_at, lead.overdue_at),
                    },
                    ensure_ascii=False,
                )
            )
    engine.dispose()
    return 0


def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.models import OutboxMail

    engine, factory = _open(settings)
    with factory() as session:
        for mail in session.scalars(select(OutboxMail).order_by(OutboxMail.id)):
            print(
                json.dumps(
                    {
                        "id": mail.id,
                        "purpose": mail.purpose,
                        "lead_id": mail.lead_id,
                        "to": mail.recipients,
                        "subject": mail.subject,
                        "status": mail.status,
                        "attempts": mail.attempts,
                        "message_id": mail.message_id,
                        "created_at": mail.created_at.isoformat(),
                        "sent_at": _iso(mail.sent_at),
                        "next_attempt_at": _iso(mail.next_attempt_at),
                        "last_error": mail.last_error,
                    },
                    ensure_ascii=False,
                )
            )
    engine.dispose()
    return 0


def cmd_inbound(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.models import InboundMail

    engine, factory = _open(settings)
    columns = (
        InboundMail.id,
        InboundMail.received_at,
        InboundMail.channel,
        InboundMail.message_id,
        InboundMail.size,
        InboundMail.status,
        InboundMail.status_reason,
        InboundMail.lead_id,
    )
    with factory() as session:
        for row in session.execute(select(*columns).order_by(InboundMail.id)):
            data = row._asdict()
            data["received_at"] = data["received_at"].isoformat()
            print(json.dumps(data, ensure_ascii=False))
    engine.dispose()
    return 0


def cmd_settings_import(args: argparse.Namespace, settings: Settings) -> int:
    """Replace the dealer settings from a file; ``--dry-run`` prints the changes only.

    Refusals (invalid, incomplete, unreadable file; the last admin) are one
    line on stderr and exit 1; nothing is changed then.  A dry run runs every
    check a real import runs, after printing what would change.
    """
    from mailgate.dealer_settings import SettingsError, apply_document, settings_warnings
    from mailgate.protocol import english
    from mailgate.settings_import import MAX_BYTES, IncompleteDocument, plan_import, read_document

    try:
        with args.file.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # enough to tell that a file is too large
    except OSError as exc:
        raise SettingsError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    try:
        document = read_document(data)
    except SettingsError as exc:
        raise SettingsError(f"{args.file}: {exc}") from None
    engine, factory = _open(settings)
    try:
        with factory() as session:
            try:
                plan = plan_import(
                    session,
                    document,
                    allow_empty_addresses=args.allow_empty_addresses,
                    allow_no_users=args.allow_no_users,
                )
            except IncompleteDocument as exc:
                flag = {"addresses": "--allow-empty-addresses", "users": "--allow-no-users"}
                raise SettingsError(f"{exc} (to import it anyway: {flag[exc.what]})") from None
            print("\n".join(plan.diff.lines()), file=sys.stdout if args.dry_run else sys.stderr)
            apply_document(session, document)
            locked_out = _admins_without_password(session)
            if args.dry_run:
                session.rollback()
            else:
                session.commit()
    finally:
        engine.dispose()
    for email in locked_out:  # the web UI's one-time set-up is closed once an admin exists
        print(
            f"note: admin {email} has no password yet: mailgate users set-password --email {email}",
            file=sys.stderr,
        )
    if args.dry_run:
        print("dry run: nothing was changed", file=sys.stderr)
        return 0
    for warning in settings_warnings(plan.clean):
        print(f"warning: {english([warning])}", file=sys.stderr)
    print(
        f"imported dealer settings: {len(plan.clean['users'])} users, "
        f"addresses {', '.join(plan.clean['dealer']['addresses']) or '(none)'}",
        file=sys.stderr,
    )
    return 0


def _admins_without_password(session: Any) -> list[str]:
    from mailgate.models import User, UserRole

    query = select(User.email).where(
        User.role == UserRole.ADMIN, User.active.is_(True), User.password_hash.is_(None)
    )
    return list(session.scalars(query.order_by(User.email)))


def cmd_settings_export(args: argparse.Namespace, settings: Settings) -> int:
    """The stored settings as TOML; before anything was stored, a commented template.

    A fresh installation has nothing to export, and bare defaults do not say what a
    key means: then every key comes with its description (mailgate.docs_gen).
    """
    from mailgate.dealer_settings import export_settings
    from mailgate.models import DealerSetting, User

    engine, factory = _open(settings)
    with factory() as session:
        empty = session.get(DealerSetting, "dealer") is None and (
            session.scalar(select(User.id).limit(1)) is None
        )
        if empty:
            from mailgate.docs_gen import settings_template

            sys.stdout.write(settings_template())
        else:
            sys.stdout.write(export_settings(session))
    engine.dispose()
    return 0


def cmd_distribution_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Dry run: nothing is written, the rotation state is only read."""
    from datetime import date

    from mailgate.dealer_settings import load_dealer_config, settings_warnings
    from mailgate.distribution.categories import dealer_categories
    from mailgate.distribution.policies import LeadFacts
    from mailgate.distribution.service import local_day, simulate
    from mailgate.models import utcnow
    from mailgate.protocol import english

    if args.leads < 1:
        print("mailgate distribution simulate: --leads must be at least 1", file=sys.stderr)
        return 2
    engine, factory = _open(settings)
    with factory() as session:
        dealer = load_dealer_config(session)
        try:
            day = (
                datetime.fromisoformat(args.date).date()
                if args.date and "T" in args.date
                else date.fromisoformat(args.date)
                if args.date
                else local_day(utcnow(), dealer)
            )
        except ValueError:
            print(
                f"mailgate distribution simulate: not an ISO date: {args.date!r}", file=sys.stderr
            )
            engine.dispose()
            return 2
        categories = dealer_categories(dealer.document)  # the category a real lead would get
        facts = LeadFacts(args.source, args.kind, args.make, args.location, categories)
        decisions = simulate(session, dealer, args.leads, day, facts)
        for warning in settings_warnings(dealer.document):
            print(f"warning: {english([warning])}", file=sys.stderr)
    for n, decision in enumerate(decisions, 1):
        print(
            json.dumps(
                {
                    "lead": n,
                    "date": day.isoformat(),
                    "assignee": decision.assignee,
                    "pool": decision.pool,
                    "reason": decision.reason,
                },
                ensure_ascii=False,
            )
        )
    engine.dispose()
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    engine = db.create_db_engine(settings.database_url)
    db.upgrade(engine)
    print(f"database at revision {db.current_revision(engine)}", file=sys.stderr)
    engine.dispose()
    return 0


def cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    """One fetch per mailbox, then process what came in (like ``ingest``); exit 1 on errors."""
    from mailgate.imap.fetch import fetch_now
    from mailgate.worker import process_pending

    engine, factory = _open(settings)
    try:
        try:
            reports = fetch_now(factory, settings, args.mailbox)
        except LookupError as exc:
            print(f"mailgate: {exc.args[0]}", file=sys.stderr)
            return 1
        if not reports:
            print("mailgate: no enabled IMAP mailbox in the dealer settings", file=sys.stderr)
        if any(r.imported for r in reports):
            process_pending(factory, settings)
        for report in reports:
            line = {
                "mailbox": report.mailbox,
                "imported": report.imported,
                "duplicates": report.duplicates,
                "oversize": report.oversize,
                "error": report.error,
            }
            print(json.dumps(line))
        return 1 if any(r.error for r in reports) else 0
    finally:
        engine.dispose()


def cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    """Every process setting with the value the code uses, plus what the empty ones mean.

    The sections come from :func:`mailgate.config.describe` (the dataclasses' own
    defaults, so they cannot disagree with the code); ``effective`` spells out what
    an empty value turns into, e.g. no relay host means nothing is sent.
    """
    info = describe(settings)
    info["effective"] = _effective(settings)
    engine = db.create_db_engine(settings.database_url)
    try:
        info["database"]["revision"] = db.current_revision(engine)
        info["database"]["durability_problems"] = db.check_durability(engine)
        from mailgate.base_url import stored_base_url
        from mailgate.models import DealerSetting

        with db.make_session_factory(engine)() as session:  # no tables before the first start
            if info["database"]["revision"] and session.get(DealerSetting, "dealer") is not None:
                info["effective"]["base_url"] = stored_base_url(session) or (
                    "(none: mails carry no links; set [dealer] base_url in the settings file)"
                )
    except Exception as exc:  # noqa: BLE001 - info must work when the DB is down
        info["database"]["error"] = f"{type(exc).__name__}: {exc}"
    engine.dispose()
    print(json.dumps(info, indent=2, default=str))
    return 0


def _effective(settings: Settings) -> dict[str, Any]:
    """What the listeners, the relay and the data directory really are with these settings."""
    import socket

    relay = settings.relay
    smtp, web = settings.smtp, settings.web
    return {
        "smtp": f"{smtp.host}:{smtp.port}, greeting as {smtp.hostname or socket.getfqdn()}"
        if smtp.enabled
        else "off",
        "web": f"http://{web.host}:{web.port}/" if web.enabled else "off",
        "relay": f"{relay.host}:{relay.port}, security {relay.security}"
        if relay.host
        else "none: outgoing mails are recorded in the outbox (suppressed), not sent",
        "data_dir": str(settings.data_dir.resolve()),
        "log": f"{settings.log.level} as {settings.log.format}",
    }


def cmd_tick(args: argparse.Namespace, settings: Settings) -> int:
    from mailgate.escalation.scheduler import tick
    from mailgate.outbound.send import send_pass

    now = datetime.fromisoformat(args.now) if args.now else None
    if now is not None and now.tzinfo is None:
        print(
            "mailgate tick: --now needs a time zone offset, e.g. 2026-12-01T09:00+01:00",
            file=sys.stderr,
        )
        return 2
    from mailgate.startup_checks import TICK, claim_scheduler

    engine, factory = _open(settings)
    lock = claim_scheduler(settings, TICK)  # SQLite: after a running pass, never beside one
    try:
        escalation = tick(factory, now=now)
    finally:
        if lock is not None:
            lock.release()
    report = send_pass(factory, settings, now=now)
    print(
        json.dumps(
            {
                "escalation": escalation.as_dict(),
                "sent": report.sent,
                "retried": report.retried,
                "dead": report.dead,
                "suppressed": report.suppressed,
            }
        )
    )
    engine.dispose()
    return 0


def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    """What the escalation rules would do with a lead received at ``--received``."""
    from mailgate.dealer_settings import load_dealer_config
    from mailgate.escalation.ladder import timeline

    try:
        received = datetime.fromisoformat(args.received)
    except ValueError:
        print(f"mailgate timeline: not an ISO datetime: {args.received!r}", file=sys.stderr)
        return 2
    engine, factory = _open(settings)
    with db.session_scope(factory) as session:
        dealer = load_dealer_config(session)
    engine.dispose()
    if received.tzinfo is None:
        received = received.replace(tzinfo=dealer.timezone)
    times = dealer.escalation_times(args.source, args.kind)
    line = timeline(dealer.calendar, times, received)
    print(
        json.dumps(
            {
                "received_at": line.received_at.isoformat(),
                "reminder_at": line.reminder_at.isoformat(),
                "stage1_at": line.stage1_at.isoformat(),
                "stage2_at": line.stage2_at.isoformat(),
                "rule": times.rule,
                "mails": line.mails(),
            }
        )
    )
    return 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
