from datetime import date, datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.dates import parse_date, parse_datetime
from cuikuan.ingest import cells


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29",
        "2026/11/29",
        "20261129",
        "2026年11月29日",
        "2026-11-29 00:00:00",
        "２０２６-11-29",
    ],
)
def test_every_ledger_spelling_of_a_date_is_read(text: str) -> None:
    assert parse_date(text) == date(2026, 11, 29)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-02-30", "no such date"),
        ("29/11/2026", "expected a date"),
        ("tomorrow", "expected a date"),
        ("2026-13-01", "no such date"),
    ],
)
def test_impossible_or_unknown_dates_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_date(text)


def test_times_may_leave_out_seconds() -> None:
    assert parse_datetime("2026/11/29 8:05") == datetime(2026, 11, 29, 8, 5)


spellings = st.builds(
    lambda d, style: [
        d.isoformat(),
        d.strftime("%Y/%m/%d"),
        d.strftime("%Y%m%d"),
        f"{d.year}年{d.month}月{d.day}日",
    ][style],
    st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
    st.integers(0, 3),
)


@given(
    st.lists(
        st.one_of(spellings, st.text(alphabet="0123456789-/年月日 ٠２", max_size=12)),
        min_size=1,
        max_size=30,
    )
)
def test_set_at_a_time_dates_match_the_scalar_rule(texts: list[str]) -> None:
    value, error = cells.date(pl.col("t"), required=False)
    got = pl.DataFrame({"t": texts}).select(value.alias("v"), error.alias("e")).rows()
    for text, (v, e) in zip(texts, got, strict=True):
        if not text.strip():
            assert v is None and e is None
            continue
        try:
            expected = parse_date(text)
        except ValueError as exc:
            assert v is None and e == str(exc), text
        else:
            assert (v, e) == (expected, None), text


@given(
    st.lists(
        st.one_of(st.none(), st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")),
        min_size=1,
        max_size=30,
    )
)
def test_the_plain_column_fast_path_gives_the_same_results(texts: list[str | None]) -> None:
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    assert cells.all_match(frame.get_column("t"), cells.PLAIN_DATE)
    slow = frame.select(
        *(e.alias(n) for e, n in zip(cells.date(pl.col("t"), True), "ve", strict=True))
    )
    fast = frame.select(
        *(e.alias(n) for e, n in zip(cells.date(pl.col("t"), True, plain=True), "ve", strict=True))
    )
    assert fast.rows() == slow.rows()
