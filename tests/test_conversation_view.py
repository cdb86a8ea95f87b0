"""The conversation on the lead page (issue 17 item 9): every message both ways, in full,
with attachments to download, the sender and the delivery state; downloads authorised and
never rendered.

Leads and replies go through the real pipeline (stored mail -> worker): the customer's
inquiry with a photo, his reply to the tracking address quoting us, Anna's answer from her
mail program (relayed), her answer from the lead page.  Both databases.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import InboundMail, Lead, OutboxMail, utcnow

from .distribution_helpers import ingest
from .test_lead_compose import PDF, answers, send
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    BEN,
    CARL,
    CHEF,
    app_fixture,
    new_lead,
    team_fixture,
)
from .webui_helpers import logged_in

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
HTML_FILE = b"<script>alert(document.cookie)</script>"
CUSTOMER = "person1@kunden.example"


def inquiry_with_photo(n: int = 1) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Kundin Nummer{n} <person{n}@kunden.example>"
    msg["To"] = "leads@autohaus.example"
    msg["Subject"] = f"Anfrage Astra #{n}"
    msg["Message-ID"] = f"<photo-{n}@kunden.example>"
    msg.set_content(
        f"Name: Kundin Nummer{n}\nE-Mail: person{n}@kunden.example\nMarke: Opel\n"
        "Modell: Astra\nNachricht: Anbei Fotos von meinem Wagen.\n"
    )
    msg.add_attachment(JPEG, maintype="image", subtype="jpeg", filename="mein Golf.jpg")
    msg.add_attachment(HTML_FILE, maintype="text", subtype="html", filename="PLATZHALTER.html")
    raw = msg.as_bytes(policy=policy.SMTP)
    # a hostile name as a sender's program can write it (RFC 2231): ../../x"CRLF Set-Cookie
    hostile = b"filename*=UTF-8''..%2F..%2Fx%22%0D%0ASet-Cookie%3A%20a%3Db.html"
    assert b'filename="PLATZHALTER.html"' in raw
    return raw.replace(b'filename="PLATZHALTER.html"', hostile)


def tracking_of(factory: sessionmaker[Session], lead_id: int) -> str:
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return f"leads+{lead_id}-{lead.reply_token}@autohaus.example"


def reply(sender: str, to: str, text: str, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "AW: Anfrage Astra"
    msg["Message-ID"] = message_id
    msg.set_content(text)
    return msg.as_bytes(policy=policy.SMTP)


def conversation_of(client: FlaskClient, lead_id: int) -> str:
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    return page.split('id="h-conversation"', 1)[1].split("</section>", 1)[0]


def links(section: str, lead_id: int) -> list[str]:
    return re.findall(rf'href="(/leads/{lead_id}/mails/(?:in|out)/\d+/parts/\d+)"', section)


def test_every_message_both_ways_in_full(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA, inquiry_with_photo())
    tracking = tracking_of(team, lead_id)
    # the customer answers the tracking address, quoting an earlier mail
    ingest(
        team,
        reply(
            f"Kundin <{CUSTOMER}>",
            tracking,
            "Ich nehme den Astra!\n\nAm 20.11.2026 schrieb Anna Schmidt <leads@autohaus.example>:\n"
            "> Guten Tag, der Astra ist noch da.\n",
            "<kunde-2@kunden.example>",
        ),
        to=tracking,
    )
    # Anna answers from her mail program: relayed to the customer
    ingest(
        team,
        reply(
            f"Anna <{ANNA}>", tracking, "Wunderbar, ich melde mich.\n", "<anna-1@autohaus.example>"
        ),
        to=tracking,
    )
    client = logged_in(app, ANNA)
    # and once more from the lead page, with a PDF
    assert send(
        client, lead_id, body="Anbei das Angebot.", files=[(PDF, "Angebot.pdf")]
    ).status_code
    section = conversation_of(client, lead_id)
    cards = section.split('<li class="message-card')[1:]
    kinds = [re.search(r"<strong>(.*?)</strong>", card, re.S).group(1).strip() for card in cards]
    assert kinds == [
        "Anfrage",
        "Antwort des Kunden",
        "Antwort aus dem Mailprogramm, weitergeleitet",
        "Antwort über die Anfrageseite",
    ]
    # the inquiry: its message and both attachments (names made plain)
    assert "Anbei Fotos von meinem Wagen." in cards[0] and "mein Golf.jpg" in cards[0]
    # the customer's own words in full, the quote folded away
    own, _, quoted = cards[1].partition("<details")
    assert "Ich nehme den Astra!" in own and "der Astra ist noch da" not in own
    assert "Zitierten Text anzeigen" in quoted and "der Astra ist noch da" in quoted
    assert f"Kundin &lt;{CUSTOMER}&gt;" in cards[1]
    # the envelope sender (here a test relay's) is a technical detail: admins only
    assert "Absender laut Umschlag" not in cards[1]
    admin = conversation_of(logged_in(app, ADA), lead_id).split('<li class="message-card')[1:]
    assert "Absender laut Umschlag" in admin[1]
    # Anna's relayed answer: shown once (as the customer got it), who wrote it, its state
    assert section.count("Wunderbar, ich melde mich.") == 1
    assert "Geschrieben von" in cards[2] and "Anna" in cards[2]
    assert "wartet auf Versand" in cards[2] and CUSTOMER in cards[2]
    assert "Anbei das Angebot." in cards[3] and "Angebot.pdf" in cards[3]
    # staff mails about the lead are listed apart, folded
    assert "Mails an Mitarbeiter zu dieser Anfrage" in section
    internal = section.split('class="internal-mails"', 1)[1]
    assert "Benachrichtigung an die zuständige Person" in internal
    assert "Kundenantwort an die zuständige Person weitergeleitet" in internal
    # downloads: the photo and the PDF byte for byte
    found = links(section, lead_id)
    assert len(found) == 3
    photo = client.get(found[0])
    assert photo.status_code == 200 and photo.data == JPEG
    assert photo.headers["Content-Type"] == "image/jpeg"
    pdf = client.get(found[2])
    assert pdf.status_code == 200 and pdf.data == PDF
    assert pdf.headers["Content-Type"] == "application/pdf"


def test_downloads_are_attachments_never_rendered(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA, inquiry_with_photo())
    client = logged_in(app, ANNA)
    section = conversation_of(client, lead_id)
    photo, html_link = links(section, lead_id)
    response = client.get(html_link)
    assert response.status_code == 200 and response.data == HTML_FILE
    # never text/html in our origin; nosniff; a download with a plain name
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "\r" not in disposition and "\n" not in disposition and "/" not in disposition
    assert "Set-Cookie" not in response.headers
    assert "x_ Set-Cookie a=b.html" in disposition or "x Set-Cookie a=b.html" in disposition
    assert client.get(photo).headers["Content-Disposition"] == (
        "attachment; filename=\"mein Golf.jpg\"; filename*=UTF-8''mein%20Golf.jpg"
    )


def test_every_download_checks_the_lead_and_the_mail(
    team: sessionmaker[Session], app: Flask
) -> None:
    annas = new_lead(team, 1, ANNA, inquiry_with_photo(1))
    carls = new_lead(team, 2, CARL, inquiry_with_photo(2))
    anna = logged_in(app, ANNA)
    photo = links(conversation_of(anna, annas), annas)[0]
    carl_photo = links(conversation_of(logged_in(app, CARL), carls), carls)[0]
    carl_mail = re.search(r"/mails/in/(\d+)/", carl_photo).group(1)
    # others than Anna, her supervisor and the admin: not found (no probing by id)
    for who, status in ((ANNA, 200), (CHEF, 200), (BEN, 404), (CARL, 404)):
        assert logged_in(app, who).get(photo).status_code == status, who
    # Carl's mail behind Anna's lead: not found, although Anna may open her lead
    assert anna.get(f"/leads/{annas}/mails/in/{carl_mail}/parts/2").status_code == 404
    with team() as session:
        carls_outbox = session.scalar(select(OutboxMail.id).where(OutboxMail.lead_id == carls))
    assert anna.get(f"/leads/{annas}/mails/out/{carls_outbox}/parts/1").status_code == 404
    # parts that do not exist, ids no database holds
    mail = re.search(r"/mails/in/(\d+)/", photo).group(1)
    for path in (
        f"/leads/{annas}/mails/in/{mail}/parts/0",
        f"/leads/{annas}/mails/in/{mail}/parts/99",
        f"/leads/{annas}/mails/in/99999/parts/1",
        f"/leads/{annas}/mails/in/{2**31 + 1}/parts/1",
        f"/leads/{annas}/mails/in/{mail}/parts/{2**40}",
    ):
        assert anna.get(path).status_code == 404, path
    # anonymous: to the login page
    anonymous = app.test_client().get(photo)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_the_delivery_state_of_each_answer_is_shown(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    client = logged_in(app, ANNA)
    assert send(client, lead_id, body="Erste Antwort").status_code == 302
    assert send(client, lead_id, body="Zweite Antwort").status_code == 302
    assert send(client, lead_id, body="Dritte Antwort").status_code == 302
    first, second, third = answers(team)
    with team.begin() as session:
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == first.id)
            .values(status="dead", last_error="550 5.1.1 unknown user")
        )
        session.execute(update(OutboxMail).where(OutboxMail.id == second.id).values(status="sent"))
        # sent, then a bounce came back (issue 17 item 6 marks the row)
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == third.id)
            .values(status="sent", bounced_at=utcnow(), bounce_reason="550 mailbox full")
        )
    section = conversation_of(client, lead_id)
    cards = section.split('<li class="message-card')[1:]
    assert "fehlgeschlagen" in cards[1] and "delivery-dead" in cards[1]
    assert ">gesendet" in cards[2]
    assert "unzustellbar (Rückläufer vom" in cards[3]
    assert "delivery-bounced" in cards[3] and ">gesendet" not in cards[3]
    # the relay's own words are technical details: the salesperson sees the state, the admin why
    assert "550 5.1.1 unknown user" not in section and "550 mailbox full" not in section
    admin = conversation_of(logged_in(app, ADA), lead_id)
    assert "550 5.1.1 unknown user" in admin and "550 mailbox full" in admin


def test_a_lead_without_replies_shows_the_inquiry(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    section = conversation_of(logged_in(app, ANNA), lead_id)
    assert section.count('<li class="message-card') == 1
    assert "Ist das Fahrzeug noch da?" in section
    # the form's envelope sender is of the From's domain: not worth a line
    assert "Absender laut Umschlag" not in section
    with team() as session:
        inbound = session.scalar(select(InboundMail.id).where(InboundMail.lead_id == lead_id))
    assert f'id="message-in-{inbound}"' in section


def test_the_customers_attachments_can_be_sent_along(
    team: sessionmaker[Session], app: Flask
) -> None:
    annas = new_lead(team, 1, ANNA, inquiry_with_photo(1))
    carls = new_lead(team, 2, CARL, inquiry_with_photo(2))
    client = logged_in(app, ANNA)
    page = client.get(f"/leads/{annas}").get_data(as_text=True)
    offered = re.findall(r'name="forward" type="checkbox" value="(\d+:\d+)"', page)
    assert len(offered) == 2 and "mein Golf.jpg (3 KB)" in page
    assert send(client, annas, extra={"forward": offered[0]}).status_code == 302
    [row] = answers(team)
    msg = message_from_bytes(row.raw, policy=policy.default)
    [photo] = list(msg.iter_attachments())
    assert photo.get_filename() == "mein Golf.jpg" and photo.get_payload(decode=True) == JPEG
    # another lead's mail, or anything that is no choice of this form: refused, nothing sent
    with team() as session:
        carl_mail = session.scalar(select(InboundMail.id).where(InboundMail.lead_id == carls))
    for hostile in (f"{carl_mail}:2", "abc", "1:x", f"{carl_mail}:1", "999999:1"):
        response = send(client, annas, extra={"forward": hostile})
        assert response.status_code == 400, hostile
        assert "Traceback" not in response.get_data(as_text=True)
    assert len(answers(team)) == 1
