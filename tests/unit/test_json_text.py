"""JSON arrays of strings built by Polars string expressions (domain/json_text.py)."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.json_text import string_array

# Every character class that matters: control characters, quotes, backslashes, non-ASCII,
# characters beyond the BMP, the line separators JavaScript minds.
parts = st.one_of(
    st.none(),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.text(st.sampled_from('\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f"\\/\u2028中😀 a'), max_size=8),
)
rows = st.lists(st.lists(parts, min_size=3, max_size=3), min_size=1, max_size=30)


def frame(data: list[list[str | None]]) -> pl.DataFrame:
    return pl.DataFrame(data, schema={"a": pl.String, "b": pl.String, "c": pl.String}, orient="row")


@given(rows)
def test_a_string_array_is_what_json_dumps_writes(data: list[list[str | None]]) -> None:
    got = frame(data).select(string_array(pl.col("a"), pl.col("b"), pl.col("c")))
    expected = [
        json.dumps([p for p in row if p is not None], ensure_ascii=False, separators=(",", ":"))
        for row in data
    ]
    assert got.to_series().to_list() == expected


@given(rows)
def test_a_string_array_is_what_polars_encoded_before(data: list[list[str | None]]) -> None:
    """The trails the plan wrote before (a list column, encoded by Polars) read the same."""
    df = frame(data)
    before = (
        df.select(
            pl.struct(pl.concat_list("a", "b", "c").list.drop_nulls().alias("t"))
            .struct.json_encode()
            .str.slice(5)
            .str.strip_suffix("}")
        )
        .to_series()
        .to_list()
    )
    now = df.select(string_array(pl.col("a"), pl.col("b"), pl.col("c"))).to_series().to_list()
    assert now == before
