"""Uplift statistics against published values, and their coverage in a simulation with a known
effect."""

from __future__ import annotations

import random

import pytest

from cuikuan.domain.uplift import compare_means, compare_rates, verdict, wilson


def test_wilson_and_newcombe_match_the_published_examples() -> None:
    # Newcombe 1998 (Stat Med 17:857 and 873): 81/263; 56/70 - 48/80; 9/10 - 3/10.
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    c = compare_rates(56, 70, 48, 80)
    assert c.difference == pytest.approx(0.2)
    assert (c.low, c.high) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    small = compare_rates(9, 10, 3, 10)
    assert (small.low, small.high) == pytest.approx((0.1705, 0.8090), abs=5e-5)


def test_the_verdict_is_plain() -> None:
    assert compare_rates(300, 1000, 200, 1000).verdict == "better"
    assert compare_rates(200, 1000, 300, 1000).verdict == "worse"
    assert compare_rates(210, 1000, 200, 1000).verdict == "not yet known"
    assert compare_rates(9, 10, 3, 10).verdict == "not yet known"  # groups too small
    assert verdict(0.01, 0.2, 100, 100, 30) == "better"


def test_welch_difference_of_means_by_hand() -> None:
    c = compare_means([10.0, 20.0, 30.0], [5.0, 5.0, 5.0, 5.0], min_group=2)
    # means 20 and 5; variances 100 and 0; se = sqrt(100/3) = 5.7735; z = 1.959964
    assert c.difference == 15
    assert (c.low, c.high) == pytest.approx(
        (15 - 1.959964 * 5.773503, 15 + 1.959964 * 5.773503), abs=1e-4
    )
    assert c.verdict == "better"
    assert compare_means([1.0], [2.0]).verdict == "not yet known"


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
    # 95% stated; with 2,000 runs the observed share is within about ±1.5 points of the truth.
    assert 0.93 <= covered / runs <= 0.975


def test_the_mean_interval_covers_a_known_difference() -> None:
    rng = random.Random(7)
    covered = 0
    for _ in range(1000):
        treated = [rng.expovariate(1 / 120) if rng.random() < 0.3 else 0.0 for _ in range(600)]
        control = [rng.expovariate(1 / 120) if rng.random() < 0.25 else 0.0 for _ in range(300)]
        c = compare_means(treated, control)
        covered += c.low <= 0.3 * 120 - 0.25 * 120 <= c.high
    assert 0.93 <= covered / 1000 <= 0.97
