"""The outbox sender against a real local relay (an aiosmtpd sink we control)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import RelaySettings, SenderSettings, Settings
from mailgate.dealer_settings import load_dealer_config
from mailgate.models import DealerSetting, OutboxMail, utcnow
from mailgate.outbound.outbox import DeferredMail, enqueue_deferred, enqueue_template
from mailgate.outbound.send import SendReport, run_sender, send_pass

from .conftest import free_port


class Sink:
    """Records delivered mails; ``replies`` scripts the answer to each DATA."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.replies: list[str] = []
        self.peers: list[object] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            reply = self.replies.pop(0) if self.replies else "250 OK"
            if reply.startswith("250"):
                self.received.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
                )
                self.peers.append(session.peer)
        return reply


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def settings_for(port: int) -> Settings:
    return replace(
        Settings(),
        relay=RelaySettings(host="127.0.0.1", port=port, timeout=5),
        sender=SenderSettings(retry_base_seconds=60, retry_max_seconds=600, max_attempts=4),
    )


def enqueue(factory: sessionmaker[Session], n: int = 1, to: str = "anna@autohaus.example") -> None:
    with factory() as session:
        dealer = load_dealer_config(session)
        enqueue_template(
            session,
            dealer,
            key=f"test:{n}",
            purpose="notification",
            template="unassigned",
            language="de",
            context={
                "inbound": {
                    "id": n,
                    "subject": f"Test {n}",
                    "sender": "x@kunden.example",
                    "received_at": "heute",
                    "reason": "test",
                }
            },
            to=[("Anna", to)],
        )
        session.commit()


def rows(factory: sessionmaker[Session]) -> list[OutboxMail]:
    with factory() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def test_delivers_byte_intact_with_stable_message_id(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    enqueue(dealer)
    report = send_pass(dealer, settings_for(port))
    assert report.sent == 1
    [row] = rows(dealer)
    assert row.status == "sent" and row.sent_at is not None and row.attempts == 1
    mail_from, rcpts, raw = handler.received[0]
    assert mail_from == "leads@autohaus.example" and rcpts == ["anna@autohaus.example"]
    assert raw == row.raw and row.message_id.encode() in raw
    assert b"Auto-Submitted: auto-generated" in raw
    assert send_pass(dealer, settings_for(port)).sent == 0  # nothing twice


def test_enqueue_is_idempotent(dealer) -> None:  # type: ignore[no-untyped-def]
    enqueue(dealer, 7)
    enqueue(dealer, 7)
    assert len(rows(dealer)) == 1


def test_451_is_retried_after_the_backoff(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    handler.replies = ["451 4.3.0 try later"]
    enqueue(dealer)
    now = utcnow()
    assert send_pass(dealer, settings_for(port), now=now).retried == 1
    [row] = rows(dealer)
    assert row.status == "pending" and row.attempts == 1 and "451" in (row.last_error or "")
    delay = (row.next_attempt_at - now).total_seconds()
    assert 60 <= delay <= 66.5  # base 60 s plus at most 10 % jitter
    assert send_pass(dealer, settings_for(port), now=now + timedelta(seconds=30)).sent == 0
    assert send_pass(dealer, settings_for(port), now=now + timedelta(seconds=70)).sent == 1
    assert len(handler.received) == 1 and rows(dealer)[0].status == "sent"


def test_550_is_dead_after_one_attempt_and_the_admin_is_told(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    handler.replies = ["550 5.1.1 no such user"]
    enqueue(dealer)
    assert send_pass(dealer, settings_for(port)).dead == 1
    dead, notice = rows(dealer)
    assert dead.status == "dead" and dead.attempts == 1 and "550" in (dead.last_error or "")
    assert notice.purpose == "delivery_failure" and notice.recipients == ["admin@autohaus.example"]
    assert b"no such user" in notice.raw
    # the notice itself bounces: it is dead, but no notice about the notice
    handler.replies = ["550 5.1.1 admin gone too"]
    assert send_pass(dealer, settings_for(port)).dead == 1
    assert len(rows(dealer)) == 2


def test_relay_down_keeps_the_mail_and_delivers_later(dealer) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nothing listens here yet
    enqueue(dealer)
    now = utcnow()
    assert send_pass(dealer, settings_for(port), now=now).retried == 1
    [row] = rows(dealer)
    assert row.status == "pending" and "unreachable" in (row.last_error or "")
    assert row.attempts == 1 and row.next_attempt_at > now
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert send_pass(dealer, settings_for(port), now=now + timedelta(hours=1)).sent == 1
    finally:
        controller.stop()
    assert len(handler.received) == 1


def test_temporary_failures_give_up_after_max_attempts(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    handler.replies = ["421 4.3.2 busy"] * 10
    enqueue(dealer)
    now = utcnow()
    for hour in range(4):
        send_pass(dealer, settings_for(port), now=now + timedelta(hours=hour))
    statuses = [(r.purpose, r.status) for r in rows(dealer)]
    assert statuses[0] == ("notification", "dead") and statuses[1][0] == "delivery_failure"
    assert "gave up after 4 attempts" in (rows(dealer)[0].last_error or "")


def test_send_mails_off_and_no_relay_suppress(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    enqueue(dealer, 1)
    with dealer() as session:
        row = session.get(DealerSetting, "dealer")
        session.execute(
            update(DealerSetting)
            .where(DealerSetting.section == "dealer")
            .values(data={**row.data, "send_mails": False})
        )
        session.commit()
    assert send_pass(dealer, settings_for(port)).suppressed == 1
    assert rows(dealer)[0].status == "suppressed" and handler.received == []
    with dealer() as session:
        session.execute(
            update(DealerSetting)
            .where(DealerSetting.section == "dealer")
            .values(data={**row.data, "send_mails": True})
        )
        session.commit()
    enqueue(dealer, 2)
    no_relay = replace(settings_for(port), relay=RelaySettings(host=""))
    assert send_pass(dealer, no_relay).suppressed == 1
    assert rows(dealer)[1].last_error == "no relay configured" and handler.received == []


def test_partial_recipient_refusal_is_recorded(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink

    async def handle_RCPT(server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if address.startswith("gone"):
            return "550 5.1.1 unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    handler.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
    with dealer() as session:
        dealer_config = load_dealer_config(session)
        enqueue_template(
            session,
            dealer_config,
            key="multi",
            purpose="notification",
            template="unassigned",
            language="en",
            context={
                "inbound": {
                    "id": 1,
                    "subject": "s",
                    "sender": "x",
                    "received_at": "now",
                    "reason": "r",
                }
            },
            to=[("", "anna@autohaus.example"), ("", "gone@autohaus.example")],
        )
        session.commit()
    assert send_pass(dealer, settings_for(port)).sent == 1
    [row] = rows(dealer)
    assert row.status == "sent" and "gone@autohaus.example: 550" in (row.last_error or "")


def test_two_concurrent_senders_deliver_each_mail_once(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    for n in range(50):
        enqueue(dealer, n)
    start = threading.Barrier(2)
    reports: list[SendReport] = []

    def sender() -> None:
        start.wait()
        # small batches so the two senders really interleave their claims
        while (report := send_pass(dealer, settings_for(port), limit=5)).sent:
            reports.append(report)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    ids = [raw.split(b"Message-ID: ")[1].split(b"\r\n")[0] for _, _, raw in handler.received]
    assert len(ids) == 50 and len(set(ids)) == 50
    assert sum(r.sent for r in reports) == 50
    assert {r.status for r in rows(dealer)} == {"sent"}


def test_one_connection_serves_the_whole_pass(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    for n in range(3):
        enqueue(dealer, n)
    assert send_pass(dealer, settings_for(port)).sent == 3
    assert len(handler.peers) == 3 and len(set(handler.peers)) == 1


def test_a_mail_smtplib_cannot_send_does_not_stop_the_others(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    enqueue(dealer, 1)
    with dealer() as session:  # a row from before enqueue checked addresses
        template = session.scalars(select(OutboxMail)).one()
        session.add(
            OutboxMail(
                idempotency_key="legacy",
                purpose="notification",
                mail_from=template.mail_from,
                recipients=["jörg@autohaus.example"],
                subject="legacy",
                message_id="<legacy@autohaus.example>",
                raw=template.raw,
            )
        )
        session.commit()
    enqueue(dealer, 2)
    report = send_pass(dealer, settings_for(port))
    assert (report.sent, report.dead) == (2, 1)
    statuses = {r.idempotency_key: r.status for r in rows(dealer)}
    assert statuses == {
        "test:1": "sent",
        "legacy": "dead",
        "test:2": "sent",
        "delivery_failure:2": "pending",
    }


def test_relay_authentication(dealer) -> None:  # type: ignore[no-untyped-def]
    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = auth_data.login == b"mailgate" and auth_data.password == b"geheim"
        return AuthResult(success=ok, handled=False)  # False: answer 535

    handler, port = Sink(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,  # loopback test only
    )
    controller.start()
    try:
        enqueue(dealer)
        wrong = replace(
            settings_for(port),
            relay=RelaySettings("127.0.0.1", port, "none", "mailgate", "falsch", 5),
        )
        now = utcnow()
        # a rejected login is the relay's configuration, not the mail's fault: retried
        assert send_pass(dealer, wrong, now=now).retried == 1
        assert rows(dealer)[0].status == "pending" and "535" in (rows(dealer)[0].last_error or "")
        right = replace(wrong, relay=replace(wrong.relay, password="geheim"))
        assert send_pass(dealer, right, now=now + timedelta(hours=1)).sent == 1
    finally:
        controller.stop()
    assert len(handler.received) == 1


def test_run_sender_loops_until_stopped(dealer, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    settings = replace(
        settings_for(port), sender=replace(settings_for(port).sender, poll_interval=0.05)
    )
    stop = threading.Event()
    thread = threading.Thread(target=run_sender, args=(dealer, settings, stop))
    thread.start()
    try:
        enqueue(dealer, 1)
        deadline = time.monotonic() + 20
        while not handler.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(handler.received) == 1 and rows(dealer)[0].status == "sent"


def test_deferred_mail_is_rendered_right_before_sending(
    dealer: sessionmaker[Session], sink: tuple[Sink, int]
) -> None:
    """A deferred row becomes the same mail enqueue_template would have stored."""
    handler, port = sink
    context = {
        "failed": {
            "id": 1,
            "purpose": "x",
            "recipients": ["a@b.example"],
            "subject": "s",
            "error": "550 kaputt",
        }
    }
    with dealer() as session:
        cfg = load_dealer_config(session)
        new = enqueue_deferred(
            session,
            cfg,
            [
                DeferredMail(
                    key="deferred:1",
                    purpose="delivery_failure",
                    template="delivery_failure",
                    language="en",
                    context=context,
                    to=[("Admin", "admin@autohaus.example")],
                ),
                DeferredMail(
                    key="deferred:2",
                    purpose="reminder",
                    template="no_such_template",
                    language="de",
                    context={},
                    to=[("Anna", "anna@autohaus.example")],
                ),
            ],
        )
        again = enqueue_deferred(
            session,
            cfg,
            [
                DeferredMail(
                    "deferred:1", "x", "delivery_failure", "en", context, [("", "a@b.example")]
                )
            ],
        )
        session.commit()
    assert (new, again) == (2, 0)
    report = send_pass(dealer, settings_for(port))
    assert report.sent == 1
    [(_, rcpts, raw)] = handler.received
    assert rcpts == ["admin@autohaus.example"] and b"550 kaputt" in raw
    with dealer() as session:
        good, bad = session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()[:2]
        notices = session.scalars(
            select(OutboxMail).where(OutboxMail.idempotency_key == f"delivery_failure:{bad.id}")
        ).all()
    assert good.status == "sent" and good.raw == raw and good.message_id.encode() in raw
    assert good.subject and good.subject in raw.decode()
    assert bad.status == "dead" and "could not compose" in (bad.last_error or "")
    assert len(notices) == 1  # the admin hears about the broken template


def _deferred(factory: sessionmaker[Session], count: int) -> None:
    with factory() as session:
        cfg = load_dealer_config(session)
        context = {"inbound": {"id": 1, "subject": "s", "sender": "x@k.example"}}
        context["inbound"].update(received_at="heute", reason="test")
        to = [("", "a@b.de")]
        mails = [
            DeferredMail(f"group:{n}", "notification", "unassigned", "de", context, to)
            for n in range(count)
        ]
        enqueue_deferred(session, cfg, mails)
        session.commit()


def _count_commits(factory: sessionmaker[Session]) -> list[int]:
    from sqlalchemy import event

    commits = [0]

    def on_commit(_conn: object) -> None:
        commits[0] += 1

    event.listen(factory.kw["bind"], "commit", on_commit)
    return commits


def test_a_burst_of_mails_is_stored_a_group_at_a_time(dealer, sink, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rendered bytes of up to GROUP_ROWS mails share one commit (issue 18: one fsync each)."""
    from mailgate.outbound import send

    monkeypatch.setattr(send, "GROUP_SECONDS", 60.0)  # groups by count, however slow the machine
    handler, port = sink
    _deferred(dealer, 45)
    commits = _count_commits(dealer)
    report = send_pass(dealer, settings_for(port))
    assert report.sent == 45 and len(handler.received) == 45
    stored = -(-45 // send.GROUP_ROWS)  # three groups
    # one settle per sent mail, one store per group, at most five for the claim and its reads
    assert commits[0] <= 45 + stored + 5
    done = rows(dealer)
    assert all(r.status == "sent" and r.raw and r.message_id.encode() in r.raw for r in done)


def test_suppressed_mails_are_stored_and_settled_in_one_commit(dealer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mailgate.outbound import send

    monkeypatch.setattr(send, "GROUP_SECONDS", 60.0)
    _deferred(dealer, 30)
    commits = _count_commits(dealer)
    no_relay = replace(Settings(), relay=RelaySettings(host=""))
    assert send_pass(dealer, no_relay).suppressed == 30
    assert commits[0] <= 2 + 5  # two groups; the claim and its reads
    done = rows(dealer)
    assert {r.status for r in done} == {"suppressed"} and all(r.raw for r in done)
    assert {r.last_error for r in done} == {"no relay configured"}


def _lose_first_row_while_rendering(dealer, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Another sender re-claims the first row this pass renders; returns [its id] once it did."""
    from mailgate.outbound import send

    real = send.materialise
    stolen: list[int] = []

    def materialise_and_lose_one(cfg, row):  # type: ignore[no-untyped-def]
        if not stolen:
            stolen.append(row.id)
            with dealer() as session:
                session.execute(
                    update(OutboxMail).where(OutboxMail.id == row.id).values(claimed_by="other")
                )
                session.commit()
        return real(cfg, row)

    monkeypatch.setattr(send, "materialise", materialise_and_lose_one)
    return stolen


def test_a_row_taken_over_while_its_group_renders_is_not_sent(  # type: ignore[no-untyped-def]
    dealer, sink, monkeypatch
) -> None:
    """Another sender re-claimed one row (our lease ran out): we neither store nor send it."""
    handler, port = sink
    _deferred(dealer, 3)
    stolen = _lose_first_row_while_rendering(dealer, monkeypatch)
    assert send_pass(dealer, settings_for(port)).sent == 2
    taken = next(r for r in rows(dealer) if r.id == stolen[0])
    assert taken.claimed_by == "other" and taken.raw is None and taken.status == "sending"
    assert len(handler.received) == 2


def test_a_row_taken_over_while_suppressed_mails_render_is_left_alone(  # type: ignore[no-untyped-def]
    dealer, monkeypatch
) -> None:
    """The same when nothing is sent: the taken row keeps its new owner, the rest are settled."""
    _deferred(dealer, 4)
    stolen = _lose_first_row_while_rendering(dealer, monkeypatch)
    no_relay = replace(Settings(), relay=RelaySettings(host=""))
    assert send_pass(dealer, no_relay).suppressed == 3
    by_id = {r.id: r for r in rows(dealer)}
    taken = by_id.pop(stolen[0])
    assert taken.claimed_by == "other" and taken.raw is None and taken.status == "sending"
    assert {r.status for r in by_id.values()} == {"suppressed"}
    assert all(r.raw and r.claimed_by is None for r in by_id.values())
