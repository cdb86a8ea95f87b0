"""Hostile input to the REST API (issue 16, item 10): schemathesis generates requests from the
API's own OpenAPI document — valid ones and, in negative mode, ones that break every
constraint (wrong types, out-of-range numbers and dates, unknown fields) — and each is
answered below 500, without a traceback, on both databases.

Schemathesis is driven through plain hypothesis (``schema.as_strategy``) rather than its
pytest plugin, so this run does not depend on the plugin's pytest integration;
tests/test_api_fuzz.py checks the full conformance of the answers with the plugin.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.webui.api.tokens import create_token

from .distribution_helpers import form_mail, ingest
from .webui_helpers import web_app


@pytest.fixture
def api(dealer: sessionmaker[Session]) -> tuple[schemathesis.BaseSchema, str]:
    """The document of an app with three leads, and a read/write token."""
    ingest(dealer, *(form_mail(n) for n in range(1, 4)))
    with db.session_scope(dealer) as session:
        token = create_token(session, "hostile", ["read", "write"])[1]
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web_app(dealer)), token


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_never_meet_a_server_error(
    api: tuple[schemathesis.BaseSchema, str], mode: GenerationMode
) -> None:
    schema, token = api
    strategy = schema.as_strategy(generation_mode=mode)
    answered: list[int] = []

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(strategy)
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, case.as_curl_command()
        assert b"Traceback (most recent call last)" not in response.content
        answered.append(response.status_code)

    run()
    assert len(answered) >= 100
    if mode == GenerationMode.POSITIVE:
        assert 200 in answered  # the run got past authentication into the handlers
