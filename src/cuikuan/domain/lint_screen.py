"""The lint over a column of rendered texts: data that turns a clean template into a banned or
overlong message is held too.

    flagged = screen_reason(pl.col("text"), pl.col("segments"), matcher, max_segments)

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


def wording_hit(text: pl.Expr, matcher: WordingMatcher) -> pl.Expr:
    """True where the text holds a banned phrase or act (allowed wording masked out first)."""
    views = _views(text)
    hit: pl.Expr = pl.lit(False)
    for language, (allowed, phrases, acts) in matcher.screen().items():
        view = views[language]
        if allowed:
            mask = " " if language == "en" else "|"
            view = view.str.replace_many(allowed, [mask] * len(allowed))
        if phrases:
            hit = hit | view.str.contains_any(phrases)
        if acts:
            hit = hit | view.str.contains(acts)
    return hit.fill_null(False)


def screen_reason(
    text: pl.Expr,
    segments: pl.Expr,
    billing_units: pl.Expr,
    matcher: WordingMatcher,
    max_segments: int,
    max_billing_units: int | None,
) -> pl.Expr:
    """Why a rendered text may not go (null when it may): too long, or banned wording."""
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
        .when(wording_hit(text, matcher))
        .then(pl.lit("rendered text fails the lint: banned wording (the data made it so)"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
