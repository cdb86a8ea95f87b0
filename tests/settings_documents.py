"""Dealer-settings documents the set-up and import-safety tests share."""

from __future__ import annotations

ADMIN = "admin@autohaus.example"
ADMIN_ENTRY = f'\n[[users]]\nemail = "{ADMIN}"\nname = "Ada Admin"\nrole = "admin"\n'
# The README's old minimal document: one salesperson, no admin — the file whose import
# once deactivated the only admin and reopened /setup (issue 16, item 1).
MINIMAL = """
[dealer]
name = "Autohaus Beispiel"
addresses = ["leads@autohaus.example"]
admin_address = "admin@autohaus.example"
unassigned_notice_to = "zentrale@autohaus.example"

[distribution]
fallback_user = "anna@autohaus.example"

[[users]]
email = "anna@autohaus.example"
name = "Anna Schmidt"
"""
