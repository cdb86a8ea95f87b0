"""Answering the customer from the lead page (issue 17 item 8): form, permissions, the mail.

Leads are made the real way (stored mail -> pipeline) for the team of
:mod:`tests.test_webui_lead` (Anna, Ben sell under Chris Chef; Carl under
another supervisor; Ada is the admin).  Both databases.  The outgoing mail is
read back from the outbox row exactly as the sender will send it.
"""

from __future__ import annotations

import io
import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from mailgate import db as mdb
from mailgate.dealer_settings import load_dealer_config, stored_document
from mailgate.models import AnswerTemplate, Lead, OutboxMail, ProtocolEntry
from mailgate.outbound.answer import ANSWER_PURPOSE
from mailgate.outbound.hygiene import CUSTOMER_PURPOSES
from mailgate.webui.lead.filenames import safe_filename

from .distribution_helpers import form_mail, ingest
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    BEN,
    CARL,
    CHEF,
    POOL,
    app_fixture,
    lead_row,
    new_lead,
    team_fixture,
)
from .webui_helpers import csrf_token, logged_in

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
CUSTOMER = "person1@kunden.example"
POOL_LEAD = "pool lead"  # a lead in the pool, opened by Anna


def answers(factory: sessionmaker[Session]) -> list[OutboxMail]:
    with factory() as session:
        return list(
            session.scalars(
                select(OutboxMail)
                .where(OutboxMail.purpose == ANSWER_PURPOSE)
                .order_by(OutboxMail.id)
            )
        )


def form_key(page: str) -> str:
    match = re.search(r'id="key" name="key" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="key" type="hidden" value="([^"]+)"', page
    )
    assert match, "no one-time key in the answer form"
    return match.group(1)


def send(
    client: FlaskClient,
    lead_id: int,
    *,
    body: str = "Guten Tag, der Wagen ist noch da.",
    files: list[tuple[bytes, str]] | None = None,
    key: str | None = None,
    token: str | None = None,
    subject: str = "AW: Ihre Anfrage",
    extra: dict[str, object] | None = None,
) -> TestResponse:
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    data: dict[str, object] = {
        "subject": subject,
        "body": body,
        "quote": "y",
        "key": key if key is not None else form_key(page),
        "csrf_token": token if token is not None else csrf_token(client, f"/leads/{lead_id}"),
    }
    if files:
        data["attachments"] = [(io.BytesIO(content), name) for content, name in files]
    data.update(extra or {})
    return client.post(f"/leads/{lead_id}/answer", data=data, content_type="multipart/form-data")


def set_mode(factory: sessionmaker[Session], mode: str) -> None:
    from mailgate.dealer_settings import apply_document

    with mdb.session_scope(factory) as session:
        document = stored_document(session)
        document["dealer"]["answer_mode"] = mode
        apply_document(session, document)


def test_an_answer_with_a_pdf_leaves_from_the_lead_address_threaded_and_counts(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 1, ANNA, form_mail(1, name="Fritz Fröhlich", message="Noch da?"))
    client = logged_in(app, ANNA)
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert 'id="form-answer"' in page and 'enctype="multipart/form-data"' in page
    # the customer's address leads to the form, not to a mailto: that bypasses tracking
    email_cell = page.split('id="customer-email">', 1)[1].split("</dd>", 1)[0]
    assert f"mailto:{CUSTOMER}" not in page and 'href="#answer"' in email_cell
    assert re.search(r"mailto:leads\+\d+-[\w-]+@autohaus\.example", email_cell)

    response = send(client, lead_id, files=[(PDF, "Angebot Astra.pdf")])
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    [row] = answers(team)
    assert row.recipients == [CUSTOMER] and row.mail_from == "leads@autohaus.example"
    assert ANSWER_PURPOSE in CUSTOMER_PURPOSES
    msg = message_from_bytes(row.raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    # From: the lead address under the salesperson's name; Reply-To: the tracking address
    assert msg["From"].addresses[0].addr_spec == "leads@autohaus.example"
    assert msg["From"].addresses[0].display_name.startswith("Anna")
    with team() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        token = lead.reply_token
    assert msg["Reply-To"].addresses[0].addr_spec == f"leads+{lead_id}-{token}@autohaus.example"
    assert msg["To"].addresses[0].addr_spec == CUSTOMER
    # threaded under the customer's inquiry
    assert msg["In-Reply-To"] == "<form-1@autohaus-web.example>"
    assert "<form-1@autohaus-web.example>" in msg["References"]
    assert msg["Subject"] == "AW: Ihre Anfrage"
    assert "Auto-Submitted" not in msg  # a person wrote it
    # the text, the quoted inquiry, and the PDF byte for byte
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "der Wagen ist noch da." in text and "> Noch da?" in text
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "Angebot Astra.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_payload(decode=True) == PDF
    # counted as the answer: first response, contacted, no more escalation due
    lead = lead_row(team, lead_id)
    assert lead.first_response_at is not None and lead.status == "contacted"
    assert lead.next_due_at is None
    with team() as session:
        actions = session.scalars(
            select(ProtocolEntry.action).where(ProtocolEntry.lead_id == lead_id)
        ).all()
    assert "contact" in actions
    # shown in the conversation, with the attachment downloadable
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    conversation = page.split('id="h-conversation"', 1)[1].split('id="answer"', 1)[0]
    assert "Antwort über die Anfrageseite" in conversation
    assert "der Wagen ist noch da." in conversation and "Angebot Astra.pdf" in conversation
    link = re.search(rf'href="(/leads/{lead_id}/mails/out/\d+/parts/\d+)"', conversation)
    assert link
    download = client.get(link.group(1))
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment;")


def test_a_double_submit_sends_once(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    key = form_key(page)
    first = send(client, lead_id, key=key)
    second = send(client, lead_id, key=key)
    assert first.status_code == second.status_code == 302
    assert len(answers(team)) == 1
    with team() as session:
        contacts = session.scalars(
            select(ProtocolEntry).where(
                ProtocolEntry.lead_id == lead_id, ProtocolEntry.action == "contact"
            )
        ).all()
    assert len(contacts) == 1
    follow = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "Diese Antwort wurde bereits gesendet." in follow
    # a fresh page has a fresh key: a second, deliberate answer is sent
    assert send(client, lead_id, body="Noch eine Frage?").status_code == 302
    assert len(answers(team)) == 2


@pytest.mark.parametrize("key", ["", "kurz", "x" * 65, "a b c d e f g h i j k l m n o p"])
def test_a_tampered_key_sends_nothing(team: sessionmaker[Session], app: Flask, key: str) -> None:
    lead_id = new_lead(team, 1, ANNA)
    response = send(logged_in(app, ANNA), lead_id, key=key)
    assert response.status_code == 400
    assert answers(team) == []


def test_without_csrf_nothing_is_sent(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    response = send(logged_in(app, ANNA), lead_id, token="forged")
    assert response.status_code == 400
    assert answers(team) == []
    assert lead_row(team, lead_id).first_response_at is None


@pytest.mark.parametrize(
    ("who", "status"),
    [(ANNA, 302), (CHEF, 302), (ADA, 302), (BEN, 404), (CARL, 404), (POOL_LEAD, 403)],
)
def test_who_may_send(team: sessionmaker[Session], app: Flask, who: str, status: int) -> None:
    """Anna's lead: she, her supervisor and the admin may answer; her colleagues Ben and
    Carl do not see it.  A pool lead Anna may see but must take before she answers."""
    owner = POOL if who == POOL_LEAD else ANNA
    who = ANNA if who == POOL_LEAD else who
    lead_id = new_lead(team, 1, owner)
    client = logged_in(app, who)
    if status == 302:
        assert send(client, lead_id).status_code == 302
        assert len(answers(team)) == 1
        return
    page = client.get(f"/leads/{lead_id}")
    assert page.status_code == (200 if status == 403 else 404)
    assert 'id="form-answer"' not in page.get_data(as_text=True)
    token = csrf_token(client, "/leads")
    response = client.post(
        f"/leads/{lead_id}/answer",
        data={"body": "Ich übernehme das.", "key": "k" * 32, "csrf_token": token},
    )
    assert response.status_code == status
    assert answers(team) == []
    assert lead_row(team, lead_id).first_response_at is None


def test_a_foreign_lead_id_is_not_found(team: sessionmaker[Session], app: Flask) -> None:
    carls = new_lead(team, 2, CARL)
    client = logged_in(app, ANNA)
    token = csrf_token(client, "/leads")
    for lead_id in (carls, 999_999, 2**31 + 5):
        response = client.post(
            f"/leads/{lead_id}/answer",
            data={"body": "Hallo", "key": "k" * 32, "csrf_token": token},
        )
        assert response.status_code == 404
    assert answers(team) == []


def test_an_oversized_attachment_is_refused_in_german_and_the_text_stays(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    big = b"\0" * (10 * 1024 * 1024 + 1)
    response = send(client, lead_id, body="Mein langer Text bleibt.", files=[(big, "gross.pdf")])
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Die Anhänge sind zu groß" in page and "höchstens 10 MB" in page
    assert "Mein langer Text bleibt." in page  # nothing lost
    assert answers(team) == []
    assert lead_row(team, lead_id).first_response_at is None


def test_an_empty_answer_is_refused(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    response = send(logged_in(app, ANNA), lead_id, body="   ")
    assert response.status_code == 400
    assert "Bitte schreiben Sie Ihre Antwort." in response.get_data(as_text=True)
    assert answers(team) == []


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("a\r\nBcc: x@evil.example.pdf", "a Bcc x@evil.example.pdf"),
        ('C:\\Users\\x\\"evil".pdf', "evil .pdf"),
        ("Rechnung\u202efdp.exe", "Rechnung fdp.exe"),
        ("", "Anhang-1"),
        ("....", "Anhang-1"),
    ],
)
def test_hostile_filenames_become_plain_names(hostile: str, expected: str) -> None:
    assert safe_filename(hostile, 1) == expected


def test_hostile_filenames_cannot_inject_headers(team: sessionmaker[Session], app: Flask) -> None:
    """Raw multipart as an attacker writes it: RFC 2231 lets the name carry CR LF."""
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    fields = {
        "csrf_token": csrf_token(client, f"/leads/{lead_id}"),
        "key": form_key(page),
        "body": "Anbei die Unterlagen.",
    }
    parts = [
        f'--XX\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        b'--XX\r\nContent-Disposition: form-data; name="attachments"; filename="../../etc/passwd"'
        b"\r\nContent-Type: text/html\r\n\r\none\r\n"
    )
    parts.append(
        b'--XX\r\nContent-Disposition: form-data; name="attachments"; '
        b"filename*=UTF-8''a%0D%0ABcc%3A%20x%40evil.example.pdf\r\n"
        b"Content-Type: application/pdf\r\n\r\ntwo\r\n--XX--\r\n"
    )
    response = client.post(
        f"/leads/{lead_id}/answer",
        data=b"".join(parts),
        content_type="multipart/form-data; boundary=XX",
    )
    assert response.status_code == 302
    [row] = answers(team)
    assert row.recipients == [CUSTOMER]  # no Bcc smuggled into the envelope
    msg = message_from_bytes(row.raw, policy=policy.default)
    assert "Bcc" not in msg
    attached = list(msg.iter_attachments())
    assert [part.get_filename() for part in attached] == ["passwd", "a Bcc x@evil.example.pdf"]
    assert [p.get_payload(decode=True) for p in attached] == [b"one", b"two"]
    # the type follows the name, not the browser's claim (no text/html "passwd")
    assert attached[0].get_content_type() == "application/octet-stream"


def test_view_only_mode_hides_the_form_and_refuses_the_post(
    team: sessionmaker[Session], app: Flask
) -> None:
    set_mode(team, "view_only")
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert 'id="form-answer"' not in page and 'id="answer-view-only"' in page
    assert 'id="answer-by-mail"' in page  # the tracking address, for the mail program
    response = client.post(
        f"/leads/{lead_id}/answer",
        data={"body": "Hallo", "key": "k" * 32, "csrf_token": csrf_token(client, "/leads")},
    )
    assert response.status_code == 302
    assert answers(team) == []


def test_lead_page_mode_offers_only_the_form(team: sessionmaker[Session], app: Flask) -> None:
    set_mode(team, "lead_page")
    lead_id = new_lead(team, 1, ANNA)
    page = logged_in(app, ANNA).get(f"/leads/{lead_id}").get_data(as_text=True)
    assert 'id="form-answer"' in page and 'id="answer-by-mail"' not in page


def test_a_closed_lead_is_not_answered(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    key = form_key(page)
    with team.begin() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        lead.status = "closed"
    response = send(client, lead_id, key=key)
    assert response.status_code == 400
    assert "Nicht gesendet" in response.get_data(as_text=True)
    assert answers(team) == []


def test_a_template_fills_the_form_for_this_customer(
    team: sessionmaker[Session], app: Flask
) -> None:
    with team.begin() as session:
        session.add(
            AnswerTemplate(
                name="Angebot",
                language="de",
                subject="Ihr {{ vehicle.make }} {{ vehicle.model }}",
                body="Guten Tag {{ customer.name }},\nanbei das Angebot.\n{{ salesperson.name }}",
            )
        )
    lead_id = new_lead(team, 1, ANNA, form_mail(1, name="Fritz Fröhlich"))
    client = logged_in(app, ANNA)
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert "Angebot (Deutsch)" in page
    with team() as session:
        template_id = session.scalar(select(AnswerTemplate.id))
    page = client.get(f"/leads/{lead_id}?template={template_id}").get_data(as_text=True)
    assert 'value="Ihr Opel Astra"' in page
    assert "Guten Tag Fritz Fröhlich,\nanbei das Angebot.\nAnna" in page
    for hostile in ("-1", "abc", str(2**63), "0"):
        assert client.get(f"/leads/{lead_id}?template={hostile}").status_code == 200
    missing = client.get(f"/leads/{lead_id}?template=999999").get_data(as_text=True)
    assert "Diese Antwortvorlage gibt es nicht mehr." in missing


def test_links_into_mailgate_are_removed_from_the_answer(
    team: sessionmaker[Session], app: Flask
) -> None:
    from .conversation_helpers import DEALER_WITH_LINKS  # noqa: F401 - base URL documented there

    with mdb.session_scope(team) as session:
        document = stored_document(session)
        document["dealer"]["base_url"] = "https://leads.autohaus.example"
        from mailgate.dealer_settings import apply_document

        apply_document(session, document)
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    text = "Siehe https://leads.autohaus.example/leads/1 und https://www.autohaus.example/golf"
    assert send(client, lead_id, body=text).status_code == 302
    [row] = answers(team)
    msg = message_from_bytes(row.raw, policy=policy.default)
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "leads.autohaus.example" not in plain and "https://www.autohaus.example/golf" in plain
    with team() as session:
        assert load_dealer_config(session).base_url == "https://leads.autohaus.example"


def test_a_customer_reply_threads_the_answer_to_his_latest_message(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    with team() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        tracking = f"leads+{lead_id}-{lead.reply_token}@autohaus.example"
    reply = EmailMessage()
    reply["From"] = f"Kundin <{CUSTOMER}>"
    reply["To"] = tracking
    reply["Subject"] = "AW: Anfrage"
    reply["Message-ID"] = "<kunde-2@kunden.example>"
    reply.set_content("Ich nehme ihn!\n")
    ingest(team, reply.as_bytes(policy=policy.SMTP), to=tracking)
    client = logged_in(app, ANNA)
    assert send(client, lead_id).status_code == 302
    [row] = answers(team)
    msg = message_from_bytes(row.raw, policy=policy.default)
    assert msg["In-Reply-To"] == "<kunde-2@kunden.example>"
    references = msg["References"].split()
    assert references[:2] == ["<form-1@autohaus-web.example>", "<kunde-2@kunden.example>"]


# --- answer templates under Settings --------------------------------------------------------


def templates_in(factory: sessionmaker[Session]) -> list[tuple[str, str, str, str]]:
    with factory() as session:
        return [
            (t.name, t.language, t.subject, t.body)
            for t in session.scalars(select(AnswerTemplate).order_by(AnswerTemplate.id))
        ]


def save_template(client: FlaskClient, **values: str) -> TestResponse:
    data = {"name": "Angebot", "language": "de", "subject": "", "body": "Hallo"} | values
    data["csrf_token"] = csrf_token(client, "/settings/answers/new")
    return client.post("/settings/answers/new", data=data)


def test_an_admin_saves_edits_and_deletes_an_answer_template(
    team: sessionmaker[Session], app: Flask
) -> None:
    client = logged_in(app, ADA)
    response = save_template(
        client,
        subject="Ihr {{ vehicle.model }}",
        body="Guten Tag {{ customer.salutation }} {{ customer.last_name }},\n"
        "{{ salesperson.name }}, {{ dealer_name }}",
    )
    assert response.status_code == 302
    assert templates_in(team)[0][:3] == ("Angebot", "de", "Ihr {{ vehicle.model }}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Antwortvorlage „Angebot“ gespeichert." in page
    assert "Ihr Golf 8" in page and "Guten Tag Frau Musterfrau," in page  # the preview
    # the same name and language again: refused in German
    twice = save_template(client)
    assert twice.status_code == 400
    assert "Eine Vorlage mit diesem Namen und dieser Sprache gibt es schon." in twice.get_data(
        as_text=True
    )
    assert save_template(client, language="en").status_code == 302  # English may have one
    listing = client.get("/settings/answers").get_data(as_text=True)
    assert "Angebot" in listing and "Englisch" in listing
    with team() as session:
        first = session.scalars(select(AnswerTemplate.id).order_by(AnswerTemplate.id)).first()
    token = csrf_token(client, "/settings/answers")
    assert client.post(f"/settings/answers/{first}/delete", data={}).status_code == 400
    deleted = client.post(f"/settings/answers/{first}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302
    assert [t[1] for t in templates_in(team)] == ["en"]


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("{{ ''.__class__ }}", "Nicht erlaubt"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "Nicht erlaubt"),
        ("{{ customer.__init__.__globals__ }}", "Nicht erlaubt"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "unbekannter Platzhalter"),
        ("{{ lipsum }}", "unbekannter Platzhalter"),
        ("{% include '/etc/passwd' %}", "include"),
        ("{% extends 'base.html' %}", "extends"),
        ("{{ customer.iban }}", "Beispieldaten"),
        ("{{ customer.name", "Text"),
        ("{% for i in range(10**9) %}x{% endfor %}", "zu viel"),
    ],
)
def test_hostile_template_placeholders_are_refused_at_save(
    team: sessionmaker[Session], app: Flask, source: str, said: str
) -> None:
    client = logged_in(app, ADA)
    response = save_template(client, body=f"Hallo {source}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Nichts wurde gespeichert" in page
    problems = page.split('id="template-problems">', 1)[1].split("</ul>", 1)[0]
    assert said in problems, problems
    assert "Traceback" not in page
    assert templates_in(team) == []
    # in the subject just the same
    assert save_template(client, subject=source).status_code == 400
    assert templates_in(team) == []


@pytest.mark.parametrize("who", [ANNA, CHEF])
def test_only_admins_manage_answer_templates(
    team: sessionmaker[Session], app: Flask, who: str
) -> None:
    client = logged_in(app, who)
    assert client.get("/settings/answers").status_code == 403
    assert client.get("/settings/answers/new").status_code == 403
    token = csrf_token(client, "/leads")
    response = client.post(
        "/settings/answers/new",
        data={"name": "x", "language": "de", "body": "y", "csrf_token": token},
    )
    assert response.status_code == 403
    assert templates_in(team) == []


def test_the_mode_is_chosen_under_settings(team: sessionmaker[Session], app: Flask) -> None:
    client = logged_in(app, ADA)
    page = client.get("/settings/answers").get_data(as_text=True)
    assert re.search(
        r'<input checked [^>]*id="mode-0" name="mode" type="radio" value="both">', page
    )
    token = csrf_token(client, "/settings/answers")
    response = client.post("/settings/answers", data={"mode": "view_only", "csrf_token": token})
    assert response.status_code == 302
    with team() as session:
        assert stored_document(session)["dealer"]["answer_mode"] == "view_only"
    bad = client.post("/settings/answers", data={"mode": "evil", "csrf_token": token})
    assert bad.status_code == 200 and 'class="errors"' in bad.get_data(as_text=True)
    with team() as session:
        assert stored_document(session)["dealer"]["answer_mode"] == "view_only"


def test_a_request_beyond_the_upload_limit_is_said_in_german(
    team: sessionmaker[Session], app: Flask
) -> None:
    """Beyond the web server's request limit (16 MB) the form never reaches the view."""
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    huge = b"\0" * (16 * 1024 * 1024 + 1)
    response = send(client, lead_id, files=[(huge, "riesig.pdf")])
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert 'id="too-large"' in page and "ist zu groß (mit Dateien höchstens 16 MB)" in page
    assert "Request Entity Too Large" not in page and "Traceback" not in page
    assert answers(team) == []
