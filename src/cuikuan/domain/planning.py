"""The plan's decisions, set-at-a-time over every loan of the portfolio (Polars).

    evaluated = evaluate(loans, strategy, digits)     # every loan with its step matches
    chosen = assign(pick_loans(evaluated), strategy)  # one row per person: step, loan, variant

`loans` has one row per open loan: loan_id, customer_id, dpd, days_to_due, bucket,
outstanding (minor units), tags (list), first_delinquency; `assign` also needs `customer` (the
external id: control groups and variants are hashed from it). The first step
that matches each loan is its step; the person's message speaks of the most overdue loan a step
matches (then the earlier step, then the largest), or with `urgency="strategy"` of the first
matching step's loan.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from cuikuan.domain.strategy import (
    Step,
    Strategy,
    in_control,
    ordered_steps,
    step_condition,
    variant_index,
)

NO_STEP = -1


def match_columns(steps: Sequence[Step], digits: int) -> list[pl.Expr]:
    """One boolean column per step, `m0`, `m1`, ...: the same expressions explain shows."""
    return [step_condition(step, digits).alias(f"m{i}") for i, step in enumerate(steps)]


def first_match(steps: Sequence[Step]) -> pl.Expr:
    expr: pl.Expr = pl.lit(NO_STEP)
    for i in reversed(range(len(steps))):
        expr = pl.when(pl.col(f"m{i}")).then(pl.lit(i)).otherwise(expr)
    return expr.alias("step_index")


def stopped(strategy: Strategy, digits: int) -> pl.Expr:
    """Accounts the strategy leaves to people (beyond `stop.after_dpd`) or too small to chase."""
    cond = pl.col("outstanding") < int(strategy.stop.below_outstanding.scaleb(digits))
    if strategy.stop.after_dpd is not None:
        cond |= pl.col("dpd") > strategy.stop.after_dpd
    return cond


def evaluate(loans: pl.DataFrame, strategy: Strategy, digits: int) -> pl.DataFrame:
    """Every loan with its step matches (m0..mN), the stop flag and its first matching step."""
    steps = ordered_steps(strategy)
    return loans.with_columns(
        *match_columns(steps, digits), stopped(strategy, digits).alias("stopped")
    ).with_columns(
        pl.when(pl.col("stopped"))
        .then(pl.lit(NO_STEP))
        .otherwise(first_match(steps))
        .alias("step_index")
    )


def pick_loans(evaluated: pl.DataFrame, urgency: str = "dpd") -> pl.DataFrame:
    """Per person, the loan the message speaks of: among the loans a step matches, the most
    overdue (then the first step, then the largest); with `urgency="strategy"`, the first
    matching step, then the most overdue."""
    first = ["dpd", "step_index"] if urgency == "dpd" else ["step_index", "dpd"]
    descending = [True, False] if urgency == "dpd" else [False, True]
    return (
        evaluated.filter(pl.col("step_index") != NO_STEP)
        .sort(
            ["customer_id", *first, "outstanding", "loan_id"],
            descending=[False, *descending, True, False],
        )
        .unique("customer_id", keep="first", maintain_order=True)
    )


def assign(chosen: pl.DataFrame, strategy: Strategy) -> pl.DataFrame:
    """The picked rows (with `customer`, the external id) with step, control, variant and the
    step's channel, template and rules."""
    steps = ordered_steps(strategy)
    ids = [s.id for s in steps]
    # Per step once: its choices and whether it holds anyone back (a hash per person only then).
    per_step = [(s, [v.template for v in s.choices], s.control > 0) for s in steps]
    control, variant, template = [], [], []
    for customer, index in chosen.select("customer", "step_index").iter_rows():
        step, templates, holds_back = per_step[index]
        control.append(holds_back and in_control(customer, step))
        pick = variant_index(customer, step) if len(templates) > 1 else 0
        variant.append(pick)
        template.append(templates[pick])
    return chosen.with_columns(
        pl.col("step_index")
        .replace_strict(dict(enumerate(ids)), return_dtype=pl.String)
        .alias("step"),
        pl.Series("control", control, dtype=pl.Boolean),
        pl.Series("variant", variant, dtype=pl.Int64),
        pl.Series("template", template, dtype=pl.String),
        pl.col("step_index")
        .replace_strict({i: s.channel for i, s in enumerate(steps)}, return_dtype=pl.String)
        .alias("channel"),
        pl.col("step_index")
        .replace_strict({i: s.holidays for i, s in enumerate(steps)}, return_dtype=pl.String)
        .alias("holidays"),
        pl.col("step_index")
        .replace_strict(
            {i: s.repeat_every_days for i, s in enumerate(steps)}, return_dtype=pl.Int64
        )
        .alias("repeat_every_days"),
    )
