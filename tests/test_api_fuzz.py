"""The REST API driven by its own OpenAPI document (schemathesis, in-process WSGI): every
generated request, valid or not, is answered as documented — right status, right content
type, a body matching the schema — and nothing is a server error.  Both databases.

A modest number of examples per operation keeps this in the fast tier; the document is
the contract, so a route or a field changed without it fails here.
"""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import HttpBearerAuthConfig, PositiveDataAcceptanceConfig
from schemathesis.schemas import APIOperation
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.webhooks import emit as emit_module
from mailgate.webhooks.admin import create_webhook
from mailgate.webui.api.tokens import create_token

from .distribution_helpers import form_mail, ingest
from .webui_helpers import web_app


@pytest.fixture
def token(dealer: sessionmaker[Session]) -> str:
    """A read/write token, three leads (a page has items to check), and a webhook (the
    status changes also write events)."""
    emit_module.forget_webhooks()
    ingest(dealer, *(form_mail(n) for n in range(1, 4)))
    with db.session_scope(dealer) as session:
        create_webhook(session, "https://crm.example/hook", list(emit_module.EVENTS))
        return create_token(session, "fuzz", ["read", "write"])[1]


@pytest.fixture
def app(dealer: sessionmaker[Session], token: str) -> Flask:
    return web_app(dealer)


@pytest.fixture
def api_schema(app: Flask, token: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    # the token through schemathesis' auth, so its negative cases can still leave it out
    schema.config.auth.openapi.schemes["bearer"] = HttpBearerAuthConfig(bearer=token)
    # createLead answers 422 for what JSON Schema cannot say (an e-mail address our parser
    # refuses, 31.02.1990, a name of blanks); the document lists 422 for exactly that
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=[*PositiveDataAcceptanceConfig().expected_statuses, "422"]
    )
    return schema


def operations(schema: schemathesis.BaseSchema) -> list[APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def check_operation(operation: APIOperation) -> None:
    """40 generated requests, valid and invalid, against one operation of the document."""

    @given(
        case=st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )
    )
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate()
        if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
            # a valid request carries the token: it must get past authentication, or the
            # run would prove nothing about the handlers
            assert response.status_code != 401, case.as_curl_command()

    check()


def test_every_request_is_answered_as_documented(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation of the document in turn.

    Why a loop over ``get_all_operations()`` and not ``schemathesis.pytest.from_fixture``:
    that plugin reads pytest's private ``Node._nodeid``, which pytest 9.2 removed; the
    public strategy API does the same work without touching pytest's internals.
    """
    found = operations(api_schema)
    documented = {
        f"{method.upper()} {path}"
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented and {operation.label for operation in found} == documented
    for operation in found:
        try:
            check_operation(operation)
        except Exception as failure:
            failure.add_note(f"operation: {operation.label}")
            raise
