"""Outgoing webhooks: which changes emit which events, exactly once, and how they are delivered
(a real HTTP receiver on localhost that fails first, refuses, or accepts).  Both databases.

The receivers run on loopback, which the SSRF guard refuses: the tests allow
127.0.0.1 through the operator's allowlist (``[webhooks] allow_private``), as an
installation with an internal CRM would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import Settings, WebhookSettings
from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution.actions import reassign
from mailgate.escalation.actions import close_lead, log_contact, set_stage
from mailgate.escalation.scheduler import tick
from mailgate.models import OutboxMail, Webhook, WebhookDelivery, utcnow
from mailgate.webhooks import emit as emit_module
from mailgate.webhooks.admin import create_webhook, delete_webhook, queue_test_event
from mailgate.webhooks.destination import parse_allowlist
from mailgate.webhooks.emit import EVENTS, emit
from mailgate.webhooks.sender import deliver_pass
from mailgate.webhooks.sign import signature, verify

from .test_escalation import at, ingest_at, setup

BEN = "ben@autohaus.example"
BEN_TOML = '\n[[users]]\nemail = "ben@autohaus.example"\nname = "Ben Berg"\n'
LOOPBACK_ALLOWED = ("127.0.0.1",)
# The settings of an installation whose receivers run on this host.
LOOPBACK = Settings(webhooks=WebhookSettings(allow_private=LOOPBACK_ALLOWED))


def add_hook(factory: sessionmaker[Session], url: str, events: tuple[str, ...] = EVENTS) -> int:
    with db.session_scope(factory) as session:
        allowlist = parse_allowlist(LOOPBACK_ALLOWED)
        return create_webhook(session, url, list(events), name="crm", allowlist=allowlist).id


def deliveries(factory: sessionmaker[Session]) -> list[tuple[str, int | None, str]]:
    with factory() as session:
        rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return [(r.event, r.lead_id, r.status) for r in rows]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    emit_module.forget_webhooks()
    yield
    emit_module.forget_webhooks()


def test_no_webhook_no_rows_and_no_query(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-30 09:00"))
    with db.session_scope(dealer) as session:
        close_lead(session, lead_id, "anna@autohaus.example", utcnow(), "no_interest")
    assert deliveries(dealer) == []
    # the cached answer: emitting costs no database round trip while nothing is configured
    with dealer() as session:
        emit_module.active_webhooks(session)
        statements: list[str] = []
        engine = session.get_bind()
        from sqlalchemy import event

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert emit(session, "lead.closed", lead_id, key="x") == 0
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert statements == []


def test_each_change_emits_its_event_once(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    with db.session_scope(dealer) as session:
        from mailgate.dealer_settings import import_settings

        from .test_escalation import ESCALATING_DEALER

        import_settings(session, ESCALATING_DEALER + BEN_TOML)
    add_hook(dealer, "http://127.0.0.1:9/hook")
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    assert deliveries(dealer) == [
        ("lead.created", lead_id, "pending"),
        ("lead.assigned", lead_id, "pending"),
    ]
    with dealer() as session:
        created = session.scalars(select(WebhookDelivery)).first()
        assert created is not None
        assert created.payload["lead"]["assignee"]["email"] == "anna@autohaus.example"
        assert created.payload["lead"]["customer"]["email"]
    tick(dealer, now=at("2026-11-30 10:00"))  # reminder + stage 1
    tick(dealer, now=at("2026-12-01 10:05"))  # stage 2
    tick(dealer, now=at("2026-12-01 10:06"))  # nothing new
    escalated = [d for d in deliveries(dealer) if d[0] == "lead.escalated"]
    assert len(escalated) == 2
    with dealer() as session:
        stages = session.scalars(
            select(WebhookDelivery.payload).where(WebhookDelivery.event == "lead.escalated")
        ).all()
        assert [p["data"]["stage"] for p in stages] == ["stage1", "stage2"]
    with db.session_scope(dealer) as session:
        reassign(
            session, load_dealer_config(session), [lead_id], BEN, actor="chef@autohaus.example"
        )
    with db.session_scope(dealer) as session:
        log_contact(session, lead_id, BEN, at("2026-12-01 11:00"))
    with db.session_scope(dealer) as session:
        log_contact(session, lead_id, BEN, at("2026-12-01 12:00"))  # not the first: no event
        set_stage(session, lead_id, BEN, at("2026-12-01 12:01"), "offer")  # neither
    with db.session_scope(dealer) as session:
        close_lead(session, lead_id, BEN, at("2026-12-02 09:00"), "purchase_elsewhere")
    events = [e for e, _, _ in deliveries(dealer)]
    assert events == [
        "lead.created",
        "lead.assigned",
        "lead.escalated",
        "lead.escalated",
        "lead.assigned",
        "lead.status_changed",  # assigned -> contacted, by the call
        "lead.answered",
        "lead.status_changed",  # contacted -> offer
        "lead.status_changed",  # offer -> closed
        "lead.closed",
    ]
    with dealer() as session:
        closed = session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.event == "lead.closed")
        )
        assert closed is not None
        assert closed.payload["lead"]["status"] == "closed"
        assert closed.payload["data"] == {"by": BEN, "reason": "purchase_elsewhere"}
        reassigned = session.scalars(
            select(WebhookDelivery.payload).where(WebhookDelivery.event == "lead.assigned")
        ).all()[1]
        assert reassigned["lead"]["assignee"]["email"] == BEN


def test_a_stage_reached_first_counts_as_the_answer(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    add_hook(dealer, "http://127.0.0.1:9/hook", ("lead.answered",))
    lead_id = ingest_at(dealer, at("2026-11-30 09:00"))
    with db.session_scope(dealer) as session:
        set_stage(session, lead_id, "anna@autohaus.example", at("2026-11-30 09:30"), "test_drive")
    assert deliveries(dealer) == [("lead.answered", lead_id, "pending")]


def test_emitting_twice_with_one_key_queues_once(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-30 09:00"))
    add_hook(dealer, "http://127.0.0.1:9/a", ("lead.closed",))
    add_hook(dealer, "http://127.0.0.1:9/b", ("lead.created",))  # not interested
    with db.session_scope(dealer) as session:
        assert emit(session, "lead.closed", lead_id, {"reason": "x"}, key="k") == 1
    with db.session_scope(dealer) as session:
        assert emit(session, "lead.closed", lead_id, {"reason": "x"}, key="k") == 0
    assert deliveries(dealer) == [("lead.closed", lead_id, "pending")]
    with pytest.raises(ValueError, match="unknown webhook event"):
        with dealer() as session:
            emit(session, "lead.exploded", lead_id)


def test_a_rolled_back_change_emits_nothing(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-30 09:00"))
    add_hook(dealer, "http://127.0.0.1:9/a")
    with dealer() as session:
        close_lead(session, lead_id, "anna@autohaus.example", utcnow(), "no_interest")
        session.rollback()
    assert deliveries(dealer) == []


class Receiver:
    """A real HTTP server on localhost answering with the statuses it is given, in order."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make  # type: ignore[misc]
    for r in made:
        r.close()


def test_failing_receiver_is_retried_then_served_once(
    dealer: sessionmaker[Session], receiver
) -> None:  # type: ignore[no-untyped-def]
    setup(dealer)
    target = receiver([500])
    hook_id = add_hook(dealer, target.url, ("lead.closed",))
    lead_id = ingest_at(dealer, at("2026-11-30 09:00"))
    with db.session_scope(dealer) as session:
        close_lead(session, lead_id, "anna@autohaus.example", utcnow(), "no_interest")
    now = utcnow()
    report = deliver_pass(dealer, LOOPBACK, now=now)
    assert (report.sent, report.retried, report.dead) == (0, 1, 0)
    with dealer() as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
        assert row.next_attempt_at >= now + timedelta(seconds=60)  # backoff of the mail sender
    assert deliver_pass(dealer, LOOPBACK, now=now + timedelta(seconds=30)).sent == 0  # not due
    report = deliver_pass(dealer, LOOPBACK, now=now + timedelta(seconds=70))
    assert (report.sent, report.retried, report.dead) == (1, 0, 0)
    assert deliver_pass(dealer, LOOPBACK, now=now + timedelta(hours=5)).sent == 0
    assert deliveries(dealer) == [("lead.closed", lead_id, "sent")]
    assert len(target.requests) == 2  # the failed try and the delivery, nothing after
    (first_headers, first_body), (headers, body) = target.requests
    assert headers["X-Mailgate-Delivery"] == first_headers["X-Mailgate-Delivery"]
    assert headers["X-Mailgate-Event"] == "lead.closed"
    assert headers["Content-Type"] == "application/json"
    with dealer() as session:
        secret = session.get(Webhook, hook_id).secret  # type: ignore[union-attr]
    assert verify(
        secret,
        headers["X-Mailgate-Timestamp"],
        body,
        headers["X-Mailgate-Signature"],
        now=time.time(),
    )
    assert not verify(
        "wrong",
        headers["X-Mailgate-Timestamp"],
        body,
        headers["X-Mailgate-Signature"],
        now=time.time(),
    )
    assert not verify(
        secret,
        headers["X-Mailgate-Timestamp"],
        body + b" ",
        headers["X-Mailgate-Signature"],
        now=time.time(),
    )
    sent = json.loads(body)
    assert sent["event"] == "lead.closed" and sent["id"] == headers["X-Mailgate-Delivery"]
    assert sent["lead"]["id"] == lead_id and sent["lead"]["close_reason"] == "no_interest"


def test_refused_delivery_is_dead_and_the_admin_told(
    dealer: sessionmaker[Session], receiver
) -> None:  # type: ignore[no-untyped-def]
    setup(dealer)
    target = receiver([410])
    add_hook(dealer, target.url, ("lead.created",))
    lead_id = ingest_at(dealer, at("2026-11-30 09:00"))
    report = deliver_pass(dealer, LOOPBACK)
    assert (report.sent, report.retried, report.dead) == (0, 0, 1)
    assert deliveries(dealer) == [("lead.created", lead_id, "dead")]
    with dealer() as session:
        notice = session.scalar(select(OutboxMail).where(OutboxMail.purpose == "delivery_failure"))
        assert notice is not None and notice.recipients == ["admin@autohaus.example"]
        assert target.url.encode() in (notice.raw or b"")
    assert deliver_pass(dealer, LOOPBACK, now=utcnow() + timedelta(days=1)).dead == 0


@pytest.mark.parametrize("status", [429, 503])
def test_busy_receiver_is_retried(dealer: sessionmaker[Session], receiver, status: int) -> None:  # type: ignore[no-untyped-def]
    setup(dealer)
    target = receiver([status])
    add_hook(dealer, target.url, ("lead.created",))
    ingest_at(dealer, at("2026-11-30 09:00"))
    assert deliver_pass(dealer, LOOPBACK).retried == 1


def test_unreachable_receiver_gives_up_after_max_attempts(
    dealer: sessionmaker[Session], receiver
) -> None:  # type: ignore[no-untyped-def]
    setup(dealer)
    closed = receiver([])
    url = closed.url
    closed.close()  # nobody listens on that port any more
    add_hook(dealer, url, ("lead.created",))
    ingest_at(dealer, at("2026-11-30 09:00"))
    settings = LOOPBACK
    moment = utcnow()
    for _ in range(settings.sender.max_attempts):
        deliver_pass(dealer, settings, now=moment, timeout=2)
        moment += timedelta(days=1)
    assert [s for _, _, s in deliveries(dealer)] == ["dead"]
    with dealer() as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert row.attempts == settings.sender.max_attempts
        assert row.last_error == "connection refused"  # the class, not the port or errno


def test_test_event_and_delete(dealer: sessionmaker[Session], receiver) -> None:  # type: ignore[no-untyped-def]
    setup(dealer)
    target = receiver([])
    hook_id = add_hook(dealer, target.url, ("lead.closed",))
    with db.session_scope(dealer) as session:
        queue_test_event(session, hook_id)
    assert deliver_pass(dealer, LOOPBACK).sent == 1
    assert json.loads(target.requests[0][1])["test"] is True
    with db.session_scope(dealer) as session:
        assert delete_webhook(session, hook_id)
    with dealer() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature("s3cret", 1700000000, b"{}") == f"sha256={expected}"
    assert verify("s3cret", "1700000000", b"{}", f"sha256={expected}", now=1700000100)
    assert not verify("s3cret", "1700000000", b"{}", f"sha256={expected}", now=1700001000)  # old
    assert not verify("s3cret", "soon", b"{}", f"sha256={expected}", now=1700000000)


@pytest.mark.parametrize("direct", [False, True], ids=["tracking-address", "direct-in-copy"])
def test_an_answer_by_mail_emits_answered_once(dealer: sessionmaker[Session], direct: bool) -> None:
    from mailgate.escalation.replies import tracking_address

    from .mails import LEAD_ADDRESS
    from .test_replies import first_lead, reply
    from .test_replies import ingest as ingest_mail

    add_hook(dealer, "http://127.0.0.1:9/hook", ("lead.answered",))
    lead = first_lead(dealer)
    for n in (1, 2):  # the second answer is not the first response: no second event
        if direct:
            raw = reply(
                "Anna Schmidt <anna@autohaus.example>",
                "Erika Musterfrau <erika@kunden.example>",
                f"Ihr Golf {n}",
                f"Guten Tag, anbei Angebot {n}.",
                # the tracking address in Cc (reply_mode cc); the plain lead mailbox in Cc
                # carries no token and is only a possible answer (issue 17)
                {"Cc": tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)},
            )
        else:
            to = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
            raw = reply(
                "Anna Schmidt <anna@autohaus.example>", to, f"AW: Anfrage {n}", f"Gern {n}."
            )
        assert ingest_mail(dealer, raw).lead_id == lead.id
    assert deliveries(dealer) == [("lead.answered", lead.id, "pending")]
    with dealer() as session:
        payload = session.scalars(select(WebhookDelivery.payload)).one()
    assert payload["data"] == {"by": "anna@autohaus.example", "how": "mail"}
    assert payload["lead"]["first_response_at"] is not None


def test_a_redirect_is_not_followed_but_final(dealer: sessionmaker[Session], receiver) -> None:  # type: ignore[no-untyped-def]
    setup(dealer)
    target = receiver([301])
    add_hook(dealer, target.url, ("lead.created",))
    ingest_at(dealer, at("2026-11-30 09:00"))
    assert deliver_pass(dealer, LOOPBACK).dead == 1
    assert len(target.requests) == 1
