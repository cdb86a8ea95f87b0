"""The lead page: what it shows, who may open it, and how it keeps a hostile mail inert.

Leads are made the real way (stored mail -> pipeline); a sales team of Anna,
Ben, Carl (salespeople), Chris Chef (supervisor of Anna and Ben), Ada (admin)
and a pool.  Both databases (the ``factory`` fixture is parametrised).
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import InboundMail, Lead, LeadStatus, ProtocolEntry, User
from mailgate.webui.lead.original import HTML_FRAME_CSP

from .distribution_helpers import form_mail, ingest, setup, team_toml
from .webui_helpers import csrf_token, ensure_user, logged_in, post, web_app

ANNA, BEN, CARL, CHEF, ADA, POOL = (
    f"{n}@autohaus.example" for n in ("anna", "ben", "carl", "chef", "ada", "pool")
)
POOL_TOML = (
    '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'
    '\n[[users]]\nemail = "boss@autohaus.example"\nname = "Bea Boss"\nrole = "supervisor"\n'
    "receives_leads = false\n"
)
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
ACTIONS = ("contact", "resubmission", "due", "qualification", "reassign", "close", "reopen")


@pytest.fixture(name="team")
def team_fixture(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """The team with passwords; Carl reports to another supervisor (not Chris Chef's team)."""
    setup(factory, team_toml('pool_user = "pool@autohaus.example"', extra=POOL_TOML))
    for email, role in ((ANNA, "salesperson"), (BEN, "salesperson"), (ADA, "admin")):
        ensure_user(factory, email, role)
    ensure_user(factory, CHEF, "supervisor")
    ensure_user(factory, CARL, "salesperson", supervisor_email="boss@autohaus.example")
    return factory


@pytest.fixture(name="app")
def app_fixture(team: sessionmaker[Session]) -> Flask:
    return web_app(team)


def new_lead(factory: sessionmaker[Session], n: int, owner: str, raw: bytes | None = None) -> int:
    """A lead ingested from a form mail, then given to ``owner`` (a user or the pool)."""
    ingest(factory, raw or form_mail(n))
    with factory.begin() as session:
        lead_id = session.scalar(select(func.max(Lead.id)))
        owner_id = session.scalar(select(User.id).where(User.email == owner))
        status = LeadStatus.NEW if owner == POOL else LeadStatus.ASSIGNED
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(assignee_id=owner_id, status=status)
        )
    assert lead_id is not None
    return lead_id


def body(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def lead_row(factory: sessionmaker[Session], lead_id: int) -> Lead:
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        _ = lead.assignee
        return lead


def protocol(factory: sessionmaker[Session], lead_id: int) -> list[tuple[str, str, str]]:
    with factory() as session:
        rows = session.scalars(
            select(ProtocolEntry).where(ProtocolEntry.lead_id == lead_id).order_by(ProtocolEntry.id)
        )
        return [(p.actor, p.action, p.detail) for p in rows]


def test_detail_shows_everything_about_the_lead(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA, form_mail(1, name="Fritz Fröhlich", message="Noch da?"))
    page = body(logged_in(app, ANNA), f"/leads/{lead_id}")
    assert "Fritz Fröhlich" in page and "person1@kunden.example" in page
    assert "<dt>Marke</dt><dd>Opel</dd>" in page and "<dt>Modell</dt><dd>Astra</dd>" in page
    assert "Noch da?" in page
    assert "automatisch aus der E-Mail" in page
    # The conversation: the inquiry (its sender) and the notification mail from the outbox.
    conversation = page.split('id="h-conversation"', 1)[1].split("</section>", 1)[0]
    assert "Benachrichtigung an die zuständige Person" in conversation
    assert "Website Autohaus &lt;noreply@autohaus-web.example&gt;" in conversation
    # The protocol with German labels; the escalation still ahead, in Berlin time.
    assert '<td data-label="Was">zugewiesen</td>' in page
    ahead = page.split('id="h-ahead"', 1)[1].split("</section>", 1)[0]
    assert "Erinnerung" in ahead and "Eskalation Stufe 1" in ahead
    assert "Eskalation an die Teamleitung" in ahead and "fällig" in ahead
    # A salesperson never sees the internals: parser, confidence, MIME parts, headers.
    for internal in ("Parser", "Sicherheit", "MIME", "send_mails", "Message-ID", "text/plain"):
        assert internal not in page, internal
    assert f'href="/leads/{lead_id}/original.eml"' not in page
    assert "Technische Details" not in page
    # An admin finds them behind the "Technische Details" disclosure, collapsed.
    admin_page = body(logged_in(app, ADA), f"/leads/{lead_id}")
    technical = admin_page.split('<details class="lead-history card" id="technical">', 1)[1]
    assert "Technische Details" in technical and re.search(r"Erkennungssicherheit", technical)
    assert re.search(r'id="tech-confidence">\d+ %', technical)
    assert "<dt>Message-ID</dt>" in technical
    assert "&lt;form-1@autohaus-web.example&gt;" in technical and "text/plain" in technical
    assert f'href="/leads/{lead_id}/original.eml"' in technical
    assert "Parser" not in admin_page.split('id="technical"', 1)[0]  # nowhere else
    # Anna's own lead: the actions are offered (each form with its CSRF token).
    for action in ACTIONS[:-1]:
        assert f'action="/leads/{lead_id}/{action}"' in page, action
    assert f'action="/leads/{lead_id}/delete"' not in page  # admins only


def test_timeline_ahead_follows_the_stored_due_times(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    with team.begin() as session:
        session.execute(update(Lead).where(Lead.id == lead_id).values(escalation_stage=2))
    page = body(logged_in(app, ANNA), f"/leads/{lead_id}")
    ahead = page.split('id="h-ahead"', 1)[1].split("</section>", 1)[0]
    assert "Eskalation an die Teamleitung" in ahead
    assert "Erinnerung" not in ahead and "Stufe 1" not in ahead


def test_english_for_an_english_user(team: sessionmaker[Session], app: Flask) -> None:
    ensure_user(team, ANNA, "salesperson", language="en")
    lead_id = new_lead(team, 1, ANNA)
    page = body(logged_in(app, ANNA), f"/leads/{lead_id}")
    assert "Escalation ahead" in page and "Log a contact" in page and "Conversation" in page
    assert "Anstehende Eskalation" not in page


def test_scope_on_every_route_and_action(team: sessionmaker[Session], app: Flask) -> None:
    annas, bens, carls = new_lead(team, 1, ANNA), new_lead(team, 2, BEN), new_lead(team, 3, CARL)
    anna, chef = logged_in(app, ANNA), logged_in(app, CHEF)
    token = csrf_token(anna, f"/leads/{annas}")
    # A salesperson cannot reach a colleague's lead by URL or by POST: 404, not 403.
    for suffix in ("", "/original.html", "/original.eml", "/edit"):
        assert anna.get(f"/leads/{bens}{suffix}").status_code == 404, suffix
    for action in (*ACTIONS, "take", "delete", "edit"):
        response = anna.post(f"/leads/{bens}/{action}", data={"csrf_token": token})
        assert response.status_code in (403, 404), action
        if action != "delete":  # delete: admins only, refused before the lookup
            assert response.status_code == 404, action
    # The supervisor acts on his team's leads, not on Carl's (another team).
    assert chef.get(f"/leads/{bens}").status_code == 200
    assert chef.get(f"/leads/{carls}").status_code == 404
    response = post(chef, f"/leads/{bens}/contact", {"channel": "phone"}, page=f"/leads/{bens}")
    assert response.status_code == 302
    assert lead_row(team, bens).status == "contacted"
    chef_token = csrf_token(chef, f"/leads/{bens}")
    response = chef.post(f"/leads/{carls}/contact", data={"csrf_token": chef_token})
    assert response.status_code == 404
    assert lead_row(team, carls).status == "assigned"
    assert [a for _, a, _ in protocol(team, bens)].count("contact") == 1
    assert "contact" not in [a for _, a, _ in protocol(team, carls)]


def test_salesperson_reads_a_pool_lead_but_only_takes_it(
    team: sessionmaker[Session], app: Flask
) -> None:
    pooled = new_lead(team, 1, POOL)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{pooled}")
    assert "Diese Anfrage wartet im Pool." in page
    assert f'action="/leads/{pooled}/contact"' not in page
    token = csrf_token(anna, f"/leads/{pooled}")
    refused = anna.post(f"/leads/{pooled}/contact", data={"csrf_token": token, "channel": "phone"})
    assert refused.status_code == 403
    taken = anna.post(f"/leads/{pooled}/take", data={"csrf_token": token})
    assert taken.status_code == 302 and taken.headers["Location"] == f"/leads/{pooled}"
    lead = lead_row(team, pooled)
    assert lead.assignee is not None and lead.assignee.email == ANNA and lead.status == "assigned"
    assert (ANNA, "taken", f"taken from the pool by {ANNA}") in protocol(team, pooled)
    page = body(anna, f"/leads/{pooled}")
    assert "Sie haben die Anfrage aus dem Pool übernommen" in page
    # Taking a lead that is not in the pool is refused.
    again = anna.post(f"/leads/{pooled}/take", data={"csrf_token": token})
    assert again.status_code == 403


def test_every_post_needs_the_csrf_token(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    before = protocol(team, lead_id)
    for action in (*ACTIONS, "take", "edit"):
        response = anna.post(f"/leads/{lead_id}/{action}", data={"channel": "phone"})
        assert response.status_code == 400, action
    ada = logged_in(app, ADA)
    assert ada.post(f"/leads/{lead_id}/delete", data={"confirm": "y"}).status_code == 400
    assert protocol(team, lead_id) == before
    assert lead_row(team, lead_id).status == "assigned"


def test_a_hostile_mail_renders_inert(team: sessionmaker[Session], app: Flask) -> None:
    msg = EmailMessage()
    msg["From"] = f'"Eve {IMG}" <eve@kunden.example>'
    msg["To"] = "leads@autohaus.example"
    msg["Subject"] = f"Anfrage {SCRIPT}"
    msg["Message-ID"] = "<evil-1@kunden.example>"
    msg["X-Evil"] = SCRIPT
    msg.set_content(f"Name: Eve Evil\nE-Mail: eve@kunden.example\nNachricht: Hallo {SCRIPT} {IMG}")
    msg.add_alternative(
        f"<p>Name: Eve Evil</p>{SCRIPT}{IMG}<img src='https://tracker.example/p.gif'>",
        subtype="html",
    )
    lead_id = new_lead(team, 1, ANNA, msg.as_bytes(policy=policy.SMTP))
    client = logged_in(app, ANNA)
    page = body(client, f"/leads/{lead_id}")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the header, escaped
    assert page.count("<iframe") == 1
    assert f'<iframe class="mail-html" sandbox src="/leads/{lead_id}/original.html"' in page
    frame = client.get(f"/leads/{lead_id}/original.html")
    assert frame.status_code == 200 and frame.mimetype == "text/html"
    assert frame.headers["Content-Security-Policy"] == HTML_FRAME_CSP
    csp = dict(
        d.strip().split(" ", 1) if " " in d.strip() else (d.strip(), "")
        for d in HTML_FRAME_CSP.split(";")
    )
    assert csp["default-src"] == "'none'" and csp["img-src"] == "data: cid:"
    assert "sandbox" in csp and "script-src" not in csp
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "<p>Name: Eve Evil</p>" in frame.get_data(as_text=True)  # shown only in the frame


def test_eml_download_is_the_mail_as_received(team: sessionmaker[Session], app: Flask) -> None:
    raw = form_mail(1)
    lead_id = new_lead(team, 1, ANNA, raw)
    response = logged_in(app, ANNA).get(f"/leads/{lead_id}/original.eml")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="lead-{lead_id}.eml"'
    assert response.mimetype == "message/rfc822"
    assert response.get_data() == raw


def test_inbound_detail_has_parts_frame_download_and_admin_only(
    team: sessionmaker[Session], app: Flask
) -> None:
    new_lead(team, 1, ANNA)
    with team() as session:
        inbound_id = session.scalar(select(InboundMail.id))
    ada, anna = logged_in(app, ADA), logged_in(app, ANNA)
    page = body(ada, f"/inbound/{inbound_id}")
    assert "MIME-Teile" in page and f"/inbound/{inbound_id}/original.eml" in page
    assert "Erneut verarbeiten" not in page  # processed: nothing to reprocess
    for suffix in ("", "/original.html", "/original.eml"):
        assert anna.get(f"/inbound/{inbound_id}{suffix}").status_code == 403, suffix
    eml = ada.get(f"/inbound/{inbound_id}/original.eml")
    assert eml.headers["Content-Disposition"].startswith("attachment;")
    assert ada.get(f"/inbound/{inbound_id}/original.html").headers["Content-Security-Policy"] == (
        HTML_FRAME_CSP
    )


def test_admin_reprocesses_a_failed_mail(team: sessionmaker[Session], app: Flask) -> None:
    ingest(team, form_mail(1))
    with team.begin() as session:
        inbound_id = session.scalar(select(InboundMail.id))
        session.execute(
            update(InboundMail)
            .where(InboundMail.id == inbound_id)
            .values(status="failed", status_reason="parser crashed", attempts=3)
        )
    ada, anna = logged_in(app, ADA), logged_in(app, ANNA)
    url = f"/inbound/{inbound_id}"
    assert "Erneut verarbeiten" in body(ada, url)
    token = csrf_token(ada, url)
    # A salesperson with a valid token of her own is refused by role, not by CSRF.
    annas_token = csrf_token(anna, "/leads")
    assert anna.post(f"{url}/reprocess", data={"csrf_token": annas_token}).status_code == 403
    assert ada.post(f"{url}/reprocess").status_code == 400  # no token
    response = ada.post(f"{url}/reprocess", data={"csrf_token": token})
    assert response.status_code == 302
    with team() as session:
        mail = session.get(InboundMail, inbound_id)
        assert mail is not None
        assert (mail.status, mail.status_reason, mail.attempts) == ("received", None, 0)
    assert "wird in Kürze erneut verarbeitet" in body(ada, url)
    # Received again: not reprocessable twice (the worker has it).
    again = ada.post(f"{url}/reprocess", data={"csrf_token": csrf_token(ada, "/inbound")})
    assert again.status_code == 302
    assert "Nur eine fehlgeschlagene" in body(ada, url)


def test_pool_oldest_only_is_explained_in_german(team: sessionmaker[Session], app: Flask) -> None:
    setup(
        team,
        team_toml('pool_user = "pool@autohaus.example"\npool_oldest_only = true', extra=POOL_TOML),
    )
    older, newer = new_lead(team, 1, POOL), new_lead(team, 2, POOL)
    anna = logged_in(app, ANNA)
    response = post(anna, f"/leads/{newer}/take", page=f"/leads/{newer}")
    assert response.status_code == 302
    page = body(anna, f"/leads/{newer}")
    expected = (
        "Nicht ausgeführt: Nur die älteste Anfrage im Pool darf übernommen werden: "
        f"Anfrage {older}."
    )
    assert expected in page
    assert lead_row(team, newer).assignee.email == POOL  # type: ignore[union-attr]


def test_header_values_are_decoded_and_stay_text(team: sessionmaker[Session], app: Flask) -> None:
    """Encoded words (RFC 2047) are shown decoded, a glued or spaced one too; a header that
    decodes to markup is shown as text."""
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@kunden.example>\r\n"
        b"To: leads@autohaus.example\r\n"
        b"Subject: =?utf-8?q?Anfrage_zum_Gr=C3=BC=C3=9Fe-Paket?=\r\n"
        b"Message-ID: <enc-1@kunden.example>\r\n"
        b"X-Glued: Vorab=?utf-8?q?_K=C3=B6ln?=\r\n"
        b"X-Evil: =?utf-8?b?PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==?=\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Name: J\xc3\xbcrgen M\xc3\xbcller\r\nE-Mail: juergen@kunden.example\r\n"
        b"Nachricht: Guten Tag\r\n"
    )
    lead_id = new_lead(team, 1, ANNA, raw)
    for who in (ANNA, ADA):
        page = body(logged_in(app, who), f"/leads/{lead_id}")
        assert "=?utf-8?" not in page, who
        assert "Anfrage zum Grüße-Paket" in page
        assert "<script>alert(1)" not in page
    admin = body(logged_in(app, ADA), f"/leads/{lead_id}")
    technical = admin.split('id="technical"', 1)[1]
    assert '<dt>X-Glued</dt><dd class="wrap">Vorab Köln</dd>' in technical
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in technical  # decoded, shown escaped
    assert "Jürgen Müller &lt;juergen@kunden.example&gt;" in technical


def test_a_salesperson_never_sees_sending_internals(
    team: sessionmaker[Session], app: Flask
) -> None:
    """With sending switched off the notification is "not sent (sending is off)": in words,
    never the outbox's technical note."""
    lead_id = new_lead(team, 1, ANNA)
    with team.begin() as session:
        from mailgate.models import OutboxMail

        session.execute(
            update(OutboxMail)
            .where(OutboxMail.lead_id == lead_id)
            .values(status="suppressed", last_error="send_mails is off")
        )
    page = body(logged_in(app, ANNA), f"/leads/{lead_id}")
    assert "nicht gesendet (Versand ist aus)" in page
    for internal in ("send_mails", "Parser", "Sicherheit", "MIME"):
        assert internal not in page, internal


def test_addresses_wrap_only_after_at_and_dots() -> None:
    """An address may wrap after "@" or a dot (never mid-word); whatever it holds is escaped."""
    from mailgate.webui.lead.text import breakable

    assert str(breakable("lena.verkauf@demo.example")) == (
        "lena.<wbr>verkauf@<wbr>demo.<wbr>example"
    )
    hostile = str(breakable('"><script>alert(1)</script>@x.example'))
    assert "<script>" not in hostile and "&lt;script&gt;alert(1)&lt;/script&gt;@<wbr>" in hostile
    assert str(breakable(None)) == ""
