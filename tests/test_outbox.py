"""The outbox table: idempotent enqueue in the caller's transaction, claim by compare-and-set."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.dealer_settings import load_dealer_config
from mailgate.models import DealerSetting, OutboxMail, utcnow
from mailgate.outbound.compose import Attachment, new_message_id
from mailgate.outbound.outbox import claim_due, enqueue, enqueue_template, renew_claim

UNASSIGNED = {
    "inbound": {
        "id": 1,
        "subject": "Frage",
        "sender": "kunde@kunden.example",
        "received_at": "20.11.2026 10:00",
        "reason": "no parser matched",
    }
}


def add(session: Session, key: str = "k1", **overrides: object) -> bool:
    args: dict = {
        "key": key,
        "purpose": "test",
        "mail_from": "leads@autohaus.example",
        "recipients": ["anna@autohaus.example"],
        "raw": b"Subject: x\r\n\r\nbody\r\n",
        "subject": "x",
        "message_id": new_message_id("autohaus.example"),
    }
    args.update(overrides)
    return enqueue(session, **args)


def count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(OutboxMail)) or 0


def test_enqueue_is_idempotent_per_key(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        assert add(session) is True
        assert add(session) is False  # same transaction
        session.commit()
    with factory() as session:
        assert add(session, raw=b"other") is False  # later transaction
        session.commit()
        [row] = session.scalars(select(OutboxMail)).all()
        assert row.status == "pending" and row.attempts == 0 and row.raw.endswith(b"body\r\n")


def test_enqueue_does_not_commit(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        assert add(session)
        session.rollback()
    assert count(factory) == 0


def test_a_duplicate_key_keeps_the_callers_transaction_alive(dealer: sessionmaker[Session]) -> None:
    """On PostgreSQL a failed INSERT would abort everything the caller did before it."""
    with dealer() as session:
        add(session, "dup")
        session.commit()
    with dealer() as session:
        row = session.get(DealerSetting, "dealer")
        assert row is not None
        session.execute(
            update(DealerSetting)
            .where(DealerSetting.section == "dealer")
            .values(data={**row.data, "name": "Neuer Name"})
        )
        assert add(session, "dup") is False
        assert add(session, "fresh") is True
        session.commit()
    with dealer() as session:
        assert load_dealer_config(session).name == "Neuer Name"
    assert count(dealer) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"recipients": []},
        {"recipients": ["a@b.example\r\nRCPT TO:<x@y.example>"]},
        {"recipients": ["jörg@b.example"]},
        {"mail_from": "leads@autohaus.example>\r\nDATA"},
        {"key": "x" * 256},
        {"key": ""},
    ],
)
def test_enqueue_rejects_what_would_break_smtp_or_the_insert(
    factory: sessionmaker[Session], overrides: dict
) -> None:
    with factory() as session:
        with pytest.raises(ValueError):
            add(session, **overrides)
        assert add(session, "after") is True  # the session is still usable
        session.commit()
    assert count(factory) == 1


def test_enqueue_template_composes_from_the_dealer(dealer: sessionmaker[Session]) -> None:
    original = b"From: x\r\n\r\n\xff\x00broken"
    with dealer() as session:
        config = load_dealer_config(session)
        inserted = enqueue_template(
            session,
            config,
            key="unassigned:1",
            purpose="unassigned",
            template="unassigned",
            language="de",
            context=UNASSIGNED,
            to=[("", "zentrale@autohaus.example")],
            reply_to=[("Kunde", "kunde@kunden.example"), ("Kaputt", "nicht gültig")],
            attachments=[Attachment("original.eml", original, "message/rfc822")],
        )
        assert inserted
        again = enqueue_template(
            session,
            config,
            key="unassigned:1",
            purpose="unassigned",
            template="unassigned",
            language="de",
            context=UNASSIGNED,
            to=[("", "zentrale@autohaus.example")],
        )
        assert again is False
        session.commit()
        [row] = session.scalars(select(OutboxMail)).all()
    assert row.mail_from == "leads@autohaus.example"
    assert row.recipients == ["zentrale@autohaus.example"]
    assert re.fullmatch(r"<[0-9a-f]{32}@autohaus\.example>", row.message_id)
    assert row.subject == "Nicht zuordenbare Anfrage: Frage"
    msg = email.message_from_bytes(row.raw, policy=policy.default)
    assert msg["From"] == "Autohaus Beispiel Verkauf <leads@autohaus.example>"
    assert msg["Message-ID"] == row.message_id and msg["Subject"] == row.subject
    assert msg["Reply-To"] == "Kunde <kunde@kunden.example>"  # the unusable one is dropped
    assert "Autohaus Beispiel" in msg.get_body(("plain",)).get_content()  # dealer_name added
    [part] = list(msg.iter_attachments())
    assert part.get_content() == original


def test_send_after_delays_the_claim(factory: sessionmaker[Session]) -> None:
    now = utcnow()
    with factory() as session:
        add(session, "later", send_after=now + timedelta(hours=1))
        session.commit()
        assert claim_due(session, "a", now) == []
        [row] = claim_due(session, "a", now + timedelta(hours=1, seconds=1))
    assert row.idempotency_key == "later" and row.status == "sending" and row.claimed_by == "a"


def test_claim_is_committed_and_exclusive_until_the_lease_ends(
    factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with factory() as session:
        for n in range(3):
            add(session, f"k{n}")
        session.commit()
    with factory() as session:
        claimed = claim_due(session, "a", now + timedelta(seconds=1), limit=2, lease_seconds=60)
    assert [r.idempotency_key for r in claimed] == ["k0", "k1"]
    with factory() as other:  # visible to everyone: the claim was committed
        states = dict(other.execute(select(OutboxMail.idempotency_key, OutboxMail.status)).all())
    assert states == {"k0": "sending", "k1": "sending", "k2": "pending"}
    with factory() as session:
        [rest] = claim_due(session, "b", now + timedelta(seconds=30), lease_seconds=60)
        assert rest.idempotency_key == "k2"
        assert claim_due(session, "c", now + timedelta(seconds=30)) == []
        # a's and b's leases have run out: their rows may be taken over (crashed senders)
        taken = claim_due(session, "c", now + timedelta(seconds=120))
        assert [r.idempotency_key for r in taken] == ["k0", "k1", "k2"]
        assert renew_claim(session, taken[0].id, "a", now) is False  # a lost it
        assert renew_claim(session, taken[0].id, "c", now + timedelta(hours=1)) is True
