"""The OpenAPI 3.1 document of ``/api/v1``, written by hand as data.

Hand-written because it is small and is the contract: the fuzz test
(tests/test_api_fuzz.py) drives the API from it and checks every answer
against it, so the document and the code cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailgate.distribution.manual import KINDS
from mailgate.models import SALES_STAGES, LeadStatus
from mailgate.webhooks.emit import EVENTS

from ..input_limits import DB_INT_MAX

MAX_PER_PAGE = 100
MAX_NOTE = 2000
# POST /leads: the customer fields and their longest values (the customer table's columns)
LEAD_IN_CUSTOMER = {
    "salutation": 64,
    "title": 64,
    "first_name": 255,
    "last_name": 255,
    "name": 255,
    "email": 320,
    "phone": 64,
    "street": 255,
    "postcode": 32,
    "city": 255,
    "country": 64,
    "birth_date": 10,
}

_TIME = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": ["string", "null"]}
_PERSON = {
    "type": ["object", "null"],
    "required": ["email", "name"],
    "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
}
_CUSTOMER = {
    "type": ["object", "null"],
    "required": ["id"],
    "properties": {
        "id": {"type": "integer"},
        **{
            name: _TEXT
            for name in (
                "salutation",
                "title",
                "name",
                "first_name",
                "last_name",
                "email",
                "phone",
                "street",
                "postcode",
                "city",
                "country",
            )
        },
    },
}
LEAD = {
    "type": "object",
    "required": ["id", "status", "source", "kind", "received_at", "assignee", "customer"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": [s.value for s in LeadStatus]},
        "source": {"type": "string"},
        "kind": {"type": "string"},
        "category": {"type": "string"},
        "location": _TEXT,
        "qualification": _TEXT,
        "subject": _TEXT,
        "message": _TEXT,
        "vehicle": {"type": "object"},
        "close_reason": _TEXT,
        "escalation_stage": {"type": "integer"},
        "received_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
        "last_activity_at": {"type": "string", "format": "date-time"},
        "first_response_at": _TIME,
        "next_due_at": _TIME,
        "closed_at": _TIME,
        "test_drive_at": _TIME,
        "offer_at": _TIME,
        "contract_at": _TIME,
        "assignee": _PERSON,
        "customer": _CUSTOMER,
    },
}
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _json(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_AUTH = {
    "401": _problem("no token, an unknown or a revoked token"),
    "403": _problem("the token lacks the scope"),
}
_LEAD_ID = {
    "name": "lead_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": DB_INT_MAX},
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def document(reasons: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI document for this dealership (a fresh dict: callers may change theirs).

    ``reasons`` are the dealer's completion reason codes (settings), so the document
    says exactly which values close a lead.
    """
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailgate API",
            "version": "1.0.0",
            "description": (
                "Leads for a DMS or CRM. Authenticate with `Authorization: Bearer <token>` "
                "(settings → Integrations). Webhook events: " + ", ".join(EVENTS) + "."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/leads": {
                "get": {
                    "operationId": "listLeads",
                    "summary": "Leads, newest first (received, then id), a page at a time",
                    "parameters": [
                        _query(
                            "status",
                            "only leads with this status (default: all but deleted)",
                            {"type": "string", "enum": [s.value for s in LeadStatus]},
                        ),
                        _query("source", "lead source, e.g. mobile_de", {"type": "string"}),
                        _query("kind", "inquiry kind, e.g. test_drive", {"type": "string"}),
                        _query("assignee", "the assignee's e-mail address", {"type": "string"}),
                        _query(
                            "received_from",
                            "received on or after this day (dealer's time zone)",
                            {"type": "string", "format": "date"},
                        ),
                        _query(
                            "received_to",
                            "received on or before this day (dealer's time zone)",
                            {"type": "string", "format": "date"},
                        ),
                        _query(
                            "page",
                            "page number",
                            {"type": "integer", "minimum": 1, "maximum": 1000000},
                        ),
                        _query(
                            "per_page",
                            "leads per page",
                            {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                        ),
                    ],
                    "responses": {
                        "200": _json("a page of leads", "LeadPage"),
                        "400": _problem("a filter or page value is not valid"),
                        **_AUTH,
                    },
                },
                "post": {
                    "operationId": "createLead",
                    "summary": (
                        "Create a lead (distributed, timed and announced like one typed in by "
                        "hand); with external_id, the same lead is created once however often "
                        "it is sent"
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/LeadIn"}}
                        },
                    },
                    "responses": {
                        "201": _json("the lead created", "Lead"),
                        "200": _json("the lead created earlier with this external_id", "Lead"),
                        "400": _problem("the body is not a lead"),
                        "413": _problem("the body is larger than 64 KiB"),
                        "422": _problem("a field's value cannot be used (the detail names it)"),
                        **_AUTH,
                    },
                },
            },
            "/leads/{lead_id}": {
                "get": {
                    "operationId": "getLead",
                    "summary": "One lead with its customer and assignee",
                    "parameters": [_LEAD_ID],
                    "responses": {
                        "200": _json("the lead", "Lead"),
                        "404": _problem("no such lead"),
                        **_AUTH,
                    },
                }
            },
            "/leads/{lead_id}/status": {
                "post": {
                    "operationId": "setLeadStatus",
                    "summary": "Move a lead up the sales ladder, or close it with a reason code",
                    "parameters": [_LEAD_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/StatusChange"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("the lead after the change", "Lead"),
                        "400": _problem("the body is not a status change"),
                        "413": _problem("the body is larger than 64 KiB"),
                        "404": _problem("no such lead"),
                        "409": _problem("the lead is closed, or already at this status"),
                        "422": _problem("closing needs a known completion reason code"),
                        **_AUTH,
                    },
                }
            },
            "/leads/{lead_id}/contacts": {
                "post": {
                    "operationId": "logLeadContact",
                    "summary": "Log a contact made outside mailgate; only outcome reached "
                    "counts as the answer, the others schedule a follow-up",
                    "parameters": [_LEAD_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ContactIn"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("the lead after the contact", "Lead"),
                        "400": _problem("the body is not a contact"),
                        "413": _problem("the body is larger than 64 KiB"),
                        "404": _problem("no such lead"),
                        "409": _problem("the lead is closed or with the source's call centre"),
                        **_AUTH,
                    },
                }
            },
            "/leads/{lead_id}/notes": {
                "post": {
                    "operationId": "addLeadNote",
                    "summary": "Add a note to the lead's protocol",
                    "parameters": [_LEAD_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/NoteIn"}}
                        },
                    },
                    "responses": {
                        "201": _json("the protocol line written", "Note"),
                        "400": _problem("the body is not a note"),
                        "413": _problem("the body is larger than 64 KiB"),
                        "404": _problem("no such lead"),
                        **_AUTH,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Lead": LEAD,
                "LeadPage": {
                    "type": "object",
                    "required": ["items", "page", "per_page", "total"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Lead"}},
                        "page": {"type": "integer"},
                        "per_page": {"type": "integer"},
                        "total": {"type": "integer"},
                    },
                },
                "StatusChange": {
                    "description": "a rung of the sales ladder, or closed with a reason code",
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["status"],
                            "additionalProperties": False,
                            "properties": {
                                "status": {"type": "string", "enum": list(SALES_STAGES)}
                            },
                        },
                        {
                            "type": "object",
                            "required": ["status", "reason"],
                            "additionalProperties": False,
                            "properties": {
                                "status": {"type": "string", "const": LeadStatus.CLOSED.value},
                                "reason": {"type": "string", "enum": list(reasons) or [""]},
                            },
                        },
                    ],
                },
                "LeadIn": {
                    "type": "object",
                    "required": ["customer", "origin"],
                    "additionalProperties": False,
                    "properties": {
                        "customer": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                name: {"type": "string", "maxLength": limit}
                                for name, limit in LEAD_IN_CUSTOMER.items()
                            },
                            "anyOf": [
                                {"required": [name]}
                                for name in ("email", "phone", "last_name", "name")
                            ],
                            "description": "at least an e-mail address, a phone number or a name;"
                            " birth_date as YYYY-MM-DD or DD.MM.YYYY",
                        },
                        "vehicle": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "make": {"type": "string", "maxLength": 64},
                                "model": {"type": "string", "maxLength": 255},
                                "price": {"type": "string", "maxLength": 32},
                            },
                        },
                        "kind": {"type": "string", "enum": list(KINDS)},
                        "origin": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 64,
                            "pattern": "[^\\s\\x00]",
                            "description": "shown as the lead's source, e.g. Website-Chat",
                        },
                        "campaign": {"type": "string", "maxLength": 128},
                        "message": {"type": "string", "maxLength": 4000},
                        "external_id": {
                            "type": "string",
                            "maxLength": 64,
                            "description": "the sender's own id: a lead is created once per id",
                        },
                        "duplicates": {
                            "type": "string",
                            "enum": ["update", "keep", "new"],
                            "description": "a known customer (same e-mail, phone, or name and "
                            "address): update his data, keep it (default), or create a new one",
                        },
                    },
                },
                "ContactIn": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "channel": {
                            "type": "string",
                            "enum": ["phone", "visit", "email", "other"],
                            "default": "phone",
                        },
                        "outcome": {
                            "type": "string",
                            "enum": ["reached", "not_reached", "left_message"],
                            "default": "reached",
                            "description": "only reached counts as the answer (seed 000)",
                        },
                        "note": {"type": "string", "maxLength": MAX_NOTE},
                    },
                },
                "NoteIn": {
                    "type": "object",
                    "required": ["text"],
                    "additionalProperties": False,
                    "properties": {
                        "text": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_NOTE,
                            "pattern": "[^\\s\\x00]",
                            "description": "the note; NUL characters are dropped",
                        }
                    },
                },
                "Note": {
                    "type": "object",
                    "required": ["id", "lead_id", "at", "actor", "text"],
                    "properties": {
                        "id": {"type": "integer"},
                        "lead_id": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"},
                        "actor": {"type": "string"},
                        "text": {"type": "string"},
                    },
                },
                "Problem": PROBLEM,
            },
        },
    }
