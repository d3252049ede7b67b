"""SMS length and segments against published reference cases and an independent count."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.sms import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, measure, segments, split

GSM_CHARS = GSM7_BASIC.replace("\x1b", "") + GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        # Twilio's segment calculator reference cases
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("{" * 80, "GSM-7", 160, 1),  # escape characters cost two septets
        ("{" * 81, "GSM-7", 162, 2),
        ("€" * 77, "GSM-7", 154, 1),
        ("a" * 152 + "€", "GSM-7", 154, 1),
        ("a" * 159 + "€", "GSM-7", 161, 2),
        ("😀" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
        ("😀" * 36, "UCS-2", 72, 2),
        ("a" * 69 + "😀", "UCS-2", 71, 2),
        ("é" * 160, "GSM-7", 160, 1),  # accented letters in the GSM alphabet
        ("á" * 70, "UCS-2", 70, 1),  # ... and outside it
        ("á" * 71, "UCS-2", 71, 2),
        ("您" * 70, "UCS-2", 70, 1),
        ("您" * 71, "UCS-2", 71, 2),
        ("您" * 134, "UCS-2", 134, 2),
        ("您" * 135, "UCS-2", 135, 3),
        ("", "GSM-7", 0, 0),
    ],
)
def test_reference_cases(text: str, encoding: str, units: int, segments: int) -> None:
    m = measure(text)
    assert (m.encoding, m.units, m.segments) == (encoding, units, segments)


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # 152 septets of 'a' then '{' (2 septets): the pair would straddle 153, so it moves on.
    _, parts, _ = split("a" * 152 + "{" + "a" * 10)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("{")


def test_a_surrogate_pair_is_never_split() -> None:
    _, parts, _ = split("a" * 66 + "😀" + "b" * 10)
    assert parts[0] == "a" * 66
    assert parts[1].startswith("😀")


def test_chinese_billing_counts_signature_and_body() -> None:
    assert measure("您" * 64, signature="【富勤金融】").cn_billing_units == 1  # 70
    assert measure("您" * 65, signature="【富勤金融】").cn_billing_units == 2  # 71
    assert measure("您" * 128, signature="【富勤金融】").cn_billing_units == 2  # 134
    assert measure("您" * 129, signature="【富勤金融】").cn_billing_units == 3  # 135


texts = st.one_of(
    st.text(alphabet=GSM_CHARS, max_size=700),
    st.text(max_size=400),
    st.text(alphabet=GSM_CHARS + "😀您€{", max_size=500),
)


def _septets(text: str) -> int:
    return sum(2 if c in GSM7_EXTENSION else 1 for c in text)


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@given(texts)
def test_parts_rejoin_to_the_text_and_fit_their_limits(text: str) -> None:
    m = measure(text)
    assert "".join(m.parts) == text
    count = _septets if m.encoding == "GSM-7" else _utf16_units
    assert m.units == count(text)
    single, each = (160, 153) if m.encoding == "GSM-7" else (70, 67)
    if m.units <= single:
        assert m.segments == (1 if text else 0)
    else:
        assert all(count(p) <= each for p in m.parts)
        # greedy: each part but the last is full up to one more character
        for part, following in zip(m.parts, m.parts[1:], strict=False):
            assert count(part) + count(following[0]) > each
    for part in m.parts:
        part.encode("utf-16-le")  # a split surrogate would not encode


@given(texts)
def test_encoding_is_gsm7_exactly_when_every_character_is_in_the_alphabet(text: str) -> None:
    assert (measure(text).encoding == "GSM-7") == all(c in GSM_CHARS for c in text)
    assert is_gsm7(text) == all(c in GSM_CHARS for c in text)


@given(texts)
def test_the_quick_segment_count_equals_the_parts_counted_one_by_one(text: str) -> None:
    assert segments(text) == len(split(text)[1])
