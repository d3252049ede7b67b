"""The strategy: ordered steps saying who gets which message, plus global stop conditions.

    strategy = Strategy.model_validate(tomllib.loads(text))   # errors carry the field path
    step.matches(facts)                                        # one account, for explain
    step_condition(step)                                       # a Polars expression, for the plan

A step's conditions are all optional and all must hold: days to due and DPD (a value, an
inclusive range [a, b], or {every = N, from = A, to = B}), buckets, an outstanding range, tags,
first-time versus repeat delinquency. The first step in priority order that matches a person wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Every(_Strict):
    every: int = Field(ge=1)
    from_: int = Field(alias="from")
    to: int

    @model_validator(mode="after")
    def _ordered(self) -> Every:
        if self.to < self.from_:
            raise ValueError("`to` must not be before `from`")
        return self


DayRule = int | tuple[int, int] | Every


def day_matches(rule: DayRule | None, value: int | None) -> bool:
    if rule is None:
        return True
    if value is None:
        return False
    if isinstance(rule, int):
        return value == rule
    if isinstance(rule, Every):
        return rule.from_ <= value <= rule.to and (value - rule.from_) % rule.every == 0
    return rule[0] <= value <= rule[1]


def day_expr(rule: DayRule | None, column: str) -> pl.Expr:
    col = pl.col(column)
    if rule is None:
        return pl.lit(True)
    if isinstance(rule, int):
        return (col == rule).fill_null(False)
    if isinstance(rule, Every):
        return (
            col.is_between(rule.from_, rule.to) & ((col - rule.from_) % rule.every == 0)
        ).fill_null(False)
    return col.is_between(rule[0], rule[1]).fill_null(False)


class Variant(_Strict):
    template: str = Field(min_length=1)
    weight: int = Field(default=1, ge=1)


class Step(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    priority: int | None = None
    days_to_due: DayRule | None = None
    dpd: DayRule | None = None
    bucket: tuple[str, ...] | None = None
    outstanding: tuple[Decimal, Decimal] | None = None  # major units, inclusive
    tags: tuple[str, ...] | None = None
    first_delinquency: bool | None = None
    channel: Literal["sms", "email"] = "sms"
    template: str | None = None
    variants: tuple[Variant, ...] | None = None
    control: float = Field(default=0.0, ge=0.0, lt=1.0)
    repeat_every_days: int = Field(default=1, ge=1)
    holidays: Literal["ignore", "skip", "shift"] = "ignore"

    @field_validator("days_to_due", "dpd", mode="before")
    @classmethod
    def _day_rule(cls, v: object) -> object:
        if isinstance(v, list):
            if len(v) != 2 or not all(isinstance(x, int) for x in v) or v[0] > v[1]:
                raise ValueError("a range is [from, to] with from <= to, e.g. [1, 7]")
            return (v[0], v[1])
        return v

    @field_validator("outstanding", mode="before")
    @classmethod
    def _amounts(cls, v: object) -> object:
        if isinstance(v, list):
            if len(v) != 2:
                raise ValueError(
                    'an amount range is ["min", "max"] in major units, e.g. ["100", "50000"]'
                )
            return tuple(Decimal(str(x)) for x in v)
        return v

    @model_validator(mode="after")
    def _one_template_source(self) -> Step:
        if (self.template is None) == (self.variants is None):
            raise ValueError("give a step either `template` or `variants`, not both or neither")
        return self

    @property
    def targets_overdue(self) -> bool:
        """Whether the step only ever speaks to borrowers already late (its DPD rule excludes 0)."""
        rule = self.dpd
        if rule is None:
            return False
        if isinstance(rule, int):
            return rule > 0
        if isinstance(rule, Every):
            return rule.from_ > 0
        return rule[0] > 0

    @property
    def choices(self) -> tuple[Variant, ...]:
        return (
            self.variants if self.variants is not None else (Variant(template=self.template or ""),)
        )

    def templates(self) -> list[str]:
        return [v.template for v in self.choices]


class Stop(_Strict):
    """No automated message at all beyond these: the account goes to people instead."""

    after_dpd: int | None = Field(default=180, ge=0)
    below_outstanding: Decimal = Decimal("1.00")


class Strategy(_Strict):
    name: str = "default"
    stop: Stop = Stop()
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Strategy:
        ids = [s.id for s in self.steps]
        duplicate = next((i for i in ids if ids.count(i) > 1), None)
        if duplicate:
            raise ValueError(f"step id {duplicate!r} is used twice")
        given = [s.priority for s in self.steps if s.priority is not None]
        clash = next((p for p in given if given.count(p) > 1), None)
        if clash is not None:
            names = [s.id for s in self.steps if s.priority == clash]
            raise ValueError(
                f"steps {' and '.join(names)} overlap in order: both have priority {clash}"
            )
        return self


def ordered_steps(strategy: Strategy) -> list[Step]:
    indexed = list(enumerate(strategy.steps))
    return [
        s
        for _, s in sorted(
            indexed, key=lambda p: (p[1].priority if p[1].priority is not None else p[0], p[0])
        )
    ]


@dataclass(frozen=True)
class Facts:
    """What a step looks at, for one person's loan."""

    days_to_due: int | None
    dpd: int
    bucket: str
    outstanding: Decimal  # major units
    tags: frozenset[str]
    first_delinquency: bool


def why_not(step: Step, facts: Facts) -> str | None:
    """None when the step matches, else the first condition that fails (for explain)."""
    if not day_matches(step.days_to_due, facts.days_to_due):
        return f"days to due is {facts.days_to_due}, step wants {_show(step.days_to_due)}"
    if not day_matches(step.dpd, facts.dpd):
        return f"DPD is {facts.dpd}, step wants {_show(step.dpd)}"
    if step.bucket is not None and facts.bucket not in step.bucket:
        return f"bucket is {facts.bucket}, step wants {', '.join(step.bucket)}"
    if (
        step.outstanding is not None
        and not step.outstanding[0] <= facts.outstanding <= step.outstanding[1]
    ):
        return f"outstanding {facts.outstanding} is outside {step.outstanding[0]}-{step.outstanding[1]}"
    if step.tags is not None and not facts.tags & set(step.tags):
        return f"no tag among {', '.join(step.tags)}"
    if step.first_delinquency is not None and facts.first_delinquency != step.first_delinquency:
        return "first delinquency" if facts.first_delinquency else "repeat delinquency"
    return None


def _show(rule: DayRule | None) -> str:
    if isinstance(rule, Every):
        return f"every {rule.every} from {rule.from_} to {rule.to}"
    if isinstance(rule, tuple):
        return f"{rule[0]}..{rule[1]}"
    return str(rule)


def step_condition(step: Step, digits: int = 2) -> pl.Expr:
    """The step's conditions over a frame with days_to_due, dpd, bucket, outstanding (minor
    units), tags (list of str) and first_delinquency: the same rule as `why_not`."""
    cond = day_expr(step.days_to_due, "days_to_due") & day_expr(step.dpd, "dpd")
    if step.bucket is not None:
        cond &= pl.col("bucket").is_in(list(step.bucket))
    if step.outstanding is not None:
        lo, hi = (int(x.scaleb(digits)) for x in step.outstanding)
        cond &= pl.col("outstanding").is_between(lo, hi)
    if step.tags is not None:
        cond &= pl.col("tags").list.set_intersection(list(step.tags)).list.len() > 0
    if step.first_delinquency is not None:
        cond &= pl.col("first_delinquency") == step.first_delinquency
    return cond.fill_null(False)


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) fixed by its inputs: the same account and step, the same draw."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def in_control(customer: str, step: Step) -> bool:
    return step.control > 0 and stable_fraction(customer, step.id, "control") < step.control


def variant_index(customer: str, step: Step) -> int:
    """Which of the step's choices the customer gets: a stable draw by account and step,
    in proportion to the weights."""
    choices = step.choices
    if len(choices) == 1:
        return 0  # what the draw would give, without a hash per person
    point = stable_fraction(customer, step.id, "variant") * sum(v.weight for v in choices)
    for i, variant in enumerate(choices):
        point -= variant.weight
        if point < 0:
            return i
    return len(choices) - 1


def check_buckets(strategy: Strategy, buckets: Sequence[str]) -> list[tuple[int, str]]:
    """(step index, message) for every bucket a step names that the settings do not define."""
    return [
        (i, f"unknown bucket {b!r}; buckets are {', '.join(buckets)}")
        for i, s in enumerate(strategy.steps)
        for b in s.bucket or ()
        if b not in buckets
    ]
