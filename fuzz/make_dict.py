"""Write ``fuzz/mime.dict``: the libFuzzer dictionary for the parser fuzz targets.

Why a generator: half of the dictionary is the label words, sender domains and
markers the lead parsers look for, and those change with the parsers.  They are
read from the parser modules' own constants (every module-level tuple, set or
dict of strings), so a new label is in the next dictionary without anyone
copying it by hand.  The MIME/RFC 5322/2047/2231 tokens below are fixed.

Run from the repository top: ``python fuzz/make_dict.py > fuzz/mime.dict``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterable, Iterator

import mailgate.parsers

# libFuzzer ignores longer dictionary words (Word::kMaxSize is 64 bytes).
MAX_TOKEN_BYTES = 64

MIME_TOKENS: dict[str, tuple[str, ...]] = {
    "RFC 5322 header fields": (
        "\r\n",
        "\r\n\r\n",
        "\n\n",
        "\r\n ",
        "\r\n\t",
        "From: ",
        "Sender: ",
        "Reply-To: ",
        "To: ",
        "Cc: ",
        "Bcc: ",
        "Subject: ",
        "Date: ",
        "Message-ID: ",
        "In-Reply-To: ",
        "References: ",
        "Return-Path: <>",
        "Received: from ",
        "X-Mailer: TYPO3",
        "X-PHP-Originating-Script: ",
        "Authentication-Results: ",
        "Authentication-Results: mx.autohaus-beispiel.example; ",
        "leads@autohaus-beispiel.example",
        "verkauf@autohaus-beispiel.example",
        "dkim=fail",
        "dmarc=fail",
        "spf=pass",
        "header.d=",
        "Auto-Submitted: auto-replied",
        "Precedence: bulk",
        "List-Id: ",
        "X-Spam-Flag: YES",
        "X-Mailgate-Origin: ",
        "X-MS-Exchange-Message-Is-Ndr: ",
        "X-Failed-Recipients: ",
        "Resent-From: ",
        "<a@b.example>",
        '"Name, First" <x@y.example>',
        "undisclosed-recipients:;",
        "(comment)",
        "Wed, 01 Jan 2025 10:00:00 +0100",
    ),
    "MIME (RFC 2045-2049)": (
        "MIME-Version: 1.0",
        "Content-Type: ",
        "Content-Transfer-Encoding: ",
        "Content-Transfer-Encoding: quoted-printable",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: 8bit",
        "Content-Transfer-Encoding: 7bit",
        "Content-Transfer-Encoding: binary",
        "Content-Transfer-Encoding: x-uuencode",
        "Content-Disposition: attachment",
        "Content-Disposition: inline",
        "Content-ID: ",
        "Content-Description: ",
        "multipart/mixed",
        "multipart/alternative",
        "multipart/related",
        "multipart/report",
        "multipart/signed",
        "multipart/digest",
        "multipart/parallel",
        "text/plain",
        "text/html",
        "text/xml",
        "text/rfc822-headers",
        "message/rfc822",
        "message/global",
        "message/delivery-status",
        "message/disposition-notification",
        "message/partial",
        "application/octet-stream",
        "application/xml",
        "application/pdf",
        "application/zip",
        "report-type=delivery-status",
        "boundary=",
        'boundary="',
        "\r\n--",
        "--\r\n",
        "charset=",
        'charset="utf-8"',
        "charset=iso-8859-1",
        "charset=windows-1252",
        "charset=us-ascii",
        "charset=utf-7",
        "charset=utf-16",
        "charset=x-unknown",
        "name=",
        "filename=",
        'filename="lead.xml"',
        "format=flowed",
        "delsp=yes",
        "=\r\n",
        "=3D",
        "=C3=BC",
        "=00",
        "begin 644 ",
    ),
    "encoded words (RFC 2047) and parameters (RFC 2231)": (
        "=?utf-8?B?",
        "=?utf-8?Q?",
        "=?UTF-8?b?",
        "=?iso-8859-1?Q?",
        "=?windows-1252?q?",
        "=?x-unknown?B?",
        "=?utf-8*de?Q?",
        "?=",
        "?= =?",
        "=0D=0A",
        "*0*=",
        "*1*=",
        "*0=",
        "*=utf-8''",
        "*=iso-8859-1'de'",
        "%E4",
        "%0D%0A",
    ),
    "lead-parser markers that live only in regular expressions": (
        "WG: ",
        "Fwd: ",
        "AW: ",
        "RE: ",
        "[EXTERN] ",
        "---------- Forwarded message ---------",
        "-------- Weitergeleitete Nachricht --------",
        "-----Original Message-----",
        "-----Urspr\u00fcngliche Nachricht-----",
        "Begin forwarded message:",
        "Am 01.01.2025 um 10:00 schrieb ",
        "On Mon, Jan 1, 2025 at 10:00 AM x wrote:",
        "Undeliverable: ",
        "Automatische Antwort: ",
        "Out of Office: ",
        "CAUTION: This email originated from outside the organization",
        "Lead-ID:",
        "Lead-Nr.:",
        "Vorgangsnummer:",
        "Anfrage-Nr.:",
        "Bearbeitungsfrist",
        "innerhalb von 24 Stunden",
        "R\u00fcckmeldung bis",
        "Audi Code:",
        "VW Code:",
        "Konfigurator",
        "UVP",
        "LeadIT",
        "Kampagne:",
        "DE1234.56",
        "Lead-Management",
        "Anfrageart:",
        "Serviceanfrage",
        "Kennzeichen:",
        "Hyundai Partner",
        "Pers\u00f6nliche Angaben des Interessenten",
        "Telefon / Mobil:",
        "Opel",
        "Nissan",
        "Hyundai",
        "Mercedes-Benz",
        "Volkswagen",
        "Call Center",
        "\u00fcbergeben",
        "Neue Anfrage von ",
        "Nieuwe aanvraag van ",
        "https://www.autoscout24.de/angebote/",
        "00000000-0000-0000-0000-000000000000",
        "https://suchen.mobile.de/fahrzeuge/details.html?id=123456789",
        "https://www.kleinanzeigen.de/s-anzeige/golf/1234567890-216-1234",
        "Nachricht von:",
        "This e-mail was sent from a contact form on",
        "Diese E-Mail wurde von einem Kontaktformular",
        "Marketing-Informationen",
        "wordpress@",
        "Gesendet von meinem iPhone",
        "Mit freundlichen Gr\u00fc\u00dfen",
        "+49 170 1234567",
        "0170 1234567",
        "12.345 \u20ac",
        "EUR 12.345,-",
        "WVWZZZ1KZAW000001",
    ),
    "HTML and XML": (
        "<html>",
        "<body>",
        "<br>",
        "<p>",
        "<div>",
        "<table>",
        "<tr>",
        "<td>",
        "</td>",
        "<b>",
        "<script>",
        "<style>",
        "<!--",
        "-->",
        "&nbsp;",
        "&amp;",
        "&lt;adf&gt;",
        "&#x3C;",
        '<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        '<?ADF VERSION "1.0"?>',
        "<!DOCTYPE adf [",
        '<!ENTITY a "aaaa">',
        "&a;",
        "<![CDATA[",
        "]]>",
        "<adf>",
        "</adf>",
    ),
}


def parser_strings() -> Iterator[tuple[str, str]]:
    """``(where, text)`` for every string in a parser module's constant collections."""
    for info in pkgutil.iter_modules(mailgate.parsers.__path__):
        module = importlib.import_module(f"mailgate.parsers.{info.name}")
        for name, value in sorted(vars(module).items()):
            if name.startswith("__"):
                continue
            if isinstance(value, (tuple, frozenset, set, list, dict)) and value:
                items = list(value)
                if all(isinstance(item, str) for item in items):
                    for item in sorted(items):
                        yield f"{info.name}.{name}", item


ADF_TAGS = (
    "prospect", "requestdate", "vehicle", "customer", "contact", "vendor", "vendorname",
    "provider", "finance", "name", "email", "phone", "address", "street", "postalcode",
    "city", "country", "comments", "year", "make", "model", "trim", "vin", "stock", "price",
    "odometer", "status", "interest", "amount", "method", "id",
)  # fmt: skip


def adf_tokens() -> Iterator[str]:
    for tag in ADF_TAGS:
        yield f"<{tag}>"
        yield f"</{tag}>"
    yield '<vehicle interest="trade-in" status="used">'
    yield '<name part="first">'
    yield '<phone type="voice">'
    yield '<price type="quote" currency="EUR">'
    yield '<odometer units="km">'


def quote(token: str) -> str:
    """One dictionary line: printable ASCII as is, everything else as ``\\xNN``."""
    out = []
    for byte in token.encode("utf-8"):
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02X}")
    return '"' + "".join(out) + '"'


def lines() -> Iterable[str]:
    seen: set[str] = set()

    def emit(token: str) -> Iterator[str]:
        if token and token not in seen and len(token.encode("utf-8")) <= MAX_TOKEN_BYTES:
            seen.add(token)
            yield quote(token)

    yield "# libFuzzer dictionary for fuzz/fuzz_parse_raw.py and fuzz/fuzz_extract_lead.py."
    yield "# Generated by fuzz/make_dict.py (do not edit by hand; re-run it when parsers change)."
    for section, tokens in MIME_TOKENS.items():
        yield ""
        yield f"# {section}"
        for token in tokens:
            yield from emit(token)
    yield ""
    yield "# ADF/XML elements (parsers/adf_xml.py)"
    for token in adf_tokens():
        yield from emit(token)
    current = None
    for where, token in parser_strings():
        if where != current:
            yield ""
            yield f"# {where}"
            current = where
        yield from emit(token)
        if token.endswith(":") is False and where.endswith("LABELS"):
            yield from emit(token + ":")
        if "." in token and " " not in token and where.endswith("DOMAINS"):
            yield from emit(f"From: x@{token}")


def main() -> None:
    sys.stdout.write("\n".join(lines()) + "\n")


if __name__ == "__main__":
    main()
