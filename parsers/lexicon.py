"""The multilingual label lexicon under the general field reader (:mod:`.reader`).

Where it sits: every parser's mails label the same dozen facts with different
words — a form builder's editor, a portal's country template, an OEM system's
translation.  Matching exact strings (``fields.LABELS``) fails on the first
unseen synonym, so labels are compared in a *folded* form (lower case, accents
and ``ß`` folded, punctuation and spaces removed, a possessive such as
"Ihre"/"your"/"uw"/"votre" and a required-field marker dropped): "Ihre
E-Mail-Adresse*", "E-mail adres :" and "EMAIL" all fold to a known key.

The words come from the portals' templates (FORMATS.md), the form builders'
default labels (Contact Form 7, powermail, WPForms, Gravity Forms, Elementor,
Wix, Jimdo, HubSpot), the OEM lead systems' field lists and the ADF element
names, in German, English, Dutch, French and Italian.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# field -> labels.  One label list per field; a label belongs to one field only.
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "name": (
        "Name",
        "Vor- und Nachname",
        "Vor- und Zuname",
        "Name, Vorname",
        "Vollständiger Name",
        "Kontaktperson",
        "Ansprechpartner",
        "Interessent",
        "Interessentin",
        "Kunde",
        "Kundenname",
        "Absender",
        "Full name",
        "Your name",
        "Contact name",
        "Customer name",
        "Customer",
        "Naam",
        "Volledige naam",
        "Contactpersoon",
        "Klant",
        "Nom",
        "Nom complet",
        "Nom et prénom",
        "Prénom et nom",
        "Nome",
        "Nome e cognome",
        "Nominativo",
        "Cliente",
        "Name des Interessenten",
        "Name des Kunden",
        "Koper",
        "Acheteur",
        "From",
        "Von",
        "Sender",
        "Van",
        "Interested party",
        "Prospect",
    ),
    "first_name": (
        "Vorname",
        "First name",
        "Firstname",
        "Given name",
        "Voornaam",
        "Prénom",
        "Prenom",
        "Nome di battesimo",
    ),
    "last_name": (
        "Nachname",
        "Familienname",
        "Zuname",
        "Last name",
        "Lastname",
        "Surname",
        "Family name",
        "Achternaam",
        "Nom de famille",
        "Cognome",
    ),
    "salutation": ("Anrede", "Salutation", "Title of address", "Aanhef", "Civilité", "Titolo"),
    "email": (
        "E-Mail",
        "Email",
        "Mail",
        "E-Mail-Adresse",
        "E-Mail Adresse",
        "Mailadresse",
        "Email address",
        "E-mail address",
        "Kunden-E-Mail",
        "E-Mail des Kunden",
        "E-mailadres",
        "Mailadres",
        "Courriel",
        "Adresse e-mail",
        "Adresse électronique",
        "Adresse mail",
        "Indirizzo email",
        "Posta elettronica",
        "Antwortadresse",
    ),
    "phone": (
        "Telefon",
        "Tel",
        "Tel.",
        "Tel.-Nr.",
        "Tel. Nr.",
        "Telefonnummer",
        "Telefon-Nr.",
        "Rufnummer",
        "Mobil",
        "Mobilnummer",
        "Mobiltelefon",
        "Handy",
        "Handynummer",
        "Telefon / Mobil",
        "Festnetz",
        "Rückrufnummer",
        "Kontaktnummer",
        "Phone",
        "Phone number",
        "Telephone",
        "Telephone number",
        "Mobile",
        "Mobile phone",
        "Mobile number",
        "Cell",
        "Cell phone",
        "Contact number",
        "Telefoon",
        "Telefoonnummer",
        "Mobiel",
        "Mobiel nummer",
        "GSM",
        "Téléphone",
        "Tél",
        "Tél.",
        "Numéro de téléphone",
        "Portable",
        "Telefono",
        "Anrufer",
        "Rufnummer des Anrufers",
        "Caller",
        "Caller number",
        "Beller",
        "Appelant",
        "Chiamante",
        "Numero di telefono",
        "Cellulare",
        "Recapito telefonico",
    ),
    "street": (
        "Straße",
        "Strasse",
        "Straße und Hausnummer",
        "Straße, Hausnummer",
        "Str./Nr.",
        "Anschrift",
        "Adresse",
        "Street",
        "Address",
        "Street address",
        "Straat",
        "Adres",
        "Rue",
        "Indirizzo",
    ),
    "postcode": (
        "PLZ",
        "Postleitzahl",
        "ZIP",
        "ZIP code",
        "Postcode",
        "Postal code",
        "Code postal",
        "CAP",
    ),
    "city": (
        "Ort",
        "Stadt",
        "Wohnort",
        "City",
        "Town",
        "Plaats",
        "Woonplaats",
        "Ville",
        "Città",
        "Localité",
    ),
    "postcode_city": (
        "PLZ / Ort",
        "PLZ Ort",
        "PLZ und Ort",
        "Zip / City",
        "Postcode en plaats",
        "Code postal / Ville",
        "CAP / Città",
    ),
    "country": ("Land", "Country", "Pays", "Paese", "Nazione"),
    "contact_time": (
        "Erreichbarkeit",
        "Erreichbar",
        "Rückruf",
        "Rückrufzeit",
        "Beste Zeit für Rückruf",
        "Bevorzugte Kontaktzeit",
        "Kontaktzeit",
        "Gewünschte Kontaktzeit",
        "Best time to call",
        "Preferred contact time",
        "Contact time",
        "Bereikbaar",
        "Voorkeurstijd",
        "Horaire de contact",
        "Disponibilité",
        "Orario preferito",
    ),
    "contact_way": (
        "Bevorzugter Kontaktweg",
        "Kontaktweg",
        "Kontakt per",
        "Preferred contact",
        "Contact preference",
        "Contactvoorkeur",
        "Moyen de contact",
    ),
    "message": (
        "Nachricht",
        "Ihre Nachricht",
        "Mitteilung",
        "Ihre Frage",
        "Frage",
        "Fragen",
        "Anmerkung",
        "Anmerkungen",
        "Bemerkung",
        "Bemerkungen",
        "Kommentar",
        "Kommentare",
        "Anfrage",
        "Ihre Anfrage",
        "Anliegen",
        "Nachrichtentext",
        "Freitext",
        "Text",
        "Nachricht des Interessenten",
        "Nachricht des Käufers",
        "Nachricht des Kunden",
        "Nachricht an den Händler",
        "Message",
        "Your message",
        "Message body",
        "Comments",
        "Comment",
        "Question",
        "Questions",
        "Your question",
        "Enquiry",
        "Inquiry",
        "Notes",
        "Additional information",
        "Opmerking",
        "Opmerkingen",
        "Bericht",
        "Vraag",
        "Uw vraag",
        "Bericht van de koper",
        "Commentaire",
        "Commentaires",
        "Remarque",
        "Remarques",
        "Question",
        "Demande",
        "Message de l'acheteur",
        "Messaggio",
        "Richiesta",
        "Domanda",
        "Note",
        "Commento",
        "Kundenkommentar",
        "Kundennachricht",
        "Kundenanfrage",
        "Kundenwunsch",
        "Kommentar des Kunden",
        "Customer comment",
        "Customer comments",
        "Customer message",
        "Your enquiry",
        "Your inquiry",
        "Additional comments",
        "Opmerkingen van de klant",
        "Commentaire du client",
        "Nachricht an uns",
    ),
    "make": (
        "Marke",
        "Hersteller",
        "Fabrikat",
        "Make",
        "Brand",
        "Manufacturer",
        "Merk",
        "Marque",
        "Marca",
    ),
    "model": ("Modell", "Fahrzeugmodell", "Modellbezeichnung", "Model", "Modèle", "Modello"),
    # the trim line of OEM lead systems ("Ausstattung: N-Connecta e-POWER"); completes the model
    "trim": (
        "Ausstattungslinie",
        "Ausstattungsvariante",
        "Ausstattung",
        "Version",
        "Trim",
        "Trim level",
        "Uitvoering",
        "Finition",
        "Allestimento",
    ),
    "vehicle": (
        "Fahrzeug",
        "Wunschfahrzeug",
        "Gewünschtes Fahrzeug",
        "Interessiert an",
        "Angebot",
        "Inserat",
        "Ihr Inserat",
        "Anzeige",
        "Anzeigentitel",
        "Fahrzeugangebot",
        "Marke/Modell",
        "Marke / Modell",
        "Make/Model",
        "Make & model",
        "Merk/Model",
        "Marque/Modèle",
        "Marca/Modello",
        "Betreffendes Fahrzeug",
        "Modellwunsch",
        "Wunschmodell",
        "Vehicle",
        "Car",
        "Vehicle of interest",
        "Listing",
        "Offer",
        "Voertuig",
        "Auto",
        "Advertentie",
        "Aanbod",
        "Véhicule",
        "Annonce",
        "Offre",
        "Veicolo",
        "Annuncio",
        "Offerta",
    ),
    "vin": (
        "FIN",
        "VIN",
        "Fahrgestellnummer",
        "Fahrzeug-Identifizierungsnummer",
        "Fahrzeugidentnummer",
        "Chassisnummer",
        "Chassis number",
        "Chassisnr.",
        "Numéro de châssis",
        "N° de châssis",
        "Numero di telaio",
        "Telaio",
    ),
    "listing_id": (
        "Anzeigennummer",
        "Anzeigen-Nr.",
        "Anzeigen-ID",
        "Anzeige-ID",
        "Inserat-Nr.",
        "Inseratsnummer",
        "Inseratnummer",
        "Inserat-ID",
        "Inserats-ID",
        "Angebotsnummer",
        "Angebots-Nr.",
        "Angebots-ID",
        "Angebot-Nr.",
        "Ad ID",
        "Ad number",
        "Ad no.",
        "Listing ID",
        "Listing number",
        "Listing no.",
        "Offer ID",
        "Offer number",
        "Advertentienummer",
        "Advertentienr.",
        "Advertentie-ID",
        "Annonce n°",
        "N° d'annonce",
        "Numéro d'annonce",
        "Référence de l'annonce",
        "Numero annuncio",
        "ID annuncio",
        "Codice annuncio",
    ),
    "stock_number": (
        "Bestandsnummer",
        "Bestands-Nr.",
        "Kommissionsnummer",
        "Kommissions-Nr.",
        "Kom.-Nr.",
        "Fahrzeugnummer",
        "Fahrzeug-Nr.",
        "Fzg.-Nr.",
        "Fzg-Nr.",
        "Interne Nummer",
        "Interne Nr.",
        "Interne Fahrzeugnummer",
        "Händler-Fahrzeugnummer",
        "Händlerfahrzeugnummer",
        "Fahrzeugnummer des Händlers",
        "Händlernummer des Fahrzeugs",
        "Händler-Nr.",
        "Ihre Fahrzeugnummer",
        "Ihre interne Nummer",
        "Lagernummer",
        "Referenz",
        "Referenznummer",
        "Ref.",
        "Ref",
        "Stock no.",
        "Stock number",
        "Stock #",
        "Stock ID",
        "Stock",
        "Dealer reference",
        "Reference",
        "Dealer stock number",
        "Voorraadnummer",
        "Referentie",
        "Interne referentie",
        "Référence",
        "Référence interne",
        "Numéro de stock",
        "Riferimento",
        "Codice interno",
        "Fahrzeug-ID",
        "Fahrzeug ID",
        "Fahrzeug-Nr. des Händlers",
        "Fahrzeugnummer des Händlers",
        "Händler-Fahrzeugnr.",
        "Händlerfahrzeugnr.",
        "Händlernummer Fahrzeug",
        "Händler-Referenz",
        "Händlerreferenz",
        "Händler-Ref.",
        "Eigene Nummer",
        "Ihre Nummer",
        "Kommissionsnr.",
        "Komm.-Nr.",
        "Kommissions-Nummer",
        "Int. Nr.",
        "Interne Nr",
        "Vehicle number",
        "Vehicle no.",
        "Vehicle ID",
        "Dealer ref.",
        "Dealer ref",
        "Dealer vehicle number",
        "Internal number",
        "Internal reference",
        "Referentienummer",
        "Eigen referentie",
        "Réf.",
        "Réf. interne",
        "Numéro interne",
        "Référence vendeur",
        "Rif.",
        "Rif. concessionario",
        "Riferimento concessionario",
        "Codice veicolo",
    ),
    "price": (
        "Preis",
        "Kaufpreis",
        "Verkaufspreis",
        "Fahrzeugpreis",
        "Angebotspreis",
        "Barpreis",
        "Hauspreis",
        "Listenpreis",
        "UVP",
        "Gesamtpreis",
        "Price",
        "Asking price",
        "Sale price",
        "Vehicle price",
        "Prijs",
        "Vraagprijs",
        "Verkoopprijs",
        "Prix",
        "Prix de vente",
        "Prezzo",
        "Prezzo di vendita",
    ),
    "mileage": (
        "Kilometerstand",
        "km-Stand",
        "Laufleistung",
        "Kilometer",
        "Mileage",
        "Odometer",
        "Kilometrage",
        "Kilométrage",
        "Chilometraggio",
    ),
    "first_registration": (
        "Erstzulassung",
        "EZ",
        "Zulassung",
        "Baujahr",
        "First registration",
        "Registration date",
        "Year",
        "Bouwjaar",
        "Eerste toelating",
        "Première immatriculation",
        "Mise en circulation",
        "Immatricolazione",
        "Anno",
    ),
    "plate": (
        "Kennzeichen",
        "Amtliches Kennzeichen",
        "Licence plate",
        "License plate",
        "Reg. no.",
        "Kenteken",
        "Nummerplaat",
        "Immatriculation",
        "Plaque",
        "Targa",
    ),
    "down_payment": (
        "Anzahlung",
        "Sonderzahlung",
        "Leasing-Sonderzahlung",
        "Down payment",
        "Deposit",
        "Aanbetaling",
        "Apport",
        "Acconto",
        "Anticipo",
    ),
    "monthly_rate": (
        "Monatliche Rate",
        "Rate",
        "Monatsrate",
        "Leasingrate",
        "Finanzierungsrate",
        "Monthly rate",
        "Monthly payment",
        "Maandbedrag",
        "Mensualité",
        "Rata mensile",
    ),
    "term": ("Laufzeit", "Term", "Looptijd", "Durée", "Durata"),
    "appointment": (
        "Wunschtermin",
        "Termin",
        "Terminwunsch",
        "Gewünschter Termin",
        "Preferred date",
        "Appointment",
        "Gewenste datum",
        "Date souhaitée",
    ),
    "consent": (
        "Datenschutz",
        "Datenschutzerklärung",
        "Einwilligung",
        "DSGVO",
        "Privacy",
        "Privacy policy",
        "Consent",
        "Privacyverklaring",
        "Consentement",
    ),
    "subject": ("Betreff", "Subject", "Onderwerp", "Objet", "Sujet", "Oggetto"),
    "lead_number": (
        "Lead-ID",
        "Lead-Nr.",
        "Lead-Nummer",
        "Lead number",
        "Vorgangsnummer",
        "Anfrage-Nr.",
        "Anfragenummer",
        "Anfrage-ID",
    ),
}

# Headings that open a block whose labels belong to another object than the wanted car.
SECTION_LABELS: dict[str, tuple[str, ...]] = {
    "trade_in": (
        "Inzahlungnahme",
        "Inzahlungnahme-Fahrzeug",
        "Fahrzeug zur Inzahlungnahme",
        "Ihr Gebrauchter",
        "Trade-in",
        "Trade-in vehicle",
        "Your vehicle",
        "Inruil",
        "Inruilauto",
        "Inruilaanvraag",
        "Reprise",
        "Véhicule à reprendre",
        "Demande de reprise",
        "Permuta",
        "Ankauf",
    ),
    "finance": (
        "Finanzierung",
        "Leasing",
        "Finanzierungswunsch",
        "Finanzierung / Leasing",
        "Financing",
        "Finance",
        "Financiering",
        "Financement",
        "Finanziamento",
    ),
    "vehicle": (
        "Fahrzeugdaten",
        "Fahrzeuginformationen",
        "Angebotsdaten",
        "Vehicle details",
        "Vehicle information",
        "Voertuiggegevens",
        "Détails du véhicule",
        "Dati del veicolo",
    ),
    # a form plugin's tracking table (powermail): referrer, country, device — not the customer
    "marketing": (
        "Marketing Informationen",
        "Marketing-Informationen",
        "Marketing information",
        "Marketing Info",
        "Tracking",
        "Technische Informationen",
        "Technical information",
    ),
    "customer": (
        "Kontaktdaten",
        "Kundendaten",
        "Persönliche Angaben",
        "Ihre Daten",
        "Contact details",
        "Contact information",
        "Your details",
        "Contactgegevens",
        "Coordonnées",
        "Dati di contatto",
    ),
}

# Possessives and politeness a form puts before a label: "Ihre E-Mail", "Uw naam".
_POSSESSIVE = re.compile(
    r"^(?:ihre?|ihren|dein|deine|sein|seine|unsere?|your|his|her|uw|je|jouw|zijn|haar|votre"
    r"|vos|ton|ta|tu|son|sa|il tuo|la tua|il suo|la sua|il vostro|la vostra)\s+",
)
_MARKERS = re.compile(r"\((?:optional|freiwillig|pflichtfeld|required|facultatif|optioneel)\)")
_NON_ALNUM = re.compile(r"[^0-9a-z#]+")


def fold(label: str) -> str:
    """The comparison key of a written label: ``Ihre E-Mail-Adresse*`` -> ``emailadresse``.

    Case, accents (``Téléphone``), ``ß``, punctuation, spaces, a required-field
    star and a leading possessive make no difference to what a label means.
    """
    text = unicodedata.normalize("NFKD", label.replace("ß", "ss").replace("ẞ", "ss"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower().strip()
    text = _MARKERS.sub(" ", text)
    text = _POSSESSIVE.sub("", " ".join(text.replace("\u00a0", " ").split()))
    return _NON_ALNUM.sub("", text)


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    index: dict[str, str] = {}
    for key, labels in table.items():
        for label in labels:
            index.setdefault(fold(label), key)
    index.pop("", None)
    return index


FIELD_INDEX: dict[str, str] = _index(FIELD_LABELS)
SECTION_INDEX: dict[str, str] = _index(SECTION_LABELS)
# Longest label in words: the reader tries prefixes of a line up to this length.
MAX_LABEL_WORDS = max(len(label.split()) for labels in FIELD_LABELS.values() for label in labels)


# folded first words of every label (and the possessives before them): a line whose first
# word is none of these starts no "Label value" pair, so the reader skips the prefix search
FIRST_WORDS: frozenset[str] = frozenset(
    {fold(label.split()[0]) for labels in FIELD_LABELS.values() for label in labels}
    | {
        "ihr",
        "ihre",
        "ihren",
        "sein",
        "seine",
        "unser",
        "unsere",
        "his",
        "her",
        "zijn",
        "haar",
        "son",
        "sa",
        "dein",
        "deine",
        "your",
        "uw",
        "je",
        "jouw",
        "votre",
        "vos",
        "il",
        "la",
        "tu",
        "ton",
        "ta",
    }
)


# folded word-prefixes of every label ("stock", "stockno"): the reader extends a
# "Label value" candidate word by word only while it is still a prefix of some label
LABEL_PREFIXES: frozenset[str] = frozenset(
    "".join(fold(word) for word in label.split()[:count])
    for labels in FIELD_LABELS.values()
    for label in labels
    for count in range(1, len(label.split()) + 1)
)


def fold_word(word: str) -> str:
    """:func:`fold` of one word, cached (prose repeats its words)."""
    return _fold_word(word)


SECTION_FIRST_WORDS: frozenset[str] = frozenset(
    {fold(label.split()[0]) for labels in SECTION_LABELS.values() for label in labels}
)


def starts_like_label(line: str) -> bool:
    """Cheap test: could ``line`` start with a known label?"""
    head = line[:40].replace("_", " ").split(None, 1)
    return bool(head) and _fold_word(head[0]) in FIRST_WORDS


@lru_cache(maxsize=4096)
def _fold_word(word: str) -> str:
    return fold(word)


@lru_cache(maxsize=8192)
def field_of(label: str) -> str | None:
    """The field a written label names, or None (cached: forms repeat their labels)."""
    if len(label) > 60:
        return None
    return FIELD_INDEX.get(fold(label))


def section_of(line: str) -> str | None:
    """The block a heading line opens (``Inzahlungnahme:`` -> ``trade_in``), or None."""
    stripped = line.strip().strip("#*=-_:[] \t")
    if not stripped or len(stripped) > 50:
        return None
    if _fold_word(stripped.split(None, 1)[0]) not in SECTION_FIRST_WORDS:
        return None
    return SECTION_INDEX.get(fold(stripped))


# stock-number labels that name the car's id without saying whose: the portal's id when a
# plainer dealer's number stands beside them
_WEAK = frozenset(
    fold(x) for x in ("Fahrzeug-ID", "Vehicle ID", "Deine Fahrzeug-ID", "Fahrzeug ID")
)


def is_weak_label(label: str) -> bool:
    return fold(label) in _WEAK


def labels_for(key: str) -> tuple[str, ...]:
    """The written labels of one field (for tests and the layout-mutation test)."""
    return FIELD_LABELS.get(key, ())


def trie_pattern(words: set[str], space: str | None = None) -> str:
    """One regex alternation for many words, branching per character (a trie).

    A plain ``a|b|c…`` over hundreds of words tries each in turn at every line;
    the trie decides on the first character, so a prose line fails in one step.
    """
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict[str, dict]) -> str:
        ends = "" in node
        branches = [
            (space if c == " " and space else re.escape(c)) + render(child)
            for c, child in sorted(node.items())
            if c
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return render(trie)
