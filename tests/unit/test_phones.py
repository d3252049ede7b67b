import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.phones import normalise_phone, split_phones
from cuikuan.ingest import cells


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138 0013 8000",
        "138-0013-8000",
        "8613800138000",
        "+8613800138000",
        "１３８００１３８０００",
    ],
)
def test_chinese_mobiles_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw, "CN") == ("+8613800138000", "mobile")


def test_landline_is_kept_with_its_kind() -> None:
    assert normalise_phone("010-12345678", "CN") == ("+861012345678", "fixed_line")


@pytest.mark.parametrize("raw", ["12345", "abc", "1380013800", "+1 555"])
def test_numbers_that_do_not_parse_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        normalise_phone(raw, "CN")


def test_a_cell_may_hold_several_numbers() -> None:
    assert split_phones("13800138000;13900139000、 15000150000") == [
        "13800138000",
        "13900139000",
        "15000150000",
    ]


digits = st.text(alphabet="0123456789", min_size=8, max_size=13)
phone_texts = st.one_of(
    st.builds(
        lambda p, n: p + n,
        st.sampled_from(["13", "15", "18", "17", "19", "14", "16", "+8613", "+8619", "010", "+1"]),
        digits,
    ),
    st.text(alphabet="0123456789+ -", max_size=15),
)


@given(st.lists(phone_texts, min_size=1, max_size=20), st.sampled_from(["CN", "US", "GB"]))
def test_fast_path_agrees_with_phonenumbers(texts: list[str], region: str) -> None:
    frame = pl.DataFrame({"_line": list(range(len(texts))), "p": texts})
    rows = {
        r["_line"]: r for r in cells.phones(frame, ["p"], region, "_line").iter_rows(named=True)
    }
    for i, text in enumerate(texts):
        wanted = []
        first_error = None
        for part in split_phones(text):
            try:
                wanted.append(normalise_phone(part, region))
            except ValueError as exc:
                first_error = first_error or str(exc)
        got = rows.get(i)
        if got is None:
            assert not split_phones(text)
            continue
        seen = dict(wanted)
        assert got["e164"] == list(dict.fromkeys(e for e, _ in wanted)), text
        assert got["kind"] == [seen[e] for e in got["e164"]], text
        assert got["phone_error"] == first_error, text
