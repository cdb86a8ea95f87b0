"""Who gets a lead: pure policies (``policies``, ``matching``) and their I/O.

``service`` (rotation state, assign, dry run), ``customers`` (matching I/O),
``notices`` (mails, trade-in PDF via ``tradein_pdf``), ``intake`` (the pipeline's
pool notices and follow-up attaching), ``actions`` (manual
reassign / forward / pool take / delete for the web UI).
"""
