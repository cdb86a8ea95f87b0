"""Answering the customer from the lead page (issue 17 item 8): the form and its POST.

The page offers the form when the dealer's ``answer_mode`` allows it (seed
002: "view_only" hides it) and the user may act on the lead.  The POST checks
the same (404 outside the scope, 403 for a colleague's lead, CSRF by
Flask-WTF), reads the uploads within the size limit, and hands the draft to
:func:`mailgate.outbound.answer.send_answer`, which queues it for the customer
and counts it as the answer in one transaction.  Anything refused — empty
text, files too large, a closed lead — is said in German on the page again
with what was typed still in the form: nothing is lost, nothing half-sent.
A double submit carries the same one-time ``key`` and sends once.
"""

from __future__ import annotations

import mimetypes
import secrets
from dataclasses import dataclass

from flask import abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from mailgate.escalation.actions import ActionError
from mailgate.escalation.replies import quote
from mailgate.escalation.subjects import customer_subject
from mailgate.models import OPEN_STATUSES, AnswerTemplate, Customer, InboundRaw, Lead, User, utcnow
from mailgate.outbound import answer_templates
from mailgate.outbound.answer import AnswerError, Draft, already_sent, send_answer
from mailgate.outbound.compose import Attachment

from ..access import me, visible_lead
from ..context import db, dealer
from .conversation import attachment_parts, lead_inbound_ids, parse, part_bytes
from .errors import explain
from .filenames import safe_filename
from .forms import AnswerForm
from .rules import may_act
from .views import bp, render_detail

MAX_FILES = 10
MAX_TOTAL_BYTES = 10 * 1024 * 1024  # below the request limit (16 MB) with room for the text
MODES = ("both", "view_only", "lead_page")


def answer_mode() -> str:
    mode = dealer().document["dealer"].get("answer_mode", "both")
    return mode if mode in MODES else "both"


def attachment_limit() -> int:
    """Bytes of attachments one answer may carry: ours, or the relay's limit if smaller.

    The mail grows by a third in base64, so the relay's limit (in MB, the whole
    mail) allows three quarters of it in files.
    """
    relay_mb = dealer().document["dealer"].get("max_relay_size_mb")
    if isinstance(relay_mb, int) and relay_mb > 0:
        return min(MAX_TOTAL_BYTES, relay_mb * 1024 * 1024 * 3 // 4)
    return MAX_TOTAL_BYTES


def may_answer(lead: Lead) -> bool:
    """Whether the page offers the form: mode, role, an open lead, a customer address."""
    if answer_mode() == "view_only" or not may_act(me(), lead):
        return False
    if lead.status not in OPEN_STATUSES:
        return False
    return bool(lead.customer is not None and lead.customer.email)


@dataclass(frozen=True)
class Uploads:
    files: list[Attachment]
    problem: str | None = None


def forwardable(lead: Lead) -> list[tuple[str, str]]:
    """The attachments of the lead's own stored mails, as ``("<mail id>:<part>", label)``.

    The form's only choices: a value naming another lead's mail is not among
    them, so it fails validation before any bytes are read.
    """
    choices = []
    for mail_id in reversed(lead_inbound_ids(db(), lead)):
        raw = db().scalar(select(InboundRaw.raw).where(InboundRaw.inbound_id == mail_id))
        msg = parse(raw)
        if msg is None:
            continue
        for part in attachment_parts(msg):
            size = f"{max(1, -(-part.size // 1024))} KB"
            choices.append((f"{mail_id}:{part.number}", f"{part.filename} ({size})"))
    return choices


def forwarded(values: list[str]) -> list[Attachment]:
    """The chosen customer attachments' bytes (values already checked against the choices)."""
    out = []
    for value in values:
        mail_id, _, number = value.partition(":")
        raw = db().scalar(select(InboundRaw.raw).where(InboundRaw.inbound_id == int(mail_id)))
        found = part_bytes(raw, int(number)) if raw is not None else None
        if found is None:
            continue
        part, data = found
        name = safe_filename(part.filename, int(number))
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        out.append(Attachment(name, data, mimetype))
    return out


def read_uploads(files: list[FileStorage], already: int = 0) -> Uploads:
    """The uploaded files as attachments, or the German reason they are refused.

    Read in chunks up to the limit: a file larger than allowed is never held
    in memory whole.  The type is taken from the file name, not from what the
    browser claimed.
    """
    chosen = [f for f in files if f and f.filename]
    if len(chosen) > MAX_FILES:
        return Uploads([], _("At most %(n)s files can be attached.", n=MAX_FILES))
    limit = attachment_limit()
    total = already
    if total > limit:
        return Uploads([], too_large(limit))
    out: list[Attachment] = []
    for number, upload in enumerate(chosen, start=1):
        data = upload.stream.read(limit - total + 1)
        total += len(data)
        if total > limit:
            return Uploads([], too_large(limit))
        name = safe_filename(upload.filename, number)
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        out.append(Attachment(name, data, mimetype))
    return Uploads(out)


def too_large(limit: int) -> str:
    megabytes = f"{limit / (1024 * 1024):.0f}".replace(".", ",")
    return _(
        "The attachments are too large: together at most %(mb)s MB. Nothing was sent; "
        "your text is still here. Please choose smaller files (or fewer) again.",
        mb=megabytes,
    )


def new_form(lead: Lead, template_id: int | None) -> tuple[AnswerForm, str | None]:
    """A fresh form (subject "AW: …", a new one-time key), filled from a template if chosen.

    Returns the form and a German problem when the template could not be used.
    """
    form = AnswerForm(formdata=None)
    form.forward.choices = forwardable(lead)
    form.key.data = secrets.token_urlsafe(24)
    config = dealer()
    conversation = {"subject": lead.subject, "vehicle": lead.vehicle or {}}
    form.subject.data = customer_subject(conversation, config.name, config.language)
    if template_id is None:
        return form, None
    template = db().get(AnswerTemplate, template_id)
    if template is None:
        return form, _("This answer template no longer exists.")
    customer = lead.customer
    staff = db().get(User, me().id)
    context = answer_templates.context_for(
        _columns(customer) if customer is not None else None,
        lead.vehicle,
        {"name": staff.name if staff else "", "email": staff.email if staff else ""},
        config.name,
    )
    try:
        rendered = answer_templates.render(template.subject, template.body, context)
    except Exception:  # noqa: BLE001 - a template broken since it was saved: say so, no 500
        return form, _(
            "The answer template “%(name)s” could not be filled in; please write the answer "
            "yourself and ask an admin to check the template.",
            name=template.name,
        )
    if rendered.subject:
        form.subject.data = rendered.subject
    form.body.data = rendered.body
    return form, None


def _columns(customer: Customer) -> dict[str, object]:
    return {name: getattr(customer, name) for name in answer_templates.CUSTOMER_FIELDS}


def template_choices() -> list[AnswerTemplate]:
    return list(
        db().scalars(select(AnswerTemplate).order_by(AnswerTemplate.language, AnswerTemplate.name))
    )


def _with_quote(body: str, lead: Lead) -> str:
    """The answer, then the customer's message ``> ``-quoted, as a mail client would."""
    quoted = quote(lead.message)
    return f"{body.rstrip()}\n\n{quoted}" if quoted else body


@bp.post("/leads/<int:lead_id>/answer")
@login_required
def answer(lead_id: int) -> ResponseReturnValue:
    lead = visible_lead(lead_id)
    if not may_act(me(), lead):
        abort(403)
    if answer_mode() == "view_only":
        flash(
            _("Answering on the lead page is switched off: please answer from your mail program."),
            "error",
        )
        return redirect(url_for("lead.detail", lead_id=lead_id))
    form = AnswerForm()
    form.forward.choices = forwardable(lead)
    if not form.validate_on_submit():
        return render_detail(lead, answer_form=form, status=400)
    key = form.key.data or ""
    try:
        if already_sent(db(), lead_id, key):
            flash(_("This answer has already been sent."), "info")
            return redirect(url_for("lead.detail", lead_id=lead_id) + "#conversation")
    except AnswerError:
        abort(400)  # the hidden key was tampered with: no form of ours sends that
    along = forwarded(form.forward.data or [])
    uploads = read_uploads(
        request.files.getlist(form.attachments.name), sum(len(a.content) for a in along)
    )
    if uploads.problem:
        form.attachments.errors = [uploads.problem]
        return render_detail(lead, answer_form=form, status=400)
    body = form.body.data or ""
    if form.quote.data:
        body = _with_quote(body, lead)
    draft = Draft(form.subject.data or "", body, [*along, *uploads.files], key)
    staff = db().get(User, me().id)
    assert staff is not None  # a logged-in account is a user row
    try:
        sent = send_answer(db(), dealer(), lead_id, staff, draft, utcnow())
    except (AnswerError, ActionError) as exc:
        db().rollback()
        form.body.errors = [_("Not sent: %(why)s", why=_why(str(exc)))]
        return render_detail(db().get(Lead, lead_id) or lead, answer_form=form, status=400)
    db().commit()
    if not sent:
        flash(_("This answer has already been sent."), "info")
    else:
        flash(
            _("Your answer to %(to)s is on its way; the lead counts as answered.", to=_to(lead)),
            "success",
        )
    return redirect(url_for("lead.detail", lead_id=lead_id) + "#conversation")


def _to(lead: Lead) -> str:
    customer = lead.customer
    return (customer.name or customer.email or "") if customer is not None else ""


_REASONS = {
    "the customer has no e-mail address": _l("the customer has no e-mail address."),
    "the answer has no text": _l("the answer has no text."),
}


def _why(message: str) -> str:
    said = _REASONS.get(message)
    return str(said) if said is not None else explain(message)
