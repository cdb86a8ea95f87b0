"""The dealer's answer templates: checked when saved, rendered in the mail sandbox.

Why the sandbox: an answer template is Jinja2 an admin or supervisor types in
the browser, and full Jinja2 would give them the server
(``{{ ''.__class__.__mro__ }}``).  So it renders in
:class:`~mailgate.outbound.sandbox.MailSandbox` like every mail template, and
it sees exactly :data:`VARIABLES` (the customer, the vehicle, the salesperson,
the dealership's name) as plain data: the allowlist, checked when the
template is saved (:func:`check`) and enforced when it is rendered
(:func:`render`).  The result is only a *suggestion* the salesperson edits in
the compose form; what is sent is the text in that form, never a template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import DictLoader, meta

from mailgate.outbound.sandbox import MailSandbox, PlainData
from mailgate.outbound.template_check import TemplateProblem, problem_from

VARIABLES = frozenset({"customer", "vehicle", "salesperson", "dealer_name"})
CUSTOMER_FIELDS = ("salutation", "title", "first_name", "last_name", "name", "email", "phone")
VEHICLE_FIELDS = ("make", "model", "price", "vin", "listing_id", "stock_number", "mileage")
SALESPERSON_FIELDS = ("name", "email")
MAX_NAME = 128
MAX_SUBJECT = 300
MAX_BODY = 20_000

SAMPLE: dict[str, Any] = {
    "customer": {
        "salutation": "Frau",
        "title": "Dr.",
        "first_name": "Erika",
        "last_name": "Musterfrau",
        "name": "Erika Musterfrau",
        "email": "erika@kunden.example",
        "phone": "+49 170 1234567",
    },
    "vehicle": {
        "make": "Volkswagen",
        "model": "Golf 8",
        "price": "24.890 €",
        "vin": "WVWZZZ1KZAW000001",
        "listing_id": "123456789",
        "stock_number": "A-1001",
        "mileage": "12.000 km",
    },
    "salesperson": {"name": "Anna Schmidt", "email": "anna@autohaus.example"},
    "dealer_name": "Autohaus Beispiel",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def _environment(subject: str, body: str) -> MailSandbox:
    return MailSandbox(DictLoader({"subject": subject, "body": body}))


def check(subject: str, body: str) -> list[TemplateProblem]:
    """What is wrong with a template (empty: it may be saved).

    Each part is parsed in the sandbox (forbidden tags, syntax), its names
    compared with :data:`VARIABLES`, then rendered with :data:`SAMPLE` under
    ``StrictUndefined``: a field the data does not have (``customer.iban``)
    and an attribute the sandbox refuses (``''.__class__``) both fail here.
    """
    env = _environment(subject, body)
    problems: list[TemplateProblem] = []
    for part, source in (("subject", subject), ("body", body)):
        try:
            tree = env.parse(source, part)
            template = env.get_template(part)
        except Exception as exc:  # noqa: BLE001 - any failure is the editor's to read
            problems.append(problem_from(part, exc))
            continue
        unknown = sorted(meta.find_undeclared_variables(tree) - VARIABLES - set(env.globals))
        if unknown:
            problems.append(
                TemplateProblem(part, "unknown_variable", names=tuple(unknown), error="Undefined")
            )
            continue
        try:
            template.render(PlainData.of(SAMPLE))
        except Exception as exc:  # noqa: BLE001 - any failure is the editor's to read
            problems.append(problem_from(part, exc))
    return problems


def context_for(
    customer: Mapping[str, Any] | None,
    vehicle: Mapping[str, Any] | None,
    salesperson: Mapping[str, Any],
    dealer_name: str,
) -> dict[str, Any]:
    """The allowlisted data of one lead: every field present, empty rather than None.

    Empty strings, so a template written for the sample (which has every
    field) renders for a customer without a title instead of failing or
    printing "None".
    """

    def pick(source: Mapping[str, Any] | None, names: tuple[str, ...]) -> dict[str, str]:
        source = source or {}
        return {name: "" if source.get(name) is None else str(source[name]) for name in names}

    return {
        "customer": pick(customer, CUSTOMER_FIELDS),
        "vehicle": pick(vehicle, VEHICLE_FIELDS),
        "salesperson": pick(salesperson, SALESPERSON_FIELDS),
        "dealer_name": dealer_name or "",
    }


def render(subject: str, body: str, context: Mapping[str, Any]) -> Rendered:
    """Subject and body for the compose form; raises what the sandbox raises.

    Only the allowlisted names reach the template, whatever the caller passed.
    """
    env = _environment(subject, body)
    data = PlainData.of({key: value for key, value in context.items() if key in VARIABLES})
    rendered_subject = env.get_template("subject").render(data)
    rendered_body = env.get_template("body").render(data)
    return Rendered(" ".join(rendered_subject.split())[:MAX_SUBJECT], rendered_body[:MAX_BODY])
