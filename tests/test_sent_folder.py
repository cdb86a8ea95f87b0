"""Sent-folder reply detection (issue 9) against a real Dovecot, on both databases.

A salesperson who answers from his own mail client, without the tracking
address, is recognised from his Sent folder: a mail to the customer of one
of *his* open leads, sent after the lead came in, counts as the response.
The folder is only read (EXAMINE, BODY.PEEK); nothing but the Message-ID of
a mail that counted is kept.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import SettingsError, export_settings, import_settings
from mailgate.imap.sent_folder import check_all, load_sent_folders
from mailgate.imap.sent_mail import parse_sent, reaches_intake
from mailgate.imap.sent_record import record_error, sent_folder_status
from mailgate.imap.service import run_imap
from mailgate.models import (
    Customer,
    Lead,
    ProtocolEntry,
    SentFolderAnswer,
    SentFolderState,
    User,
)

from .conftest import DEALER_TOML
from .dovecot import Dovecot
from .imap_helpers import client_for, dovecot, flags_in, wait_until  # noqa: F401 - fixture

ANNA, CHEF = "anna@autohaus.example", "chef@autohaus.example"
CUSTOMER = "kunde.x@example.org"
NOW = datetime.now(UTC)


def sent_folder_toml(server: Dovecot, user: str, folder: str = "Sent", **changes: str) -> str:
    values = {
        "enabled": "true",
        "host": '"127.0.0.1"',
        "port": str(server.port),
        "security": '"none"',
        "username": f'"{user}"',
        "password": f'"{server.users[user]}"',
        "folder": f'"{folder}"',
        "interval": '"5s"',
        **changes,
    }
    return "sent_folder = { " + ", ".join(f"{k} = {v}" for k, v in values.items()) + " }\n"


def settings_with(anna: str = "", chef: str = "") -> str:
    """The example dealership, Anna's and Carl's ``sent_folder`` lines added."""
    text = DEALER_TOML.replace(
        'supervisor = "chef@autohaus.example"\n', 'supervisor = "chef@autohaus.example"\n' + anna
    )
    return text.replace("receives_leads = false\n", "receives_leads = false\n" + chef)


def configure(factory: sessionmaker[Session], text: str) -> None:
    with db.session_scope(factory) as session:
        import_settings(session, text)


def add_lead(
    factory: sessionmaker[Session], owner: str, n: int, *, email: str = CUSTOMER, age: float = 2
) -> int:
    """A lead of the customer ``email``, assigned to ``owner``, received ``age`` hours ago."""
    with db.session_scope(factory) as session:
        owner_id = session.scalar(select(User.id).where(User.email == owner))
        customer = Customer(name=f"Kunde {n}", email=email)
        session.add(customer)
        session.flush()
        lead = Lead(
            dedupe_key=f"sent-{n}",
            reply_token=f"token-{n}",
            assignee_id=owner_id,
            customer_id=customer.id,
            status="assigned",
            received_at=NOW - timedelta(hours=age),
            next_due_at=NOW + timedelta(hours=2),
        )
        session.add(lead)
        session.flush()
        return lead.id


def sent_mail(to: str, *, sent: datetime | None = None, cc: str = "", n: int = 1) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Anna Schmidt <anna@autohaus.example>"
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = "Ihre Anfrage"
    msg["Date"] = format_datetime(sent or datetime.now(UTC))
    msg["Message-ID"] = f"<sent-{n}@client.example>"
    msg.set_content("Guten Tag, gerne am Samstag zur Probefahrt. Vertraulich: 4711")
    return msg.as_bytes()


def append(server: Dovecot, user: str, raw: bytes, folder: str = "Sent") -> None:
    client = client_for(server, user)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        client.append(folder, raw)
    finally:
        client.logout()


def lead_row(factory: sessionmaker[Session], lead_id: int) -> Lead:
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        session.expunge(lead)
        return lead


def answered_lines(factory: sessionmaker[Session], lead_id: int) -> list[ProtocolEntry]:
    with factory() as session:
        rows = session.scalars(
            select(ProtocolEntry).where(
                ProtocolEntry.lead_id == lead_id, ProtocolEntry.action == "answered"
            )
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def user_id(factory: sessionmaker[Session], email: str) -> int:
    with factory() as session:
        found = session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


# --- pure ---------------------------------------------------------------------------------


def test_parse_sent_takes_recipients_message_id_and_the_sending_time() -> None:
    sent = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
    headers = (
        b"Message-ID: <a@b>\r\nDate: Mon, 2 Nov 2026 10:15:00 +0100\r\n"
        b'To: "X, Kunde" <Kunde.X@Example.org>, y@example.org\r\nCc: z@example.org\r\n'
        b"Bcc: geheim@example.org\r\n\r\n"
    )
    mail = parse_sent(headers, datetime(2026, 11, 2, 11, 0, tzinfo=UTC), NOW)
    assert mail.recipients == (
        "kunde.x@example.org",
        "y@example.org",
        "z@example.org",
        "geheim@example.org",
    )
    assert mail.message_id == "<a@b>" and mail.sent_at == sent
    no_date = parse_sent(b"To: a@b.example\r\n\r\n", sent, NOW)
    assert no_date.sent_at == sent and no_date.message_id is None
    future = parse_sent(b"Date: Fri, 1 Jan 2100 00:00:00 +0000\r\n\r\n", None, NOW)
    assert future.sent_at == NOW


def test_mails_also_sent_to_a_lead_address_are_left_to_the_intake() -> None:
    ours = ["leads@autohaus.example"]
    assert reaches_intake(["x@example.org", "leads+7-tok@autohaus.example"], ours)
    assert reaches_intake(["LEADS@autohaus.example"], ours)
    assert not reaches_intake(["x@example.org", "leads@other.example"], ours)


# --- settings -----------------------------------------------------------------------------


def test_sent_folder_settings_round_trip_and_default_off(factory: sessionmaker[Session]) -> None:
    line = (
        'sent_folder = { enabled = true, host = "imap.autohaus.example", '
        'username = "anna", password_file = "/etc/mailgate/anna.pw", '
        'folder = "Gesendete Elemente" }\n'
    )
    configure(factory, settings_with(anna=line))
    with db.session_scope(factory) as session:
        exported = export_settings(session)
    assert exported.count("sent_folder = ") == 1  # Carl's default (off) is not written
    assert 'folder = "Gesendete Elemente"' in exported and "port = 993" in exported
    configure(factory, exported)
    with db.session_scope(factory) as session:
        assert export_settings(session) == exported
        watches = load_sent_folders(session)
    assert [(w.email, w.mailbox.host, w.folder, w.mailbox.security) for w in watches] == [
        (ANNA, "imap.autohaus.example", "Gesendete Elemente", "ssl")
    ]
    assert watches[0].mailbox.password_file == "/etc/mailgate/anna.pw"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("sent_folder = { enabled = true }", "users[0].sent_folder.host is required"),
        (
            'sent_folder = { enabled = true, host = "imap.example.org", security = "none", '
            'username = "a" }',
            'users[0].sent_folder.security = "none" sends the password in clear text',
        ),
        (
            'sent_folder = { enabled = true, host = "h.example", username = "a", '
            'password = "x", password_file = "/p" }',
            "users[0].sent_folder: give only one of password, password_file",
        ),
        (
            'sent_folder = { enabled = true, host = "h.example", username = "a", folder = " " }',
            "users[0].sent_folder.folder is required",
        ),
        (
            'sent_folder = { enabled = true, host = "h.example", username = "a", port = 0 }',
            "users[0].sent_folder.port must be between 1 and 65535",
        ),
        (
            'sent_folder = { enabled = true, host = "h.example" }',
            "sent_folder.username is required",
        ),
        ("sent_folder = { enabld = true }", "unknown key users[0].sent_folder.enabld"),
        ('sent_folder = { enabled = "yes" }', "users[0].sent_folder.enabled must be true or false"),
        ('sent_folder = "Sent"', "users[0].sent_folder must be a table"),
    ],
)
def test_sent_folder_validation_names_the_key(
    factory: sessionmaker[Session], line: str, error: str
) -> None:
    with pytest.raises(SettingsError) as caught, db.session_scope(factory) as session:
        import_settings(session, settings_with(anna=line + "\n"))
    assert error in str(caught.value)


def test_switched_off_it_may_stay_half_filled_in(factory: sessionmaker[Session]) -> None:
    configure(factory, settings_with(anna='sent_folder = { host = "imap.example.org" }\n'))
    with factory() as session:
        assert load_sent_folders(session) == []


# --- against Dovecot ----------------------------------------------------------------------


def test_a_sent_mail_to_the_customer_answers_the_lead_once_without_touching_the_folder(
    factory: sessionmaker[Session],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    configure(factory, settings_with(anna=sent_folder_toml(dovecot, "anna")))
    mine = add_lead(factory, ANNA, 1)
    theirs = add_lead(factory, CHEF, 2)  # the same customer, Carl's lead: not Anna's answer
    append(dovecot, "anna", sent_mail(f"Kunde X <{CUSTOMER.upper()}>"))

    reports = check_all(factory)
    assert [(r.email, r.read, r.answered, r.error) for r in reports] == [(ANNA, 1, 1, None)]
    lead = lead_row(factory, mine)
    assert lead.status == "contacted" and lead.next_due_at is None
    assert lead.first_response_at is not None
    assert NOW - timedelta(minutes=5) < lead.first_response_at <= datetime.now(UTC)
    [line] = answered_lines(factory, mine)
    assert line.actor == ANNA
    assert line.detail == f"answered from {ANNA}'s mail client (Sent folder, to {CUSTOMER})"
    assert line.params and line.params[0]["code"] == "answered_from_sent"
    other = lead_row(factory, theirs)
    assert other.status == "assigned" and other.first_response_at is None
    assert answered_lines(factory, theirs) == []

    check_all(factory)  # the same folder again: nothing new, nothing counted twice
    assert len(answered_lines(factory, mine)) == 1
    assert flags_in(dovecot, "Sent") == [set()]  # read-only: not even \Seen was set
    anna = user_id(factory, ANNA)
    with factory() as session:
        [kept] = session.scalars(select(SentFolderAnswer)).all()
        status = sent_folder_status(session, anna, "Sent")
    # all that is kept of Anna's private mail: its Message-ID, for the lead it answered
    assert (kept.user_id, kept.lead_id) == (anna, mine)
    assert kept.message_id == "<sent-1@client.example>"
    assert status is not None and status.ok and status.answered_total == 1


def test_mails_to_others_or_from_before_the_lead_count_nothing(
    factory: sessionmaker[Session],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    configure(factory, settings_with(anna=sent_folder_toml(dovecot, "anna")))
    lead_id = add_lead(factory, ANNA, 1, age=1)
    append(dovecot, "anna", sent_mail("someone.else@example.org", n=1))
    append(dovecot, "anna", sent_mail(CUSTOMER, sent=NOW - timedelta(hours=3), n=2))
    append(dovecot, "anna", sent_mail(f"{CUSTOMER}, leads@autohaus.example", n=3))

    [report] = check_all(factory)
    assert (report.read, report.answered, report.error) == (3, 0, None)
    lead = lead_row(factory, lead_id)
    assert lead.status == "assigned" and lead.first_response_at is None
    assert answered_lines(factory, lead_id) == []
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(SentFolderAnswer)) == 0
    # a later answer still counts: the cursor moved past the others, not past this one
    append(dovecot, "anna", sent_mail(CUSTOMER, cc="someone.else@example.org", n=4))
    [report] = check_all(factory)
    assert (report.read, report.answered) == (1, 1)
    assert len(answered_lines(factory, lead_id)) == 1


def test_a_uidvalidity_change_does_not_count_twice(
    factory: sessionmaker[Session],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    configure(factory, settings_with(anna=sent_folder_toml(dovecot, "anna")))
    lead_id = add_lead(factory, ANNA, 1)
    raw = sent_mail(CUSTOMER)
    append(dovecot, "anna", raw)
    check_all(factory)
    anna = user_id(factory, ANNA)
    with factory() as session:
        before = session.get(SentFolderState, (anna, "Sent"))
        assert before is not None
        old_validity = before.uidvalidity

    client: IMAPClient = client_for(dovecot, "anna")
    try:
        client.delete_folder("Sent")
        client.create_folder("Sent")
        client.append("Sent", raw)  # the folder rebuilt, e.g. after a server move
    finally:
        client.logout()
    [report] = check_all(factory)
    assert (report.read, report.answered, report.error) == (1, 0, None)
    with factory() as session:
        after = session.get(SentFolderState, (anna, "Sent"))
        assert after is not None and after.uidvalidity != old_validity
    assert len(answered_lines(factory, lead_id)) == 1


def test_a_wrong_password_is_shown_and_the_others_go_on(
    factory: sessionmaker[Session],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    configure(
        factory,
        settings_with(
            anna=sent_folder_toml(dovecot, "anna", password='"falsch"'),
            chef=sent_folder_toml(dovecot, "ben", folder="Gesendete Elemente"),
        ),
    )
    annas = add_lead(factory, ANNA, 1)
    carls = add_lead(factory, CHEF, 2, email="kundin.y@example.org")
    append(dovecot, "anna", sent_mail(CUSTOMER))
    append(dovecot, "ben", sent_mail("kundin.y@example.org"), folder="Gesendete Elemente")

    reports = {r.email: r for r in check_all(factory)}
    assert reports[ANNA].error is not None and "user name or password" in reports[ANNA].error
    assert reports[CHEF].error is None and reports[CHEF].answered == 1
    assert lead_row(factory, annas).first_response_at is None
    assert lead_row(factory, carls).status == "contacted"
    anna = user_id(factory, ANNA)
    with factory() as session:
        status = sent_folder_status(session, anna, "Sent")
    assert status is not None and not status.ok
    assert status.last_error is not None and "login failed" in status.last_error


def test_serve_runs_the_watchers_beside_the_pollers(
    factory: sessionmaker[Session],
    dovecot: Dovecot,  # noqa: F811
) -> None:
    configure(factory, settings_with(anna=sent_folder_toml(dovecot, "anna")))
    lead_id = add_lead(factory, ANNA, 1)
    append(dovecot, "anna", sent_mail(CUSTOMER))
    stop = threading.Event()
    thread = threading.Thread(
        target=run_imap, args=(factory, Settings(), stop), kwargs={"reload_seconds": 0.2}
    )
    thread.start()
    try:
        assert wait_until(lambda: lead_row(factory, lead_id).status == "contacted", 15)
        # a second answer, read on the next interval (5 s) by the same watcher
        second = add_lead(factory, ANNA, 2, email="kundin.y@example.org", age=1)
        append(dovecot, "anna", sent_mail("kundin.y@example.org", n=2))
        assert wait_until(lambda: lead_row(factory, second).status == "contacted", 15)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert len(answered_lines(factory, lead_id)) == 1


# --- web settings -------------------------------------------------------------------------


def test_the_user_page_sets_it_up_without_echoing_the_password(
    dealer: sessionmaker[Session],
) -> None:
    from .webui_helpers import ensure_user, logged_in, post, web_app

    admin_email = "admin@autohaus.example"
    ensure_user(dealer, admin_email, "admin")
    anna = ensure_user(dealer, ANNA, "salesperson", supervisor_email=CHEF)
    admin = logged_in(web_app(dealer), admin_email)
    path = f"/settings/users/{anna}/sent-folder"
    secret = "Sehr-geheim-93"
    form = {
        "enabled": "y",
        "host": "imap.autohaus.example",
        "port": "",
        "security": "ssl",
        "username": "anna",
        "password": secret,
        "folder": "Gesendete Elemente",
        "interval": "2m",
        "password_file": "",
        "ca_file": "",
    }
    assert "Gesendet-Ordner" in admin.get(f"/settings/users/{anna}").get_data(as_text=True)
    saved = post(admin, path, form)
    assert saved.status_code == 302
    page = admin.get(path).get_data(as_text=True)
    assert secret not in page and "Gesendete Elemente" in page
    with db.session_scope(dealer) as session:
        [watch] = load_sent_folders(session)
        exported = export_settings(session)
    assert (watch.mailbox.password, watch.mailbox.port, watch.mailbox.interval) == (
        secret,
        993,
        120.0,
    )
    assert watch.folder == "Gesendete Elemente" and "Gesendete Elemente" in exported
    # saved again with an empty password input: the stored one is kept
    assert post(admin, path, {**form, "password": "", "folder": "Sent"}).status_code == 302
    with db.session_scope(dealer) as session:
        [watch] = load_sent_folders(session)
    assert (watch.mailbox.password, watch.folder) == (secret, "Sent")
    # the watcher's last failure is on the user's page (and the Sent-folder page)
    record_error(dealer, anna, "Sent", "login failed: imap.autohaus.example:993 rejected it")
    for page_path in (f"/settings/users/{anna}", path):
        shown = admin.get(page_path).get_data(as_text=True)
        assert "login failed: imap.autohaus.example:993 rejected it" in shown
    # an invalid change is shown next to its field and saves nothing
    bad = post(admin, path, {**form, "password": "", "password_file": "/etc/pw"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "give only one of password, password_file" in html
    assert secret not in html
    bad = post(admin, path, {**form, "password": "", "security": "none"})
    assert 'security = "none"' in bad.get_data(as_text=True).replace("&#34;", '"')
    with db.session_scope(dealer) as session:
        [watch] = load_sent_folders(session)
    assert (watch.mailbox.security, watch.mailbox.password_file) == ("ssl", "")
    # switched off: nothing is watched, the settings stay for later
    off = {k: v for k, v in form.items() if k != "enabled"}
    assert post(admin, path, {**off, "password": ""}).status_code == 302
    with db.session_scope(dealer) as session:
        assert load_sent_folders(session) == []
    user_page = admin.get(f"/settings/users/{anna}").get_data(as_text=True)
    assert "Nicht überwacht." in user_page
