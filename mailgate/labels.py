"""Display names for the codes stored on a lead, in German and English: one table for all.

Staff mails and the web UI show the same words for a lead's kind, status and
source ("Probefahrt", not ``test_drive``; "Hersteller: Nissan", not
``oem:nissan``).  Mails render outside any web request, so the table cannot
live in the web UI's gettext catalogs; :mod:`mailgate.webui.labels` reads
its kind and status words from here (per request locale), so the two can
never disagree.  Unknown codes are shown as they are, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

Words = tuple[str, str]  # (German, English)

KINDS: dict[str, Words] = {
    "inquiry": ("Anfrage", "Inquiry"),
    "test_drive": ("Probefahrt", "Test drive"),
    "trade_in": ("Inzahlungnahme", "Trade-in"),
    "financing": ("Finanzierung", "Financing"),
    "service": ("Service", "Service"),
    "other": ("Sonstiges", "Other"),
}

LEAD_STATUSES: dict[str, Words] = {
    "new": ("neu", "new"),
    "assigned": ("zugewiesen", "assigned"),
    "contacted": ("kontaktiert", "contacted"),
    "test_drive": ("Probefahrt", "test drive"),
    "offer": ("Angebot", "offer"),
    "contract": ("Kaufvertrag", "contract"),
    "closed": ("abgeschlossen", "closed"),
    "deleted": ("gelöscht", "deleted"),
}

SOURCES: dict[str, Words] = {
    "mobile.de": ("mobile.de", "mobile.de"),
    "autoscout24": ("AutoScout24", "AutoScout24"),
    "kleinanzeigen": ("Kleinanzeigen", "Kleinanzeigen"),
    "adf": ("ADF-Schnittstelle", "ADF interface"),
    "website": ("Website", "Website"),
    "unknown": ("Unbekannt", "Unknown"),
    # the default origin of a lead entered by hand (webui/lead/manual_forms.py)
    "Walk-in": ("Laufkundschaft", "Walk-in"),
}
# what an outbox mail was for (OutboxMail.purpose): the outbox page, the lead's mail list
# and the admin's delivery-failure notice
MAIL_PURPOSES: dict[str, Words] = {
    "notification": ("Benachrichtigung an die zuständige Person", "Notification to the assignee"),
    "reassigned": ("Mitteilung über die Übergabe", "Notice of reassignment"),
    "followup": (
        "Nachricht an die zuständige Person weitergegeben",
        "Follow-up sent to the assignee",
    ),
    "pool_notice": ("Pool-Hinweis", "Pool notice"),
    "trade_in_cc": ("Kopie Inzahlungnahme", "Trade-in copy"),
    "acknowledgement": ("Eingangsbestätigung an den Kunden", "Acknowledgement to the customer"),
    "relay_to_customer": ("Antwort an den Kunden weitergeleitet", "Reply relayed to the customer"),
    "relay_to_assignee": (
        "Kundenantwort an die zuständige Person weitergeleitet",
        "Customer reply relayed to the assignee",
    ),
    "answer_from_lead_page": (
        "Antwort an den Kunden (über die Anfrageseite)",
        "Answer to the customer (from the lead page)",
    ),
    "unassigned": ("Hinweis: nicht zugewiesen", "Notice: not assigned"),
    "reminder": ("Erinnerung", "Reminder"),
    "stage1": ("Eskalation Stufe 1", "Escalation stage 1"),
    "stage2": ("Eskalation an die Teamleitung", "Escalation to the supervisor"),
    "resubmission": ("Wiedervorlage-Erinnerung", "Resubmission reminder"),
    "target_missed": ("Bearbeitungsziel überschritten", "Processing target missed"),
    "delivery_failure": ("Hinweis auf Zustellfehler", "Delivery failure notice"),
    "invitation": ("Einladung zu mailgate", "Invitation to mailgate"),
    "relay_bounce": (
        "Hinweis: Mail an den Kunden unzustellbar",
        "Notice: mail to the customer bounced",
    ),
}
_MAKER: Words = ("Hersteller", "Manufacturer")
# brand slugs whose spelling is not just capitalised words
_BRANDS = {"mercedes-benz": "Mercedes-Benz", "bmw": "BMW", "vw": "VW", "ds": "DS", "mg": "MG"}


def _pick(words: Words, language: str | None) -> str:
    return words[1] if (language or "").lower().startswith("en") else words[0]


def _lookup(table: Mapping[str, Words], code: str | None, language: str | None) -> str:
    if not code:
        return "–"
    words = table.get(code)
    return code if words is None else _pick(words, language)


def kind_label(code: str | None, language: str | None = "de") -> str:
    """``test_drive`` -> ``Probefahrt`` / ``Test drive``."""
    return _lookup(KINDS, code, language)


def status_label(code: str | None, language: str | None = "de") -> str:
    """``contacted`` -> ``kontaktiert`` / ``contacted``."""
    return _lookup(LEAD_STATUSES, code, language)


def source_label(code: str | None, language: str | None = "de") -> str:
    """``autoscout24`` -> ``AutoScout24``; ``oem:nissan`` -> ``Hersteller: Nissan``."""
    if code and code.startswith("oem:"):
        slug = code[4:]
        brand = _BRANDS.get(slug) or "-".join(w.capitalize() for w in slug.split("-"))
        return f"{_pick(_MAKER, language)}: {brand}"
    return _lookup(SOURCES, code, language)


def purpose_label(code: str | None, language: str | None = "de") -> str:
    """``stage1`` -> ``Eskalation Stufe 1`` / ``Escalation stage 1``."""
    return _lookup(MAIL_PURPOSES, code, language)


# German after "seit" takes the dative: seit 1 Tag, seit 2 Tagen, seit 1 Stunde, seit 3 Stunden
_UNITS_DE = (("Tag", "Tagen"), ("Stunde", "Stunden"), ("Minute", "Minuten"))
_UNITS_EN = (("day", "days"), ("hour", "hours"), ("minute", "minutes"))


def waiting_for(elapsed: timedelta, language: str | None = "de") -> str:
    """How long something has waited, to follow "seit" / "for": ``2 Tagen und 3 Stunden``.

    Days and hours (minutes only under an hour), each with its right plural;
    a zero part is left out, so it is never "2 Tage 0 Std.".
    """
    minutes = max(0, int(elapsed.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = _UNITS_EN if (language or "").lower().startswith("en") else _UNITS_DE
    amounts = (days, hours, 0) if days or hours else (0, 0, minutes)
    parts = [
        f"{amount} {unit[0] if amount == 1 else unit[1]}"
        for amount, unit in zip(amounts, units, strict=True)
        if amount
    ] or [f"0 {units[2][1]}"]
    joiner = " and " if units is _UNITS_EN else " und "
    return joiner.join(parts)
