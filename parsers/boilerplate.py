"""Platform boilerplate that is never the customer's text, and the message block cleaner.

Where it sits: the general reader (:mod:`.reader`) ends a message block at the
first footer line, and :mod:`.layers` cleans every parser's message with
:func:`strip_boilerplate`.  The phrases are those portals and form mailers
append in the languages of the dealer's inbox: reply-button hints ("Bitte
beantworte die Nachricht über den Antworten-Button"), unsubscribe and
"view in browser" lines, "sent via …" notes, privacy and imprint footers.

Patterns are anchored at the start of a line and bounded, so a customer who
writes "bitte antworten Sie mir per Mail" in mid-sentence keeps the sentence.
"""

from __future__ import annotations

import re

from .lexicon import trie_pattern

_FOOTER = re.compile(
    r"^[\s>*_\-–|]*(?:"
    # reply-button and reply-function hints (mobile.de, Kleinanzeigen, AutoScout24)
    r"(?:bitte\s+)?(?:beantworte|beantworten\s+sie|antworte|antworten\s+sie|nutze|nutzen\s+sie)"
    r"\b.{0,60}?(?:antworten-?button|antwort-?funktion|antwort-?button|reply-?button"
    r"|über\s+(?:den|die)\s+(?:button|schaltfläche))"
    r"|(?:please\s+)?(?:reply|respond|answer)\b.{0,40}?(?:button|via\s+the|using\s+the)"
    r"|(?:gebruik|beantwoord)\b.{0,40}?(?:knop|button|antwoordfunctie)"
    r"|(?:utilisez|répondez)\b.{0,40}?(?:bouton|fonction)"
    # sent-via notes
    r"|diese\s+(?:e-?mail|nachricht|anfrage)\s+wurde\s+(?:über|via|von|mit|automatisch)\b"
    r"|diese\s+(?:e-?mail|nachricht)\s+ist\s+ein\s+service"
    r"|this\s+(?:e-?mail|message|enquiry|inquiry)\s+(?:was|has\s+been)\s+(?:sent|generated"
    r"|submitted)\s+(?:via|from|through|by|using|automatically)\b"
    r"|dit\s+(?:bericht|e-?mailbericht)\s+(?:is|werd)\s+(?:verzonden|verstuurd)\b"
    r"|ce\s+(?:message|courriel|e-?mail)\s+(?:a\s+été|est)\s+envoyé\b"
    r"|questo\s+messaggio\s+(?:è\s+stato|e\s+stato)\s+inviato\b"
    r"|gesendet\s+(?:über|via)\s+\S+"
    r"|sent\s+(?:via|from)\s+(?:the\s+)?(?:contact\s+form|website|\S+\.\w{2,})"
    # unsubscribe, view in browser, privacy and imprint footers
    r"|(?:newsletter\s+)?(?:abmelden|abbestellen|unsubscribe|afmelden|se\s+désinscrire"
    r"|désinscription|disiscriviti)\b"
    r"|(?:im|in\s+ihrem|in\s+deinem)\s+browser\s+(?:ansehen|anzeigen|öffnen)"
    r"|(?:view|open)\s+(?:this\s+(?:e-?mail|message)\s+)?in\s+(?:your\s+)?browser"
    r"|bekijk\s+(?:deze\s+e-?mail\s+)?in\s+(?:je|uw)\s+browser"
    r"|voir\s+(?:cet\s+e-?mail\s+)?dans\s+(?:votre\s+)?navigateur"
    r"|online-?version\b"
    r"|(?:impressum|datenschutz(?:erklärung|hinweise?)?|privacy\s+(?:policy|statement|notice)"
    r"|privacyverklaring|mentions\s+légales|informativa\s+(?:sulla\s+)?privacy)\s*(?:[:|]|$)"
    r"|(?:schütze\s+dich|schützen\s+sie\s+sich)\s+vor\s+betrug"
    r"|(?:dein|ihr|euer|je|uw|votre|your|the)\s+(?:[\w.-]{2,30}[\s-]){0,2}(?:team|équipe)\s*$"
    r"|(?:dein|ihr|je|uw|votre|your|the|l')\s*(?:team|équipe)\s+[\w.-]{2,30}\s*$"
    r"|(?:please|bitte)\s+(?:answer|contact|respond\s+to|reply\s+to|call|antworten\s+sie"
    r"|kontaktieren\s+sie|melden\s+sie\s+sich\s+bei|rufen\s+sie)\s+(?:the\s+|dem\s+|den\s+)?"
    r"(?:customer|kunden|interessent)"
    r"|(?:diese\s+e-?mail|this\s+e-?mail|this\s+message)\s+(?:enthält|contains)\s+html"
    r"|.{0,60}?(?:im|in\s+ihrem|in\s+deinem)\s+browser\s+(?:ansehen|anzeigen|öffnen)"
    # why you get this mail, reply hints, imprint lines, button labels
    r"|(?:sie\s+erhalten|du\s+erhältst|you\s+(?:are\s+)?receiv\w*|je\s+ontvangt|u\s+ontvangt"
    r"|vous\s+recevez|ricevi)\s+(?:diese|this|deze|cet|cette|questa)\b"
    r"|(?:please\s+)?reply\s+(?:directly\s+)?to\s+this\b"
    r"|(?:bitte\s+)?antworte\w*\s+(?:direkt\s+|einfach\s+)?auf\s+diese"
    r"|bitte\s+beachten?(?:\s+sie)?\s*:"
    r"|beantwoorden\s*:|antwoord\s+(?:gewoon\s+|direct\s+)?op\s+deze"
    r"|répondez\s+(?:directement\s+)?à\s+(?:cet|ce)\b|rispondi\s+(?:direttamente\s+)?a\s+questa"
    r"|sicherheit\s+bei\s+\S+\s*:"
    r"|[^\n]{0,60}\b(?:gmbh|b\.v\.|n\.v\.|s\.a\.|s\.p\.a\.|ltd\.?|inc\.|ag|se|kg)\b[^\n]{0,20}"
    r"[·|•][^\n]{0,120}$"
    r"|[^\n]{0,40}\b(?:gmbh|b\.v\.|n\.v\.|s\.p\.a\.|ltd|inc)\.?\s*$"
    r"|[^\n]{0,40}\b(?:gmbh|ag|se|kg|b\.v\.|ltd|inc)\.?,\s[^\n]{0,60}\b\d{4,5}\s+\w[^\n]{0,40}$"
    r"|(?:[^\n]{0,40}[,.]\s*)?(?:das|the|il|het|le|la|l'|dein|ihr|euer|je|uw|votre|your)\s+"
    r"(?:[\w.-]+[\s-]){0,2}?(?:team|équipe|squadra)(?:\s+(?:di|van|de|von|of)\s+[\w.-]+)?\s*$"
    r"|(?:\w+\s+){0,2}(?:ansehen|anzeigen|bekijken|view|voir|visualizza)\s*$"
    r"|(?:view|zum|zur|bekijk|voir|open|vai\s+al)\s+(?:the\s+|l'|de\s+)?[\w-]+\s*$"
    r"|dies\s+ist\s+eine\s+automatisch|diese\s+e-?mail\s+wurde\s+automatisch"
    r"|this\s+is\s+an\s+automated|bitte\s+antworten\s+sie\s+nicht\s+auf\s+diese"
    r"|please\s+do\s+not\s+reply\s+to\s+this"
    r"|©|\(c\)\s*\d{4}|copyright\b|all\s+rights\s+reserved|alle\s+rechte\s+vorbehalten"
    r")",
    re.IGNORECASE,
)


# what a form or lead system writes when the customer left the message field empty
_NO_MESSAGE = re.compile(
    r"^\s*(?:der\s+kunde\s+hat\s+keine\s+nachricht\s+eingegeben|keine\s+nachricht(?:\s+angegeben)?"
    r"|keine\s+angabe|keine\s+angaben|no\s+message|no\s+comments?|n/?a|none|-+|/|geen\s+bericht"
    r"|aucun\s+message|nessun\s+messaggio)\s*[.!]?\s*$",
    re.IGNORECASE,
)


# relay mails whose text part was generated from HTML keep "[text](https://…)" links
_MARKDOWN_LINK = re.compile(r"\[([^\[\]\n]{1,200})\]\((?:https?|mailto):[^()\s]{1,2000}\)")


# the first words the alternatives above can start with: a cheap gate in front of the
# big pattern, which runs for every line of every message block
FIRST_WORDS = frozenset(
    "bitte beantworte beantworten antworte antworten nutze nutzen please reply respond answer"
    " gebruik beantwoord utilisez répondez diese this dit ce questo gesendet sent newsletter"
    " abmelden abbestellen unsubscribe afmelden se désinscription disiscriviti im in view open"
    " bekijk voir online-version onlineversion impressum datenschutz datenschutzerklärung"
    " datenschutzhinweis datenschutzhinweise privacy privacyverklaring mentions informativa"
    " schütze schützen dein ihr euer je uw votre your the copyright all alle dies sie du you"
    " u vous ricevi antworte antwortet beantwoorden antwoord rispondi sicherheit das il het le la"
    " zum zur vai met mit cordiali".split()
)
_FOOTER_START = re.compile(
    r"[\s>*_\-–|]*(?:" + trie_pattern(set(FIRST_WORDS) | {"l'", "(c)"}) + ")", re.IGNORECASE
)
# footers recognised by a word anywhere in the line, not by its first word (plain
# substring tests: a regex alternation searched at every position cost more than the rest)
_ANYWHERE_WORDS = ("rowser", "©", "gmbh", "b.v.", "n.v.", "s.p.a.", "ltd", "inc.", " ag,", " se,")
_ANYWHERE_ENDS = ("ansehen", "anzeigen", "bekijken", "view", "voir", "visualizza")


def _anywhere(line: str) -> bool:
    lowered = line[:300].lower()
    for word in _ANYWHERE_WORDS:  # a loop, not any(<generator>): called for every end line
        if word in lowered:
            return True
    return lowered.rstrip().endswith(_ANYWHERE_ENDS)


_WORD_END = re.compile(r"[^\w'-]+$")


def is_footer(line: str) -> bool:
    """True for a line that starts platform boilerplate (only the first 300 characters count)."""
    head = line[:300]
    first = head[:40].lstrip(" \t>*_-–|").split(" ", 1)[0].lower()
    if first not in FIRST_WORDS and not _anywhere(head):
        first = _WORD_END.sub("", first)
        if first not in FIRST_WORDS and not first.startswith(("l'", "(c)")):
            return False
    return bool(_FOOTER.match(head))


def _may_be_footer(line: str) -> bool:
    """Cheap gate: the footer pattern can only match lines starting with these words."""
    return bool(_FOOTER_START.match(line)) or _anywhere(line)


def _footer_lines(lines: list[str]) -> set[int]:
    """Numbers of the footer lines among the first and the last lines of a message.

    Platforms put their boilerplate below the customer's text (and a "view in
    browser" line above it), so a long message is only tested at its two ends:
    testing every line of a 20 KB message cost more than parsing the mail.
    """
    count = len(lines)
    numbers = list(range(min(_HEAD_LINES, count))) + list(
        range(max(_HEAD_LINES, count - _TAIL_LINES), count)
    )
    found: set[int] = set()
    for number in numbers:
        stripped = lines[number].strip()
        if stripped and _may_be_footer(stripped) and is_footer(stripped):
            found.add(number)
    return found


_HEAD_LINES = 5
_TAIL_LINES = 60


def strip_boilerplate(message: str | None) -> str | None:
    """The message without the platform's footer and header lines.

    A footer line in the first line(s) is a header ("view in browser") and is
    dropped alone; one after customer text ends the message there.
    """
    if not message:
        return message
    if "](" in message:
        message = _MARKDOWN_LINK.sub(r"\1", message)
    lines = message.splitlines()
    footers = _footer_lines(lines)
    kept: list[str] = []
    for number, line in enumerate(lines):
        if number in footers and line.strip():
            if any(k.strip() for k in kept):
                break
            continue
        kept.append(line.rstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    if _NO_MESSAGE.match(text):
        return None
    return text or None
