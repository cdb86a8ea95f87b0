from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.demo import seed_demo
from mailgate.models import InboundMail, Lead, OutboxMail


def test_demo_seeds_a_working_dealership_once(factory: sessionmaker[Session]) -> None:
    first = seed_demo(factory, Settings())
    assert first["stored"] == 12
    assert first["statuses"] == {"processed": 10, "discarded": 2}
    with factory() as session:
        leads = session.scalars(select(Lead)).all()
        assert len(leads) == 10
        assert all(lead.assignee is not None for lead in leads)
        kinds = {lead.kind for lead in leads}
        assert {"test_drive", "trade_in", "financing", "service", "inquiry"} <= kinds
        discarded = session.execute(
            select(InboundMail.message_id, InboundMail.status_reason).where(
                InboundMail.status == "discarded"
            )
        ).all()
        assert {mid for mid, _ in discarded} == {
            "<demo-bounce@mx.demo.example>",
            "<demo-ooo@kunden.example>",
        }
        assert all(reason for _, reason in discarded)
        notified = session.scalars(select(OutboxMail.lead_id)).all()
        assert sorted(notified) == sorted(lead.id for lead in leads)
        umlauts = session.scalar(select(Lead).where(Lead.message.like("%unfallfrei%")))
        assert umlauts is not None and "Fürth" in (umlauts.message or "")
    second = seed_demo(factory, Settings())
    assert second["stored"] == 0
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(InboundMail)) == 12
