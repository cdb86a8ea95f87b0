"""The form for a lead typed in by hand, in the three parts of seed 004: prospect, vehicle,
remark (plus origin, qualification and who keeps it), and the duplicate decision.

The duplicate decision names a customer the user may see by his id (checked
against the user's scope on the server, :mod:`.manual`); a colleague's
customer only by the contact key that matched (:data:`EXACT_MATCHES`), so
the page carries nothing of his.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..choices import options
from ..labels import LABELS
from .forms import CUSTOMER_LABELS, QUALIFICATION_CHOICES

SALUTATIONS = (("", "–"), ("Herr", _l("Mr")), ("Frau", _l("Ms")), ("Firma", _l("Company")))
USAGE_CHOICES = (
    ("", _l("not known")),
    ("purchase", _l("purchase")),
    ("use", _l("lease / use")),
    ("financing", _l("financing")),
)
INTEREST_CHOICES = (
    ("dealer_contact", _l("dealer contact")),
    ("brochure", _l("brochure")),
    ("test_drive", _l("test drive")),
    ("offer", _l("vehicle offer")),
    ("purchase", _l("vehicle purchase")),
    ("accessories", _l("accessories catalogue")),
)
BIRTH_DATE = _l("Date of birth")
CUSTOMER_FIELDS = (
    "title",
    "first_name",
    "last_name",
    "street",
    "postcode",
    "city",
    "country",
    "phone",
    "email",
)


# The matches that identify a person by his contact data; only these are reported for a
# customer outside the user's scope (a similar name alone is no reason to say anything).
EXACT_MATCHES = ("e-mail", "phone", "name and address")


class MultiCheckboxField(SelectMultipleField):
    """A group of checkboxes (one label each) instead of a multiple select box."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _text(label: object, limit: int = 255) -> StringField:
    return StringField(label, validators=[Optional(), Length(max=limit)])


class ManualLeadForm(FlaskForm):
    salutation = SelectField(
        CUSTOMER_LABELS["salutation"], choices=options(SALUTATIONS), validate_choice=True
    )
    title = _text(CUSTOMER_LABELS["title"], 64)
    first_name = _text(CUSTOMER_LABELS["first_name"])
    last_name = _text(CUSTOMER_LABELS["last_name"])
    street = _text(CUSTOMER_LABELS["street"])
    postcode = _text(CUSTOMER_LABELS["postcode"], 32)
    city = _text(CUSTOMER_LABELS["city"])
    country = _text(CUSTOMER_LABELS["country"], 64)
    phone = _text(CUSTOMER_LABELS["phone"], 64)
    email = _text(CUSTOMER_LABELS["email"], 320)
    birth_date = DateField(BIRTH_DATE, validators=[Optional()])

    current_make = _text(_l("Make"), 64)
    current_model = _text(_l("Model"), 128)
    current_first_registration = _text(_l("First registration"), 32)
    current_mileage = _text(_l("Mileage (km)"), 32)
    usage = SelectField(_l("Next vehicle"), choices=options(USAGE_CHOICES))
    make = _text(_l("Make"), 64)
    model = _text(_l("Model (several separated by commas)"), 255)
    price = _text(_l("Price (EUR)"), 32)
    interests = MultiCheckboxField(
        _l("The customer is interested in"), choices=options(INTEREST_CHOICES)
    )

    remark = TextAreaField(_l("Remark"), validators=[Optional(), Length(max=4000)])
    kind = SelectField(_l("Kind"), choices=options((k, v) for k, v in LABELS["kind"].items()))
    qualification = SelectField(
        _l("Qualification"), choices=options((("", _l("not set")), *QUALIFICATION_CHOICES))
    )
    origin = StringField(
        _l("Origin"), validators=[DataRequired(), Length(max=64)], default="Walk-in"
    )
    origin_detail = _text(_l("Origin detail"), 128)
    keep = BooleanField(_l("I look after this customer myself (no distribution)"))
    submit = SubmitField(_l("Create lead"))


class DuplicateForm(FlaskForm):
    """The user's answer to "is this an existing customer?" (the lead data rides along)."""

    duplicate_of = HiddenField()  # a customer the user may see (else 404)
    hand_over = HiddenField()  # a colleague's customer: the match, one of EXACT_MATCHES
    take_over = SelectMultipleField(choices=[], validate_choice=False)
    choose_new = SubmitField(_l("No: create a new customer"))
    choose_keep = SubmitField(_l("Yes: keep the customer as is"))
    choose_update = SubmitField(_l("Yes: update the ticked fields"))
    choose_hand_over = SubmitField(_l("Yes: link the lead and hand it over"))
