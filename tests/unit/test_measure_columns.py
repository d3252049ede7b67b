"""Segments and tips over a column equal the per-text functions they stand for."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from cuikuan.domain.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    cn_billing_units,
    cn_billing_units_expr,
    segments,
    segments_column,
)
from cuikuan.domain.tips import with_tip, with_tip_column

# Texts near the limits: Chinese, GSM-7 with extension characters, emoji (surrogate pairs).
alphabet = st.sampled_from(
    [*GSM7_BASIC.replace("\x1b", ""), *GSM7_EXTENSION, "您", "好", "，", "😀", "é", "ü", "Ж"]
)
pieces = st.sampled_from(
    ["您好，您尾号1234的借款已逾期5天。", "Your loan is overdue. ", "{x}", "€", "😀"]
)
texts = st.one_of(
    st.text(alphabet, max_size=400),
    st.lists(pieces, max_size=30).map("".join),
)
TIPS = [
    ["请通过官方渠道还款。", "谨防诈骗。", "Pay in the app."],
    ["Use the official app only.", "€ never ask PIN"],
    ["😀"],
]


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, min_size=1, max_size=30))
def test_segments_column_equals_segments(values: list[str]) -> None:
    series = pl.Series("t", values, dtype=pl.String)
    assert segments_column(series).to_list() == [segments(v) for v in values]
    units = series.to_frame().select(cn_billing_units_expr(pl.col("t")).alias("u"))["u"].to_list()
    assert units == [cn_billing_units(v) for v in values]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(texts, st.text(max_size=8)), min_size=1, max_size=30),
    st.sampled_from(range(len(TIPS))),
)
def test_tips_column_equals_with_tip(rows: list[tuple[str, str]], which: int) -> None:
    tips = TIPS[which]
    values = [t for t, _ in rows]
    keys = [k for _, k in rows]
    got = with_tip_column(pl.Series("t", values, dtype=pl.String), keys, tips).to_list()
    assert got == [with_tip(t, tips, k) for t, k in rows]


def test_tips_rotate_and_add_one_only_when_free() -> None:
    base = "您好，您的借款今日到期。"
    keys = [f"C{i}/2026-11-30" for i in range(200)]
    got = with_tip_column(pl.Series("t", [base] * 200), keys, TIPS[0]).to_list()
    # Each borrower gets one tip; the first one tried rotates with the key.
    assert {g[len(base) :] for g in got} == set(TIPS[0])
    long = "您" * 70  # one unit already full: no tip fits
    assert with_tip_column(pl.Series("t", [long]), ["k"], TIPS[0]).to_list() == [long]


def test_a_tip_beyond_the_bmp_counts_two_units() -> None:
    """😀 is one character but two UTF-16 units: after 69 Chinese ones it makes a second SMS."""
    text = "您" * 69
    assert with_tip(text, ["😀"], "k") == text
    assert with_tip_column(pl.Series("t", [text, "您" * 68]), ["k", "k"], ["😀"]).to_list() == [
        text,
        with_tip("您" * 68, ["😀"], "k"),
    ]
