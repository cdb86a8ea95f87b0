"""The forms on the lead page (Flask-WTF: each carries the CSRF token).

Dates are entered as ``datetime-local`` in the dealer's time zone; the views
convert them (:func:`to_utc`), so a salesperson in Berlin types Berlin time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    MultipleFileField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from mailgate.distribution.edits import CUSTOMER_EDIT_FIELDS, VEHICLE_EDIT_FIELDS

from ..choices import options
from ..input_limits import within_day_range

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
CHANNELS = (
    ("phone", _l("Phone call")),
    ("visit", _l("Visit at the dealership")),
    ("email", _l("E-mail from my own mailbox")),
    ("other", _l("Other")),
)
QUALIFICATION_CHOICES = (
    ("hot", _l("hot (target in 2 working days)")),
    ("warm", _l("warm (target in 5 working days)")),
    ("cold", _l("cold (target in 10 working days)")),
    ("junk", _l("junk (no escalation)")),
)
CUSTOMER_LABELS = {
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
}
VEHICLE_LABELS = {
    "make": _l("Make"),
    "model": _l("Model"),
    "price": _l("Price (EUR)"),
    "mileage": _l("Mileage (km)"),
    "first_registration": _l("First registration"),
    "vin": _l("VIN"),
    "listing_id": _l("Listing no."),
    "stock_number": _l("Stock no."),
}


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time typed in the dealer's zone, as the UTC instant it means."""
    return local.replace(tzinfo=zone).astimezone(UTC)


def to_local_input(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A stored UTC instant as the naive wall-clock value a datetime-local field shows."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


OUTCOMES = (
    ("reached", _l("Customer reached")),
    ("not_reached", _l("Customer not reached")),
    ("left_message", _l("Message left")),
)


class ContactForm(FlaskForm):
    channel = SelectField(_l("How"), choices=options(CHANNELS), default="phone")
    # only a reached customer counts as the answer (seed 000: an attempt is not a contact)
    outcome = SelectField(_l("Result"), choices=options(OUTCOMES), default="reached")
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Log contact"))


class ResubmissionForm(FlaskForm):
    when = DateTimeLocalField(
        _l("Resubmit on"), format=DATETIME_FORMAT, validators=[InputRequired(), within_day_range]
    )
    submit = SubmitField(_l("Set resubmission"))


class DueForm(FlaskForm):
    when = DateTimeLocalField(
        _l("New due date"), format=DATETIME_FORMAT, validators=[InputRequired(), within_day_range]
    )
    submit = SubmitField(_l("Change due date"))


STAGE_CHOICES = (
    ("contacted", _l("contacted")),
    ("test_drive", _l("test drive")),
    ("offer", _l("offer")),
    ("contract", _l("contract")),
)


class StageForm(FlaskForm):
    stage = SelectField(_l("New status"), choices=options(STAGE_CHOICES))
    submit = SubmitField(_l("Set status"))


# No qualification is ever chosen for the user: the empty first option says so, and the
# form refuses to save it (one click on "save" must not make a lead "hot" by accident).
NO_CHOICE = ("", _l("— please choose —"))


class QualificationForm(FlaskForm):
    value = SelectField(
        _l("Qualification"),
        choices=options((NO_CHOICE, *QUALIFICATION_CHOICES)),
        default="",
        validators=[DataRequired(message=_l("Please choose a qualification."))],
    )
    submit = SubmitField(_l("Set qualification"))


class ReassignForm(FlaskForm):
    to = SelectField(
        _l("To"), choices=[], validators=[DataRequired(message=_l("Please choose a colleague."))]
    )
    note = TextAreaField(_l("Note for the colleague"), validators=[Optional(), Length(max=1000)])
    reassign = SubmitField(_l("Reassign"))
    forward = SubmitField(_l("Forward with note"))


class CloseForm(FlaskForm):
    reason = SelectField(
        _l("Completion reason"),
        choices=[],
        validators=[DataRequired(message=_l("Please choose how the lead ended."))],
    )
    submit = SubmitField(_l("Close lead"))


class AnswerForm(FlaskForm):
    """The answer to the customer (:mod:`.compose`); ``key`` makes a double submit send once."""

    subject = StringField(_l("Subject"), validators=[Optional(), Length(max=300)])
    body = TextAreaField(
        _l("Your answer"),
        validators=[DataRequired(message=_l("Please write your answer.")), Length(max=20_000)],
    )
    attachments = MultipleFileField(_l("Attachments (e.g. the offer or the vehicle exposé)"))
    # the customer's own attachments, sent along (choices: only this lead's, see .compose)
    forward = SelectMultipleField(
        _l("Send the customer's attachments along"),
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    quote = BooleanField(_l("Quote the customer's message below my answer"), default=True)
    key = HiddenField()
    submit = SubmitField(_l("Send to the customer"))


HAND_BACK_CHOICES = (
    ("owner", _l("to the previous salesperson")),
    ("distribution", _l("to the distribution (as a new lead)")),
)


class HandBackForm(FlaskForm):
    """An admin hands a lead back from the source's call centre (the takeover is not forever)."""

    to = SelectField(_l("Hand back"), choices=options(HAND_BACK_CHOICES), default="owner")


class ConfirmForm(FlaskForm):
    """Take, reopen: one button, the token is all there is."""


class DeleteForm(FlaskForm):
    confirm = BooleanField(_l("Yes, delete this lead"), validators=[DataRequired()])
    submit = SubmitField(_l("Delete lead"))


def _edit_form() -> type[FlaskForm]:
    fields: dict[str, object] = {}
    for name in CUSTOMER_EDIT_FIELDS:
        fields[f"customer_{name}"] = StringField(
            CUSTOMER_LABELS[name], validators=[Optional(), Length(max=320)]
        )
    for prefix in ("vehicle", "trade_in"):
        for name in VEHICLE_EDIT_FIELDS:
            fields[f"{prefix}_{name}"] = StringField(
                VEHICLE_LABELS[name], validators=[Optional(), Length(max=255)]
            )
    fields["submit"] = SubmitField(_l("Save changes"))
    return type("EditForm", (FlaskForm,), fields)


EditForm = _edit_form()
