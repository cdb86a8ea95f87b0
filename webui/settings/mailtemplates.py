"""Mail templates: the packaged list, a dealer override with preview, reset to default.

Storage and checks: :mod:`.overrides`.  Saving runs the import's template
check first; the settings document gets ``dealer.templates_dir`` on the first
override (saved through ``apply_document`` like every page).  Templates render
in the mail sandbox (:mod:`mailgate.outbound.sandbox`); whatever goes wrong
with an edit — syntax, a refused attribute, an unknown variable, too much
output — is shown as a German sentence naming file and line (:func:`describe`),
never as a traceback.
"""

from __future__ import annotations

from pathlib import Path

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from mailgate.dealer_settings import SettingsError
from mailgate.outbound.template_check import TemplateProblem, allowed_variables

from ..access import admin_required
from ..context import dealer, settings
from . import overrides, template_catalog
from .common import bp, load, plain, save
from .jinja_messages import german_detail


class TemplateForm(FlaskForm):
    subject = StringField(_l("Subject"))
    text = TextAreaField(_l("Text version"))
    html = TextAreaField(_l("HTML version"))


class ResetForm(FlaskForm):
    pass


def _override_dir() -> Path | None:
    return dealer().template_dir


def _target_dir() -> Path:
    """Where a new override goes: the configured directory, else ``<data_dir>/templates``."""
    return _override_dir() or (settings().data_dir / "templates").resolve()


@bp.route("/templates")
@admin_required
def templates() -> ResponseReturnValue:
    """The templates by title and purpose, grouped by who receives them; both languages."""
    groups: dict[str, list[dict[str, object]]] = {}
    by_name: dict[str, dict[str, object]] = {}
    for item in overrides.listing(_override_dir()):
        entry = by_name.get(item.name)
        if entry is None:
            entry = by_name[item.name] = {
                "name": item.name,
                "title": template_catalog.title(item.name),
                "purpose": template_catalog.purpose(item.name),
                "languages": [],
            }
            groups.setdefault(template_catalog.audience(item.name), []).append(entry)
        entry["languages"].append(item)  # type: ignore[attr-defined]
    for entries in groups.values():
        entries.sort(key=lambda e: str(e["title"]).lower())
    return render_template("settings/templates.html", groups=groups, form=ResetForm())


def _edited_sources(form: TemplateForm) -> dict[str, str]:
    return {
        "subject.txt": (form.subject.data or "").strip(),
        "txt": form.text.data or "",
        "html": form.html.data or "",
    }


@bp.route("/templates/<language>/<name>/preview", methods=["POST"])
@admin_required
def template_preview(language: str, name: str) -> ResponseReturnValue:
    """The live preview (htmx): the posted, unsaved text rendered in the mail sandbox.

    Returns the preview fragment: the problems in German, or subject, text and the
    HTML version (in a sandboxed frame) — all escaped; nothing is written.
    """
    if not overrides.is_template(language, name):
        abort(404)
    form = TemplateForm()
    if not form.validate_on_submit():
        abort(400)
    found, preview = overrides.check_and_preview(
        language, name, _edited_sources(form), dealer().name or "Autohaus"
    )
    return render_template(
        "settings/_template_preview.html",
        problems=[describe(problem, name) for problem in found],
        preview=preview,
    )


@bp.route("/templates/<language>/<name>", methods=["GET", "POST"])
@admin_required
def template_edit(language: str, name: str) -> ResponseReturnValue:
    if not overrides.is_template(language, name):
        abort(404)
    current = overrides.current_sources(_override_dir(), language, name)
    form = TemplateForm(
        data={"subject": current["subject.txt"], "text": current["txt"], "html": current["html"]}
    )
    sources, submitted = current, form.validate_on_submit()
    if submitted:
        sources = _edited_sources(form)
    found, preview = overrides.check_and_preview(
        language, name, sources, dealer().name or "Autohaus"
    )
    problems = [describe(problem, name) for problem in found]
    if submitted and request.form.get("action") == "save":
        if problems:
            flash(_("Nothing was saved: the template has errors (see below)."), "error")
        else:
            target = _target_dir()
            overrides.write(target, language, name, sources)
            if _override_dir() is None:
                document = load()
                document["dealer"]["templates_dir"] = str(target)
                try:
                    save(document)
                except SettingsError as exc:
                    overrides.reset(target, language, name)
                    flash(plain(str(exc)), "error")
                    return redirect(url_for("settings.template_edit", language=language, name=name))
            flash(_("Saved."), "info")
            return redirect(url_for("settings.template_edit", language=language, name=name))
    return render_template(
        "settings/template.html",
        form=form,
        reset_form=ResetForm(),
        language=language,
        name=name,
        title=template_catalog.title(name),
        purpose=template_catalog.purpose(name),
        variables=template_catalog.variables(name),
        problems=problems,
        preview=preview,
        overridden=any(
            (_override_dir() or Path("/nonexistent")).joinpath(language, f"{name}.{p}").is_file()
            for p in overrides.PARTS
        ),
    )


_LIMITS = {
    "output": _l("it would write more than %(n)s characters"),
    "steps": _l("more than %(n)s loop passes, calls or range() numbers"),
    "value": _l("a value would be longer than %(n)s characters"),
    "width": _l("a width or count above %(n)s"),
    "number": _l("a number with more than %(n)s bits"),
    "range": _l("range() with more than %(n)s numbers"),
    "recursion": _l("macros that call themselves too deeply"),
    "source": _l("the template is longer than %(n)s characters"),
}


def describe(problem: TemplateProblem, name: str) -> str:
    """A problem as the admin reads it: German, file and line, what to change; no traceback."""
    where = problem.file
    if problem.line is not None:
        where = _("%(file)s, line %(line)s", file=problem.file, line=problem.line)
    detail = german_detail(problem.detail)
    if problem.kind == "name":
        return _("%(where)s: not a template name like de/notification.txt.", where=where)
    if problem.kind == "unknown_template":
        return _("%(where)s: there is no packaged template of this name.", where=where)
    if problem.kind == "forbidden_tag":
        return _(
            '%(where)s: "%(tag)s" is not allowed: a mail template cannot include, import or '
            "extend other files.",
            where=where,
            tag=problem.names[0] if problem.names else "",
        )
    if problem.kind == "unknown_variable":
        allowed = sorted(allowed_variables(name) or ())
        return _(
            "%(where)s: unknown variable %(names)s. This template can use: %(allowed)s.",
            where=where,
            names=", ".join(problem.names),
            allowed=", ".join(allowed),
        )
    if problem.kind == "syntax":
        return _("%(where)s: this is not valid Jinja2 (%(detail)s).", where=where, detail=detail)
    if problem.kind == "undefined":
        return _(
            "%(where)s: the sample data has no such field (%(detail)s).",
            where=where,
            detail=detail,
        )
    if problem.kind == "security":
        return _(
            "%(where)s: not allowed (%(detail)s). A template may only use its variables, "
            "their fields and the filters.",
            where=where,
            detail=detail,
        )
    if problem.kind == "limit":
        limit = problem.names[0] if problem.names else ""
        maximum = int(problem.names[1]) if len(problem.names) > 1 else 0
        what = _LIMITS.get(limit)
        text = str(what) % {"n": format_number(maximum)} if what is not None else detail
        return _("%(where)s: the template does too much: %(what)s.", where=where, what=text)
    return _(
        "%(where)s: the template cannot be shown with the sample data (%(detail)s).",
        where=where,
        detail=detail,
    )


@bp.route("/templates/<language>/<name>/reset", methods=["POST"])
@admin_required
def template_reset(language: str, name: str) -> ResponseReturnValue:
    if not overrides.is_template(language, name):
        abort(404)
    if not ResetForm().validate_on_submit():
        abort(400)
    folder = _override_dir()
    if folder is not None:
        overrides.reset(folder, language, name)
    flash(_("The packaged template is used again."), "info")
    return redirect(url_for("settings.template_edit", language=language, name=name))
