"""The lead detail page and the original mail, limited to leads the user may see (404 else)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response

from mailgate.completion import completion_reasons, reason_by_code
from mailgate.models import InboundMail, Lead, User, utcnow
from mailgate.outbound.answer import tracking_reply_to

from ..access import me, visible_lead
from ..choices import options
from ..context import db, dealer
from ..leads.query import REVIEW_CONFIDENCE
from . import original
from .conversation import conversation
from .dialogs import pending
from .first_look import note_first_look
from .forms import (
    NO_CHOICE,
    QUALIFICATION_CHOICES,
    CloseForm,
    ConfirmForm,
    ContactForm,
    DeleteForm,
    DueForm,
    QualificationForm,
    ReassignForm,
    ResubmissionForm,
    StageForm,
    to_local_input,
)
from .headers import decoded
from .ladder_view import display_state, steps_ahead
from .protocol_view import protocol_lines
from .rules import assignable_users, in_pool, may_act
from .sales_ladder import next_stage, sales_ladder
from .text import breakable

bp = Blueprint("lead", __name__)
bp.add_app_template_filter(decoded, "decoded")
bp.add_app_template_filter(breakable, "breakable")


@bp.route("/leads/<int:lead_id>")
@login_required
def detail(lead_id: int) -> str:
    lead = visible_lead(lead_id)
    note_first_look(lead)
    return render_detail(lead, template_id=_template_arg())


def _template_arg() -> int | None:
    """``?template=<id>``: the answer template to start the answer with (bounded, else none)."""
    value = request.args.get("template", type=int)
    return value if value is not None and 0 < value < 2**31 else None


def render_detail(
    lead: Lead,
    *,
    answer_form: FlaskForm | None = None,
    template_id: int | None = None,
    status: int = 200,
) -> Any:
    """The lead page; ``answer_form`` is a submitted answer shown again with its errors."""
    from . import compose

    config = dealer()
    now = utcnow()
    mail = db().get(InboundMail, lead.inbound_id) if lead.inbound_id else None
    reasons = [r for r in completion_reasons(config.document) if not r.hidden]
    close_form = CloseForm()
    # nothing chosen for the user: a lead is never closed or handed on by one stray click
    close_form.reason.choices = options((NO_CHOICE, *((r.code, r.label) for r in reasons)))
    reassign_form = ReassignForm()
    reassign_form.to.choices = options(
        (
            NO_CHOICE,
            *((u.email, f"{u.name or u.email} <{u.email}>") for u in assignable_users(db(), lead)),
        )
    )
    due_form = DueForm()
    due_form.when.data = to_local_input(lead.overdue_at, config.timezone)
    stage_form = StageForm()
    stage_form.stage.data = next_stage(lead.status)
    qualification_form = QualificationForm()
    if lead.qualification:  # the empty choice only while none is set
        qualification_form.value.choices = options(QUALIFICATION_CHOICES)
        qualification_form.value.data = lead.qualification
    closed_as = reason_by_code(config.document, lead.close_reason) if lead.close_reason else None
    answering = answer_form is not None or compose.may_answer(lead)
    template_problem = None
    if answering and answer_form is None:
        answer_form, template_problem = compose.new_form(lead, template_id)
    entries, internal = conversation(db(), lead)
    open_dialog, dialog_messages = pending(lead.id)
    page = render_template(
        "lead/detail.html",
        lead=lead,
        state=display_state(lead, now),
        steps=steps_ahead(lead, config.calendar),
        entries=entries,
        internal_mails=internal,
        mail=mail,
        original=original.describe(mail.raw) if mail is not None else None,
        closed_as=closed_as.label if closed_as else lead.close_reason,
        protocol=protocol_lines(
            lead.protocol, {r.code: r.label for r in completion_reasons(config.document)}
        ),
        needs_review=lead.confidence < REVIEW_CONFIDENCE or bool(lead.warnings),
        may_act=may_act(me(), lead),
        in_pool=in_pool(db(), lead),
        contact_form=ContactForm(),
        resubmission_form=ResubmissionForm(),
        due_form=due_form,
        qualification_form=qualification_form,
        stage_form=stage_form,
        ladder=sales_ladder(lead),
        reassign_form=reassign_form,
        close_form=close_form,
        confirm_form=ConfirmForm(),
        delete_form=DeleteForm(),
        answer_mode=compose.answer_mode(),
        answer_form=answer_form if answering else None,
        answer_templates=compose.template_choices() if answering else [],
        template_id=template_id,
        template_problem=template_problem,
        attachment_limit_mb=compose.attachment_limit() // (1024 * 1024),
        tracking_address=tracking_reply_to(config, lead),
        open_dialog=open_dialog,
        dialog_messages=dialog_messages,
        technical=me().is_admin,
        staff_names=staff_names(),
    )
    return page if status == 200 else (page, status)


def staff_names() -> dict[str, str]:
    """Staff addresses -> names, so the protocol says who acted as colleagues know them."""
    rows = db().execute(select(User.email, User.name).where(User.name != ""))
    return {email: name for email, name in rows if name}


def _mail_of(lead_id: int) -> InboundMail:
    lead = visible_lead(lead_id)
    mail = db().get(InboundMail, lead.inbound_id) if lead.inbound_id else None
    if mail is None:
        abort(404)
    return mail


@bp.route("/leads/<int:lead_id>/original.html")
@login_required
def original_html(lead_id: int) -> ResponseReturnValue:
    """Only ever loaded into the page's ``<iframe sandbox>``; see :mod:`.original`."""
    return original.html_response(_mail_of(lead_id).raw)


@bp.route("/leads/<int:lead_id>/original.eml")
@login_required
def original_eml(lead_id: int) -> Response:
    return original.eml_response(_mail_of(lead_id), f"lead-{lead_id}")
