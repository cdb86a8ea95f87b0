"""The knobs of the IMAP intake, in one frozen value shared by every part of it.

A separate module because the connection (socket timeout), one fetch pass
(batch and size limits) and the long-running poller (IDLE, backoff) all read
it, and none of them should import another just for its settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.config import Settings
from mailgate.imap.rules import IDLE_RENEW_SECONDS


@dataclass(frozen=True)
class Tuning:
    """Knobs of the poller; defaults suit a dealer's inbox, tests shrink the waits."""

    batch_size: int = 100  # messages per FETCH + commit
    max_per_pass: int = 1000  # then the loop yields (stop, fetch-now) before going on
    max_message_size: int = 25 * 1024 * 1024  # as for SMTP
    fetch_budget: int = 32 * 1024 * 1024  # bytes of mail held in memory per FETCH
    socket_timeout: float = 60.0
    idle_renew: float = IDLE_RENEW_SECONDS
    idle_slice: float = 1.0  # how often an IDLE wait looks at the stop flag
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    lock_retry: float = 5.0  # a standby asks for the lock this often: the takeover delay

    @classmethod
    def from_settings(cls, settings: Settings) -> Tuning:
        return cls(max_message_size=settings.smtp.max_message_size)
