"""Reply senders are placed as ledger numbers are, by their type of number, or not at all."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.phones import normalise_phone, place_sender

REGIONS = ["CN", "US", "GB", "IN", "DE", "BR", "ID", "PH"]


def _examples() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    out = []
    for region in REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                out.append((region, number))
    return out


EXAMPLES = _examples()


@given(st.sampled_from(EXAMPLES), st.integers(0, 9999))
def test_every_form_of_a_number_is_placed_where_the_ledger_puts_it(
    example: tuple[str, phonenumbers.PhoneNumber], tail: int
) -> None:
    region, number = example
    # Vary the last digits, keeping only numbers that stay valid.
    digits = str(number.national_number)
    varied = phonenumbers.parse(f"+{number.country_code}{digits[:-4]}{tail:04d}")
    if not phonenumbers.is_valid_number(varied):
        return
    e164 = phonenumbers.format_number(varied, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.national_significant_number(varied)
    with_trunk = "".join(
        c for c in phonenumbers.format_number(varied, phonenumbers.PhoneNumberFormat.NATIONAL)
        if c.isdigit()
    )  # fmt: skip
    assert place_sender(e164, None, "CN") == e164  # "+..." is international whatever the TON
    assert place_sender(e164.lstrip("+"), 1, "CN") == e164
    assert place_sender(e164.lstrip("+"), None, region) == e164
    assert place_sender(national, 2, region) == e164
    assert place_sender(with_trunk, 2, region) == e164  # with the trunk prefix (0...) too
    # Unknown type: the ledger's reading in the provider's region.
    assert place_sender(with_trunk, 0, region) == normalise_phone(with_trunk, region)[0] == e164


@pytest.mark.parametrize(
    ("address", "ton", "region", "expected"),
    [
        ("13098492251", 0, "CN", "+8613098492251"),  # the case: not North America
        ("13098492251", 2, "CN", "+8613098492251"),
        ("13098492251", 1, "CN", "+13098492251"),  # said international: it is North America
        ("8613098492251", 0, "CN", "+8613098492251"),
        ("2025550123", 0, "US", "+12025550123"),
        ("2025550123", 2, "US", "+12025550123"),
        ("447911123456", 0, "CN", "+447911123456"),  # no CN reading: the international one
        ("12345", 0, "CN", None),
        ("12345", 2, "CN", None),
        ("BANK", 5, "CN", None),
        ("13098492251", 5, "CN", None),  # said to be a name
        ("13098492251", 3, "CN", None),  # network-specific: not ours to place
        ("", 0, "CN", None),
        ("+86 130 9849 2251", 0, "US", "+8613098492251"),
        ("１３０９８４９２２５１", 0, "CN", "+8613098492251"),  # full-width digits, as typed
    ],
)
def test_sender_placement(address: str, ton: int, region: str, expected: str | None) -> None:
    assert place_sender(address, ton, region) == expected
