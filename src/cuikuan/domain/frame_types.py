"""The columns of frames that cross module lines, declared once and checked at the boundary.

    require(chosen, CHOSEN, "decide")     # ValueError naming the missing or mistyped column

A column's kind is checked (integer, text, list of text, true/false, date, moment), not its
exact width: the readers may hand in Int32 where Int64 was declared.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

# What the plan hands to `decide.decide` (one row per person and the step chosen).
CHOSEN: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "customer": pl.String(), "step": pl.String(), "step_index": pl.Int64(),
    "channel": pl.String(), "template": pl.String(), "control": pl.Boolean(), "holidays": pl.String(),
    "repeat_every_days": pl.Int64(), "external_id": pl.String(), "dpd": pl.Int64(),
    "days_to_due": pl.Int64(), "outstanding": pl.Int64(), "phones": pl.List(pl.String()),
    "mobiles": pl.List(pl.String()), "email": pl.String(), "timezone": pl.String(),
    "flags": pl.List(pl.String()), "opted_out": pl.List(pl.String()), "paid_off": pl.Boolean(),
    "promise_pending": pl.Boolean(), "paused": pl.String(),
}  # fmt: skip
# The messages that count against caps and repeats (the plan's history read).
HISTORY: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "recipient": pl.String(), "step": pl.String(), "plan_date": pl.Date(),
    "key": pl.String(), "at": UTC_US, "status": pl.String(), "control": pl.Boolean(),
}  # fmt: skip


def _kind(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if isinstance(dtype, pl.List):
        return f"list of {_kind(dtype.inner)}"  # type: ignore[arg-type]
    if isinstance(dtype, pl.Datetime):
        return "moment"
    if dtype == pl.Null:
        return "null"
    return str(dtype.base_type()).lower()


def require(frame: pl.DataFrame, columns: Mapping[str, pl.DataType], where: str) -> None:
    """Every declared column is there, of its kind (an all-null column passes)."""
    for name, dtype in columns.items():
        if name not in frame.columns:
            raise ValueError(f"{where}: the frame has no column {name!r}")
        got = frame.schema[name]
        if _kind(got) not in (_kind(dtype), "null", "list of null"):
            raise ValueError(
                f"{where}: column {name!r} is {_kind(got)} ({got}), expected {_kind(dtype)}"
            )
