"""Dates and times as ledgers write them: 2026-11-29, 2026/11/29, 20261129, 2026年11月29日.

>>> parse_date("2026年11月9日")
datetime.date(2026, 11, 9)
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time

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
