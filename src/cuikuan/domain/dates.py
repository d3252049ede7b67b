"""Dates and times as ledgers write them: 2026-11-29, 2026/11/29, 20261129, 2026年11月29日.

>>> parse_date("2026年11月9日")
datetime.date(2026, 11, 9)
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone

DATE_PATTERN = r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?"
COMPACT_DATE_PATTERN = r"([0-9]{4})([0-9]{2})([0-9]{2})"
TIME_PATTERN = r"(?:[ T]+([0-9]{1,2})[:时]([0-9]{2})(?:[:分]([0-9]{2})(?:\.[0-9]+)?秒?)?)?"
_DATE = re.compile(rf"^(?:{DATE_PATTERN}|{COMPACT_DATE_PATTERN}){TIME_PATTERN}$")
EXPECTED_DATE = "expected a date like 2026-11-29, 2026/11/29, 20261129 or 2026年11月29日"
EXPECTED_TIME = "expected a date and time like 2026-11-29 14:30:00"
# Placeholder dates such as 0001-01-01 or 9999-12-31 are typos or "unknown", never a due date.
YEARS = (1900, 2199)
OUT_OF_RANGE = f"date is outside the years {YEARS[0]}-{YEARS[1]}"


def normalise_date_text(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def parse_datetime(text: str) -> datetime:
    """A naive local date-time; a bare date means midnight. ValueError says what was expected."""
    m = _DATE.match(normalise_date_text(text))
    if not m:
        raise ValueError(EXPECTED_TIME)
    y, mo, d = (m.group(i) or m.group(i + 3) for i in (1, 2, 3))
    hh, mm, ss = m.group(7), m.group(8), m.group(9)
    try:
        day = date(int(y), int(mo), int(d))
    except ValueError:
        raise ValueError("no such date") from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise ValueError(OUT_OF_RANGE)
    try:
        clock = time(int(hh or 0), int(mm or 0), int(ss or 0))
    except ValueError:
        raise ValueError("no such time of day") from None
    return datetime.combine(day, clock)


def parse_date(text: str) -> date:
    try:
        return parse_datetime(text).date()
    except ValueError as exc:
        raise ValueError(EXPECTED_DATE if str(exc) == EXPECTED_TIME else str(exc)) from None


EXPECTED_MOMENT = (
    "expected a moment like 2026-11-29T14:30, 2026-11-29 14:30:00, 2026-11-29T14:30:00+08:00 "
    "or 2026-11-29T06:30:00Z (without an offset: UTC)"
)
_OFFSET = re.compile(r"^(.*?)(Z|[+-][0-9]{2}:?[0-9]{2})$", re.IGNORECASE)


def parse_moment(text: str) -> datetime:
    """A moment (aware, UTC) from ISO 8601 with or without an offset, or any form
    `parse_datetime` reads; a moment without an offset is read as UTC. The one spelling every
    command's --at / --now takes. ValueError says what was expected."""
    clean = normalise_date_text(text)
    offset = UTC
    found = _OFFSET.match(clean)
    if found and found.group(1)[-1:].isdigit() and ("T" in clean or " " in clean or ":" in clean):
        clean, sign = found.group(1), found.group(2).upper()
        if sign != "Z":
            digits = sign[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            if delta >= timedelta(hours=24) or int(digits[2:]) >= 60:
                raise ValueError(f"offset {sign} is out of range; {EXPECTED_MOMENT}")
            offset = timezone(delta if sign[0] == "+" else -delta)
    try:
        naive = parse_datetime(clean)
    except ValueError as exc:
        raise ValueError(EXPECTED_MOMENT if str(exc) == EXPECTED_TIME else str(exc)) from None
    return naive.replace(tzinfo=offset).astimezone(UTC)


def local_day(moment: datetime, zone: str) -> date:
    """The calendar day `moment` falls on in `zone` (the book's day of a UTC instant)."""
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(zone)).date()
