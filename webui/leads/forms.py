"""Forms of the lead list (Flask-WTF: each carries the CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional


class BulkReassignForm(FlaskForm):
    """Selected leads to another user; the leads come from the list's checkboxes."""

    lead_ids = SelectMultipleField(coerce=int, validate_choice=False)
    target = SelectField(_l("Reassign to"), coerce=int, validators=[DataRequired()])
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])
    back = HiddenField()


class TakeForm(FlaskForm):
    """The pool's take button: only the CSRF token."""


class BulkDeleteForm(FlaskForm):
    """Admins delete the selected open leads (soft: history kept); a box confirms it."""

    lead_ids = SelectMultipleField(coerce=int, validate_choice=False)
    confirm_delete = BooleanField(_l("Yes, delete the selected leads"), validators=[DataRequired()])
    back = HiddenField()


class ListViewForm(FlaskForm):
    """The column chooser and page size of the lead list, remembered per user."""

    columns = SelectMultipleField(validate_choice=False)
    page_size = StringField()
    back = HiddenField()
