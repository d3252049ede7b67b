"""Polars expressions that parse one column of strings into a value and an error message.

Each builder returns (value, error): `error` is null where the cell is fine, else what was
expected. The scalar twins in cuikuan.domain (money, dates, phones) state the same rules for one
value; property tests keep the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies

from cuikuan.domain import dates
from cuikuan.domain.money import CURRENCY_MARKS, MAX_DIGITS
from cuikuan.domain.phones import CLEAN_CHARS, SEPARATORS, mobile_fast_path, normalise_phone

Pair = tuple[pl.Expr, pl.Expr]
Let = Callable[[pl.Expr], pl.Expr]
MAX_MINOR_DIGITS = 4
REQUIRED = "is required"


def inline(expr: pl.Expr) -> pl.Expr:
    return expr


class Staging:
    """Materialises intermediate columns so each is computed once, not once per use.

    A builder calls `let(expr)` for a subexpression it uses several times; every `let` of one
    builder lands in a later stage than its previous one, so it may refer to those. Stages of
    different builders run side by side in one `with_columns`.
    """

    def __init__(self) -> None:
        self.stages: list[list[pl.Expr]] = []
        self.names: list[str] = []

    def let_for(self, field: str) -> Let:
        depth = 0

        def let(expr: pl.Expr) -> pl.Expr:
            nonlocal depth
            name = f"__{field}_{depth}"
            if len(self.stages) <= depth:
                self.stages.append([])
            self.stages[depth].append(expr.alias(name))
            self.names.append(name)
            depth += 1
            return pl.col(name)

        return let

    def apply(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        for stage in self.stages:
            frame = frame.with_columns(stage)
        return frame


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    text = expr.str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def text(src: pl.Expr, required: bool, max_len: int = 200, let: Let = inline) -> Pair:
    value = let(_blank_to_null(src))
    error = (
        pl.when(value.is_null() & pl.lit(required))
        .then(pl.lit(REQUIRED))
        .when(value.str.len_chars() > max_len)
        .then(pl.lit(f"longer than {max_len} characters"))
    )
    return value, error


# A whole column in this form (the usual export) skips the clean-up; the result is the same.
# Digits are [0-9], not \d: both regex engines would take other scripts' digits as well.
PLAIN_AMOUNT = r"^[0-9]+(?:\.[0-9]*)?$"
PLAIN_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def all_match(column: pl.Series, pattern: str) -> bool:
    """True when every non-empty cell matches: the batch may take a fast path."""
    return bool(column.str.contains(pattern).all())


def amount(
    src: pl.Expr, digits: pl.Expr, required: bool, let: Let = inline, plain: bool = False
) -> Pair:
    """Minor units from '1,234.50', '¥1234.5', '1234', '１２３４元'; never through float."""
    raw = let(_blank_to_null(src))
    if plain:
        parts = let(raw.str.split_exact(".", 1))
        sign = pl.lit(None, dtype=pl.String)
        whole, frac = parts.struct.field("field_0"), parts.struct.field("field_1")
    else:
        core = (
            raw.str.normalize("NFKC")
            .str.replace_all("￥", "¥", literal=True)
            .str.replace(rf"(?i)^\s*{CURRENCY_MARKS}?\s*", "")
            .str.replace(rf"(?i)\s*{CURRENCY_MARKS}?\s*$", "")
            .str.replace_all(",", "", literal=True)
            .str.replace_all(" ", "", literal=True)
        )
        groups = let(core.str.extract_groups(r"^(-)?([0-9]+)(?:\.([0-9]*))?$"))
        sign, whole, frac = (groups.struct.field(k) for k in ("1", "2", "3"))
    frac = let(frac.fill_null(""))
    whole_digits = whole.str.strip_chars_start("0").str.len_chars()
    scale = pl.lit(10, dtype=pl.Int64).pow(digits)
    value = whole.cast(pl.Int64, strict=False) * scale + frac.str.pad_end(
        MAX_MINOR_DIGITS, "0"
    ).str.slice(0, MAX_MINOR_DIGITS).cast(pl.Int64, strict=False) // pl.lit(10, dtype=pl.Int64).pow(
        MAX_MINOR_DIGITS - digits
    )
    problem = (
        pl.when(raw.is_null())
        .then(pl.lit(REQUIRED) if required else pl.lit(None))
        .when(whole.is_null())
        .then(pl.lit("expected an amount like 1,234.50"))
        .when(sign.is_not_null())
        .then(pl.lit("amount must not be negative"))
        .when(frac.str.len_chars() > digits)
        .then(pl.format("amount has more than {} decimal places", digits))
        .when(whole_digits > MAX_DIGITS)
        .then(pl.lit(f"amount is too large (at most {MAX_DIGITS} digits before the point)"))
    )
    error = let(problem)
    return pl.when(error.is_null()).then(let(value)), error


def _date_parts(src: pl.Expr, let: Let) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    text = let(_blank_to_null(src).str.normalize("NFKC").str.strip_chars())
    pattern = rf"^(?:{dates.DATE_PATTERN}|{dates.COMPACT_DATE_PATTERN}){dates.TIME_PATTERN}$"
    g = let(text.str.extract_groups(pattern))
    f = [g.struct.field(str(i)) for i in range(1, 10)]
    day = pl.concat_str(
        pl.coalesce(f[0], f[3]),
        pl.lit("-"),
        pl.coalesce(f[1], f[4]).str.zfill(2),
        pl.lit("-"),
        pl.coalesce(f[2], f[5]).str.zfill(2),
    )
    clock = pl.concat_str(
        f[6].fill_null("0").str.zfill(2),
        pl.lit(":"),
        f[7].fill_null("0").str.zfill(2),
        pl.lit(":"),
        f[8].fill_null("0").str.zfill(2),
    )
    return text, let(day), let(clock)


def date(src: pl.Expr, required: bool, let: Let = inline, plain: bool = False) -> Pair:
    if plain:
        text = day = let(_blank_to_null(src))
    else:
        text, day, _ = _date_parts(src, let)
    parsed = let(day.str.to_date("%Y-%m-%d", strict=False))
    in_range = parsed.dt.year().is_between(*dates.YEARS)
    error = let(
        pl.when(text.is_null())
        .then(pl.lit(REQUIRED) if required else pl.lit(None))
        .when(day.is_null())
        .then(pl.lit(dates.EXPECTED_DATE))
        .when(parsed.is_null())
        .then(pl.lit("no such date"))
        .when(~in_range)
        .then(pl.lit(dates.OUT_OF_RANGE))
    )
    return pl.when(in_range).then(parsed), error


def local_datetime_as_utc(src: pl.Expr, timezone: str, required: bool, let: Let = inline) -> Pair:
    text, day, clock = _date_parts(src, let)
    valid_day = day.str.to_date("%Y-%m-%d", strict=False)
    naive = let(
        pl.concat_str(day, pl.lit(" "), clock).str.to_datetime(
            "%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"
        )
    )
    value = let(
        naive.dt.replace_time_zone(
            timezone, ambiguous="earliest", non_existent="null"
        ).dt.convert_time_zone("UTC")
    )
    problem = (
        pl.when(text.is_null())
        .then(pl.lit(REQUIRED) if required else pl.lit(None))
        .when(day.is_null())
        .then(pl.lit(dates.EXPECTED_TIME))
        .when(valid_day.is_null())
        .then(pl.lit("no such date"))
        .when(~valid_day.dt.year().is_between(*dates.YEARS))
        .then(pl.lit(dates.OUT_OF_RANGE))
        .when(naive.is_null())
        .then(pl.lit("no such time of day"))
        .when(value.is_null())
        .then(pl.lit(f"no such local time in {timezone}"))
    )
    error = let(problem)
    return pl.when(error.is_null()).then(value), error


def instalment_number(src: pl.Expr, let: Let = inline) -> Pair:
    text = let(_blank_to_null(src).str.normalize("NFKC"))
    digits = let(text.str.extract(r"^第?\s*([0-9]{1,4})\s*期?$", 1))
    value = let(digits.cast(pl.Int32, strict=False))
    error = (
        pl.when(text.is_null())
        .then(pl.lit(REQUIRED))
        .when(digits.is_null())
        .then(pl.lit("expected an instalment number like 1, 12 or 第3期"))
        .when(value < 1)
        .then(pl.lit("instalment numbers start at 1"))
    )
    return value, error


EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def email(src: pl.Expr, let: Let = inline) -> Pair:
    value = let(_blank_to_null(src).str.normalize("NFKC"))
    error = pl.when(value.is_not_null() & ~value.str.contains(EMAIL)).then(
        pl.lit("expected an e-mail address like name@example.com")
    )
    return value, error


def _checked_by_lookup(value: pl.Expr, good: set[str], message: str) -> pl.Expr:
    return pl.when(value.is_not_null() & ~value.is_in(sorted(good))).then(pl.lit(message))


def locale(src: pl.Expr, seen: pl.Series) -> Pair:
    value = _blank_to_null(src).str.replace_all("_", "-", literal=True)
    good = {v for v in seen.drop_nulls().str.replace_all("_", "-").unique() if _known_locale(v)}
    return value, _checked_by_lookup(value, good, "expected a locale like zh-CN or en")


def _known_locale(text: str) -> bool:
    try:
        Locale.parse(text, sep="-")
    except (UnknownLocaleError, ValueError):
        return False
    return True


def timezone(src: pl.Expr, seen: pl.Series) -> Pair:
    value = _blank_to_null(src)
    good = {v for v in seen.drop_nulls().str.strip_chars().unique() if _known_zone(v)}
    return value, _checked_by_lookup(value, good, "expected an IANA time zone like Asia/Shanghai")


def _known_zone(text: str) -> bool:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def currency(src: pl.Expr, default: str) -> Pair:
    value = _blank_to_null(src).str.to_uppercase().fill_null(pl.lit(default))
    known = sorted(list_currencies())
    error = pl.when(~value.is_in(known)).then(pl.lit("expected an ISO currency code like CNY"))
    return value, error


def _labels(src: pl.Expr) -> pl.Expr:
    return (
        _blank_to_null(src)
        .str.normalize("NFKC")
        .str.replace_all(SEPARATORS, ";")
        .str.split(";")
        .list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
        .list.unique(maintain_order=True)
        .fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )


def json_list(labels: pl.Expr) -> pl.Expr:
    escaped = labels.list.eval(
        pl.element()
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
    )
    return (
        pl.when(labels.list.len() == 0)
        .then(pl.lit("[]"))
        .otherwise(pl.concat_str(pl.lit('["'), escaped.list.join('","'), pl.lit('"]')))
    )


def tags(src: pl.Expr) -> Pair:
    return json_list(_labels(src)), pl.lit(None, dtype=pl.String)


KNOWN_FLAGS = ("deceased", "dispute", "hardship", "complaint", "wrong_number", "do_not_contact")


def flags(src: pl.Expr) -> Pair:
    labels = _labels(src).list.eval(pl.element().str.to_lowercase())
    unknown = labels.list.set_difference(pl.lit(list(KNOWN_FLAGS)))
    error = pl.when(unknown.list.len() > 0).then(
        pl.format(
            "unknown flag {}; known flags: " + ", ".join(KNOWN_FLAGS), unknown.list.join(", ")
        )
    )
    return json_list(labels), error


def attributes(columns: dict[str, str]) -> pl.Expr:
    """Unmapped columns as one JSON object per row, keyed by the file's own header."""
    if not columns:
        return pl.lit("{}")
    fields = [_blank_to_null(pl.col(src)).alias(name) for name, src in columns.items()]
    return pl.struct(fields).struct.json_encode()


def phones(frame: pl.DataFrame, sources: list[str], region: str, line: str) -> pl.DataFrame:
    """Per row: e164 (list), kinds (list), phone_error, phone_got; numbers from every phone column.

    A customer's number repeats on each of their instalment rows, so each distinct cell is
    parsed once and the result joined back to its rows."""
    joined = pl.concat_str([pl.col(c) for c in sources], separator=";", ignore_nulls=True)
    rows = frame.select(pl.col(line), joined.alias("_cell"))
    distinct = rows.select("_cell").drop_nulls().unique()
    parsed = _parse_phone_cells(distinct, region)
    return rows.join(parsed, on="_cell", how="inner").drop("_cell")


def _parse_phone_cells(distinct: pl.DataFrame, region: str) -> pl.DataFrame:
    items = (
        distinct.with_columns(pl.col("_cell").alias("raw"))
        .with_columns(pl.col("raw").str.replace_all(SEPARATORS, ";").str.split(";"))
        .explode("raw")
        .with_columns(pl.col("raw").str.strip_chars())
        .filter(pl.col("raw").is_not_null() & (pl.col("raw") != ""))
        .with_row_index("_pos")
        .with_columns(
            pl.col("raw").str.normalize("NFKC").str.replace_all(CLEAN_CHARS, "").alias("clean")
        )
    )
    fast = mobile_fast_path(region)
    if fast is not None:
        pattern, cc = fast
        items = items.with_columns(
            (pl.lit("+" + cc) + pl.col("clean").str.extract(pattern, 1)).alias("e164")
        )
    else:
        items = items.with_columns(pl.lit(None, dtype=pl.String).alias("e164"))
    items = items.with_columns(
        pl.when(pl.col("e164").is_not_null()).then(pl.lit("mobile")).alias("kind"),
        pl.lit(None, dtype=pl.String).alias("error"),
    )
    slow = items.filter(pl.col("e164").is_null())
    if slow.height:
        items = pl.concat([items.filter(pl.col("e164").is_not_null()), _slow_phones(slow, region)])
    return (
        items.sort("_pos")
        .group_by("_cell", maintain_order=True)
        .agg(
            pl.col("e164").filter(pl.col("error").is_null()).unique(maintain_order=True),
            pl.col("kind").filter(pl.col("error").is_null()),
            pl.col("error").drop_nulls().first().alias("phone_error"),
            pl.col("raw").filter(pl.col("error").is_not_null()).first().alias("phone_got"),
        )
    )


def _slow_phones(slow: pl.DataFrame, region: str) -> pl.DataFrame:
    results: dict[str, tuple[str | None, str | None, str | None]] = {}
    for raw in slow.get_column("raw").unique().to_list():
        try:
            e164, kind = normalise_phone(raw, region)
            results[raw] = (e164, kind, None)
        except ValueError as exc:
            results[raw] = (None, None, str(exc))
    lookup = pl.DataFrame(
        {
            "raw": list(results),
            "e164": [r[0] for r in results.values()],
            "kind": [r[1] for r in results.values()],
            "error": [r[2] for r in results.values()],
        },
        schema={"raw": pl.String, "e164": pl.String, "kind": pl.String, "error": pl.String},
    )
    return (
        slow.drop("e164", "kind", "error").join(lookup, on="raw", how="left").select(slow.columns)
    )
