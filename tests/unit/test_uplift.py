"""Uplift statistics against published values, and their coverage in a simulation with a known
effect."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cuikuan.domain.uplift import compare_amounts, compare_rates, newcombe, verdict, wilson


def test_wilson_and_newcombe_match_the_published_examples() -> None:
    # Newcombe 1998 (Stat Med 17:857 and 873): 81/263; 56/70 - 48/80; 9/10 - 3/10.
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert newcombe(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert newcombe(9, 10, 3, 10) == pytest.approx((0.1705, 0.8090), abs=5e-5)
    # The report's interval holds Newcombe's, widened by the control draw's variance if wider.
    c = compare_rates(56, 70, 48, 80)
    assert c.difference == pytest.approx(0.2)
    assert c.low <= 0.0524 and c.high >= 0.3339


def test_the_verdict_is_plain() -> None:
    assert compare_rates(300, 1000, 200, 1000).verdict == "better"
    assert compare_rates(200, 1000, 300, 1000).verdict == "worse"
    assert compare_rates(210, 1000, 200, 1000).verdict == "not yet known"
    assert compare_rates(9, 10, 3, 10).verdict == "not yet known"  # groups too small
    assert verdict(0.01, 0.2, 100, 100, 30) == "better"


def test_the_amount_interval_is_the_permutation_tests_and_needs_payers() -> None:
    # Three members paid in each arm: too few payers for a verdict, however wide the gap.
    c = compare_amounts([100.0, 200.0, 300.0] + [0.0] * 50, [5.0, 5.0, 5.0] + [0.0] * 50)
    assert c.difference == pytest.approx((600 - 15) / 53)
    assert c.low < c.difference < c.high
    assert c.verdict == "not yet known"
    assert compare_amounts([1.0], [2.0]).verdict == "not yet known"
    # Plenty of payers and a clear gap: a verdict, and the same interval every time.
    rng = random.Random(3)
    treated = [rng.choice((0.0, 0.0, 500.0)) for _ in range(600)]
    control = [rng.choice((0.0, 0.0, 0.0, 500.0)) for _ in range(300)]
    first = compare_amounts(treated, control)
    assert first.verdict == "better" and first.low > 0
    assert compare_amounts(treated, control) == first


def _skewed_amount(rng: random.Random) -> float:
    """What borrowers pay: mostly what is due (of very different sizes), some a part."""
    due = round(rng.lognormvariate(7.5, 1.0))
    return float(due if rng.random() < 0.75 else round(rng.lognormvariate(6.5, 1.2)))


@pytest.mark.parametrize(("n_treated", "n_control", "pay_rate"),
                         [(2000, 200, 0.03), (5000, 300, 0.05), (20000, 1000, 0.02), (800, 100, 0.1)])  # fmt: skip
def test_no_effect_gets_a_verdict_at_most_about_five_percent_of_the_time(
    n_treated: int, n_control: int, pay_rate: float
) -> None:
    """Mostly zeros and skewed amounts, the same in both arms: a normal-quantile (Welch)
    interval said "better" or "worse" 10-17% of the time in these settings."""
    rng = random.Random(n_treated * 7 + n_control)
    runs, wrong = 400, 0
    for _ in range(runs):
        arms = [
            [_skewed_amount(rng) if rng.random() < pay_rate else 0.0 for _ in range(n)]
            for n in (n_treated, n_control)
        ]
        wrong += compare_amounts(arms[0], arms[1], rounds=1000).verdict != "not yet known"
    # 5% stated; with 400 runs the observed share is within about ±2.2 points of it.
    assert wrong / runs <= 0.075


@pytest.mark.parametrize(("p_treated", "p_control", "n_treated", "n_control"),
                         [(0.25, 0.20, 900, 100), (0.06, 0.04, 400, 400), (0.7, 0.7, 200, 60)])  # fmt: skip
def test_the_interval_covers_the_true_effect_at_about_the_stated_rate(
    p_treated: float, p_control: float, n_treated: int, n_control: int
) -> None:
    rng = random.Random(20261129)
    runs, covered = 2000, 0
    for _ in range(runs):
        x1 = sum(rng.random() < p_treated for _ in range(n_treated))
        x0 = sum(rng.random() < p_control for _ in range(n_control))
        c = compare_rates(x1, n_treated, x0, n_control)
        covered += c.low <= p_treated - p_control <= c.high
    # 95% stated, for the effect in whichever group (see the next test): wider than Newcombe's
    # when the arms' spreads differ, so a little above 95% here and never below.
    assert 0.93 <= covered / runs <= 0.985


@pytest.mark.parametrize(("p_control", "lift", "n_treated", "n_control"),
                         [(0.10, 0.17, 600, 150), (0.05, 0.10, 2000, 200), (0.30, 0.05, 450, 150)])  # fmt: skip
def test_the_interval_covers_the_effect_on_the_people_held_back_and_on_those_sent_to(
    p_control: float, lift: float, n_treated: int, n_control: int
) -> None:
    """What sim/truth.py checks: one group of people, each with what they would do with and
    without the message, dealt into two arms by the control draw. The effect on those held back
    and the effect on those sent to are both covered at least 95% of the time; Newcombe's interval
    (two independent samples) covered the first 86% of the time in the first setting."""
    rng = np.random.default_rng(20261207)
    runs, n = 2000, n_treated + n_control
    covered = {"held back": 0, "sent to": 0, "held back, Newcombe": 0}
    for _ in range(runs):
        without = rng.random(n) < p_control
        with_ = without | (rng.random(n) < lift)  # a reminder never stops anyone paying
        held = np.zeros(n, dtype=bool)
        held[rng.choice(n, n_control, replace=False)] = True
        x1, x0 = int(with_[~held].sum()), int(without[held].sum())
        c = compare_rates(x1, n_treated, x0, n_control)
        on_held = float((with_[held].astype(int) - without[held]).mean())
        on_sent = float((with_[~held].astype(int) - without[~held]).mean())
        covered["held back"] += c.low <= on_held <= c.high
        covered["sent to"] += c.low <= on_sent <= c.high
        low, high = newcombe(x1, n_treated, x0, n_control)
        covered["held back, Newcombe"] += low <= on_held <= high
    share = {k: v / runs for k, v in covered.items()}
    assert 0.93 <= share["held back"] <= 0.985, share
    # The effect on those sent to has the held-back arm's smaller spread: covered more often.
    assert share["sent to"] >= 0.93, share
    if (p_control, n_control) == (0.10, 150):
        assert share["held back, Newcombe"] < 0.91, share  # the checker can fail


def test_the_amount_interval_covers_a_known_difference() -> None:
    rng = random.Random(7)
    covered = 0
    for _ in range(400):
        treated = [rng.expovariate(1 / 120) if rng.random() < 0.3 else 0.0 for _ in range(600)]
        control = [rng.expovariate(1 / 120) if rng.random() < 0.25 else 0.0 for _ in range(300)]
        c = compare_amounts(treated, control, rounds=1000)
        covered += c.low <= 0.3 * 120 - 0.25 * 120 <= c.high
    assert 0.92 <= covered / 400 <= 0.98


def test_a_step_with_only_held_back_members_gains_no_money_and_says_so_in_numbers() -> None:
    """No treated member in the range: the incremental money is 0, never NaN (which stopped the
    HTML report and is not JSON)."""
    import math
    from datetime import UTC, date, datetime
    from decimal import Decimal

    import polars as pl

    from cuikuan.services.report_members import MEMBERS, compare_steps

    at = datetime(2026, 11, 30, 1, tzinfo=UTC)
    rows = [
        {"outbox_id": i, "customer_id": i, "loan_id": i, "step": "m1", "template": "t", "variant": 0,
         "channel": "sms", "recipient": f"+86138{i:08d}", "status": "held", "provider": None, "reason": None,
         "billing_units": 0, "plan_date": date(2026, 11, 30), "sent_at": None, "earliest_at": at, "opens_at": at,
         "control": True, "opens": at, "open": False, "paid": i % 2 == 0, "amount": 10_000 * (i % 2 == 0),
         "left": False}
        for i in range(12)
    ]  # fmt: skip
    members = pl.DataFrame(rows, schema=MEMBERS)
    steps, _ = compare_steps(members, ["m1"], Decimal("0.05"), 2)
    values = [steps[0][k] for k in ("incremental", "incremental_low", "incremental_high")]
    assert all(isinstance(v, float) and math.isfinite(v) for v in values), values
