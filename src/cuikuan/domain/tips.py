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

from cuikuan.domain.sms import (
    cn_billing_units,
    cn_billing_units_of,
    segments,
    segments_of_counts,
    text_counts,
)


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
    Rows whose counts need the parts built (see `segments_expr`) go through `with_tip`.

    A text's counts are scanned once: a candidate's (text, joiner, tip) are sums of its
    pieces', so no candidate is built before one is chosen."""
    if not tips or texts.len() == 0:
        return texts
    n = len(tips)
    frame = pl.DataFrame(
        {"t": texts, "s": pl.Series([_start(k, n) for k in keys], dtype=pl.Int64)}
    ).with_columns(
        *(e.alias(name) for name, e in zip(_COUNTS, text_counts(pl.col("t")), strict=True)),
        pl.col("t").str.slice(-1).str.contains("^[\\x00-\\x7F]$").alias("last_ascii"),
    )
    chars, gsm, extended, astral = (pl.col(name) for name in _COUNTS)
    base_seg = segments_of_counts(chars, gsm, extended, astral)
    base_units = cn_billing_units_of(chars)
    ranks, unknown, suffixes = [], [base_seg.is_null()], []
    for j, (tip, counts) in enumerate(zip(tips, _tip_counts(tips), strict=True)):
        t_chars, t_gsm, t_extended, t_astral = counts
        joined = tip[:1].isascii()  # a space between two ASCII ends (`_joiner`)
        space = pl.col("last_ascii").cast(pl.Int64) if joined else pl.lit(0, dtype=pl.Int64)
        total = chars + t_chars + space
        seg = segments_of_counts(total, gsm & t_gsm, extended + t_extended, astral + t_astral)
        fits = (seg <= base_seg) & (cn_billing_units_of(total) <= base_units)
        ranks.append(pl.when(fits).then((pl.lit(j + n) - pl.col("s")) % n).otherwise(n))
        unknown.append(seg.is_null())
        suffixes.append(
            pl.when(pl.col("last_ascii")).then(pl.lit(" " + tip)).otherwise(pl.lit(tip))
            if joined
            else pl.lit(tip)
        )
    frame = frame.with_columns(
        pl.min_horizontal(ranks).alias("best"), pl.any_horizontal(unknown).alias("unknown")
    )
    chosen = (pl.col("s") + pl.col("best")) % n
    suffix: pl.Expr = pl.lit("")
    for j in reversed(range(n)):
        suffix = pl.when((pl.col("best") < n) & (chosen == j)).then(suffixes[j]).otherwise(suffix)
    out = frame.select(
        pl.when(chars == 0).then(pl.col("t")).otherwise(pl.col("t") + suffix).alias("t"),
        "unknown",
    )
    result = out["t"]
    if out["unknown"].any():
        values = result.to_list()
        originals = texts.to_list()
        for i in out["unknown"].arg_true().to_list():
            values[i] = with_tip(originals[i], tips, keys[i])
        result = pl.Series("t", values, dtype=pl.String)
    return result.alias(texts.name)


_COUNTS = ("chars", "gsm", "extended", "astral")


def _tip_counts(tips: Sequence[str]) -> list[tuple[int, bool, int, int]]:
    """Each tip's `text_counts`, by the same expressions as the texts'."""
    counted = pl.DataFrame({"t": list(tips)}).select(
        e.alias(name) for name, e in zip(_COUNTS, text_counts(pl.col("t")), strict=True)
    )
    return [(int(c), bool(g), int(e), int(a)) for c, g, e, a in counted.iter_rows()]
