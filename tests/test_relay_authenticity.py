"""Issue 17 item 3 (RELIABILITY.md F.8, G.6 R1/R2/R6): only mail carrying the lead's secret
token counts and relays; the token is bound to the lead and its assignee; the sender must be
someone who may act on the lead; a trusted MX's failed check refuses the relay; everything
without a token is a "possible answer" note (no status change, no relay), never silence.

The threat model these tests walk through row by row is escalation/THREATS.md.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.escalation.authenticity import TokenKind, assignee_token, check_token
from mailgate.escalation.replies import tracking_address
from mailgate.models import InboundMail, Lead, OutboxMail, ProtocolEntry, User

from .conversation_helpers import (
    BASE_URL,
    DEALER_WITH_LINKS,
    body,
    ingest,
    mail_with_parts,
    rows,
    sent_mail,
    setup_dealer,
)
from .mails import LEAD_ADDRESS, inquiry
from .webui_helpers import csrf_token, ensure_user, logged_in, web_app

TRUSTED = "mx.autohaus.example"
ANNA = "anna@autohaus.example"
CUSTOMER = "erika@kunden.example"
LINK = re.compile(re.escape(BASE_URL) + r"(/m/[A-Za-z0-9_.\-]+)")
PASS_AR = f"{TRUSTED}; dkim=pass header.d=autohaus.example; spf=pass; dmarc=pass"
IBAN = "Bitte überweisen Sie die Anzahlung auf IBAN DE02 1203 0000 0000 2020 51."


def _setup(factory: sessionmaker[Session]) -> Lead:
    toml = DEALER_WITH_LINKS.replace(
        "[distribution]", f'trusted_authserv_ids = ["{TRUSTED}"]\n[distribution]'
    )
    setup_dealer(factory, toml)
    ingest(factory, inquiry(1, name="Erika Musterfrau", email=CUSTOMER))
    with factory() as session:
        lead = session.scalars(select(Lead)).one()
        session.expunge(lead)
    return lead


def _mail(sender: str, to: str, subject: str, text: str = IBAN, **headers: str) -> bytes:
    return mail_with_parts(
        sender=sender,
        to=to,
        subject=subject,
        text=text,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        message_id=f"<a-{abs(hash((sender, to, subject, text, str(headers))))}@c.example>",
    )


def _state(factory: sessionmaker[Session], lead_id: int) -> tuple[bool, int, list[str]]:
    """(answered?, relays to the customer, protocol actions)."""
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        relays = session.scalar(
            select(func.count()).where(OutboxMail.purpose == "relay_to_customer")
        )
        actions = session.scalars(
            select(ProtocolEntry.action)
            .where(ProtocolEntry.lead_id == lead_id)
            .order_by(ProtocolEntry.id)
        ).all()
    return lead.first_response_at is not None, relays or 0, list(actions)


def _forged_cases(lead: Lead) -> list[tuple[str, bytes, str]]:
    """(name, mail, expected handling) — the issue's forged-From shapes, R6 with and without
    a trusted Authentication-Results, and G.6 R2's display-name tricks."""
    token = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    tag = f"AW: [Lead {lead.id}] Ihre Anfrage"
    cases: list[tuple[str, bytes, str]] = []
    for ar_name, ar in (("", {}), (" +trusted A-R pass", {"Authentication_Results": PASS_AR})):
        cases += [
            (
                "forged staff From + subject tag" + ar_name,
                _mail(f"Anna Schmidt <{ANNA}>", LEAD_ADDRESS, tag, **ar),
                "possible_answer",
            ),
            (
                "forged staff From to the customer, lead address in Cc" + ar_name,
                _mail(
                    f"Anna Schmidt <{ANNA}>",
                    f"Erika <{CUSTOMER}>",
                    "Ihr Golf",
                    Cc=LEAD_ADDRESS,
                    **ar,
                ),
                "possible_answer",
            ),  # fmt: skip
            (
                "forged customer From + subject tag" + ar_name,
                _mail(f"Erika <{CUSTOMER}>", LEAD_ADDRESS, tag, "Ich nehme den Golf.", **ar),
                "possible_answer",
            ),
        ]
    cases += [
        (
            "From with two addresses, valid token",
            _mail(f"{ANNA}, mallory@evil.example", token, "AW: Ihre Anfrage"),
            "quarantined",
        ),
        (
            "From with the assignee as display name, valid token",
            _mail(f'"{ANNA}" <mallory@evil.example>', token, "AW: Ihre Anfrage"),
            "unknown_sender",
        ),
        (
            "CVE-2023-27043 shape, valid token",  # parses as two addresses: nobody's reply
            _mail(f"{ANNA} <mallory@evil.example>", token, "AW: Ihre Anfrage"),
            "quarantined",
        ),
        (
            "right From, valid token, trusted MX says dmarc=fail",
            _mail(
                f"Anna <{ANNA}>",
                token,
                "AW: Ihre Anfrage",
                Authentication_Results=f"{TRUSTED}; dmarc=fail header.from=autohaus.example",
            ),
            "quarantined",
        ),  # fmt: skip
        (
            "right From, guessed token",
            _mail(
                f"Anna <{ANNA}>",
                tracking_address(LEAD_ADDRESS, lead.id, "A" * 22),
                "AW: Ihre Anfrage",
            ),
            "quarantined",
        ),
    ]
    return cases


def test_forged_from_matrix_is_never_counted_nor_relayed_and_always_reaches_a_person(
    dealer: sessionmaker[Session],
) -> None:
    """The issue's forged-From cases and R6: 0 marked answered, 0 relayed; each recorded on the
    lead (possible answer / unknown sender / kept aside) and told to the assignee in German."""
    lead = _setup(dealer)
    cases = _forged_cases(lead)
    accepted, unheard = [], []
    for name, raw, expected in cases:
        before = len(rows(dealer, "relay_notice"))
        row = ingest(dealer, raw)
        answered, relays, actions = _state(dealer, lead.id)
        if answered or relays:
            accepted.append(name)
        if expected == "quarantined":
            assert row.status == "quarantined", (name, row.status, row.status_reason)
        else:
            assert row.status == "processed" and row.lead_id == lead.id, (name, row.status)
            assert actions[-1] == expected, (name, actions)
        notices = rows(dealer, "relay_notice")[before:]
        if not notices:
            unheard.append(name)
            continue
        text = body(sent_mail(dealer, notices[-1].id), "plain")
        assert "nicht" in text and "gezählt" in text or "zurückgehalten" in text, (name, text)
    print(
        f"FIGURE R6 forged answers counted or relayed: {len(accepted)}/{len(cases)}, "
        f"told to nobody: {len(unheard)}/{len(cases)}"
    )
    assert accepted == [] and unheard == []
    assert len(cases) == 11


def test_the_notification_carries_a_token_bound_to_lead_and_assignee(
    dealer: sessionmaker[Session],
) -> None:
    lead = _setup(dealer)
    [row] = rows(dealer, "notification")
    reply_to = str(sent_mail(dealer, row.id)["Reply-To"])
    assert lead.assignee_id is not None
    bound = assignee_token(lead.reply_token, lead.assignee_id)
    assert tracking_address(LEAD_ADDRESS, lead.id, bound) in reply_to
    assert lead.reply_token not in reply_to  # the lead's own token is the customer's
    with dealer() as session:
        fresh = session.get(Lead, lead.id)
        assert fresh is not None
        assert check_token(session, fresh, bound).kind is TokenKind.ASSIGNEE
        assert check_token(session, fresh, lead.reply_token).kind is TokenKind.LEAD
        assert check_token(session, fresh, bound[:-1] + "x").kind is TokenKind.NONE
        assert check_token(session, fresh, None).kind is TokenKind.NONE
    # another lead's assignee token never fits this lead
    assert assignee_token("other-lead-secret", lead.assignee_id) != bound


def test_reassigning_changes_what_is_accepted(dealer: sessionmaker[Session]) -> None:
    """Anna's token stops counting once Bert owns the lead (a possible answer, naming her);
    Bert's own token counts; Anna may no longer act on the lead even with the lead token."""
    lead = _setup(dealer)
    bert = ensure_user(dealer, "bert@autohaus.example", name="Bert Neu")
    anna_id = lead.assignee_id
    assert anna_id is not None
    anna_address = tracking_address(
        LEAD_ADDRESS, lead.id, assignee_token(lead.reply_token, anna_id)
    )
    with db.session_scope(dealer) as session:
        session.execute(update(Lead).where(Lead.id == lead.id).values(assignee_id=bert))
    row = ingest(dealer, _mail(f"Anna <{ANNA}>", anna_address, "AW: Ihre Anfrage", "Erledigt."))
    assert row.status == "processed" and "no longer the assignee" in (row.status_reason or "")
    row = ingest(
        dealer,
        _mail(
            f"Anna <{ANNA}>",
            tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token),
            "AW: Ihre Anfrage",
            "Erledigt, nochmal.",
        ),
    )
    assert "may not act on this lead" in (row.status_reason or "")
    # Bert with Anna's old token: still the previous assignee's address, not his
    row = ingest(dealer, _mail("bert@autohaus.example", anna_address, "AW: Anfrage", "Hallo."))
    assert "no longer the assignee" in (row.status_reason or "")
    assert _state(dealer, lead.id)[:2] == (False, 0)
    bert_address = tracking_address(LEAD_ADDRESS, lead.id, assignee_token(lead.reply_token, bert))
    row = ingest(dealer, _mail("Bert Neu <bert@autohaus.example>", bert_address, "AW: x", "Gern."))
    assert (row.status_reason or "").startswith("answered")
    answered, relays, actions = _state(dealer, lead.id)
    assert answered and relays == 1 and actions.count("possible_answer") == 3


def test_an_admin_may_answer_any_lead_and_a_stranger_colleague_may_not(
    dealer: sessionmaker[Session],
) -> None:
    lead = _setup(dealer)
    ensure_user(dealer, "otto@autohaus.example", name="Otto Fremd")
    ensure_user(dealer, "ida@autohaus.example", "admin", name="Ida Admin")
    address = tracking_address(LEAD_ADDRESS, lead.id, lead.reply_token)
    row = ingest(dealer, _mail("otto@autohaus.example", address, "AW: Anfrage", "Hallo."))
    assert "may not act" in (row.status_reason or "")
    assert _state(dealer, lead.id)[:2] == (False, 0)
    row = ingest(dealer, _mail("ida@autohaus.example", address, "AW: Anfrage", "Guten Tag."))
    assert (row.status_reason or "").startswith("answered")
    # the supervisor of the assignee (Carl, chef@) may act on his team's lead
    row = ingest(dealer, _mail("chef@autohaus.example", address, "AW: Anfrage", "Noch was."))
    assert (row.status_reason or "").startswith("answered")


def test_r1_legitimate_answers_with_the_assignee_token_all_count(
    dealer: sessionmaker[Session],
) -> None:
    """R1 with the bound token: in To, in Cc (cc mode shape), with a display name, with
    In-Reply-To, with the trusted MX's pass — every one counts and relays."""
    lead = _setup(dealer)
    assert lead.assignee_id is not None
    address = tracking_address(
        LEAD_ADDRESS, lead.id, assignee_token(lead.reply_token, lead.assignee_id)
    )
    shapes = [
        _mail(f"Anna Schmidt <{ANNA}>", address, "AW: 1", "Eins."),
        _mail(ANNA.upper(), f'"Erika (über Autohaus)" <{address}>', "AW: 2", "Zwei."),
        _mail(f"Anna <{ANNA}>", f"Erika <{CUSTOMER}>", "AW: 3", "Drei.", Cc=address),
        _mail(ANNA, address, "Re: 4", "Vier.", In_Reply_To="<n-1@autohaus.example>"),
        _mail(ANNA, address, "WG: 5", "Fünf.", Authentication_Results=PASS_AR),
    ]
    counted = sum(
        (ingest(dealer, raw).status_reason or "").startswith("answered") for raw in shapes
    )
    answered, relays, _ = _state(dealer, lead.id)
    print(f"FIGURE R1 answers with the assignee token counted: {counted}/{len(shapes)}")
    assert counted == len(shapes) and answered and relays == len(shapes)


def test_a_possible_answer_is_counted_and_relayed_only_after_the_assignee_confirms(
    dealer: sessionmaker[Session],
) -> None:
    """Anna's client dropped the sub-address (subject tag only): the notice in her mailbox
    carries a one-use link; the POST relays and counts; a second click does nothing."""
    lead = _setup(dealer)
    tag = f"AW: [Lead {lead.id}] Ihre Anfrage"
    row = ingest(dealer, _mail(f"Anna <{ANNA}>", LEAD_ADDRESS, tag, "Probefahrt am Montag?"))
    assert row.status == "processed"
    assert _state(dealer, lead.id)[:2] == (False, 0)
    [notice] = rows(dealer, "relay_notice")
    assert notice.recipients == [ANNA]
    text = body(sent_mail(dealer, notice.id), "plain")
    assert "Mögliche Antwort" in str(sent_mail(dealer, notice.id)["Subject"])
    assert "nicht als Antwort gezählt und nicht weitergeleitet" in text
    # the note is on the lead page, in German
    ensure_user(dealer, ANNA, name="Anna Schmidt")
    ensure_user(dealer, "ida@autohaus.example", "admin", name="Ida Admin")
    page = logged_in(web_app(dealer), ANNA).get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "mögliche Antwort von anna@autohaus.example" in page
    [path] = LINK.findall(text)
    client = web_app(dealer).test_client()
    page = client.get(path)
    assert page.status_code == 200 and "Das war meine Antwort" in page.get_data(as_text=True)
    token = csrf_token(client, path)
    done = client.post(path, data={"csrf_token": token})
    assert done.status_code == 200, done.get_data(as_text=True)[:500]
    assert "Bestätigt" in done.get_data(as_text=True)
    answered, relays, actions = _state(dealer, lead.id)
    assert answered and relays == 1 and "reply_confirmed" in actions
    [relay_row] = rows(dealer, "relay_to_customer")
    relayed = sent_mail(dealer, relay_row.id)
    assert "Probefahrt am Montag?" in body(relayed, "plain")
    assert "[Lead" not in str(relayed["Subject"])
    assert client.post(path, data={"csrf_token": token}).status_code == 410  # used


@pytest.mark.parametrize(
    "mangle", [lambda p: p[:-2] + "xx", lambda p: p.replace("/m/", "/m/A"), lambda p: p + "."]
)
def test_a_tampered_confirmation_link_confirms_nothing(
    dealer: sessionmaker[Session],
    mangle,  # type: ignore[no-untyped-def]
) -> None:
    lead = _setup(dealer)
    ingest(dealer, _mail(f"Anna <{ANNA}>", LEAD_ADDRESS, f"[Lead {lead.id}] x", "Hallo."))
    [notice] = rows(dealer, "relay_notice")
    [path] = LINK.findall(body(sent_mail(dealer, notice.id), "plain"))
    client = web_app(dealer).test_client()
    response = client.post(mangle(path))
    assert response.status_code in (400, 404, 410), response.status_code
    assert _state(dealer, lead.id)[:2] == (False, 0)


def test_a_confirmation_link_for_a_mail_of_another_lead_confirms_nothing(
    dealer: sessionmaker[Session],
) -> None:
    """The signed claims name lead and mail; a mail not recorded on that lead is refused."""
    from mailgate.models import utcnow
    from mailgate.signed_links import link_secret, new_claims, sign

    lead = _setup(dealer)
    ingest(dealer, inquiry(2, name="Paul Zwei", email="paul@kunden.example"))
    with dealer() as session:
        other_mail = session.scalar(
            select(InboundMail.id)
            .where(InboundMail.lead_id != lead.id)
            .order_by(InboundMail.id.desc())
        )
        anna = session.scalar(select(User.id).where(User.email == ANNA))
    with db.session_scope(dealer) as session:
        secret = link_secret(session)
    assert other_mail is not None and anna is not None
    claims = new_claims(anna, lead.id, "confirm_reply", utcnow(), f"r{other_mail}-abc")
    client = web_app(dealer).test_client()
    path = f"/m/{sign(secret, claims)}"
    token = csrf_token(client, path)  # the page itself is fine: the claims are genuine
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code in (400, 409), response.status_code
    assert _state(dealer, lead.id)[:2] == (False, 0)


def test_a_direct_answer_with_the_mailbox_in_cc_counts_once_confirmed_and_is_not_relayed(
    dealer: sessionmaker[Session],
) -> None:
    """The customer already has a direct answer: confirming it only counts it."""
    lead = _setup(dealer)
    raw = _mail(
        f"Anna <{ANNA}>", f"Erika <{CUSTOMER}>", "Ihr Golf", "Angebot anbei.", Cc=LEAD_ADDRESS
    )
    assert ingest(dealer, raw).status == "processed"
    assert _state(dealer, lead.id)[:2] == (False, 0)
    [notice] = rows(dealer, "relay_notice")
    text = body(sent_mail(dealer, notice.id), "plain")
    assert "nur in Kopie" in text and "erst dann zählt sie als Antwort" in text
    [path] = LINK.findall(text)
    client = web_app(dealer).test_client()
    done = client.post(path, data={"csrf_token": csrf_token(client, path)})
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "Bestätigt: Ihre Antwort zählt." in page
    assert "an den Kunden" not in page
    answered, relays, actions = _state(dealer, lead.id)
    assert answered and relays == 0 and actions[-1] == "reply_confirmed"
