"""Money as integer minor units (fen, cents); never float.

>>> parse_amount("¥1,234.5", digits=2)
123450
>>> format_minor(123450, digits=2)
'1,234.50'
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from babel.numbers import get_currency_precision

# Symbols and words a core-banking export may put around a number.
CURRENCY_MARKS = r"(?:¥|\$|€|£|元|人民币|RMB|CNY|USD|EUR|GBP|HKD|JPY)"
_MARKS = re.compile(rf"^\s*{CURRENCY_MARKS}?\s*(.*?)\s*{CURRENCY_MARKS}?\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"^(-)?([0-9]+)(?:\.([0-9]*))?$")
# Digits before the decimal point. 10^11 major units (with up to 3 minor digits: 10^14 minor)
# times the most instalments a loan can have (9,999) stays inside a signed 64-bit sum: a loan's
# total is always exact (15 digits let 100 instalments wrap it negative).
MAX_DIGITS = 11


@cache
def currency_digits(code: str) -> int:
    """Minor-unit exponent of an ISO 4217 currency (CNY 2, JPY 0, KWD 3)."""
    digits: int = get_currency_precision(code.upper())
    return digits


def normalise_amount_text(text: str) -> str:
    """Full-width digits to ASCII, currency marks and thousands separators dropped."""
    text = unicodedata.normalize("NFKC", text).replace("￥", "¥")
    m = _MARKS.match(text)
    core = m.group(1) if m else text
    return core.replace(",", "").replace(" ", "")


def parse_amount(text: str, digits: int) -> int:
    """A non-negative amount in minor units; ValueError says what was expected."""
    core = normalise_amount_text(text)
    m = _NUMBER.match(core)
    if not m:
        raise ValueError("expected an amount like 1,234.50")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if sign:
        raise ValueError("amount must not be negative")
    if len(frac) > digits:
        raise ValueError(f"amount has more than {digits} decimal places")
    if len(whole.lstrip("0")) > MAX_DIGITS:
        raise ValueError(f"amount is too large (at most {MAX_DIGITS} digits before the point)")
    scale: int = 10**digits
    return int(whole) * scale + int(frac.ljust(digits, "0") or "0")


def format_minor(amount: int, digits: int, grouping: bool = True) -> str:
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    head = f"{whole:,}" if grouping else str(whole)
    return f"{sign}{head}.{frac:0{digits}d}" if digits else f"{sign}{head}"
