"""The outbound relay from the set-up page: is it reachable, and does a real mail get through?

The relay is process configuration (``[relay]`` in the config file or
``MAILGATE_RELAY__*`` variables), not a dealer setting: it holds a password
and every process must agree on it, so the web UI shows it and tests it but
does not edit it.  The test mail is sent at once through the same
:class:`~mailgate.outbound.send.RelayConnection` the sender uses (with a
short timeout), so the admin learns the answer on the page instead of
watching the outbox.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from typing import cast

from mailgate.config import RelaySettings
from mailgate.dealer_settings import DealerConfig
from mailgate.models import OutboxMail
from mailgate.outbound.outbox import compose_template
from mailgate.outbound.send import SENT, RelayConnection, open_relay

TIMEOUT_SECONDS = 10.0  # the page waits for the answer: never the relay's full 30 s


@dataclass(frozen=True)
class Outcome:
    """What happened: ``ok``, the relay's own words (``detail``, English) for the log and
    the plain-words explanation, and ``stage`` where it stopped (for the German text)."""

    ok: bool
    stage: str  # "sent" | "none" (no relay) | "refused" (the relay said no) | "unreachable"
    detail: str = ""


def describe(relay: RelaySettings) -> str:
    """``host:port`` of the relay, or '' when none is configured."""
    return f"{relay.host}:{relay.port}" if relay.host else ""


def probe(relay: RelaySettings, timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """Connect and EHLO (STARTTLS and login as configured), then QUIT: no mail."""
    if not relay.host:
        return Outcome(False, "none")
    timeout = min(timeout, float(relay.timeout))
    try:
        smtp = open_relay(relay, timeout)
        try:
            code, _ = smtp.ehlo()
            if code != 250:
                return Outcome(False, "refused", f"EHLO answered {code}")
            if relay.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if relay.username:
                smtp.login(relay.username, relay.password)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except smtplib.SMTPAuthenticationError as exc:
        return Outcome(False, "login", f"{exc.smtp_code} {exc.smtp_error!r}")
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(False, "unreachable", f"{type(exc).__name__}: {exc}")
    return Outcome(True, "reachable")


def send_test_mail(
    relay: RelaySettings, dealer: DealerConfig, *, to: tuple[str, str], requested_at: str
) -> Outcome:
    """Compose the ``test_mail`` template to ``to`` and hand it to the relay now."""
    if not relay.host:
        return Outcome(False, "none")
    name, address = to
    mail = compose_template(
        dealer,
        key=f"test-mail:{secrets.token_hex(8)}",
        template="test_mail",
        language=dealer.language,
        context={
            "name": name or address,
            "relay": describe(relay),
            "requested_at": requested_at,
            "dealer_name": dealer.name,
        },
        to=[to],
        purpose="test_mail",
    )
    quick = dataclasses.replace(relay, timeout=int(min(TIMEOUT_SECONDS, relay.timeout)))
    connection = RelayConnection(quick)
    try:
        # RelayConnection reads mail_from, recipients and raw: a composed mail has them all.
        attempt = connection.send(cast(OutboxMail, mail))
    finally:
        connection.close()
    if attempt.outcome == SENT:
        return Outcome(True, "sent", attempt.detail)
    detail = attempt.detail
    if "unreachable" in detail:
        stage = "unreachable"
    elif " 535" in detail or "5.7.8" in detail or "auth" in detail.lower():
        stage = "login"
    else:
        stage = "refused"
    return Outcome(False, stage, detail)


def server_answer(detail: str) -> str:
    """The relay's own reply in ``detail`` (``550 5.7.1 relaying denied``), or ''."""
    match = re.search(r"\b([45]\d\d)\b(.*)$", detail)
    return (match.group(1) + match.group(2)).strip()[:200] if match else ""
