"""The list's filter, search and sort, read from the query string (pure, no database).

Every value is checked against what it may be; anything else is dropped, so
a hand-edited URL never causes an error, only a wider list.  ``args()`` gives
back the non-default values, so pager and export links keep the filter and
the plain list stays ``/leads?page=2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date

from mailgate.distribution.categories import CODE as CATEGORY_CODE
from mailgate.models import OPEN_STATUSES, LeadStatus

from ..input_limits import DB_INT_MAX, day
from .due import STATES

KINDS = ("inquiry", "test_drive", "trade_in", "financing", "service", "other")
STATUSES = (*OPEN_STATUSES, LeadStatus.CLOSED.value, LeadStatus.DELETED.value)  # ladder order
OPEN = "open"  # pseudo status: not closed and not deleted
SORTS = ("newest", "oldest", "activity", "due", "customer")
CALL_CENTRE = ("taken", "returned")  # with the source's call centre / handed back from it
TARGETS = ("set", "missed")  # a qualification's processing target (seed 004)
ANSWERED = ("yes", "no")  # a first response (mail, call or logged contact) was recorded
ESCALATIONS = ("stage1", "stage2")  # the ladder's escalation rungs (protocol actions)
MAX_SEARCH = 100


@dataclass(frozen=True)
class Filters:
    q: str = ""
    source: str = ""
    campaign: str = ""
    channel: str = ""  # the lead's permission category (built-in or the dealer's)
    kind: str = ""
    status: str = ""  # "" = everything but deleted
    assignee: str = ""  # a user id, or "none" for unassigned
    location: str = ""
    date_from: date | None = None
    date_to: date | None = None
    due: str = ""
    callcentre: str = ""
    target: str = ""
    review: bool = False
    sort: str = "newest"
    # the supervisor overview's links (issue 21): each of its numbers is a list of leads
    due_today: bool = False  # the rest of a salesperson's day: "My day" less the overdue
    answered: str = ""  # yes / no: a first response is recorded
    escalated: date | None = None  # escalated (stage 1 or 2) on this local day
    escalation: str = ""  # narrows ``escalated`` to one rung: stage1 / stage2

    def args(self) -> dict[str, str]:
        """The query-string form of the values that differ from the defaults."""
        out: dict[str, str] = {}
        for key, value in asdict(self).items():
            if value in ("", None, False) or (key == "sort" and value == "newest"):
                continue
            out[key] = "1" if value is True else str(value)
        return out

    @property
    def active(self) -> bool:
        """True when anything but the sort order narrows the list."""
        return any(k != "sort" for k in self.args())


def _date(value: str | None) -> date | None:
    """A date in the range every filter accepts (``9999-12-31`` + one day has no date)."""
    return day(value)


def _user_id(value: str) -> str:
    """``none`` or a user id the database can hold (ASCII digits, within its integer)."""
    if value == "none":
        return value
    return value if value.isascii() and value.isdigit() and int(value) <= DB_INT_MAX else ""


def _choice(value: str | None, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else ""


def _category(value: str | None) -> str:
    """Any well-formed category code: the dealer defines them, and an unknown one lists nothing."""
    return value if value and CATEGORY_CODE.match(value) else ""


def parse(args: Mapping[str, str]) -> Filters:
    """Filters from request arguments; invalid values are ignored, never an error."""
    assignee = (args.get("assignee") or "").strip()
    return Filters(
        q=" ".join((args.get("q") or "").split())[:MAX_SEARCH],
        source=(args.get("source") or "").strip()[:64],
        campaign=(args.get("campaign") or "").strip()[:128],
        channel=_category(args.get("channel")),
        kind=_choice(args.get("kind"), KINDS),
        status=_choice(args.get("status"), (OPEN, *STATUSES)),
        assignee=_user_id(assignee),
        location=(args.get("location") or "").strip()[:64],
        date_from=_date(args.get("date_from")),
        date_to=_date(args.get("date_to")),
        due=_choice(args.get("due"), STATES),
        callcentre=_choice(args.get("callcentre"), CALL_CENTRE),
        target=_choice(args.get("target"), TARGETS),
        review=args.get("review") in ("1", "on", "true"),
        sort=_choice(args.get("sort"), SORTS) or "newest",
        due_today=args.get("due_today") in ("1", "on", "true"),
        answered=_choice(args.get("answered"), ANSWERED),
        escalated=_date(args.get("escalated")),
        escalation=_choice(args.get("escalation"), ESCALATIONS),
    )


FIELD_NAMES = tuple(f.name for f in fields(Filters))
