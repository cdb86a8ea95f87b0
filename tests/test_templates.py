"""Every packaged mail template: sample context, escaping, dealer overrides, acknowledgement."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import SettingsError, import_settings, load_dealer_config
from mailgate.escalation.acknowledge import enqueue_acknowledgement, wants_acknowledgement
from mailgate.ingest.store import store_raw
from mailgate.models import Lead, OutboxMail
from mailgate.outbound.compose import LANGUAGES, check_overrides, environment, render_mail
from mailgate.outbound.outbox import compose_template, materialise
from mailgate.outbound.samples import SAMPLE_CONTEXTS, sample_context
from mailgate.worker import process_pending

from .conftest import DEALER_TOML
from .mails import inquiry

XSS = "<script>alert(1)</script>"
PACKAGED = sorted({t.split("/")[1].split(".")[0] for t in environment(None).list_templates()})


def poisoned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: poisoned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [poisoned(v) for v in value]
    return XSS if isinstance(value, str) else value


def test_every_packaged_template_has_both_languages_and_a_sample() -> None:
    names = set(environment(None).list_templates())
    for name in PACKAGED:
        assert name in SAMPLE_CONTEXTS, f"no sample context for template {name!r}"
        for language in LANGUAGES:
            for part in ("subject.txt", "txt", "html"):
                assert f"{language}/{name}.{part}" in names, f"{language}/{name}.{part} missing"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", PACKAGED)
def test_template_renders_its_sample_and_escapes_everything(name: str, language: str) -> None:
    context = sample_context(name)
    assert context is not None
    mail = render_mail(name, language, context)
    assert mail.subject.strip() and "\n" not in mail.subject.strip() and mail.text.strip()
    hostile = render_mail(name, language, poisoned(context))
    assert "<script" not in hostile.html


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_dealer_override_is_validated_and_used(
    dealer: sessionmaker[Session], tmp_path: Path
) -> None:
    overrides = tmp_path / "templates"
    write(overrides, "de/notification.subject.txt", "NEU: {{ customer.name }} [Lead {{ lead.id }}]")
    assert check_overrides(overrides) == []
    settings = DEALER_TOML.replace(
        "[distribution]", f'templates_dir = "{overrides}"\n[distribution]'
    )
    settings = settings.replace('language = "de"\n', 'language = "de"\n', 1)
    with db.session_scope(dealer) as session:
        import_settings(session, settings.replace("[dealer]\n", "[dealer]\n", 1))
    with dealer() as session:
        cfg = load_dealer_config(session)
    context = sample_context("notification")
    assert context is not None
    mail = compose_template(
        cfg,
        key="k",
        template="notification",
        language="de",
        context=context,
        to=[("Anna", "anna@autohaus.example")],
    )
    assert mail.subject == "NEU: Erika Musterfrau [Lead 4711]"
    assert b"Erika Musterfrau" in mail.raw  # the packaged body is still used


@pytest.mark.parametrize(
    ("relative", "text", "problem"),
    [
        ("de/notification.txt", "{{ lead.no_such_field }}", "UndefinedError"),
        ("de/notification.html", "{% if %}", "TemplateSyntaxError"),
        ("de/nonsense.txt", "x", "replaces no packaged template"),
        ("fr/notification.txt", "x", "not a template name"),
    ],
)
def test_broken_overrides_are_refused_at_import(
    dealer: sessionmaker[Session], tmp_path: Path, relative: str, text: str, problem: str
) -> None:
    overrides = tmp_path / "templates"
    write(overrides, relative, text)
    assert any(problem in p for p in check_overrides(overrides))
    settings = DEALER_TOML.replace(
        "[distribution]", f'templates_dir = "{overrides}"\n[distribution]'
    )
    with pytest.raises(SettingsError, match="templates_dir"), db.session_scope(dealer) as session:
        import_settings(session, settings)


def test_acknowledgement_rules(dealer: sessionmaker[Session]) -> None:
    # the lead first, without acknowledgements: the pipeline would already have sent one
    # for this website form, and the call below would be the idempotent second
    stored = store_raw(dealer, inquiry(1), channel="smtp", envelope_to=["leads@autohaus.example"])
    process_pending(dealer, Settings())
    settings = DEALER_TOML.replace(
        "[distribution]", 'acknowledge_sources = ["website", "oem:*"]\n[distribution]'
    )
    with db.session_scope(dealer) as session:
        import_settings(session, settings)
        cfg = load_dealer_config(session)
    assert wants_acknowledgement(cfg, "website", "erika@kunden.example")
    assert wants_acknowledgement(cfg, "oem:opel", "erika@kunden.example")
    assert not wants_acknowledgement(cfg, "mobile.de", "erika@kunden.example")
    assert not wants_acknowledgement(cfg, "website", "noreply@kunden.example")
    assert not wants_acknowledgement(cfg, "website", "leads@autohaus.example")
    assert not wants_acknowledgement(cfg, "website", None)
    with dealer() as session:
        lead = session.scalars(select(Lead).where(Lead.inbound_id == stored.id)).one()
    with db.session_scope(dealer) as session:
        queued = enqueue_acknowledgement(
            session,
            cfg,
            lead_id=lead.id,
            reply_token="tok",
            lead={"source": "website", "vehicle": {"make": "Volkswagen", "model": "Golf"}},
            customer={"name": "Erika", "email": "erika@kunden.example"},
        )
    assert queued
    with dealer() as session:
        row = session.scalars(
            select(OutboxMail).where(OutboxMail.purpose == "acknowledgement")
        ).one()
    assert row.recipients == ["erika@kunden.example"]
    assert row.render["reply_to"] == [[cfg.from_name, f"leads+{lead.id}-tok@autohaus.example"]]


def test_acknowledgement_through_the_pipeline(dealer: sessionmaker[Session]) -> None:
    settings = DEALER_TOML.replace(
        "[distribution]", 'acknowledge_sources = ["unknown", "website"]\n[distribution]'
    )
    with db.session_scope(dealer) as session:
        import_settings(session, settings)
    store_raw(dealer, inquiry(5), channel="smtp", envelope_to=["leads@autohaus.example"])
    process_pending(dealer, Settings())
    with dealer() as session:
        [ack] = session.scalars(
            select(OutboxMail).where(OutboxMail.purpose == "acknowledgement")
        ).all()
        notification = session.scalars(
            select(OutboxMail).where(OutboxMail.purpose == "notification")
        ).one()
        # queued as template + context: rendered as the sender will render it
        composed = materialise(load_dealer_config(session), notification)
    assert ack.recipients == ["kunde5@kunden.example"]
    assert composed is not None
    # the salesperson's Reply-To is the lead's tracking address, not the customer
    reply_to = message_from_bytes(composed.raw, policy=policy.default)["Reply-To"]
    assert f"leads+{ack.lead_id}-" in reply_to and "kunde5@kunden.example" not in reply_to
