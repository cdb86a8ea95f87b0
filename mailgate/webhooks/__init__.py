"""Outgoing webhooks: lead events, stored in the caller's transaction and POSTed later, signed."""
