"""Strategy steps: the set-at-a-time condition and the explain rule agree; control and variants
are stable; the shipped strategy is valid."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.strategy import (
    Facts,
    Step,
    Strategy,
    in_control,
    step_condition,
    variant_index,
    why_not,
)
from cuikuan.services.strategy_file import shipped_strategy_text

day_rules = st.one_of(
    st.none(),
    st.integers(-5, 90),
    st.tuples(st.integers(-5, 40), st.integers(0, 60)).filter(lambda t: t[0] <= t[1]).map(list),
    st.builds(
        lambda e, a, b: {"every": e, "from": a, "to": a + b},
        st.integers(1, 14),
        st.integers(0, 60),
        st.integers(0, 60),
    ),
)
steps = st.builds(
    lambda dtd, dpd, bucket, amounts, tags, first: Step.model_validate(
        {
            "id": "s",
            "template": "t",
            "days_to_due": dtd,
            "dpd": dpd,
            "bucket": bucket,
            "outstanding": amounts,
            "tags": tags,
            "first_delinquency": first,
        }
    ),
    day_rules,
    day_rules,
    st.one_of(
        st.none(),
        st.lists(st.sampled_from(["current", "M1", "M2", "M3", "M3+"]), min_size=1, unique=True),
    ),
    st.one_of(
        st.none(),
        st.tuples(st.integers(0, 5000), st.integers(0, 50000)).map(
            lambda t: [str(min(t)), str(max(t))]
        ),
    ),
    st.one_of(st.none(), st.lists(st.sampled_from(["vip", "new", "sme"]), min_size=1, unique=True)),
    st.one_of(st.none(), st.booleans()),
)
facts = st.builds(
    Facts,
    st.one_of(st.none(), st.integers(-5, 60)),
    st.integers(0, 200),
    st.sampled_from(["current", "M1", "M2", "M3", "M3+"]),
    st.integers(0, 5_000_000).map(lambda c: Decimal(c).scaleb(-2)),
    st.frozensets(st.sampled_from(["vip", "new", "sme"])),
    st.booleans(),
)


@given(steps, st.lists(facts, min_size=1, max_size=20))
def test_the_plan_condition_and_explain_agree(step: Step, many: list[Facts]) -> None:
    frame = pl.DataFrame(
        {
            "days_to_due": [f.days_to_due for f in many],
            "dpd": [f.dpd for f in many],
            "bucket": [f.bucket for f in many],
            "outstanding": [int(f.outstanding.scaleb(2)) for f in many],
            "tags": [sorted(f.tags) for f in many],
            "first_delinquency": [f.first_delinquency for f in many],
        },
        schema={
            "days_to_due": pl.Int64,
            "dpd": pl.Int64,
            "bucket": pl.String,
            "outstanding": pl.Int64,
            "tags": pl.List(pl.String),
            "first_delinquency": pl.Boolean,
        },
    )
    # with_columns, as the planner evaluates it: a step with no conditions is a bare literal,
    # which `select` would give as one row rather than one per account.
    matched = frame.with_columns(step_condition(step).alias("m")).get_column("m").to_list()
    assert matched == [why_not(step, f) is None for f in many]


@given(st.text(min_size=1, max_size=12), st.floats(0.01, 0.9))
def test_control_membership_and_variant_are_stable(customer: str, share: float) -> None:
    step = Step.model_validate(
        {
            "id": "s",
            "control": share,
            "variants": [{"template": "a", "weight": 3}, {"template": "b", "weight": 1}],
        }
    )
    assert in_control(customer, step) == in_control(customer, step)
    assert variant_index(customer, step) == variant_index(customer, step)


def test_control_share_and_variant_weights_hold_over_many_people() -> None:
    step = Step.model_validate(
        {
            "id": "m1",
            "control": 0.1,
            "variants": [{"template": "a", "weight": 70}, {"template": "b", "weight": 30}],
        }
    )
    people = [f"C{i:06d}" for i in range(20_000)]
    control = sum(in_control(p, step) for p in people) / len(people)
    share_a = sum(step.choices[variant_index(p, step)].template == "a" for p in people) / len(
        people
    )
    assert 0.09 < control < 0.11
    assert 0.68 < share_a < 0.72


def test_the_shipped_strategy_is_valid() -> None:
    strategy = Strategy.model_validate(tomllib.loads(shipped_strategy_text()))
    assert [s.id for s in strategy.steps][:3] == ["pre_due_3d", "pre_due_1d", "due_today"]
