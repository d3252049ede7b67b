"""The lint over a column of rendered texts: data that turns a clean template into a banned or
overlong message is held too.

    hits = wording_hits(rendered["text"], matcher)          # a bool per text
    why = screen_reason(pl.col("hit"), segments, units, 3, 3)

The same phrases and act patterns as `WordingMatcher.find` (from `WordingMatcher.screen`), over
views Polars can make: lower case, NFKC, letters and digits only (Chinese) or words between
single spaces (English). Traditional characters and spaced-out single letters are what the full
lint also catches and this screen does not; templates get the full lint before any plan.
"""

from __future__ import annotations

import polars as pl

from cuikuan.domain.lint import WordingMatcher


def _views(text: pl.Expr) -> dict[str, pl.Expr]:
    lower = text.str.normalize("NFKC").str.to_lowercase()
    return {
        "zh": lower.str.replace_all(r"[^\p{L}\p{N}]+", ""),
        "en": pl.lit(" ")
        + lower.str.replace_all(r"[^a-z0-9]+", " ").str.strip_chars()
        + pl.lit(" "),
    }


def wording_hits(texts: pl.Series, matcher: WordingMatcher) -> pl.Series:
    """True where a text holds a banned phrase or act (allowed wording masked out first). The
    views are made once, as columns: an expression using them several times would make them
    again each time."""
    frame = pl.DataFrame({"text": texts}).with_columns(**_views(pl.col("text")))
    hit: pl.Expr = pl.lit(False)
    for language, (allowed, phrases, acts) in matcher.screen().items():
        if allowed:
            mask = " " if language == "en" else "|"
            frame = frame.with_columns(
                pl.col(language).str.replace_many(allowed, [mask] * len(allowed))
            )
        if phrases:
            hit = hit | pl.col(language).str.contains_any(phrases)
        if acts:
            hit = hit | pl.col(language).str.contains(acts)
    return frame.select(hit.fill_null(False).alias("hit")).to_series()


def screen_reason(
    hit: pl.Expr,
    segments: pl.Expr,
    billing_units: pl.Expr,
    max_segments: int,
    max_billing_units: int | None,
) -> pl.Expr:
    """Why a rendered text may not go (null when it may): too long, or banned wording (`hit`,
    from `wording_hits`)."""
    too_long = segments > max_segments
    if max_billing_units is not None:
        too_long = too_long | (billing_units > max_billing_units)
    return (
        pl.when(too_long)
        .then(
            pl.format(
                "rendered text fails the lint: {} segments, {} billing units (at most {})",
                segments,
                billing_units,
                pl.lit(max_segments),
            )
        )
        .when(hit)
        .then(pl.lit("rendered text fails the lint: banned wording (the data made it so)"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
