"""Phone numbers to E.164 with `phonenumbers`, plus a vectorisable fast path from its own metadata.

>>> normalise_phone("138 0013 8000", "CN")
('+8613800138000', 'mobile')
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

SEPARATORS = r"[;,/、；，|]+"
_KINDS = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_or_mobile",
    PhoneNumberType.VOIP: "voip",
}


def split_phones(raw: str) -> list[str]:
    """One cell may hold several numbers: 13800138000;13900139000."""
    return [p.strip() for p in re.split(SEPARATORS, raw) if p.strip()]


def normalise_phone(raw: str, region: str) -> tuple[str, str]:
    """(E.164, kind) for a number valid in form; ValueError otherwise."""
    text = unicodedata.normalize("NFKC", raw).strip()
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        raise ValueError("expected a phone number such as 13800138000 or +8613800138000") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its region")
    kind = _KINDS.get(phonenumbers.number_type(number), "other")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), kind


# Regions whose mobile pattern overlaps no other number type in phonenumbers' metadata, so a
# match means exactly what `normalise_phone` says (a property test holds them equal). Elsewhere
# (e.g. US, where mobile and fixed-line share one pattern) every number goes the slow way.
FAST_PATH_REGIONS = frozenset({"CN"})


@cache
def mobile_fast_path(region: str) -> tuple[str, str] | None:
    """(regex over cleaned digits, country code) that recognises the region's mobile numbers.

    The pattern is phonenumbers' own mobile pattern, applied to a whole column at once; texts it
    does not match go through `normalise_phone` one distinct value at a time.
    """
    if region not in FAST_PATH_REGIONS:
        return None
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.mobile is None or not meta.mobile.national_number_pattern:
        return None
    pattern = meta.mobile.national_number_pattern
    return rf"^(?:\+{meta.country_code})?({pattern})$", str(meta.country_code)


CLEAN_CHARS = r"[\s\-().]"


def place_sender(address: str, ton: int | None, region: str) -> str | None:
    """The E.164 number a reply came from, as a ledger number would be read, or None when it
    cannot be placed with certainty (it then goes to a person, never to a guessed borrower).

    `ton` is SMPP's type of number: 1 international (the digits start with the country code),
    2 national (read in `region`), 0 unknown (read in `region` as the ledger's numbers are;
    only a number no reading in `region` makes valid is tried as international), 5 a name.
    None: the provider's own convention, international with or without the +."""
    text = re.sub(CLEAN_CHARS, "", unicodedata.normalize("NFKC", address))
    digits = text.lstrip("+")
    if not digits.isdigit() or ton == 5:
        return None
    if text.startswith("+") or ton in (None, 1):
        return _valid("+" + digits, None)
    if ton == 2:
        return _valid(digits, region)
    if ton == 0:
        return _valid(digits, region) or _valid("+" + digits, None)
    return None  # network-specific, subscriber, abbreviated: not a number we can place


def _valid(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
