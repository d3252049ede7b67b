"""What a message did, against the control group held back from the same step.

    c = compare_rates(paid_treated=120, n_treated=800, paid_control=10, n_control=100)
    c.difference, c.low, c.high, c.verdict     # 0.05, -0.02.., 0.10.., "not yet known"

Pay rates: the difference of two proportions with Newcombe's hybrid score interval (built from
Wilson intervals, which keep their coverage for small groups and rates near 0 or 1, where the
textbook Wald interval does not). Amounts recovered per member: the difference of two means
with Welch's standard error and a normal quantile. The verdict is plain: "better" when the whole
interval is above zero, "worse" when below, otherwise "not yet known", and "not yet known" too
while either group is smaller than `min_group`.

Hand-written rather than scipy: the two formulas are a few lines, and the dependency would be
larger than the module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

MIN_GROUP = 30


def z_for(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    z = z_for(level)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Comparison:
    treated: float
    control: float
    difference: float
    low: float
    high: float
    n_treated: int
    n_control: int
    verdict: str

    def as_dict(self) -> dict[str, object]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def verdict(low: float, high: float, n_treated: int, n_control: int, min_group: int) -> str:
    if n_treated < min_group or n_control < min_group:
        return "not yet known"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "not yet known"


def compare_rates(
    paid_treated: int,
    n_treated: int,
    paid_control: int,
    n_control: int,
    level: float = 0.95,
    min_group: int = MIN_GROUP,
) -> Comparison:
    """Treated minus control pay rate, with Newcombe's hybrid score interval."""
    p1 = paid_treated / n_treated if n_treated else 0.0
    p0 = paid_control / n_control if n_control else 0.0
    l1, u1 = wilson(paid_treated, n_treated, level)
    l0, u0 = wilson(paid_control, n_control, level)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Comparison(
        p1,
        p0,
        d,
        low,
        high,
        n_treated,
        n_control,
        verdict(low, high, n_treated, n_control, min_group),
    )


def compare_means(
    treated: Sequence[float],
    control: Sequence[float],
    level: float = 0.95,
    min_group: int = MIN_GROUP,
) -> Comparison:
    """Treated minus control mean (amount recovered per member), Welch standard error."""
    n1, n0 = len(treated), len(control)
    m1 = sum(treated) / n1 if n1 else 0.0
    m0 = sum(control) / n0 if n0 else 0.0
    if n1 < 2 or n0 < 2:
        return Comparison(m1, m0, m1 - m0, -math.inf, math.inf, n1, n0, "not yet known")
    v1 = sum((x - m1) ** 2 for x in treated) / (n1 - 1)
    v0 = sum((x - m0) ** 2 for x in control) / (n0 - 1)
    se = math.sqrt(v1 / n1 + v0 / n0)
    z = z_for(level)
    d = m1 - m0
    low, high = d - z * se, d + z * se
    return Comparison(m1, m0, d, low, high, n1, n0, verdict(low, high, n1, n0, min_group))
