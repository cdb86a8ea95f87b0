"""Outgoing mail: compose (templates -> bytes), outbox (enqueue, claim), send (relay)."""
