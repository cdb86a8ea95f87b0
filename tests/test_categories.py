"""Dealer-defined lead categories and what "ALL" means (issue 20 item 7, seed 003).

Seed 003 ("Umstellung Probefahrt-Leads"): "Die Probefahrtsanfragen ... gehören in
den Lead-Einstellungen zu der bestehenden Kategorie 'Siebel – NISSAN'. In dieser
Kategorie finden Sie auch die Angebotsanfragen ..." and "je Benutzer und
Lead-Art die entsprechende Berechtigung": per user and lead category the
permission ALL or per location; "zumindest ein Benutzer ... für die neue
Kategorie die Lead-Berechtigung 'ALLE' besitzt, damit keine Leads übersehen
werden" — at least one ALL per category.

Leads are made the real way (stored mail -> pipeline); the team of
:func:`tests.distribution_helpers.team_toml` plus a pool, with a dealer
category "Siebel – NISSAN" for every ``oem:nissan`` lead.  Both databases.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import SettingsError, export_settings, load_dealer_config, validate
from mailgate.distribution.manual import CustomerChoice, ManualLead, create_manual_lead
from mailgate.distribution.service import lead_facts
from mailgate.models import Lead

from .distribution_helpers import form_mail, setup, team_toml
from .test_webui_lead import ADA, ANNA, BEN, CARL, CHEF, POOL_TOML, new_lead
from .webui_helpers import ensure_user, logged_in, web_app

NISSAN = '\n[[categories]]\ncode = "nissan"\nname = "Siebel – NISSAN"\nsources = ["oem:nissan"]\n'
NOW = datetime.now(UTC).replace(microsecond=0)
NISSAN_MAIL = Path(__file__).parent / "fixtures/mails/oem_nissan/probefahrt-latin1-qp.eml"


def nissan_mail(kind: str = "Probefahrt", n: int = 1) -> bytes:
    """Nissan's test-drive fixture, or the same mail as another request type and lead."""
    raw = NISSAN_MAIL.read_bytes()
    if kind == "Probefahrt":
        return raw
    return (
        raw.replace(b"Anfrageart: Probefahrt", f"Anfrageart: {kind}".encode())
        .replace(b"Probefahrtanfrage", b"Anfrage")
        .replace(b"<nissan1@", f"<nissan-{n}@".encode())
        .replace(b"NDE-2026-0045812", f"NDE-2026-99{n:05d}".encode())
        .replace(b"bjoern.lovas@kunde.example", f"kunde{n}@nissan-kunde.example".encode())
    )


def team(factory: sessionmaker[Session], users: dict[str, str] | None = None) -> None:
    """The team with passwords and the Nissan category; ``users`` adds TOML per user.

    Chris Chef has ALL on it (seed 003: at least one user must)."""
    users = {"chef": 'permissions = { nissan = "all" }', **(users or {})}
    text = team_toml('pool_user = "pool@autohaus.example"', users, extra=POOL_TOML + NISSAN)
    setup(factory, text)
    for email, role in ((ANNA, "salesperson"), (BEN, "salesperson"), (ADA, "admin")):
        ensure_user(factory, email, role)
    ensure_user(factory, CHEF, "supervisor")
    ensure_user(factory, CARL, "salesperson", supervisor_email="boss@autohaus.example")


def category(factory: sessionmaker[Session], lead_id: int) -> str:
    with factory() as session:
        return session.scalar(select(Lead.category).where(Lead.id == lead_id)) or ""


def sees(client: FlaskClient, lead_id: int, email: str) -> tuple[bool, bool, bool]:
    """(in the list, lead page opens, in the CSV export) for one lead and its customer."""
    listed = f'href="/leads/{lead_id}"' in client.get("/leads?status=").get_data(as_text=True)
    page = client.get(f"/leads/{lead_id}").status_code
    assert page in (200, 404), page
    exported = email in client.get("/leads/export.csv").get_data(as_text=True)
    return listed, page == 200, exported


def test_dealer_category_by_source_holds_nissan_financing_and_test_drives(
    factory: sessionmaker[Session],
) -> None:
    """Seed 003: Nissan's test drives belong to the category "Siebel – NISSAN", with the
    offer requests; a dealer rule by source ("oem:nissan", any kind) puts them together."""
    team(factory)
    drive = new_lead(factory, 1, BEN, nissan_mail())
    finance = new_lead(factory, 2, BEN, nissan_mail("Finanzierung", 2))
    website = new_lead(factory, 3, BEN, form_mail(3))
    with factory() as session:
        kinds = {lead.id: lead.kind for lead in session.scalars(select(Lead))}
    assert (kinds[drive], kinds[finance]) == ("test_drive", "financing")
    assert category(factory, drive) == category(factory, finance) == "nissan"
    assert category(factory, website) == "sales"  # no dealer rule fits: the built-in one
    # Without [[categories]] the built-in categories by kind, exactly as before.
    with factory() as session:
        plain = load_dealer_config(session)
    plain.document["categories"] = []
    facts = [lead_facts(plain, {"source": "oem:nissan", "kind": k})[0] for k in kinds.values()]
    assert sorted(f.category for f in facts) == ["financing", "sales", "sales"]


def test_leads_entered_by_hand_get_the_dealer_category_too(factory: sessionmaker[Session]) -> None:
    """The rule decides when the lead is created, whichever way: a lead typed in with the
    origin "oem:nissan" (kept by its creator, or distributed) is a Nissan lead as well."""
    team(factory)
    ids = []
    for n, keep in ((1, True), (2, False)):
        lead = ManualLead(
            customer={"last_name": f"Handeingabe{n}"}, origin="oem:nissan", kind="financing"
        )
        with session_scope(factory) as session:
            dealer = load_dealer_config(session)
            ids.append(
                create_manual_lead(
                    session, dealer, lead, CustomerChoice("new"), actor=ANNA, now=NOW, keep=keep
                )
            )
    walk_in = ManualLead(customer={"last_name": "Laufkunde"}, origin="Walk-in", kind="financing")
    with session_scope(factory) as session:
        dealer = load_dealer_config(session)
        ids.append(
            create_manual_lead(
                session, dealer, walk_in, CustomerChoice("new"), actor=ANNA, now=NOW, keep=True
            )
        )
    assert [category(factory, i) for i in ids] == ["nissan", "nissan", "financing"]


def test_kinds_rule_and_first_match_wins() -> None:
    """A rule by kind; with source and kind both must fit; the first fitting category wins."""
    extra = NISSAN.replace('sources = ["oem:nissan"]', 'sources = ["oem:*"]\nkinds = ["financing"]')
    extra += '\n[[categories]]\ncode = "marken"\nname = "Marken"\nsources = ["oem:*"]\n'
    boss = {"ada": 'permissions = { nissan = "all", marken = "all" }'}
    config = validate(tomllib.loads(team_toml(users=boss, extra=extra)))
    from mailgate.dealer_settings import config_from_document

    dealer = config_from_document(config)
    decided = {
        (source, kind): lead_facts(dealer, {"source": source, "kind": kind})[0].category
        for source in ("oem:nissan", "OEM:Nissan", "website")
        for kind in ("financing", "test_drive")
    }
    assert decided == {
        ("oem:nissan", "financing"): "nissan",
        ("oem:nissan", "test_drive"): "marken",
        ("OEM:Nissan", "financing"): "nissan",
        ("OEM:Nissan", "test_drive"): "marken",
        ("website", "financing"): "financing",
        ("website", "test_drive"): "sales",
    }


def test_all_shows_every_lead_of_the_category_and_no_other(factory: sessionmaker[Session]) -> None:
    """Seed 003: ALL per user and lead category — Anna with "all" on Nissan sees Ben's
    Nissan lead in the list, on its page and in the CSV export, but not Ben's website
    lead (another category); Carl without the permission sees neither."""
    team(factory, {"anna": 'permissions = { nissan = "all" }'})
    app = web_app(factory)
    nissan = new_lead(factory, 1, BEN, nissan_mail())
    website = new_lead(factory, 5, BEN, form_mail(5))
    anna, carl = logged_in(app, ANNA), logged_in(app, CARL)
    assert sees(anna, nissan, "bjoern.lovas@kunde.example") == (True, True, True)
    assert sees(anna, website, "person5@kunden.example") == (False, False, False)
    assert sees(carl, nissan, "bjoern.lovas@kunde.example") == (False, False, False)
    # the channel filter offers the dealer's category by its name and narrows to it
    listing = anna.get("/leads?status=&channel=nissan").get_data(as_text=True)
    assert "Siebel – NISSAN" in listing and f'href="/leads/{nissan}"' in listing
    annas = new_lead(factory, 6, ANNA, form_mail(6))
    assert f'href="/leads/{annas}"' not in listing  # her own sales lead is not Nissan
    assert sees(anna, annas, "person6@kunden.example") == (True, True, True)  # still her own


def test_users_overview_names_the_dealer_category(factory: sessionmaker[Session]) -> None:
    """The users overview shows a permission on the dealer's category by its name."""
    team(factory, {"carl": 'permissions = { nissan = "own_location" }'})
    page = logged_in(web_app(factory), ADA).get("/settings/users").get_data(as_text=True)
    carl = page.split(">Carl Clausen</a>", 1)[1].split("</tr>", 1)[0]
    assert "Siebel – NISSAN: nur seiner Standorte" in carl


def test_location_permission_shows_the_category_of_his_locations(
    factory: sessionmaker[Session],
) -> None:
    """Seed 003: "je Standort, einem oder mehreren Benutzern die Berechtigung" — Carl
    (Augsburg) with the location permission sees Nissan leads of Augsburg only."""
    team(factory, {"carl": 'permissions = { nissan = "own_location" }'})
    app: Flask = web_app(factory)
    lead_id = new_lead(factory, 1, BEN, nissan_mail())
    carl = logged_in(app, CARL)
    assert sees(carl, lead_id, "bjoern.lovas@kunde.example") == (False, False, False)
    with factory.begin() as session:
        session.execute(update(Lead).where(Lead.id == lead_id).values(location="augsburg"))
    assert sees(carl, lead_id, "bjoern.lovas@kunde.example") == (True, True, True)
    ben = logged_in(app, BEN)  # the owner keeps his lead
    assert sees(ben, lead_id, "bjoern.lovas@kunde.example") == (True, True, True)


@pytest.mark.parametrize(
    ("users", "extra", "message"),
    [
        (
            {k: 'permissions = { nissan = "own_location" }' for k in ("anna", "ben", "carl")}
            | {k: 'permissions = { nissan = "none" }' for k in ("chef", "ada")},
            NISSAN,
            r"nobody sees all nissan leads \('Siebel – NISSAN'\).*at least one user",
        ),
        ({}, NISSAN, r"nobody sees all nissan leads.*permissions = \{ nissan = \"all\" \}"),
        ({"anna": 'permissions = { toyota = "all" }'}, NISSAN, r"users\[0\]\.permissions\.toyota"),
        ({}, NISSAN.replace('sources = ["oem:nissan"]', ""), r"categories\[0\]: give sources"),
        ({}, NISSAN.replace('"nissan"', '"Nissan Leads"'), r"categories\[0\]\.code"),
        ({}, NISSAN + NISSAN, r"categories\[1\]\.code: duplicate"),
        ({}, NISSAN.replace("sources", "kinds"), r"categories\[0\]\.kinds\[0\]: unknown kind"),
        ({}, NISSAN + 'farbe = "rot"\n', r"unknown key categories\[0\]\.farbe"),
        ({}, NISSAN.replace("Siebel", "x" * 90), r"categories\[0\]\.name"),
    ],
    ids=[
        *("no-all", "nobody-given-all", "unknown-category", "no-rule", "bad-code"),
        *("duplicate", "kind", "key", "name"),
    ],
)
def test_settings_refuse_a_category_nobody_sees_whole_and_bad_categories(
    users: dict[str, str], extra: str, message: str
) -> None:
    """Seed 003: "zumindest ein Benutzer ... für die neue Kategorie die Lead-Berechtigung
    'ALLE'" — a category with nobody on ALL is refused, naming it; so are broken entries."""
    with pytest.raises(SettingsError, match=message):
        validate(tomllib.loads(team_toml(users=users, extra=extra)))


def test_categories_round_trip_through_export(factory: sessionmaker[Session]) -> None:
    """What is imported is exported unchanged (the settings file stays the source)."""
    team(factory, {"anna": 'permissions = { nissan = "all", service = "none" }'})
    with factory() as session:
        again = validate(tomllib.loads(export_settings(session)))
    assert again["categories"] == [
        {"code": "nissan", "name": "Siebel – NISSAN", "sources": ["oem:nissan"], "kinds": []}
    ]
    assert again["users"][0]["permissions"] == {"nissan": "all", "service": "none"}
