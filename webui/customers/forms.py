"""The customer file's forms: they carry the CSRF token; choices are checked in the views.

Field-level choices of a merge or a check (which value survives) are plain
inputs named after :data:`~mailgate.distribution.customer_file.MERGE_FIELDS`;
the views read only those names, so a posted unknown field is ignored.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import Length

from mailgate.distribution.customer_file import MERGE_FIELDS

FIELD_LABELS = {
    "salutation": _l("Salutation"),
    "title": _l("Title"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "name": _l("Full name"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "street": _l("Street"),
    "postcode": _l("Postcode"),
    "city": _l("City"),
    "country": _l("Country"),
    "birth_date": _l("Date of birth"),
}
assert set(FIELD_LABELS) == set(MERGE_FIELDS)


class MergeForm(FlaskForm):
    other = HiddenField()
    submit = SubmitField(_l("Merge the customers"))


class CheckForm(FlaskForm):
    candidate = HiddenField()
    choose_update = SubmitField(_l("Same person: update the ticked fields"))
    choose_keep = SubmitField(_l("Same person: keep the known data"))
    choose_new = SubmitField(_l("Different person: keep as a new customer"))


class RelinkForm(FlaskForm):
    customer = StringField(_l("Customer number"), validators=[Length(max=12)])
    submit = SubmitField(_l("Move the lead to this customer"))
