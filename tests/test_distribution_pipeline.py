"""End to end: an ingested mail -> an assigned lead, a notification, an explained protocol."""

from __future__ import annotations

import email
from email import policy

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution.service import lead_facts
from mailgate.models import Lead

from .distribution_helpers import (
    UNTIL,
    absent,
    form_mail,
    ingest,
    leads,
    outbox,
    owners,
    protocol,
    setup,
    team_toml,
)


def test_rolling_in_turn_with_notification_and_protocol(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml())
    ingest(factory, *(form_mail(n) for n in range(1, 5)))
    assert owners(factory) == ["anna", "ben", "carl", "anna"]
    found = leads(factory)
    mails = outbox(factory)
    assert [(m.purpose, m.recipients, m.lead_id) for m in mails] == [
        ("notification", [lead.assignee.email], lead.id) for lead in found if lead.assignee
    ]
    assert all(lead.status == "assigned" and lead.location == "muenchen" for lead in found)
    entries = protocol(factory, found[1].id)
    assert ("assigned", "to ben@autohaus.example: rolling distribution: next in turn") in entries
    assert entries[-1] == ("notified", "notification to ben@autohaus.example queued")


def test_absent_user_is_passed_over_and_rejoins_without_a_burst(
    factory: sessionmaker[Session],
) -> None:
    setup(factory, team_toml(users={"ben": absent()}))
    ingest(factory, *(form_mail(n) for n in range(1, 4)))
    assert owners(factory) == ["anna", "carl", "anna"]
    first_carl = leads(factory)[1]
    assert any(
        f"passed over: ben@autohaus.example absent until {UNTIL}" in detail
        for _, detail in protocol(factory, first_carl.id)
    )
    setup(factory, team_toml())  # Ben is back: he takes his turn, nothing to catch up
    ingest(factory, *(form_mail(n) for n in range(4, 10)))
    assert owners(factory)[3:] == ["ben", "carl", "anna", "ben", "carl", "anna"]


def test_everyone_absent_substitute_then_fallback_with_every_hop_explained(
    factory: sessionmaker[Session],
) -> None:
    users = {"anna": absent("chef"), "ben": absent(), "carl": absent()}
    setup(factory, team_toml(users=users))
    ingest(factory, form_mail(1), form_mail(2))
    assert owners(factory) == ["chef", "chef"]
    first, second = leads(factory)
    assigned = dict(protocol(factory, first.id))["assigned"]
    assert f"anna@autohaus.example absent until {UNTIL} → substitute chef" in assigned
    assigned = dict(protocol(factory, second.id))["assigned"]
    assert f"ben@autohaus.example absent until {UNTIL}, no substitute → fallback user" in assigned
    assert [m.recipients for m in outbox(factory)] == [["chef@autohaus.example"]] * 2


def test_follow_up_goes_to_the_customers_salesperson_outside_the_rotation(
    factory: sessionmaker[Session],
) -> None:
    setup(factory, team_toml())
    ingest(factory, form_mail(1, name="Otto Oft", email="otto@kunden.example"), form_mail(2))
    with factory.begin() as session:
        session.execute(update(Lead).values(status="closed"))
    # Rotation would give Carl the next lead; Otto's follow-up goes to Anna.
    ingest(factory, form_mail(3, name="Otto Oft", email="OTTO@kunden.example"), form_mail(4))
    assert owners(factory) == ["anna", "ben", "anna", "carl"]
    third = leads(factory)[2]
    entries = protocol(factory, third.id)
    assert ("customer", f"known customer #{third.customer_id} by e-mail") in entries
    assert "follow-up of a known customer" in dict(entries)["assigned"]


def test_follow_ups_distributed_normally_when_configured(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml("distribute_followups_normally = true"))
    ingest(factory, form_mail(1, name="Otto Oft", email="otto@kunden.example"))
    with factory.begin() as session:
        session.execute(update(Lead).values(status="closed"))
    ingest(factory, form_mail(2, name="Otto Oft", email="otto@kunden.example"))
    assert owners(factory) == ["anna", "ben"]


def test_mail_of_a_customer_with_an_open_lead_is_attached(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml())
    ingest(factory, form_mail(1, name="Otto Oft", email="otto@kunden.example"))
    again = form_mail(2, name="Otto Oft", email="otto@kunden.example", message="Noch eine Frage")
    ingest(factory, again)
    ingest(factory, again, expect="discarded")  # delivered twice (SMTP and IMAP)
    (lead,) = leads(factory)
    entries = protocol(factory, lead.id)
    assert [a for a, _ in entries].count("follow-up") == 1
    mails = outbox(factory)
    assert [(m.purpose, m.recipients) for m in mails] == [
        ("notification", ["anna@autohaus.example"]),
        ("followup", ["anna@autohaus.example"]),
    ]
    body = email.message_from_bytes(mails[1].raw, policy=policy.default).get_body(("plain",))
    assert body is not None and "Noch eine Frage" in body.get_content()


def test_trade_in_without_vehicle_is_forwarded_with_a_pdf(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml())
    ingest(
        factory,
        form_mail(
            1, subject="Inzahlungnahme meines Wagens", vehicle=False, message="Was ist er wert?"
        ),
        form_mail(2, subject="Inzahlungnahme beim Kauf", vehicle=True),
    )
    first, second = leads(factory)
    assert first.kind == "trade_in" and second.kind == "trade_in"
    cc = [m for m in outbox(factory) if m.purpose == "trade_in_cc"]
    assert [(m.recipients, m.lead_id) for m in cc] == [(["ankauf@autohaus.example"], first.id)]
    message = email.message_from_bytes(cc[0].raw, policy=policy.default)
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF-")
    assert f"/URI (https://leads.autohaus.example/leads/{first.id})".encode() in pdf
    assert ("trade_in_cc", "core data as PDF to ankauf@autohaus.example queued") in protocol(
        factory, first.id
    )


def test_groups_route_by_receiving_mailbox_location(factory: sessionmaker[Session]) -> None:
    groups = (
        '\n[[groups]]\nname = "augsburg"\nmatch = { location = ["augsburg"] }\n'
        '\n[[groups]]\nname = "zentrale"\nmatch = { source = ["*"] }\n'
    )
    users = {"anna": 'groups = ["zentrale"]', "ben": 'groups = ["zentrale"]'}
    users["carl"] = 'groups = ["augsburg"]'
    setup(factory, team_toml('mode = "groups"', users=users, extra=groups))
    ingest(factory, form_mail(1), form_mail(2), to="augsburg@autohaus.example")
    ingest(factory, form_mail(3), form_mail(4), to="leads@autohaus.example")
    assert owners(factory) == ["carl", "carl", "anna", "ben"]
    found = leads(factory)
    assert [lead.location for lead in found] == ["augsburg", "augsburg", "muenchen", "muenchen"]
    assert "group augsburg: next in turn" in dict(protocol(factory, found[0].id))["assigned"]


def test_pool_leads_wait_without_notification_unless_configured(
    factory: sessionmaker[Session],
) -> None:
    nobody = {k: "receives_leads = false" for k in ("anna", "ben", "carl")}
    pool_user = (
        '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'
    )
    setup(
        factory,
        team_toml('mode = "pool"\npool_user = "pool@autohaus.example"', nobody, pool_user),
    )
    ingest(factory, form_mail(1))
    (lead,) = leads(factory)
    assert lead.assignee is not None and lead.assignee.email == "pool@autohaus.example"
    assert lead.status == "new" and outbox(factory) == []
    assert "pool mode → pool account" in dict(protocol(factory, lead.id))["pool"]
    setup(
        factory,
        team_toml(
            'mode = "pool"\npool_user = "pool@autohaus.example"\npool_notice = true',
            nobody,
            pool_user,
        ),
    )
    ingest(factory, form_mail(2))
    notified = sorted(m.recipients[0] for m in outbox(factory) if m.purpose == "pool_notice")
    # Ada cannot be assigned; the pool account does not notify itself.
    assert notified == [f"{k}@autohaus.example" for k in ("anna", "ben", "carl", "chef")]


def test_category_permissions_keep_leads_from_users_who_may_not_see_them(
    factory: sessionmaker[Session],
) -> None:
    setup(factory, team_toml(users={"anna": 'permissions = { service = "none" }'}))
    ingest(factory, form_mail(1, subject="Servicetermin für die Inspektion", vehicle=False))
    (lead,) = leads(factory)
    assert lead.kind == "service" and lead.category == "service"
    assert owners(factory) == ["ben"]


def test_vehicle_location_and_imap_mailbox_routing(factory: sessionmaker[Session]) -> None:
    imap = (
        '\n[[imap]]\nname = "filiale"\nhost = "imap.autohaus.example"\n'
        'username = "augsburg@autohaus.example"\nlocation = "augsburg"\n'
    )
    setup(factory, team_toml("use_vehicle_location = true", extra=imap))
    with factory() as session:
        dealer = load_dealer_config(session)
    lead = {"source": "mobile.de", "kind": "inquiry", "vehicle": {"location": "augsburg"}}
    facts, note = lead_facts(dealer, lead, ["leads+x@autohaus.example"])
    assert facts.location == "augsburg" and note is None
    facts, note = lead_facts(dealer, {**lead, "vehicle": {}}, ["leads+x@autohaus.example"])
    assert facts.location == "muenchen" and note is not None
    assert note.params == {"location": "muenchen"}
    facts, _ = lead_facts(dealer, {**lead, "vehicle": {}}, [], mailbox="filiale/INBOX")
    assert facts.location == "augsburg"
    # end to end: the parsed "Fahrzeugstandort" routes a mail sent to the main address
    ingest(factory, form_mail(1, vehicle_location="augsburg"), to="leads@autohaus.example")
    (routed,) = leads(factory)
    assert routed.location == "augsburg"
