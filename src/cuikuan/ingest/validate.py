"""Validate one batch of a ledger file: typed columns plus every problem with its line and column.

checked = check_batch(batch, mapping, rules)
checked.frame      # typed values, one row per input row (bad cells null)
checked.problems   # _line, column, message, got
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from cuikuan.domain.columns import Mapping
from cuikuan.domain.money import currency_digits
from cuikuan.ingest import cells
from cuikuan.ingest.sources import LINE

PROBLEM_SCHEMA = {LINE: pl.Int64, "column": pl.String, "message": pl.String, "got": pl.String}


@dataclass(frozen=True)
class Rules:
    region: str
    timezone: str
    currency: str

    @classmethod
    def of(cls, defaults: Any) -> Rules:
        """From the settings' [defaults] (the CLI's import and the API's take the same)."""
        return cls(defaults.region, defaults.timezone, defaults.currency)


@dataclass(frozen=True)
class Checked:
    frame: pl.DataFrame
    problems: pl.DataFrame


@dataclass(frozen=True)
class _Field:
    name: str
    column: str
    value: pl.Expr
    error: pl.Expr
    got: pl.Expr


def src(mapping: Mapping, name: str) -> pl.Expr:
    return pl.col(f"c{mapping.fields[name][0]}")


def check_batch(batch: pl.DataFrame, mapping: Mapping, rules: Rules) -> Checked:
    if mapping.kind == "instalments":
        return _check_instalments(batch, mapping, rules)
    return _check_payments(batch, mapping, rules)


def _field(mapping: Mapping, name: str, pair: cells.Pair) -> _Field:
    return _Field(name, mapping.column(name), pair[0], pair[1], src(mapping, name))


def _optional(
    mapping: Mapping,
    name: str,
    build: Callable[[pl.Expr, cells.Let], cells.Pair],
    staging: cells.Staging,
) -> list[_Field]:
    if not mapping.has(name):
        return []
    return [_field(mapping, name, build(src(mapping, name), staging.let_for(name)))]


def _digits_expr(batch: pl.DataFrame) -> pl.Expr:
    # A handful of distinct currencies at most: look each one up once, not once per row.
    codes = batch.get_column("currency").unique().to_list()
    return pl.col("currency").replace_strict(
        {c: _safe_digits(c) for c in codes}, default=2, return_dtype=pl.Int64
    )


def _safe_digits(code: str) -> int:
    try:
        return currency_digits(code)
    except Exception:  # unknown code: reported by the currency check, parse as 2 meanwhile
        return 2


def _with_currency(
    batch: pl.DataFrame, mapping: Mapping, rules: Rules
) -> tuple[pl.DataFrame, pl.Expr, pl.Expr, pl.Expr]:
    """The batch with its rows' currency (the default where the file has none), the source
    column, the currency's error expression, and each row's minor-unit digits."""
    currency_src = src(mapping, "currency") if mapping.has("currency") else pl.lit(None, pl.String)
    value, error = cells.currency(currency_src, rules.currency)
    batch = batch.with_columns(value.alias("currency"))
    return batch, currency_src, error, _digits_expr(batch)


def _check_instalments(batch: pl.DataFrame, mapping: Mapping, rules: Rules) -> Checked:
    batch, currency_src, cur_error, digits = _with_currency(batch, mapping, rules)
    staging = cells.Staging()
    let = staging.let_for

    def plain(name: str, pattern: str) -> bool:
        return cells.all_match(batch.get_column(f"c{mapping.fields[name][0]}"), pattern)

    fields = [
        _field(
            mapping,
            "customer_id",
            cells.text(src(mapping, "customer_id"), True, 64, let("customer_id")),
        ),
        _field(mapping, "name", cells.text(src(mapping, "name"), True, 200, let("name"))),
        _field(mapping, "loan_id", cells.text(src(mapping, "loan_id"), True, 64, let("loan_id"))),
        _field(
            mapping,
            "instalment_no",
            cells.instalment_number(src(mapping, "instalment_no"), let("instalment_no")),
        ),
        _field(
            mapping,
            "due_date",
            cells.date(
                src(mapping, "due_date"), True, let("due_date"), plain("due_date", cells.PLAIN_DATE)
            ),
        ),
        _field(
            mapping,
            "amount_due",
            cells.amount(
                src(mapping, "amount_due"),
                digits,
                True,
                let("amount_due"),
                plain("amount_due", cells.PLAIN_AMOUNT),
            ),
        ),
        *_optional(
            mapping,
            "amount_paid",
            lambda e, lt: cells.amount(
                e, digits, False, lt, plain("amount_paid", cells.PLAIN_AMOUNT)
            ),
            staging,
        ),
        *_optional(mapping, "email", cells.email, staging),
        *_optional(mapping, "product", lambda e, lt: cells.text(e, False, 100, lt), staging),
        *_optional(mapping, "tags", lambda e, _: cells.tags(e), staging),
        *_optional(mapping, "flags", lambda e, _: cells.flags(e), staging),
    ]
    if mapping.has("locale"):
        seen = batch.get_column(f"c{mapping.fields['locale'][0]}")
        fields.append(_field(mapping, "locale", cells.locale(src(mapping, "locale"), seen)))
    if mapping.has("timezone"):
        seen = batch.get_column(f"c{mapping.fields['timezone'][0]}")
        fields.append(_field(mapping, "timezone", cells.timezone(src(mapping, "timezone"), seen)))
    if mapping.has("currency"):
        fields.append(
            _Field(
                "currency", mapping.column("currency"), pl.col("currency"), cur_error, currency_src
            )
        )
    attributes = cells.attributes({name: f"c{i}" for name, i in mapping.extra.items()})
    frame, problems = _evaluate(batch, fields, [attributes.alias("attributes")], staging)
    frame = frame.with_columns(
        *_defaults(frame, ("email", "product", "locale", "timezone"), ("tags", "flags")),
    )
    frame, phone_problems = _with_phones(batch, frame, mapping, rules)
    found = [problems, phone_problems]
    if mapping.has("amount_paid"):
        over = frame.filter(pl.col("amount_paid") > pl.col("amount_due"))
        found.append(
            over.join(batch.select(LINE, src(mapping, "amount_paid").alias("got")), on=LINE).select(
                LINE,
                pl.lit(mapping.column("amount_paid")).alias("column"),
                pl.lit("amount paid is more than the amount due").alias("message"),
                pl.col("got"),
            )
        )
    return Checked(frame, pl.concat(found))


def _defaults(frame: pl.DataFrame, texts: tuple[str, ...], lists: tuple[str, ...]) -> list[pl.Expr]:
    out = [pl.lit(None, dtype=pl.String).alias(n) for n in texts if n not in frame.columns]
    out += [pl.lit("[]").alias(n) for n in lists if n not in frame.columns]
    return out


def _with_phones(
    batch: pl.DataFrame, frame: pl.DataFrame, mapping: Mapping, rules: Rules
) -> tuple[pl.DataFrame, pl.DataFrame]:
    sources = [f"c{i}" for i in mapping.fields["phone"]]
    per_row = cells.phones(batch, sources, rules.region, LINE)
    frame = frame.join(per_row, on=LINE, how="left").with_columns(
        pl.col("e164").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("kind").fill_null(pl.lit([], dtype=pl.List(pl.String))),
    )
    column = mapping.column("phone")
    bad = frame.filter(pl.col("phone_error").is_not_null()).select(
        LINE,
        pl.lit(column).alias("column"),
        pl.col("phone_error").alias("message"),
        pl.col("phone_got").alias("got"),
    )
    unreachable = frame.filter(
        (pl.col("e164").list.len() == 0)
        & pl.col("email").is_null()
        & pl.col("phone_error").is_null()
    ).select(
        LINE,
        pl.lit(column).alias("column"),
        pl.lit("a phone number (or an e-mail address) is required").alias("message"),
        pl.lit(None, dtype=pl.String).alias("got"),
    )
    return frame.drop("phone_error", "phone_got"), pl.concat([bad, unreachable])


def _check_payments(batch: pl.DataFrame, mapping: Mapping, rules: Rules) -> Checked:
    batch, currency_src, cur_error, digits = _with_currency(batch, mapping, rules)
    staging = cells.Staging()
    let = staging.let_for
    paid_at = cells.local_datetime_as_utc(
        src(mapping, "paid_at"), rules.timezone, True, let("paid_at")
    )
    fields = [
        _field(
            mapping,
            "payment_id",
            cells.text(src(mapping, "payment_id"), True, 64, let("payment_id")),
        ),
        _field(mapping, "loan_id", cells.text(src(mapping, "loan_id"), True, 64, let("loan_id"))),
        _field(mapping, "paid_at", paid_at),
        _field(
            mapping, "amount", cells.amount(src(mapping, "amount"), digits, True, let("amount"))
        ),
        *_optional(mapping, "customer_id", lambda e, lt: cells.text(e, False, 64, lt), staging),
    ]
    if mapping.has("currency"):
        fields.append(
            _Field(
                "currency", mapping.column("currency"), pl.col("currency"), cur_error, currency_src
            )
        )
    frame, problems = _evaluate(batch, fields, (), staging)
    if "currency" not in frame.columns:
        frame = frame.with_columns(pl.lit(rules.currency).alias("currency"))
    if "customer_id" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("customer_id"))
    zero = frame.filter(pl.col("amount") == 0).select(
        LINE,
        pl.lit(mapping.column("amount")).alias("column"),
        pl.lit("a payment must be more than zero").alias("message"),
        pl.lit("0").alias("got"),
    )
    return Checked(frame, pl.concat([problems, zero]))


def _evaluate(
    batch: pl.DataFrame,
    fields: list[_Field],
    extras: tuple[pl.Expr, ...] | list[pl.Expr],
    staging: cells.Staging,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    evaluated = (
        staging.apply(batch.lazy())
        .with_columns(
            *extras,
            *[f.value.alias(f.name) for f in fields],
            *[f.error.cast(pl.String).alias(f"{f.name}!") for f in fields],
            *[f.got.cast(pl.String).alias(f"{f.name}?") for f in fields],
        )
        .drop(staging.names)
        .collect()
    )
    problems = [
        evaluated.lazy()
        .select(LINE, pl.col(f"{f.name}!").alias("message"), pl.col(f"{f.name}?").alias("got"))
        .filter(pl.col("message").is_not_null())
        .select(LINE, pl.lit(f.column).alias("column"), "message", "got")
        .collect()
        for f in fields
    ]
    keep = [LINE, *(f.name for f in fields), "currency", *(e.meta.output_name() for e in extras)]
    frame = evaluated.select(list(dict.fromkeys(keep)))
    merged = pl.concat(problems) if problems else pl.DataFrame(schema=PROBLEM_SCHEMA)
    return frame, merged.cast(PROBLEM_SCHEMA)  # type: ignore[arg-type]
