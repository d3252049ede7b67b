"""Customer education (seed 4.4): a short tip appended only when it costs nothing.

    text = with_tip(text, tips, key="C001/2026-11-29")
    texts = with_tip_column(texts, keys, tips)          # the same for a whole day's messages

A tip is added only if the message keeps its number of SMS segments and Chinese billing units;
the tip tried first rotates stably with `key`, so one borrower does not see the same one daily.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import polars as pl

from cuikuan.domain.sms import cn_billing_units, cn_billing_units_expr, segments, segments_expr


def _start(key: str, n: int) -> int:
    return zlib.crc32(key.encode()) % n


def _joiner(tip: str, text: str) -> str:
    return " " if tip[:1].isascii() and text[-1:].isascii() else ""


def with_tip(text: str, tips: Sequence[str], key: str) -> str:
    if not tips or not text:
        return text
    base_segments, base_units = segments(text), cn_billing_units(text)
    start = _start(key, len(tips))
    for i in range(len(tips)):
        tip = tips[(start + i) % len(tips)]
        candidate = text + _joiner(tip, text) + tip
        if segments(candidate) <= base_segments and cn_billing_units(candidate) <= base_units:
            return candidate
    return text


def with_tip_column(texts: pl.Series, keys: Sequence[str], tips: Sequence[str]) -> pl.Series:
    """`with_tip` of every (text, key), computed over the column (property-tested equal).
    Rows whose counts need the parts built (see `segments_expr`) go through `with_tip`."""
    if not tips or texts.len() == 0:
        return texts
    n = len(tips)
    t = pl.col("t")
    frame = pl.DataFrame({"t": texts, "s": pl.Series([_start(k, n) for k in keys], dtype=pl.Int64)})
    last_ascii = t.str.slice(-1).str.contains("^[\\x00-\\x7F]$")
    base_seg, base_units = segments_expr(t), cn_billing_units_expr(t)
    candidates, ranks, unknown = [], [], [base_seg.is_null()]
    for j, tip in enumerate(tips):
        joined = (
            t + pl.when(last_ascii).then(pl.lit(" ")).otherwise(pl.lit("")) + pl.lit(tip)
            if tip[:1].isascii()
            else t + pl.lit(tip)
        )
        candidates.append(joined.alias(f"c{j}"))
        seg = segments_expr(pl.col(f"c{j}"))
        fits = (seg <= base_seg) & (cn_billing_units_expr(pl.col(f"c{j}")) <= base_units)
        ranks.append(pl.when(fits).then((pl.lit(j + n) - pl.col("s")) % n).otherwise(n))
        unknown.append(seg.is_null())
    frame = frame.with_columns(candidates).with_columns(
        pl.min_horizontal(ranks).alias("best"), pl.any_horizontal(unknown).alias("unknown")
    )
    chosen = (pl.col("s") + pl.col("best")) % n
    pick: pl.Expr = t
    for j in reversed(range(n)):
        pick = pl.when((pl.col("best") < n) & (chosen == j)).then(pl.col(f"c{j}")).otherwise(pick)
    out = frame.select(
        pl.when(t.str.len_chars() == 0).then(t).otherwise(pick).alias("t"), "unknown"
    )
    result = out["t"]
    if out["unknown"].any():
        values = result.to_list()
        originals = texts.to_list()
        for i in out["unknown"].arg_true().to_list():
            values[i] = with_tip(originals[i], tips, keys[i])
        result = pl.Series("t", values, dtype=pl.String)
    return result.alias(texts.name)
