"""Mail templates: the packaged list, a dealer override with preview, reset to default.

Storage and checks: :mod:`.overrides`.  Saving runs the import's template
check first; the settings document gets ``dealer.templates_dir`` on the first
override (saved through ``apply_document`` like every page).
"""

from __future__ import annotations

from pathlib import Path

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from mailgate.dealer_settings import SettingsError

from ..access import admin_required
from ..context import dealer, settings
from . import overrides
from .common import bp, load, plain, save


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
    return render_template(
        "settings/templates.html", items=overrides.listing(_override_dir()), form=ResetForm()
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
        sources = {
            "subject.txt": (form.subject.data or "").strip(),
            "txt": form.text.data or "",
            "html": form.html.data or "",
        }
    problems, preview = overrides.check_and_preview(
        _override_dir(), language, name, sources, dealer().name or "Autohaus"
    )
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
        problems=problems,
        preview=preview,
        overridden=any(
            (_override_dir() or Path("/nonexistent")).joinpath(language, f"{name}.{p}").is_file()
            for p in overrides.PARTS
        ),
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
