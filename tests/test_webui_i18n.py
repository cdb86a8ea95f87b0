"""Every UI string is translated to German, and the compiled catalogs match their sources."""

from __future__ import annotations

import gettext
import io

import pytest

from mailgate.webui import i18n


@pytest.mark.parametrize("area", i18n.areas())
def test_every_msgid_of_the_area_has_a_german_translation(area: str) -> None:
    # a plural message (ngettext) is keyed by its singular; every plural form needs a text
    used = {str(m.id[0] if isinstance(m.id, tuple) else m.id) for m in i18n.extract(area) if m.id}
    assert used, f"area {area} has no strings: is the convention in i18n.area_sources right?"
    catalog = i18n.read_catalog(area)

    def translated(msgid: str) -> bool:
        text = catalog[msgid].string if msgid in catalog else ""
        return all(text) if isinstance(text, tuple) else bool(text)

    missing = sorted(msgid for msgid in used if not translated(msgid))
    assert not missing, f"untranslated in {area}: {missing} (python -m mailgate.webui.i18n update)"


@pytest.mark.parametrize("area", i18n.areas())
def test_compiled_catalog_matches_its_source(area: str) -> None:
    mo = i18n.po_path(area).with_suffix(".mo")
    shipped = gettext.GNUTranslations(io.BytesIO(mo.read_bytes()))
    expected = gettext.GNUTranslations(io.BytesIO(i18n.compiled(i18n.read_catalog(area))))
    assert shipped._catalog == expected._catalog  # type: ignore[attr-defined]


def test_placeholders_survive_translation() -> None:
    for area in i18n.areas():
        for message in i18n.read_catalog(area):
            if message.id and message.string:
                for name in ("%(", "%d", "%s"):
                    assert str(message.id).count(name) == str(message.string).count(name), (
                        area,
                        message.id,
                    )


def test_a_msgid_means_the_same_in_every_area() -> None:
    """Flask-Babel merges the area catalogs into one: a msgid translated two ways would
    silently take one area's wording on another area's page."""
    german: dict[str, dict[str, str]] = {}
    for area in i18n.areas():
        for message in i18n.read_catalog(area):
            if message.id and message.string:
                german.setdefault(str(message.id), {})[area] = str(message.string)
    clashes = {msgid: areas for msgid, areas in german.items() if len(set(areas.values())) > 1}
    assert not clashes, f"one msgid, several translations: {clashes}"
