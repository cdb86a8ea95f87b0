"""Slowloris defences of the SMTP listener: per-connection deadlines and fair slots.

Pure bookkeeping, no sockets: :mod:`mailgate.ingest.smtp` owns the transports and
timers and asks these objects what is due and whom to close.

* :class:`Pace` holds the deadlines of one connection.  A command line, once its
  first byte has arrived, must be complete within ``command_timeout``.  In DATA
  the client earns time with every byte (``1 / min_data_rate`` seconds per byte,
  the model of Postfix's ``smtpd_min_data_rate``) and can bank at most
  ``idle_timeout`` seconds: a pause up to the idle timeout is fine, a trickle
  runs out of time.  It also tells a stalled connection from a working one:
  outside DATA by the time since the last complete command line or reply, in
  DATA by the credit used up (a client at the minimum rate or faster keeps its
  credit full; a trickler uses it up second by second).
* :class:`SlotTable` decides who holds the listener's ``max_connections`` slots.
  While one is free, anybody gets it: a relaying MTA (Postfix in front of
  mailgate connects from one address) with 20 or 50 parallel deliveries is not
  refused while it is alone.  When all are taken, a newcomer is admitted by
  closing one connection -- a stalled one first (from any address), else one
  of the address that holds the most slots, if that address holds more than
  its share (``max_connections_per_ip``) and at least two more than the
  newcomer's.  Otherwise the newcomer gets 421.  So tricklers cannot lock
  anybody out, whether they come from one address or from many, and a working
  client within its share is never cut.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any, Protocol


def peer_key(peername: Any) -> str:
    """The address a connection is counted under: the IPv4 address, or the IPv6 /64.

    Why /64: one IPv6 subscriber gets at least a /64, so counting single IPv6
    addresses would give one attacker 2**64 shares.
    """
    host = peername[0] if isinstance(peername, tuple) and peername else str(peername)
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return str(host)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class PaceLimits:
    command_timeout: float  # seconds from a command's first byte to its line end
    idle_timeout: float  # most seconds of DATA credit (and the DATA grace period)
    min_data_rate: float  # bytes per second DATA must average beyond the credit

    @property
    def stall_after(self) -> float:
        """Seconds without progress after which a connection may give its slot away.

        Half the command timeout: a working client completes a command in a round
        trip, so this is far beyond any working client's pause, yet soon enough
        that a newcomer refused now finds a stalled slot when it retries.
        """
        return self.command_timeout / 2


class Pace:
    """Deadlines and progress of one SMTP connection (times from one monotonic clock)."""

    def __init__(self, limits: PaceLimits, now: float) -> None:
        self.limits = limits
        self.progress = now
        self.busy = False  # a handler runs (lookup, store): the client owes nothing
        self.in_data = False
        self.line_deadline: float | None = None
        self.data_deadline: float | None = None

    def received(self, now: float, size: int, line_ended: bool, line_open: bool) -> None:
        """``size`` bytes arrived; did they end a line, and is a line still open after them?"""
        limits = self.limits
        if self.in_data:
            assert self.data_deadline is not None
            earned = self.data_deadline + size / limits.min_data_rate
            self.data_deadline = min(now + limits.idle_timeout, earned)
            return
        if line_ended:
            self.progress = now
            self.line_deadline = now + limits.command_timeout if line_open else None
        elif line_open and self.line_deadline is None:
            self.line_deadline = now + limits.command_timeout

    def replied(self, now: float) -> None:
        self.progress = now

    def enter_data(self, now: float) -> None:
        """After 354: the command-line deadline gives way to the data-rate deadline."""
        self.in_data = True
        self.line_deadline = None
        self.data_deadline = now + self.limits.idle_timeout
        self.progress = now

    def leave_data(self, now: float, line_open: bool) -> None:
        self.in_data = False
        self.data_deadline = None
        self.progress = now
        self.line_deadline = now + self.limits.command_timeout if line_open else None

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.line_deadline, self.data_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    def overdue(self, now: float) -> str | None:
        """``"command"`` or ``"data"`` when that deadline has passed, else None."""
        if self.busy:
            return None
        if self.line_deadline is not None and self.line_deadline <= now:
            return "command"
        if self.data_deadline is not None and self.data_deadline <= now:
            return "data"
        return None

    def stalled_for(self, now: float) -> float | None:
        """Seconds without progress; None while a handler runs (never evict then)."""
        if self.busy:
            return None
        if self.data_deadline is not None:  # in DATA: the credit used up
            return max(0.0, now - (self.data_deadline - self.limits.idle_timeout))
        return now - self.progress


class Occupant(Protocol):
    """A connection as the slot table sees it (hashable by identity)."""

    def stalled_for(self, now: float) -> float | None: ...


@dataclass(frozen=True)
class Admission:
    admitted: bool
    evicted: Occupant | None = None
    reason: str = ""  # why ``evicted`` lost its slot: "stalled" or "over share"


class RefusalTally:
    """Counts refused connections and says when to log them: a flood must not flood the log."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._pending = 0
        self._last = -math.inf

    def refused(self, now: float) -> int:
        """Count one; the number to report now (0: not yet, at most one report per ``every``)."""
        self._pending += 1
        if now - self._last < self.every:
            return 0
        count, self._pending, self._last = self._pending, 0, now
        return count


class SlotTable:
    """The listener's connection slots, shared between client addresses (see module doc)."""

    def __init__(self, limit: int, per_peer: int, stall_after: float) -> None:
        self.limit = limit
        self.per_peer = per_peer
        self.stall_after = stall_after
        self.refusals = RefusalTally()
        self._peers: dict[str, set[Occupant]] = {}
        self._where: dict[Occupant, str] = {}

    @property
    def active(self) -> int:
        return len(self._where)

    def held_by(self, peer: str) -> int:
        return len(self._peers.get(peer, ()))

    def admit(self, peer: str, occupant: Occupant, now: float) -> Admission:
        """Give ``occupant`` a slot, closing (releasing) at most one other to make room."""
        if self.active < self.limit:
            self._take(peer, occupant)
            return Admission(True)
        victim, reason = self._victim(peer, now)
        if victim is None:
            return Admission(False)
        self.release(victim)
        self._take(peer, occupant)
        return Admission(True, victim, reason)

    def release(self, occupant: Occupant) -> None:
        """Free the slot (idempotent: an evicted connection releases again when it closes)."""
        peer = self._where.pop(occupant, None)
        if peer is None:
            return
        slots = self._peers[peer]
        slots.discard(occupant)
        if not slots:
            del self._peers[peer]

    def _take(self, peer: str, occupant: Occupant) -> None:
        self._where[occupant] = peer
        self._peers.setdefault(peer, set()).add(occupant)

    def _victim(self, peer: str, now: float) -> tuple[Occupant | None, str]:
        """The most stalled connection, else the idlest one of the largest over-share peer."""
        mine = self.held_by(peer)
        best: Occupant | None = None
        best_key: tuple[bool, int, float] | None = None
        for slots in self._peers.values():
            held = len(slots)
            over_share = held > self.per_peer and held > mine + 1
            for occupant in slots:
                idle = occupant.stalled_for(now)
                if idle is None:
                    continue
                stalled = idle >= self.stall_after
                if not (stalled or over_share):
                    continue
                key = (stalled, held, idle)
                if best_key is None or key > best_key:
                    best, best_key = occupant, key
        if best is None or best_key is None:
            return None, ""
        return best, "stalled" if best_key[0] else "over share"
