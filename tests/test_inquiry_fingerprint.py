"""Issue 17 item 7: the same inquiry delivered twice is one lead, and no empty "new message".

A second server passing an inquiry on changes its bytes, not its content:
another Message-ID and Date, Received lines on top, the text re-encoded
(quoted-printable, base64, 8bit), re-wrapped, CRLF or LF, another MIME
boundary, a gateway's "[EXTERN]" subject tag and warning banner.  Hypothesis
applies such mutations to the golden fixtures (``tests/fixtures/mails/*``)
and every copy must be discarded as a duplicate of the original's lead;
genuinely different inquiries of the same customer must not be.
"""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from email import charset, message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.fingerprint import fingerprint
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, Lead, LeadFollowup, OutboxMail, ProtocolEntry, utcnow
from mailgate.parsers.message import decode_part, load
from mailgate.worker import process_pending

from .mails import LEAD_ADDRESS, inquiry

FIXTURES = Path(__file__).parent / "fixtures" / "mails"
# folders of mails that are no inquiries (they are never leads, so never duplicates of one)
NOT_INQUIRIES = {"nonlead", "bounces"}
ALL = sorted(p for p in FIXTURES.glob("*/*.eml") if p.parent.name not in NOT_INQUIRIES)
BANNER = (
    "CAUTION: This email originated from outside of the organization. Do not click links "
    "or open attachments unless you recognize the sender."
)
HTML_BANNER = f"<p><b>{BANNER}</b></p>"
CTES = ("quoted-printable", "base64", "8bit")
SAME_CONTENT = {  # fixtures that differ in headers only: one inquiry
    "dkim-fail-demoted.eml",
    "dkim-fail-forged-pass-below.eml",
    "dkim-pass-untrusted-fail.eml",
}


# --- a second server's copy ----------------------------------------------------------------


def recoded(
    raw: bytes,
    *,
    ctes: list[str],
    boundary: str | None,
    width: int | None,
    crlf: bool,
    banner: bool,
    tag: bool,
    b64_line: int,
    n: int,
) -> bytes:
    """``raw`` as another server passes it on; the decoded content unchanged."""
    msg = message_from_bytes(raw, policy=policy.compat32)  # headers kept byte for byte
    for header in ("Message-ID", "Date"):
        del msg[header]
    msg["Message-ID"] = f"<copy-{n}@gateway.example>"
    msg["Date"] = "Tue, 01 Dec 2026 08:00:00 +0100"
    msg["X-Gateway-Scanned"] = f"clean (scan {n})"
    first_text: dict[str, bool] = {}
    for index, part in enumerate(p for p in msg.walk() if not p.is_multipart()):
        ctype = part.get_content_type()
        inline = part.get_content_disposition() != "attachment"
        if ctype in ("text/plain", "text/html") and inline:
            text = decode_part(part, [])
            if ctype == "text/plain" and width:
                text = _rewrap(text, width)
            if banner and ctype not in first_text:  # the gateway stamps the first body part
                text = f"{BANNER}\n\n{text}" if ctype == "text/plain" else _html_banner(text)
            first_text[ctype] = True
            _set_text(part, text, ctes[index % len(ctes)])
        elif str(part.get("Content-Transfer-Encoding", "")).lower() == "base64":
            body = re.sub(r"\s+", "", str(part.get_payload()))
            part.set_payload("\n".join(textwrap.wrap(body, b64_line)) + "\n")
    if boundary:
        for part in msg.walk():
            if part.is_multipart():
                part.set_boundary(f"{boundary}-{id(part) % 997}")
    out = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if tag:  # the gateway's tag in front of the subject, its bytes otherwise untouched
        out = re.sub(rb"(?im)^Subject:[ \t]*", b"Subject: [EXTERN] ", out, count=1)
    out = b"Received: from mx1.gateway.example by mx2.autohaus.example; Tue, 1 Dec 2026\r\n" + out
    return out if crlf else out.replace(b"\r\n", b"\n")


def _rewrap(text: str, width: int) -> str:
    lines = []
    for line in text.splitlines():
        wrapped = textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
        lines.extend(wrapped or [""])
    return "\n".join(lines) + "\n"


def _html_banner(markup: str) -> str:
    match = re.search(r"<body[^>]*>", markup, re.IGNORECASE)
    if not match:
        return HTML_BANNER + markup
    return markup[: match.end()] + HTML_BANNER + markup[match.end() :]


_ENCODINGS = {"quoted-printable": charset.QP, "base64": charset.BASE64, "8bit": None}


def _set_text(part: Message, text: str, cte: str) -> None:
    """The part's text again, as UTF-8 in transfer encoding ``cte`` (other headers kept)."""
    del part["Content-Transfer-Encoding"]
    if cte == "8bit":  # raw UTF-8 bytes, held as the parser holds 8-bit bodies
        part.set_param("charset", "utf-8")
        part["Content-Transfer-Encoding"] = "8bit"
        part.set_payload(text.encode("utf-8").decode("ascii", "surrogateescape"))
        return
    utf8 = charset.Charset("utf-8")
    utf8.body_encoding = _ENCODINGS[cte]
    part.set_payload(text, utf8)


def _recodable(path: Path) -> bool:
    """Whether the stdlib can write a copy at all (not a multipart whose boundary never matched)."""
    msg = message_from_bytes(path.read_bytes(), policy=policy.compat32)
    return not (msg.get_content_maintype() == "multipart" and not msg.is_multipart())


RECODABLE = [path for path in ALL if _recodable(path)]
copies = st.fixed_dictionaries(
    {
        "ctes": st.lists(st.sampled_from(CTES), min_size=1, max_size=3),
        "boundary": st.none() | st.sampled_from(["=_gw_7f3a", "----=_NextPart_000_0012"]),
        # servers re-wrap at 66-78 columns (RFC 3676: 78); much narrower, a gateway banner's
        # first line no longer holds its tell-tale words and it counts as text
        "width": st.none() | st.integers(min_value=60, max_value=78),
        "crlf": st.booleans(),
        "banner": st.booleans(),
        "tag": st.booleans(),
        "b64_line": st.sampled_from([60, 72, 76]),
    }
)


# --- pure: the fingerprint itself ----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(RECODABLE), copy=copies)
def test_a_recoded_copy_has_the_same_fingerprint(path: Path, copy: dict) -> None:
    raw = path.read_bytes()
    original = fingerprint(load(raw))
    assert original is not None, path
    assert fingerprint(load(recoded(raw, n=1, **copy))) == original, (path, copy)


def test_different_mails_have_different_fingerprints() -> None:
    prints = {path.name: fingerprint(load(path.read_bytes())) for path in ALL}
    assert None not in prints.values()
    twins = {name for name, value in prints.items() if list(prints.values()).count(value) > 1}
    # the only fixtures alike: one mobile.de mail under three Authentication-Results headers
    assert twins == SAME_CONTENT
    same_customer = [
        inquiry(1, message="Ist der Golf noch da?"),
        inquiry(1, message="Ist der Golf noch da? Ich könnte Samstag kommen."),
        inquiry(1, message="IST DER GOLF NOCH DA?"),  # case alone is no new inquiry
    ]
    a, b, c = (fingerprint(load(raw)) for raw in same_customer)
    assert a != b and a == c


def test_an_empty_mail_has_no_fingerprint() -> None:
    raw = b"From: kunde@kunden.example\r\nTo: leads@autohaus.example\r\nSubject: x\r\n\r\n \r\n"
    assert fingerprint(load(raw)) is None


# --- through the pipeline ------------------------------------------------------------------


def _deliver(factory: sessionmaker[Session], raw: bytes, **kw: object) -> InboundMail:
    stored = store_raw(factory, raw, channel="smtp", envelope_to=[LEAD_ADDRESS], **kw)
    process_pending(factory, Settings())
    with factory() as session:
        row = session.get(InboundMail, stored.id)
        assert row is not None
        return row


def _originals(factory: sessionmaker[Session]) -> dict[int, InboundMail]:
    """Every fixture delivered once: index -> its inbound row (those that made or joined a lead)."""
    done = {}
    for index, path in enumerate(ALL):
        row = _deliver(factory, path.read_bytes())
        duplicate = (row.status_reason or "").startswith("duplicate")
        assert duplicate is (path.name in SAME_CONTENT and path.name != first_of_same()), (
            path,
            row.status_reason,
        )
        if row.status == "processed" and row.lead_id is not None:
            done[index] = row
    return done


def first_of_same() -> str:
    return next(path.name for path in ALL if path.name in SAME_CONTENT)


def _count(factory: sessionmaker[Session], what: object) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(what)) or 0  # type: ignore[arg-type]


def test_recoded_copies_are_discarded_and_different_inquiries_are_not(
    sqlite_dealer: sessionmaker[Session],
) -> None:
    factory = sqlite_dealer
    originals = _originals(factory)
    assert len(originals) >= 60, len(originals)
    distinct = len(ALL) - len(SAME_CONTENT) + 1  # went in; none but those alike called duplicate
    leads, followups = _count(factory, Lead), _count(factory, LeadFollowup)
    mails = _count(factory, OutboxMail)
    tried: list[bool] = []

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(pick=st.sampled_from([i for i in sorted(originals) if ALL[i] in RECODABLE]), copy=copies)
    def copy_is_duplicate(pick: int, copy: dict) -> None:
        row = _deliver(factory, recoded(ALL[pick].read_bytes(), n=len(tried), **copy))
        tried.append(row.status == "discarded")
        assert row.status == "discarded", (ALL[pick], copy, row.status, row.status_reason)
        assert (row.status_reason or "").startswith("duplicate of"), row.status_reason
        assert f" {originals[pick].lead_id}" in (row.status_reason or "")

    copy_is_duplicate()
    # nothing new: no lead, no follow-up, no mail ("Neue Nachricht …") for any copy
    assert (_count(factory, Lead), _count(factory, LeadFollowup)) == (leads, followups)
    assert _count(factory, OutboxMail) == mails

    # the same customer writing something else is heard; so is the same text a month later
    first = _deliver(factory, inquiry(900, message="Ist der Golf noch da?"))
    second = _deliver(
        factory,
        inquiry(900, message="Und wäre eine Probefahrt am Samstag möglich?", message_id="<b@x>"),
    )
    later = _deliver(
        factory,
        inquiry(900, message="Ist der Golf noch da?", message_id="<again@x>"),
        received_at=utcnow() + timedelta(days=30),
    )
    for row in (first, second, later):
        assert row.status == "processed" and row.lead_id is not None, row.status_reason
    distinct += 3
    print(
        f"FIGURE C7 re-encoded duplicates recognised {sum(tried)}/{len(tried)}, "
        f"false duplicates 0/{distinct}"
    )


def test_a_recoded_copy_of_a_followup_is_discarded_too(dealer: sessionmaker[Session]) -> None:
    lead = _deliver(dealer, inquiry(1))
    followup = _deliver(
        dealer, inquiry(1, message="Gibt es den auch in Blau?", message_id="<second@x>")
    )
    assert followup.status == "processed" and followup.lead_id == lead.lead_id
    copy = recoded(
        inquiry(1, message="Gibt es den auch in Blau?", message_id="<second@x>"),
        ctes=["base64"],
        boundary=None,
        width=30,
        crlf=True,
        banner=True,
        tag=True,
        b64_line=76,
        n=1,
    )
    again = _deliver(dealer, copy)
    assert again.status == "discarded"
    assert again.status_reason.startswith(f"duplicate of a mail attached to lead {lead.lead_id}")
    assert _count(dealer, LeadFollowup) == 1
    with dealer() as session:
        purposes = session.scalars(select(OutboxMail.purpose).order_by(OutboxMail.id)).all()
    assert purposes.count("followup") == 1


def test_a_followup_without_text_sends_no_new_message_mail(dealer: sessionmaker[Session]) -> None:
    lead = _deliver(dealer, inquiry(1))
    empty = _deliver(dealer, inquiry(1, message="", message_id="<empty@x>"))
    assert empty.status == "processed" and empty.lead_id == lead.lead_id
    with dealer() as session:
        assert session.scalar(select(func.count()).select_from(LeadFollowup)) == 1
        purposes = session.scalars(select(OutboxMail.purpose)).all()
        params = session.scalars(
            select(ProtocolEntry.params).where(ProtocolEntry.lead_id == lead.lead_id)
        ).all()
    assert "followup" not in purposes
    assert any(p and p[0].get("code") == "followup_no_text" for p in params), params


@pytest.mark.parametrize("days", [6, 8])
def test_the_window_is_seven_days(sqlite_dealer: sessionmaker[Session], days: int) -> None:
    first = _deliver(sqlite_dealer, inquiry(1))
    copy = _deliver(
        sqlite_dealer,
        inquiry(1, message_id="<resent@x>"),
        received_at=first.received_at + timedelta(days=days),
    )
    assert (copy.status == "discarded") is (days < 7), copy.status_reason
