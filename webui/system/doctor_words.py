"""``mailgate doctor``'s findings in the admin's words.

The doctor writes for the console, in English, with the configuration keys an
operator edits.  The system page runs the same checks and shows each one
under a German title with a German sentence per state and what to do; the
doctor's own line stays available under "technical message" for whoever
reads the log or asks for help.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from mailgate.doctor import FAIL, OK, WARN, Check


@dataclass(frozen=True)
class Finding:
    """One check as the page shows it."""

    title: object
    status: str  # ok | warn | fail
    says: object
    todo: object
    technical: str  # the doctor's own line (English)


# name -> title, {status: (what it means, what to do)}
WORDS: dict[str, tuple[object, dict[str, tuple[object, object]]]] = {
    "database": (
        _l("Database"),
        {
            OK: (_l("The database answers."), ""),
            FAIL: (
                _l("The database cannot be reached."),
                _l(
                    "Check the database address in the configuration file and that the server runs."
                ),
            ),
        },
    ),
    "migrations": (
        _l("Database version"),
        {
            OK: (_l("The database has the newest structure."), ""),
            FAIL: (
                _l("The database has an older structure than this mailgate needs."),
                _l(
                    "Restart mailgate (it updates the database on start) "
                    "or run 'mailgate db upgrade'."
                ),
            ),
        },
    ),
    "durability": (
        _l("Safe storage"),
        {
            OK: (_l("Every accepted mail is on disk before mailgate confirms it."), ""),
            FAIL: (
                _l("The database may lose confirmed mails after a power cut."),
                _l("Ask your IT to switch on safe writing (fsync) for the database."),
            ),
        },
    ),
    "smtp port": (
        _l("Mail reception"),
        {
            OK: (_l("mailgate answers on its mail port."), ""),
            WARN: (
                _l("Nothing answers on the mail port."),
                _l(
                    "Start mailgate ('mailgate serve') or check the mail port in the configuration."
                ),
            ),
            FAIL: (
                _l("mailgate cannot receive mail on the configured port."),
                _l("Another program uses the port, or it needs more rights: choose another port."),
            ),
        },
    ),
    "relay": (
        _l("Outgoing mail server"),
        {
            OK: (_l("The mail server for outgoing mail accepts mailgate."), ""),
            WARN: (
                _l("No mail server for outgoing mail is configured: nothing is sent."),
                _l("Set [relay] host, port and login in the configuration file."),
            ),
            FAIL: (
                _l("The mail server for outgoing mail cannot be used."),
                _l("Check [relay] host, port, security, username and password."),
            ),
        },
    ),
    "lead addresses": (
        _l("Lead addresses"),
        {
            OK: (_l("mailgate accepts inquiries for the lead addresses."), ""),
            FAIL: (
                _l("No lead address: every inquiry is refused."),
                _l("Enter the lead addresses under Settings → General."),
            ),
        },
    ),
    "base URL": (
        _l("Web address"),
        {
            OK: (_l("Links in mails point to the web address."), ""),
            WARN: (
                _l("Links in mails are missing or travel unencrypted."),
                _l("Enter the https web address under Settings → General."),
            ),
            FAIL: (
                _l("The stored web address cannot be used: mails carry no links."),
                _l("Enter the web address under Settings → General."),
            ),
        },
    ),
    "[web] base_url": (
        _l("Old web address setting"),
        {
            WARN: (
                _l("The configuration file still names a web address (an old setting)."),
                _l("Remove base_url from [web] in the configuration file."),
            )
        },
    ),
    "imap": (
        _l("Mailboxes"),
        {
            OK: (_l("The mailbox accepts mailgate's login."), ""),
            FAIL: (
                _l("mailgate cannot log in to the mailbox."),
                _l("Check server, login and password under Settings → Mailboxes."),
            ),
        },
    ),
    "mx": (
        _l("Mail routing (DNS)"),
        {
            OK: (_l("The domain has mail servers: make sure they deliver to mailgate."), ""),
            WARN: (
                _l("Mail from outside may not reach this domain."),
                _l("Ask your IT to point the domain's mail (MX) to mailgate or its mail server."),
            ),
        },
    ),
    "clock": (
        _l("Clock"),
        {
            OK: (_l("The clock and the time zone are right."), ""),
            WARN: (
                _l("This machine's clock and the database's differ."),
                _l("Ask your IT to switch on time synchronisation on both machines."),
            ),
        },
    ),
    "mail templates": (
        _l("Own mail templates"),
        {
            OK: (_l("Your own mail templates pass the check."), ""),
            WARN: (
                _l("One of your own mail templates is broken: the standard one is sent."),
                _l("Fix it under Settings → Mail templates."),
            ),
        },
    ),
    "disk": (
        _l("Disk space"),
        {
            OK: (_l("There is enough free disk space."), ""),
            WARN: (
                _l("Disk space is getting short."),
                _l("Free disk space; when it is full, mail is refused."),
            ),
            FAIL: (
                _l("Almost no disk space is left: mail may be refused."),
                _l("Free disk space now."),
            ),
        },
    ),
    "dealer settings": (
        _l("Dealer settings"),
        {
            WARN: (
                _l("Not checked: the database cannot be used."),
                _l("Fix the database first."),
            )
        },
    ),
}
GENERIC = {
    OK: (_l("In order."), ""),
    WARN: (_l("Worth a look."), _l("See the technical message.")),
    FAIL: (_l("Needs fixing."), _l("See the technical message.")),
}
UNKNOWN_TITLE = _l("Further check")


def _key(name: str) -> tuple[str, str]:
    """(table key, the part after it): ``imap filiale-nord`` -> (``imap``, ``filiale-nord``)."""
    if name in WORDS:
        return name, ""
    head, _, rest = name.partition(" ")
    if head in ("imap", "mx") and rest:
        return head, rest
    return "", ""


def in_words(check: Check) -> Finding:
    key, subject = _key(check.name)
    title, states = WORDS.get(key, (UNKNOWN_TITLE, GENERIC))
    says, todo = states.get(check.status) or GENERIC.get(check.status, GENERIC[FAIL])
    shown_title: object = f"{title}: {subject}" if subject else title
    technical = check.detail + (f" — {check.fix}" if check.fix and check.status != OK else "")
    return Finding(shown_title, check.status, says, todo, technical)
