"""The time zones a number may be in, from libphonenumber's time-zone table, by prefix.

    key = zone_key("+12087041234")          # "1208704": the longest prefix the table knows
    zones_for_key(key)                       # ("America/Los_Angeles",)
    zones_for_key(zone_key("+12705550000"))  # every zone area code 270 may be in

The answer depends on the longest prefix of the number that the table lists (North America
goes by area code and exchange: 208-703 is Mountain, 208-704 Pacific), so that prefix is what a
cache may be keyed by. When the table has finer entries below the prefix that matched (an area
code split between zones, the exchange not listed), the number may be in any of them: all are
returned, so the window is their overlap. `zone_key_expr` is the same key over a column
(property-tested equal).
"""

from __future__ import annotations

from functools import cache, lru_cache

import polars as pl
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

UNKNOWN = "Etc/Unknown"


def zone_key(e164: str) -> str:
    """The longest prefix of the number's digits that the table lists ("" when none)."""
    # It depends on the first few digits only, which a book's numbers share: remembered by them.
    return _key_of_head(e164.lstrip("+")[:TIMEZONE_LONGEST_PREFIX])


@lru_cache(maxsize=100_000)
def _key_of_head(digits: str) -> str:
    for n in range(len(digits), 0, -1):
        if digits[:n] in TIMEZONE_DATA:
            return digits[:n]
    return ""


def zone_key_expr(e164: pl.Expr) -> pl.Expr:
    """`zone_key` over a column of E.164 numbers."""
    digits = e164.str.strip_chars_start("+")
    key: pl.Expr = pl.lit("", dtype=pl.String)
    for n in range(1, TIMEZONE_LONGEST_PREFIX + 1):
        prefix = digits.str.slice(0, n)
        known = _keys_of_length(n)
        if known:
            key = (
                pl.when((digits.str.len_chars() >= n) & prefix.is_in(known))
                .then(prefix)
                .otherwise(key)
            )
    return key


@cache
def _keys_of_length(n: int) -> list[str]:
    return sorted(k for k in TIMEZONE_DATA if len(k) == n)


@lru_cache(maxsize=100_000)
def zones_for_key(key: str) -> tuple[str, ...]:
    """Every zone a number whose longest listed prefix is `key` may be in (never Etc/Unknown)."""
    if not key:
        return ()
    found: list[str] = []
    for k in (key, *_finer(key)):
        for zone in TIMEZONE_DATA[k]:
            if zone != UNKNOWN and zone not in found:
                found.append(zone)
    return tuple(found)


@cache
def _children() -> dict[str, list[str]]:
    """Each listed prefix -> the listed prefixes directly below it (the nearest listed ones)."""
    out: dict[str, list[str]] = {}
    for k in TIMEZONE_DATA:
        for n in range(len(k) - 1, 0, -1):
            if k[:n] in TIMEZONE_DATA:
                out.setdefault(k[:n], []).append(k)
                break
    return out


def _finer(key: str) -> list[str]:
    """Every listed prefix below `key`: a number matching `key` itself matched none of them."""
    out: list[str] = []
    stack = list(_children().get(key, []))
    while stack:
        k = stack.pop()
        out.append(k)
        stack.extend(_children().get(k, []))
    return out


def number_zones(e164: str) -> tuple[str, ...]:
    return zones_for_key(zone_key(e164))
