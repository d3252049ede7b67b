"""Dates and amounts in what borrowers write: 明天, 15号, 下周一, 月底, 11月30日, "on Friday",
"by the 30th", "in 3 days"; 500元, ¥500, $50. Relative to the day the reply came in.

    promised_date("我15号还", date(2026, 11, 29))    # date(2026, 12, 15)
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal

_CN_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_EN_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)} | {
    d.lower(): i for i, d in enumerate(calendar.day_abbr)
}
_EN_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m
}
_MONTHS = "|".join(sorted(_EN_MONTHS, key=len, reverse=True))
_WEEKDAYS = "|".join(sorted(_EN_WEEKDAYS, key=len, reverse=True))


def _cn_number(text: str) -> str:
    """十五 -> 15, 二十 -> 20, 三 -> 3 inside a text; other characters unchanged."""

    def convert(m: re.Match[str]) -> str:
        s = m.group(0)
        if "十" in s:
            tens, _, ones = s.partition("十")
            return str(
                (_CN_DIGITS.get(tens, 1) if tens else 1) * 10
                + (_CN_DIGITS.get(ones, 0) if ones else 0)
            )
        return "".join(str(_CN_DIGITS[c]) for c in s)

    return re.sub(r"[零一二两三四五六七八九十]+(?=[号日天月个])", convert, text)


def normalise(text: str) -> str:
    return _cn_number(unicodedata.normalize("NFKC", text).lower())


def _day_of_month(day: int, today: date) -> date | None:
    for months in (0, 1):
        y, m = divmod(today.month - 1 + months, 12)
        year, month = today.year + y, m + 1
        if day <= calendar.monthrange(year, month)[1]:
            candidate = date(year, month, day)
            if candidate >= today:
                return candidate
    return None


def _weekday(target: int, today: date, next_week: bool) -> date:
    if next_week:
        monday = today + timedelta(days=7 - today.weekday())
        return monday + timedelta(days=target)
    return today + timedelta(days=(target - today.weekday()) % 7)


def _month_day(month: int, day: int, today: date) -> date | None:
    for year in (today.year, today.year + 1):
        if day <= calendar.monthrange(year, month)[1]:
            candidate = date(year, month, day)
            if candidate >= today:
                return candidate
    return None


def promised_date(text: str, today: date) -> date | None:
    t = normalise(text)
    rules: list[tuple[str, object]] = [
        (r"大后天", lambda m: today + timedelta(days=3)),
        (r"后天|day after tomorrow", lambda m: today + timedelta(days=2)),
        (r"明天|明日|明早|明晚|tomorrow", lambda m: today + timedelta(days=1)),
        (
            r"(\d{1,2})\s*天(?:后|之后|以后|内)|过\s*(\d{1,2})\s*天|in (\d{1,2}) days?",
            lambda m: today + timedelta(days=int(next(g for g in m.groups() if g))),
        ),
        (
            r"(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?",
            lambda m: (
                _month_day(int(m.group(1)), int(m.group(2)), today)
                if 1 <= int(m.group(1)) <= 12
                else None
            ),
        ),
        (r"下个?月\s*(\d{1,2})\s*[号日]", lambda m: _next_month_day(int(m.group(1)), today)),
        (r"(\d{1,2})\s*[号日]", lambda m: _day_of_month(int(m.group(1)), today)),
        (
            r"下(?:个)?(?:周|星期|礼拜)([一二三四五六日天末])",
            lambda m: _weekday(_CN_WEEKDAYS[m.group(1)], today, True),
        ),
        (
            r"(?:周|星期|礼拜)([一二三四五六日天末])",
            lambda m: _weekday(_CN_WEEKDAYS[m.group(1)], today, False),
        ),
        (r"下周|下星期|下礼拜|next week", lambda m: _weekday(0, today, True)),
        (
            r"月底|月末|end of (?:the )?month",
            lambda m: today.replace(day=calendar.monthrange(today.year, today.month)[1]),
        ),
        (r"下个?月|next month", lambda m: _next_month_day(1, today)),
        (rf"next ({_WEEKDAYS})\b", lambda m: _weekday(_EN_WEEKDAYS[m.group(1)], today, True)),
        (rf"\b({_WEEKDAYS})\b", lambda m: _weekday(_EN_WEEKDAYS[m.group(1)], today, False)),
        (
            rf"\b({_MONTHS})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b",
            lambda m: _month_day(_EN_MONTHS[m.group(1)], int(m.group(2)), today),
        ),
        (
            rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTHS})\b",
            lambda m: _month_day(_EN_MONTHS[m.group(2)], int(m.group(1)), today),
        ),
        (
            r"\b(?:the|by|on|before)\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b|\b(\d{1,2})(?:st|nd|rd|th)\b",
            lambda m: _day_of_month(int(m.group(1) or m.group(2)), today),
        ),
        (r"今天|今晚|今日|马上|这就|tonight|today|right now", lambda m: today),
    ]
    for pattern, make in rules:
        m = re.search(pattern, t)
        if m:
            value = make(m)  # type: ignore[operator]
            if isinstance(value, date):
                return value
    return None


def _next_month_day(day: int, today: date) -> date | None:
    y, m = divmod(today.month, 12)
    year, month = today.year + y, m + 1
    return date(year, month, day) if day <= calendar.monthrange(year, month)[1] else None


_AMOUNT = re.compile(
    r"(?:[¥$]|rmb|cny)\s*(\d+(?:\.\d{1,2})?)"
    r"|(\d+(?:\.\d{1,2})?)\s*(?:元|块|rmb|yuan|dollars?)"
    r"|(?:还|付|pay)\s*(\d{2,}(?:\.\d{1,2})?)(?![\d号日天月])"
)


def promised_amount(text: str) -> Decimal | None:
    m = _AMOUNT.search(normalise(text).replace(",", ""))
    if not m:
        return None
    return Decimal(m.group(1) or m.group(2) or m.group(3))
