"""Who the report compares, and what each step brought in over its control group.

    members = step_members(rows, pays, start, window_days, now)
    uplift, variants = compare_steps(members, order, price, digits)

Intention to treat: a step's members are the customers it chose in the range, each once, from
the first of its rows that reached the control draw (`decide.CAP_PREFIX`): held back (control)
or not (treated), *whatever happened to a treated row later* (stopped by a cap, by the re-check
at send time, expired, failed). Comparing only the messages that went out would compare the
control group with the treated customers the caps and the re-check let through, who are not
alike (a customer who paid since planning drops out of the treated arm only).

Both arms' pay windows start at the same moment, the opening of the row's contact window on its
send day (`outbox.opens_at`; `earliest_at` on rows planned before it was kept), and run
`window_days`. A member's outcome is every payment of the customer in that window. Members whose
window is still open at `now` are counted apart and left out of the comparison; customers the
step chose in the `lookback_days` before the range are left out of both arms alike (a treated one
re-enters only when the step's repeat allows, a held one every day).

Incremental money: the difference in amount per member (uplift.compare_amounts) times the
treated members, with its interval; its cost is what the treated members' messages cost (those
that left); and the cost per unit of incremental money when there is any.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from cuikuan.domain import uplift
from cuikuan.services.attribution import LEFT

UTC_US = pl.Datetime("us", "UTC")
# The outbox rows the report reads (services.report) and hands here.
ROWS: dict[str, pl.DataType] = {
    "outbox_id": pl.Int64(), "customer_id": pl.Int64(), "loan_id": pl.Int64(), "step": pl.String(),
    "template": pl.String(), "variant": pl.Int64(), "channel": pl.String(), "recipient": pl.String(),
    "status": pl.String(), "provider": pl.String(), "reason": pl.String(),
    "billing_units": pl.Int64(), "plan_date": pl.Date(), "sent_at": UTC_US, "earliest_at": UTC_US,
    "opens_at": UTC_US, "control": pl.Boolean(),
}  # fmt: skip
# The customers' payments: customer_id, paid_at, amount (minor units).
PAYS: dict[str, pl.DataType] = {"customer_id": pl.Int64(), "paid_at": UTC_US, "amount": pl.Int64()}
# One row per step and member.
MEMBERS: dict[str, pl.DataType] = {
    **ROWS, "opens": UTC_US, "open": pl.Boolean(), "paid": pl.Boolean(), "amount": pl.Int64(),
    "left": pl.Boolean(),
}  # fmt: skip


def step_members(
    rows: pl.DataFrame,
    pays: pl.DataFrame,
    start: date,
    window_days: int,
    now: datetime | None,
) -> pl.DataFrame:
    """One row per (step, customer) chosen in the range, with its arm and outcome (MEMBERS).
    `rows` start `lookback_days` before `start` (the step's longest repeat): whoever the step
    chose then is left out. `now` None: every window counts as closed."""
    if rows.is_empty():
        return pl.DataFrame(schema=MEMBERS)
    first = (
        rows.sort("plan_date", "outbox_id")
        .unique(["step", "customer_id"], keep="first", maintain_order=True)
        .filter(pl.col("plan_date") >= start)  # in the step before the range: left out
        .with_columns(pl.coalesce("opens_at", "earliest_at").alias("opens"))
    )
    window = timedelta(days=window_days)
    won = (
        first.select("step", "customer_id", "opens")
        .join(pays, on="customer_id")
        .filter((pl.col("paid_at") >= pl.col("opens")) & (pl.col("paid_at") < pl.col("opens") + window))
        .group_by("step", "customer_id")
        .agg(pl.col("amount").sum())
    )  # fmt: skip
    still_open = (
        pl.col("opens") + window > pl.lit(now).dt.convert_time_zone("UTC")
        if now is not None
        else pl.lit(False)
    )
    return first.join(won, on=["step", "customer_id"], how="left").with_columns(
        still_open.alias("open"),
        pl.col("amount").is_not_null().alias("paid"),
        pl.col("amount").fill_null(0),
        pl.col("status").is_in(LEFT).alias("left"),
    )


def compare_steps(
    members: pl.DataFrame, order: Sequence[str], price: Decimal, digits: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per step (in `order`, the lifecycle): the arms, what became of the treated members'
    messages, pay rate and amount per member against the control, incremental money and its
    cost. Per variant: challenger against the step's first (champion), treated members only."""
    out: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = []
    unit_price = Decimal(price) * 10**digits  # minor units per billing unit
    for step in _in_order(members, order):
        group = members.filter(pl.col("step") == step)
        closed = group.filter(~pl.col("open"))
        treated, held = closed.filter(~pl.col("control")), closed.filter(pl.col("control"))
        row = _compare(treated, held)
        units = int(treated.filter(pl.col("left"))["billing_units"].sum())
        cost = int((units * unit_price).to_integral_value())
        # Nobody treated (only held-back members in the range): nothing was gained, and an
        # unbounded interval times no one is no money, not NaN.
        gained, low, high = (
            row["recovered_per_member"][k] * treated.height if treated.height else 0.0
            for k in ("difference", "low", "high")
        )
        statuses = dict(treated.group_by("status").agg(pl.len()).iter_rows())
        out.append({
            "step": step,
            "members": group.height,
            "open_windows": group.height - closed.height,
            "sent_share": _share(sum(statuses.get(s, 0) for s in LEFT), treated.height),
            "suppressed_share": _share(statuses.get("suppressed", 0), treated.height),
            "treated_outcomes": dict(sorted(statuses.items())),
            **row,
            "collected_treated": int(treated["amount"].sum()),
            "collected_control": int(held["amount"].sum()),
            "incremental": _money(gained), "incremental_low": _money(low),
            "incremental_high": _money(high),
            "cost": cost,
            "cost_per_incremental": round(cost / gained, 4) if gained > 0 else None,
        })  # fmt: skip
        variants += _variants(step, treated)
    return out, variants


def _compare(treated: pl.DataFrame, held: pl.DataFrame) -> dict[str, Any]:
    rate = uplift.compare_rates(
        int(treated["paid"].sum()), treated.height, int(held["paid"].sum()), held.height
    )
    amount = uplift.compare_amounts(treated["amount"].to_list(), held["amount"].to_list())
    return {"pay_rate": rate.as_dict(), "recovered_per_member": amount.as_dict()}


def _variants(step: str, treated: pl.DataFrame) -> list[dict[str, Any]]:
    by_variant = {int(v): g for (v,), g in treated.group_by(["variant"])}
    if len(by_variant) < 2:
        return []
    champion = min(by_variant)
    return [
        {"step": step, "challenger": v, "champion": champion, "template": g["template"][0],
         **_compare(g, by_variant[champion])}
        for v, g in sorted(by_variant.items())
        if v != champion
    ]  # fmt: skip


def weekly(members: pl.DataFrame) -> list[dict[str, Any]]:
    """Per week (from Monday) of the members' first day: all steps together, the pay rate of
    each arm and the difference, with its interval."""
    closed = members.filter(~pl.col("open"))
    if closed.is_empty():
        return []
    weeks = closed.with_columns(pl.col("plan_date").dt.truncate("1w").alias("week"))
    out = []
    for (week,), g in weeks.group_by(["week"], maintain_order=False):
        t, c = g.filter(~pl.col("control")), g.filter(pl.col("control"))
        rate = uplift.compare_rates(int(t["paid"].sum()), t.height, int(c["paid"].sum()), c.height)
        out.append({"week": week.isoformat(), "pay_rate": rate.as_dict()})
    return sorted(out, key=lambda w: str(w["week"]))


def _in_order(members: pl.DataFrame, order: Sequence[str]) -> list[str]:
    present = set(members["step"].unique().to_list())
    return [s for s in order if s in present] + sorted(present - set(order))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _money(value: float) -> float:
    """Incremental money in minor units: a whole number where finite (rounded, not cut)."""
    return float(round(value)) if math.isfinite(value) else value
