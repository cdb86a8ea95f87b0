"""Pure decisions of the IMAP poller: cursor, batches, limits, backoff, expunge safety.

No I/O and no clock here: the fetch pass (``mailgate.imap.fetch``) and the
poller loop ask these functions what to do and do it.  Keeping them pure lets
the tests check the exactly-once reasoning without a server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

IDLE_RENEW_SECONDS = 9 * 60  # RFC 2177: servers may drop IDLE after 30 min; many after 10


@dataclass(frozen=True)
class Cursor:
    """The last UID handled in a folder, valid only for that UIDVALIDITY."""

    uidvalidity: int | None
    last_uid: int = 0


def resolve_cursor(stored: Cursor | None, uidvalidity: int) -> tuple[Cursor, bool]:
    """The cursor to use for a folder that now reports ``uidvalidity``.

    Returns ``(cursor, reset)``.  A changed UIDVALIDITY (folder recreated,
    server migrated) means the old UIDs name other messages: start from 0.
    ``reset`` is False for a first contact, which is not a surprise.
    """
    if stored is None or stored.uidvalidity is None:
        return Cursor(uidvalidity, 0), False
    if stored.uidvalidity != uidvalidity:
        return Cursor(uidvalidity, 0), True
    return stored, False


def pending_uids(uids: Iterable[int], cursor: Cursor, limit: int) -> tuple[list[int], bool]:
    """UIDs above the cursor, oldest first, at most ``limit``; and whether more wait.

    ``UID SEARCH n:*`` always returns the highest UID even when it is below
    ``n`` (RFC 3501 6.4.8), so the filter here is needed, not cosmetic.
    """
    newer = sorted(uid for uid in set(uids) if uid > cursor.last_uid)
    return newer[:limit], len(newer) > limit


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def split_oversize(sizes: Mapping[int, int], cap: int) -> tuple[list[int], list[int]]:
    """(UIDs to fetch, UIDs too large to fetch), each sorted."""
    normal = sorted(uid for uid, size in sizes.items() if size <= cap)
    oversize = sorted(uid for uid, size in sizes.items() if size > cap)
    return normal, oversize


def size_batches(uids: Sequence[int], sizes: Mapping[int, int], budget: int) -> list[list[int]]:
    """Split UIDs into FETCH groups of at most ``budget`` bytes (at least one UID each).

    A batch of 100 messages near the 25 MB cap would otherwise be 2.5 GB in memory.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        if current and total + sizes[uid] > budget:
            groups.append(current)
            current, total = [], 0
        current.append(uid)
        total += sizes[uid]
    if current:
        groups.append(current)
    return groups


def advance(cursor: Cursor, handled: Iterable[int]) -> Cursor:
    """The cursor after ``handled`` UIDs are stored and acted on (never moves back)."""
    return Cursor(cursor.uidvalidity, max([cursor.last_uid, *handled]))


@dataclass(frozen=True)
class AfterImport:
    """What happens to a message on the server once it is safely stored."""

    action: str  # flag | move | delete
    folder: str = ""


def parse_after_import(text: str) -> AfterImport:
    """``"flag"``, ``"delete"`` or ``"move:<folder>"``; ValueError otherwise."""
    value = text.strip()
    if value in ("flag", "delete"):
        return AfterImport(value)
    if value.startswith("move:") and value[5:].strip():
        return AfterImport("move", value[5:].strip())
    raise ValueError(f'must be "flag", "delete" or "move:<folder>", not {text!r}')


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (plain IMAP is allowed only there)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def backoff_delay(failures: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1).

    Exponential with "equal jitter": half the step is fixed, half random
    (``jitter`` in [0, 1)), so many mailboxes on one broken provider do not
    reconnect in lock-step, yet never hammer it with near-zero waits.
    """
    step = min(cap, base * 2 ** max(0, failures - 1))
    return step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)


def count_today(day: str | None, count: int, today: str, added: int) -> tuple[str, int]:
    """The "imported today" counter after ``added`` more on ``today``."""
    return (today, count + added) if day == today else (today, added)


def oversize_key(mailbox: str, uidvalidity: int, uid: int) -> str:
    """Identity of an oversize message for the status list and the admin mail."""
    return f"{mailbox}:{uidvalidity}:{uid}"


def expunge_is_safe(deleted: Iterable[int], ours: Iterable[int]) -> bool:
    """Whether a plain EXPUNGE (no UIDPLUS) would remove only our messages.

    ``deleted``: every ``\\Deleted`` message in the folder; ``ours``: those
    mailgate flagged.  See :mod:`mailgate.imap.actions` for why this matters.
    """
    return set(deleted) <= set(ours)


def received_time(internaldate: object, now: datetime) -> datetime | None:
    """``received_at`` of an imported mail: the server's INTERNALDATE, in UTC.

    INTERNALDATE is when the server accepted the mail, i.e. when the customer's
    inquiry arrived, which is what the lead and its escalation clock count
    from (not when mailgate got round to fetching it).  A date in the future
    (a server clock running ahead) is capped at ``now`` so no deadline is
    pushed out; a missing or naive one gives None (the import time is used).
    """
    if not isinstance(internaldate, datetime) or internaldate.tzinfo is None:
        return None
    return min(internaldate.astimezone(UTC), now)
