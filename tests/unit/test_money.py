from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.money import format_minor, parse_amount
from cuikuan.ingest import cells


@pytest.mark.parametrize(
    ("text", "digits", "expected"),
    [
        ("1,234.50", 2, 123450),
        ("¥1234.5", 2, 123450),
        ("￥1234.5", 2, 123450),
        ("1234", 2, 123400),
        ("１２３４元", 2, 123400),
        ("RMB 1,000", 2, 100000),
        ("$0.07", 2, 7),
        ("1500", 0, 1500),
        ("1.234", 3, 1234),
    ],
)
def test_amounts_as_ledgers_write_them_parse_to_exact_minor_units(
    text: str, digits: int, expected: int
) -> None:
    assert parse_amount(text, digits) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-5", "negative"),
        ("abc", "expected an amount"),
        ("1.234", "more than 2 decimal"),
        ("1e5", "expected an amount"),
        ("", "expected an amount"),
        ("9" * 12, "too large"),
        ("1" + "0" * 11, "too large"),
    ],
)
def test_bad_amounts_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(text, 2)


@given(st.integers(min_value=0, max_value=10**11 - 1), st.sampled_from([0, 2, 3]))
def test_format_then_parse_round_trips_exactly(amount: int, digits: int) -> None:
    assert parse_amount(format_minor(amount, digits), digits) == amount


@given(
    st.decimals(min_value=0, max_value=10**11 - 1, places=2, allow_nan=False, allow_infinity=False)
)
def test_parsing_agrees_with_decimal_arithmetic(value: Decimal) -> None:
    assert parse_amount(str(value), 2) == int(value * 100)


amount_texts = st.one_of(
    st.builds(format_minor, st.integers(0, 10**12), st.sampled_from([0, 2, 3])),
    st.text(alphabet="0123456789.,-¥￥$元 abc１２٠", max_size=12),
)


@given(st.lists(amount_texts, min_size=1, max_size=30), st.sampled_from([0, 2, 3]))
def test_set_at_a_time_parser_matches_the_scalar_rule(texts: list[str], digits: int) -> None:
    frame = pl.DataFrame({"a": texts, "d": [digits] * len(texts)})
    value, error = cells.amount(pl.col("a"), pl.col("d"), required=True)
    got = frame.select(value.alias("v"), error.alias("e")).rows()
    for text, (v, e) in zip(texts, got, strict=True):
        try:
            expected = parse_amount(text, digits)
        except ValueError:
            assert v is None and e is not None, text
        else:
            if text.strip() == "":
                assert e == "is required"
            else:
                assert (v, e) == (expected, None), text


@given(
    st.lists(
        st.one_of(st.none(), st.from_regex(r"\A[0-9]{1,17}(\.[0-9]{0,5})?\Z")),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([0, 2, 3]),
)
def test_the_plain_column_fast_path_gives_the_same_results(
    texts: list[str | None], digits: int
) -> None:
    frame = pl.DataFrame(
        {"a": texts, "d": [digits] * len(texts)}, schema={"a": pl.String, "d": pl.Int64}
    )
    assert cells.all_match(frame.get_column("a"), cells.PLAIN_AMOUNT)
    slow = frame.select(
        *(
            e.alias(n)
            for e, n in zip(cells.amount(pl.col("a"), pl.col("d"), True), "ve", strict=True)
        )
    )
    fast = frame.select(
        *(
            e.alias(n)
            for e, n in zip(
                cells.amount(pl.col("a"), pl.col("d"), True, plain=True), "ve", strict=True
            )
        )
    )
    assert fast.rows() == slow.rows()


def test_digits_of_other_scripts_are_not_amounts() -> None:
    with pytest.raises(ValueError, match="expected an amount"):
        parse_amount("0.٠", 2)
    frame = pl.DataFrame({"a": ["0.٠", "１２"], "d": [2, 2]})
    value, error = cells.amount(pl.col("a"), pl.col("d"), required=True)
    assert frame.select(value, error.alias("e")).rows() == [
        (None, "expected an amount like 1,234.50"),
        (1200, None),
    ]


def test_the_largest_amounts_on_the_most_instalments_add_up_exactly() -> None:
    """100 instalments at the largest amount once wrapped a loan's total negative."""
    largest = parse_amount("9" * 11 + ".999", 3)
    assert largest * 9_999 < 2**63 - 1  # instalment numbers have at most 4 digits
    total = pl.Series([largest] * 9_999, dtype=pl.Int64).sum()
    assert total == largest * 9_999 > 0
