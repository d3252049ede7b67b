"""Working days: the lender's own holiday data first, then the libraries, then the rule for a
year nobody has data for.

    calendar = Calendar("cn", {2027: YearDays(off=..., working=...)}, unknown="working")
    calendar.working(date(2027, 2, 10))        # (False, None)
    calendar.working(date(2028, 1, 3))         # (True, "no holiday data for 2028 ...")

China's State Council publishes each year's holidays and make-up working days late in the
previous year, and `chinesecalendar` follows weeks later; a lender can put the year in its own
holiday file (`holidays.toml` beside the settings, `cuikuan holidays import`) without waiting for
a release. A year in the file is taken whole: it replaces the library's answer for that year.
Elsewhere `holidays` computes every year from rules, so data is never missing.

The file (TOML), one table per calendar and year:

    [cn.2027]
    holidays = ["2027-01-01", "2027-02-05..2027-02-11"]   # days off (ranges inclusive)
    workdays = ["2027-02-14"]                              # make-up working days (调休上班)

Days not listed follow the ordinary week (Monday to Friday work).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

Unknown = Literal["working", "stop"]
RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*(?:\.\.\s*(\d{4}-\d{2}-\d{2}))?\s*$")
MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class YearDays:
    off: frozenset[date] = frozenset()
    working: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Calendar:
    """`name`: "cn", a country code for `holidays` (US, GB...), or "none"."""

    name: str
    years: Mapping[int, YearDays] = field(default_factory=dict)
    unknown: Unknown = "working"

    def has_data(self, year: int) -> bool:
        return self.name == "none" or year in self.years or _library_has(self.name, year)

    def working(self, day: date) -> tuple[bool | None, str | None]:
        """(is it a working day, a note when there was no data): None means the day's year has
        no data and the lender chose `unknown = "stop"`."""
        if self.name == "none":
            return True, None
        own = self.years.get(day.year)
        if own is not None:
            return _ordinary(day, own), None
        found = _library(self.name, day)
        if found is not None:
            return found, None
        note = f"no {self.name} holiday data for {day.year}: " + (
            "treated as an ordinary week (policy.unknown_holidays = working)"
            if self.unknown == "working"
            else "no message on a holiday-bound step (policy.unknown_holidays = stop)"
        )
        if self.unknown == "stop":
            return None, note
        return day.weekday() < 5, note


def _ordinary(day: date, own: YearDays) -> bool:
    if day in own.working:
        return True
    if day in own.off:
        return False
    return day.weekday() < 5


def _library(name: str, day: date) -> bool | None:
    if name == "cn":
        import chinese_calendar

        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return None
    import holidays

    if day.weekday() >= 5:
        return False
    return day not in holidays.country_holidays(name, years=day.year)


def _library_has(name: str, year: int) -> bool:
    return _library(name, date(year, 1, 1)) is not None


@dataclass(frozen=True)
class Outcome:
    """Where a step with a holiday rule sends: `day` (None: not at all, `reason` says why) and
    notes for the trail."""

    day: date | None
    reason: str | None = None
    notes: tuple[str, ...] = ()


def apply(day: date, rule: str, calendar: Calendar, days_to_due: int | None = None) -> Outcome:
    """The day a step with `rule` ("ignore", "skip", "shift") sends on. A pre-due reminder
    shifted onto or past its due date is dropped: it would no longer be a reminder."""
    if rule == "ignore":
        return Outcome(day)
    works, note = calendar.working(day)
    notes = (note,) if note else ()
    if works is None:
        return Outcome(None, note, notes)
    if works:
        return Outcome(day, None, notes)
    if rule == "skip":
        return Outcome(
            None, f"holiday: {day} is not a working day and the step skips holidays", notes
        )
    nxt = day
    for _ in range(MAX_RANGE_DAYS):
        nxt += timedelta(days=1)
        works, note = calendar.working(nxt)
        if note and note not in notes:
            notes = (*notes, note)
        if works is None:
            return Outcome(None, note, notes)
        if works:
            break
    else:
        return Outcome(None, f"holiday: no working day within a year after {day}", notes)
    if days_to_due is not None and days_to_due > 0 and (nxt - day).days >= days_to_due:
        return Outcome(
            None,
            f"holiday: the next working day {nxt} is on or after the due date; a reminder "
            "before the due date is not sent late",
            notes,
        )
    return Outcome(nxt, None, (*notes, f"holiday: moved to the next working day {nxt}"))


# --- the lender's file --------------------------------------------------------------------


class HolidayFileError(ValueError):
    """A problem in a holiday file, with the place it is (calendar.year.field[index])."""


def parse_years(data: Mapping[str, Any]) -> dict[str, dict[int, YearDays]]:
    """`{"cn": {"2027": {"holidays": [...], "workdays": [...]}}}` -> calendars' years."""
    out: dict[str, dict[int, YearDays]] = {}
    for name, years in data.items():
        if not isinstance(years, Mapping):
            raise HolidayFileError(f"{name}: expected a table of years such as [{name}.2027]")
        for year_text, table in years.items():
            where = f"{name}.{year_text}"
            if not re.fullmatch(r"\d{4}", str(year_text)):
                raise HolidayFileError(f"{where}: expected a year such as 2027")
            year = int(year_text)
            if not isinstance(table, Mapping):
                raise HolidayFileError(f"{where}: expected holidays = [...] and workdays = [...]")
            unknown = set(table) - {"holidays", "workdays"}
            if unknown:
                raise HolidayFileError(
                    f"{where}.{sorted(unknown)[0]}: unknown field; expected holidays or workdays"
                )
            off = _days(table.get("holidays", []), year, f"{where}.holidays")
            working = _days(table.get("workdays", []), year, f"{where}.workdays")
            both = off & working
            if both:
                raise HolidayFileError(f"{where}: {min(both)} is both a holiday and a working day")
            out.setdefault(name, {})[year] = YearDays(frozenset(off), frozenset(working))
    return out


def _days(items: object, year: int, where: str) -> set[date]:
    if not isinstance(items, list):
        raise HolidayFileError(f'{where}: expected a list of dates such as ["{year}-01-01"]')
    found: set[date] = set()
    for i, item in enumerate(items):
        place = f"{where}[{i}]"
        m = RANGE.match(item) if isinstance(item, str) else None
        if m is None:
            raise HolidayFileError(
                f"{place}: expected a date 2027-01-01 or a range 2027-02-05..2027-02-11, got {item!r}"
            )
        try:
            first = date.fromisoformat(m.group(1))
            last = date.fromisoformat(m.group(2)) if m.group(2) else first
        except ValueError:
            raise HolidayFileError(f"{place}: no such date in {item!r}") from None
        if last < first or (last - first).days > MAX_RANGE_DAYS:
            raise HolidayFileError(f"{place}: the range {item!r} is backwards or too long")
        if first.year != year or last.year != year:
            raise HolidayFileError(f"{place}: {item!r} is not in {year}")
        found |= {first + timedelta(days=k) for k in range((last - first).days + 1)}
    return found


def dump_years(calendars: Mapping[str, Mapping[int, YearDays]]) -> str:
    """The file's text for these calendars (ranges folded), as `parse_years` reads it."""
    lines = [
        "# Holiday data, taking precedence over the libraries for every year listed here.",
        "# Written by `cuikuan holidays import`; edit freely (format: docs/holidays.md).",
    ]
    for name in sorted(calendars):
        for year in sorted(calendars[name]):
            days = calendars[name][year]
            lines += ["", f"[{name}.{year}]"]
            lines.append(f"holidays = [{', '.join(_ranges(days.off))}]")
            lines.append(f"workdays = [{', '.join(_ranges(days.working))}]")
    return "\n".join(lines) + "\n"


def _ranges(days: frozenset[date]) -> list[str]:
    out: list[str] = []
    ordered = sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == timedelta(days=1):
            j += 1
        text = ordered[i].isoformat() + (f"..{ordered[j].isoformat()}" if j > i else "")
        out.append(f'"{text}"')
        i = j + 1
    return out


def missing_data_warning(as_of: date, calendar: Calendar) -> str | None:
    """A warning for the plan: this year's data is missing, or it is December and next year's
    is (China publishes late in the year; add it before 1 January)."""
    missing = [
        y
        for y in (as_of.year, as_of.year + 1)
        if (y == as_of.year or as_of.month == 12) and not calendar.has_data(y)
    ]
    if not missing:
        return None
    years = " and ".join(str(y) for y in missing)
    return (
        f"no {calendar.name} holiday data for {years}: days without data count as "
        f"{'an ordinary week' if calendar.unknown == 'working' else 'no-send days for holiday-bound steps'} "
        f"(policy.unknown_holidays = {calendar.unknown}); add the year with "
        "`cuikuan holidays import FILE` (docs/holidays.md)"
    )
