"""What the set-up checklist knows: each step's state computed from the real settings.

No words here (the templates word each step): only facts, so the checklist, the
banner and the tests read one computation.  A *required* step keeps mail from
flowing until it is done (no lead address: every inquiry gets 550); a
*recommended* one has a working default (opening hours: time runs round the
clock until they are set).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.config import Settings, SmtpSettings, WebSettings
from mailgate.dealer_settings import DealerConfig
from mailgate.models import InboundMail, User, UserRole

WILDCARD = ("", "0.0.0.0", "::", "[::]")  # noqa: S104  # nosec B104 - names, not a bind
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Countries whose public holidays differ by state or canton: the region matters there.
REGIONAL_HOLIDAYS = ("DE", "AT", "CH")
GENERAL = "settings.general"


@dataclass(frozen=True)
class Step:
    """One line of the checklist: ``key`` names it for the template, ``done`` is computed."""

    key: str
    done: bool
    required: bool
    endpoint: str  # where the admin does it
    anchor: str = ""


@dataclass(frozen=True)
class Listener:
    """Where mail for the lead addresses must be delivered (the SMTP listener)."""

    enabled: bool
    host: str  # the name to deliver to (a wildcard listen address becomes the machine's name)
    port: int
    local_only: bool  # listens on the loopback address: only a mail server on this machine


def listener_target(smtp: SmtpSettings) -> Listener:
    """The forwarding target the general page and the checklist name."""
    local = smtp.host in LOOPBACK
    host = socket.getfqdn() if smtp.host in WILDCARD else smtp.host
    return Listener(enabled=smtp.enabled, host=host, port=smtp.port, local_only=local)


def suggested_base_url(web: WebSettings) -> str:
    """A base URL from the configured web listener, never from a request's Host header.

    A wildcard listen address becomes this machine's name; the admin checks it
    (behind a reverse proxy the public https address is the right one).
    """
    host = web.host
    if host in WILDCARD:
        host = socket.getfqdn() or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{web.port}"


def _regional_region_missing(document: dict[str, Any]) -> bool:
    holidays = document["holidays"]
    return holidays["country"] in REGIONAL_HOLIDAYS and not holidays["subdivision"]


def steps(session: Session, dealer: DealerConfig, settings: Settings) -> list[Step]:
    """Every step in the order a newcomer does them, each done or open."""
    document = dealer.document
    others = session.scalar(
        select(func.count(User.id)).where(User.active, User.role != UserRole.ADMIN)
    )
    receivers = session.scalar(select(func.count(User.id)).where(User.active, User.receives_leads))
    first_mail = session.scalar(select(InboundMail.id).limit(1)) is not None
    escalation = document["escalation"]
    return [
        Step("dealer_name", bool(dealer.name), True, GENERAL, "section-dealer"),
        Step("addresses", bool(dealer.addresses), True, GENERAL, "section-addresses"),
        Step("admin_address", bool(dealer.admin_address), True, GENERAL, "section-dealer"),
        Step("base_url", bool(dealer.base_url), True, GENERAL, "section-web"),
        Step("relay", bool(settings.relay.host), True, "onboarding.checklist", "relay"),
        Step("users", bool(others) or bool(receivers), False, "onboarding.invite"),
        Step("hours", any(document["hours"].values()), False, "settings.hours"),
        Step("holidays", not _regional_region_missing(document), False, "settings.holidays"),
        Step(
            "escalation",
            escalation["stage1"] != "4h" or escalation["stage2"] != "24h",
            False,
            "settings.escalation",
        ),
        Step("first_mail", first_mail, True, "onboarding.checklist", "first-mail"),
    ]


def open_required(all_steps: list[Step]) -> list[Step]:
    """The steps that keep mail from flowing: the banner shows these."""
    return [s for s in all_steps if s.required and not s.done]
