"""Answers to customers: where salespeople answer (seed 002) and the answer templates.

The mode is the settings document's ``dealer.answer_mode`` (saved through
``apply_document`` like every page).  The templates are rows of their own
(:class:`~mailgate.models.AnswerTemplate`): several named texts per language
that a salesperson picks on the lead page.  Each is checked in the mail
sandbox before it is saved (:func:`mailgate.outbound.answer_templates.check`):
a template that reaches for Python internals (``{{ ''.__class__ }}``), includes
a file or names a variable outside the allowlist is refused with a German
sentence naming the part and line, and nothing is stored.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from mailgate.dealer_settings import ANSWER_MODES, SettingsError
from mailgate.models import AnswerTemplate, utcnow
from mailgate.outbound import answer_templates
from mailgate.outbound.template_check import TemplateProblem

from ..access import admin_required, me
from ..choices import options
from ..context import db
from .common import bp, load, plain, save
from .mailtemplates import describe

MODE_LABELS = {
    "both": _l("Both: answers from the mail program are tracked, and the lead page has a form"),
    "view_only": _l(
        "Tracking only: the lead page shows the conversation; salespeople answer from "
        "their mail program"
    ),
    "lead_page": _l("Answer on the lead page: the customer's address leads to the form"),
}
assert set(MODE_LABELS) == set(ANSWER_MODES)
LANGUAGES = (("de", _l("German")), ("en", _l("English")))
PARTS = {"subject": _l("Subject"), "body": _l("Text")}


class ModeForm(FlaskForm):
    mode = RadioField(
        _l("Where salespeople answer customers"), choices=options(MODE_LABELS.items())
    )


class AnswerTemplateForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(message=_l("Please give the template a name.")), Length(max=128)],
    )
    language = SelectField(_l("Language"), choices=options(LANGUAGES), default="de")
    subject = StringField(_l("Subject (optional)"), validators=[Length(max=300)])
    body = TextAreaField(
        _l("Text"),
        validators=[DataRequired(message=_l("Please write the text.")), Length(max=20_000)],
    )


class DeleteForm(FlaskForm):
    pass


@bp.route("/answers", methods=["GET", "POST"])
@admin_required
def answers() -> ResponseReturnValue:
    document = load()
    form = ModeForm()
    if not form.is_submitted():
        form.mode.data = document["dealer"].get("answer_mode", "both")
    elif form.validate():
        document["dealer"]["answer_mode"] = form.mode.data
        try:
            save(document)
        except SettingsError as exc:
            flash(plain(str(exc)), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("settings.answers"))
    templates = (
        db()
        .scalars(select(AnswerTemplate).order_by(AnswerTemplate.language, AnswerTemplate.name))
        .all()
    )
    return render_template(
        "settings/answers.html", form=form, templates=templates, delete_form=DeleteForm()
    )


@bp.route("/answers/new", methods=["GET", "POST"])
@admin_required
def answer_new() -> ResponseReturnValue:
    return _edit(None)


@bp.route("/answers/<int:template_id>", methods=["GET", "POST"])
@admin_required
def answer_edit(template_id: int) -> ResponseReturnValue:
    template = db().get(AnswerTemplate, template_id)
    if template is None:
        abort(404)
    return _edit(template)


def _edit(template: AnswerTemplate | None) -> ResponseReturnValue:
    form = AnswerTemplateForm(obj=template)
    problems: list[str] = []
    preview = None
    if form.validate_on_submit():
        name = " ".join((form.name.data or "").split())
        subject = (form.subject.data or "").strip()
        body = form.body.data or ""
        found = answer_templates.check(subject, body)
        problems = [_describe(problem) for problem in found]
        if not problems and _taken(name, form.language.data, template):
            form.name.errors = [_("A template of this name and language exists already.")]
        elif not problems:
            row = template or AnswerTemplate()
            row.name, row.language, row.subject, row.body = (
                name,
                form.language.data,
                subject,
                body,
            )
            row.updated_at, row.updated_by = utcnow(), me().email
            db().add(row)
            db().commit()
            flash(_("Answer template “%(name)s” saved.", name=name), "info")
            return redirect(url_for("settings.answer_edit", template_id=row.id))
        else:
            flash(_("Nothing was saved: the template has errors (see below)."), "error")
    elif template is not None and not form.is_submitted():
        try:
            preview = answer_templates.render(
                template.subject, template.body, answer_templates.SAMPLE
            )
        except Exception:  # noqa: BLE001 - a row changed outside the editor: no preview
            preview = None
    status = 400 if form.is_submitted() else 200
    return (
        render_template(
            "settings/answer.html",
            form=form,
            template=template,
            problems=problems,
            preview=preview,
            variables=_variables(),
        ),
        status,
    )


def _taken(name: str, language: str, current: AnswerTemplate | None) -> bool:
    other = db().scalar(
        select(AnswerTemplate.id).where(
            AnswerTemplate.name == name, AnswerTemplate.language == language
        )
    )
    return other is not None and (current is None or other != current.id)


def _describe(problem: TemplateProblem) -> str:
    """The mail template editor's German wording, with the answer template's own allowlist."""
    part = PARTS.get(problem.file, problem.file)
    named = TemplateProblem(
        str(part), problem.kind, problem.detail, problem.line, problem.names, problem.error
    )
    if problem.kind == "unknown_variable":
        return _(
            "%(where)s: unknown variable %(names)s. An answer template can use: %(allowed)s.",
            where=part,
            names=", ".join(problem.names),
            allowed=", ".join(sorted(answer_templates.VARIABLES)),
        )
    return describe(named, "answer")


def _variables() -> list[str]:
    fields = [
        *(f"customer.{name}" for name in answer_templates.CUSTOMER_FIELDS),
        *(f"vehicle.{name}" for name in answer_templates.VEHICLE_FIELDS),
        *(f"salesperson.{name}" for name in answer_templates.SALESPERSON_FIELDS),
        "dealer_name",
    ]
    return [f"{{{{ {name} }}}}" for name in fields]


@bp.route("/answers/<int:template_id>/delete", methods=["POST"])
@admin_required
def answer_delete(template_id: int) -> ResponseReturnValue:
    template = db().get(AnswerTemplate, template_id)
    if template is None:
        abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400)
    name = template.name
    db().delete(template)
    db().commit()
    flash(_("Answer template “%(name)s” deleted.", name=name), "info")
    return redirect(url_for("settings.answers"))
