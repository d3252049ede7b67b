"""The contact policy: what holds whatever the strategy says (COMPLIANCE.md).

    policy = PACKS["cn"]                              # a pack's defaults, each overridable
    window = allowed_window(day, zones, policy)       # (earliest, latest) in UTC, or None
    reason = cap_reason(history, at, policy, zone)    # None when another message is allowed

Windows are in the borrower's local time. When a borrower's zone is uncertain (several numbers,
a number shared by several zones), only the overlap of every zone's window is allowed. Caps count
every message to the person (all loans, all channels) and to anyone sharing their number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from cuikuan.domain.holidays import Calendar, Outcome, Unknown, YearDays
from cuikuan.domain.holidays import apply as apply_calendar
from cuikuan.domain.zones import number_zones, zone_key, zones_for_key

HolidayRule = Literal["ignore", "skip", "shift"]
UTC = ZoneInfo("UTC")
# Every reason a cap gives begins so: the report tells the caps (after the control draw) from
# the rules before it by this.
CAP_PREFIX = "cap:"


@dataclass(frozen=True)
class ContactPolicy:
    window_start: time
    window_end: time
    max_per_day: int
    max_per_7_days: int
    min_gap: timedelta
    holiday_calendar: str  # "cn", an ISO country code for `holidays`, or "none"
    require_opt_out: bool
    # The lender's own holiday data for this calendar (years taken whole), and what a day of a
    # year nobody has data for is taken to be.
    holiday_years: Mapping[int, YearDays] = field(default_factory=dict)
    unknown_holidays: Unknown = "working"
    # Only the declared zone, not also the zones the numbers may be in (a lender's documented
    # choice: the borrower is known to live where they said).
    declared_zone_only: bool = False

    @property
    def calendar(self) -> Calendar:
        return Calendar(self.holiday_calendar, self.holiday_years, self.unknown_holidays)


PACKS: dict[str, ContactPolicy] = {
    # 08:00-21:00 is stricter than the rules' 22:00 (GB/T 45251-2025, CBA 2026); the SMS caps are
    # cuikuan's own default ("appropriate frequency"): the rules give no number.
    "cn": ContactPolicy(time(8), time(21), 1, 3, timedelta(hours=20), "cn", False),
    # Regulation F 1006.6(b)(1)(i): not before 08:00 or after 21:00 at the consumer's location.
    "us": ContactPolicy(time(8), time(21), 1, 3, timedelta(hours=20), "US", True),
    # FCA CONC 7.9: no contact at unreasonable times, usually 08:00-21:00.
    "eu": ContactPolicy(time(8), time(21), 1, 3, timedelta(hours=20), "GB", False),
}


def policy_for(pack: str, **overrides: object) -> ContactPolicy:
    """A pack's policy with the lender's own values in place of the defaults (None keeps one)."""
    base = PACKS[pack]
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def candidate_zones(
    customer_zone: str | None,
    phones: Iterable[str],
    default_zone: str,
    declared_only: bool = False,
) -> list[str]:
    """Every zone the borrower may be in: their declared zone and every zone each of their
    numbers may be in (only the declared one when the lender sets `declared_zone_only`); the
    default when nothing is known. The window is then the overlap of all of them."""
    zones: list[str] = [customer_zone] if customer_zone else []
    if not (customer_zone and declared_only):
        for e164 in phones:
            zones += [z for z in number_zones(e164) if z not in zones]
    return zones or [default_zone]


class ZoneCache:
    """`candidate_zones` remembered by the declared zone and each number's zone key (the
    longest prefix the time-zone table lists, which is what the answer depends on)."""

    def __init__(self, default_zone: str, declared_only: bool = False) -> None:
        self.default_zone = default_zone
        self.declared_only = declared_only
        self._known: dict[tuple[str | None, tuple[str, ...]], list[str]] = {}

    def zones(self, customer_zone: str | None, phones: Sequence[str]) -> list[str]:
        return self.by_keys(customer_zone, tuple(zone_key(p) for p in phones))

    def by_keys(self, customer_zone: str | None, keys: tuple[str, ...]) -> list[str]:
        found = self._known.get((customer_zone, keys))
        if found is None:
            zones: list[str] = [customer_zone] if customer_zone else []
            if not (customer_zone and self.declared_only):
                for key in keys:
                    zones += [z for z in zones_for_key(key) if z not in zones]
            found = self._known[(customer_zone, keys)] = zones or [self.default_zone]
        return found


def allowed_window(
    day: date, zones: Sequence[str], policy: ContactPolicy
) -> tuple[datetime, datetime] | None:
    """The UTC interval that lies inside the window on `day` in every one of `zones`."""
    earliest, latest = [], []
    for name in zones:
        zone = ZoneInfo(name)
        earliest.append(_local(day, policy.window_start, zone).astimezone(UTC))
        latest.append(_local(day, policy.window_end, zone).astimezone(UTC))
    lo, hi = max(earliest), min(latest)
    return (lo, hi) if lo < hi else None


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    # In a DST gap (fold=0) this is the moment just after the clocks jump, whose local reading
    # is later than `clock`: still inside the window, never outside it.
    return datetime.combine(day, clock, tzinfo=zone)


def inside_window(moment: datetime, zones: Sequence[str], policy: ContactPolicy) -> bool:
    """Whether a UTC moment is inside the window in every zone (the check made at send time)."""
    for name in zones:
        local = moment.astimezone(ZoneInfo(name))
        if not (policy.window_start <= local.time().replace(tzinfo=None) <= policy.window_end):
            return False
    return True


def cap_reason(
    history: Sequence[datetime], at: datetime, policy: ContactPolicy, zone: str
) -> str | None:
    """Why one more message at `at` would break a cap, or None. `history`: earlier sends (UTC)
    to this person or to any number they share, across loans and channels."""
    earlier = [h for h in history if h <= at]
    if not earlier:
        return None
    local_day = at.astimezone(ZoneInfo(zone)).date()
    today = sum(1 for h in earlier if h.astimezone(ZoneInfo(zone)).date() == local_day)
    if today >= policy.max_per_day:
        return f"{CAP_PREFIX} {today} message(s) already on {local_day} (max {policy.max_per_day} a day)"
    week = sum(1 for h in earlier if at - h < timedelta(days=7))
    if week >= policy.max_per_7_days:
        return f"{CAP_PREFIX} {week} message(s) in the last 7 days (max {policy.max_per_7_days})"
    gap = at - max(earlier)
    if gap < policy.min_gap:
        hours = policy.min_gap.total_seconds() / 3600
        return f"{CAP_PREFIX} last message {gap.total_seconds() / 3600:.1f} h ago (at least {hours:g} h apart)"
    return None


def is_working_day(day: date, calendar: str) -> bool:
    """China: official holidays and make-up working days (chinese_calendar); elsewhere the
    `holidays` package and weekends; "none": every day works. A year without data counts as
    an ordinary week (the plan uses `holiday_outcome`, which follows the lender's choice)."""
    works, _ = Calendar(calendar).working(day)
    return bool(works)


def holiday_outcome(
    day: date, rule: str, contact: ContactPolicy, days_to_due: int | None = None
) -> Outcome:
    """The day a step sends on (the same, the next working day, or none) and why: the one
    holiday rule the plan, explain and the sender share."""
    return apply_calendar(day, rule, contact.calendar, days_to_due)


SUPPRESSIONS = (
    "opted_out", "wrong_number", "dispute", "hardship", "promise_pending",
    "plan_current", "deceased", "complaint", "paid_in_full", "do_not_contact", "reply_unread",
)  # fmt: skip
FLAG_SUPPRESSIONS = {
    "deceased": "deceased", "dispute": "dispute", "hardship": "hardship",
    "complaint": "complaint", "wrong_number": "wrong_number", "do_not_contact": "do_not_contact",
    "reply_unread": "reply_unread",
}  # fmt: skip


def suppression_reasons(
    flags: Iterable[str],
    opted_out_channels: Iterable[str],
    channel: str,
    paid_in_full: bool,
    promise_pending: bool = False,
    plan_current: bool = False,
) -> list[str]:
    """Every reason not to contact, in a fixed order (the first is the one reported)."""
    found = {FLAG_SUPPRESSIONS[f] for f in flags if f in FLAG_SUPPRESSIONS}
    if channel in set(opted_out_channels):
        found.add("opted_out")
    if paid_in_full:
        found.add("paid_in_full")
    if promise_pending:
        found.add("promise_pending")
    if plan_current:
        found.add("plan_current")
    return [s for s in SUPPRESSIONS if s in found]
