"""What a message did, against the control group held back from the same step.

    c = compare_rates(paid_treated=120, n_treated=800, paid_control=10, n_control=100)
    c.difference, c.low, c.high, c.verdict     # 0.05, -0.02.., 0.10.., "not yet known"

Pay rates: the difference of two proportions. The interval holds whichever effect is meant:
on the members held back (what they would have gained), on those sent to, or on the whole group.
A control draw deals one group of people into two arms, and for the effect on the held back the
estimate's error is the difference between the arms' means of the *treated* outcome, whose
variance is S1^2 (1/n1 + 1/n0) - the treated arm's spread on both sides; for the effect on those
sent to it is S0^2 (1/n1 + 1/n0). Newcombe's hybrid score interval (built from Wilson intervals,
which keep their coverage for small groups and rates near 0 or 1) assumes two independent
samples instead, S1^2/n1 + S0^2/n0: with 20% held back and a reminder that raises the pay rate,
it covered the effect on the held back in 85% of simulated steps (sim/truth.py). So the interval
is Newcombe's, widened where needed to d +- z sqrt(max(S1^2, S0^2) (1/n1 + 1/n0)), which is wider
than all three variances (`tests/unit/test_uplift.py` measures its coverage of each).

Amounts recovered per member (`compare_amounts`): mostly zeros, and a few payments of very
different sizes. Welch's interval with a normal quantile is wrong there 10-44% of the time when
there is no effect at all (a few large payments in a small control group skew the mean), so the
interval comes from a permutation test: the members' amounts are dealt out again at random
between the arms (as the control draw did) `rounds` times, and the interval is the set of
differences the test would not reject under a shift, [d - q_hi, d - q_lo] with q the null
quantiles. It excludes zero exactly when the permutation test rejects "no effect", whose error
rate holds whatever the amounts' shape; a verdict also needs `min_payers` payers in each arm.
(`tests/unit/test_uplift.py` measures the error rate by simulation.)

The verdict is plain: "better" when the whole interval is above zero, "worse" when below,
otherwise "not yet known", and "not yet known" too while either group is smaller than
`min_group`.

Hand-written rather than scipy: the formulas are a few lines, and the dependency would be
larger than the module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

MIN_GROUP = 30
MIN_PAYERS = 10
ROUNDS = 2000
# Above this many payers in each arm the permutation distribution is normal to well within the
# Monte Carlo noise: its exact variance is used instead of dealing the amounts out again.
NORMAL_FROM = 5000
SEED = 20261206  # the same data always gives the same interval
BLOCK = 2_000_000  # values sorted at once while dealing out (memory: about 50 MB)


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
    """Treated minus control pay rate: Newcombe's hybrid score interval, widened to the
    control draw's own variance where that is wider (see the module's docstring)."""
    p1 = paid_treated / n_treated if n_treated else 0.0
    p0 = paid_control / n_control if n_control else 0.0
    d = p1 - p0
    low, high = newcombe(paid_treated, n_treated, paid_control, n_control, level)
    if n_treated > 1 and n_control > 1:
        spread = max(_spread(paid_treated, n_treated), _spread(paid_control, n_control))
        half = z_for(level) * math.sqrt(spread * (1 / n_treated + 1 / n_control))
        low, high = min(low, d - half), max(high, d + half)
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


def newcombe(
    paid_treated: int, n_treated: int, paid_control: int, n_control: int, level: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for the difference of two independent proportions."""
    p1 = paid_treated / n_treated if n_treated else 0.0
    p0 = paid_control / n_control if n_control else 0.0
    l1, u1 = wilson(paid_treated, n_treated, level)
    l0, u0 = wilson(paid_control, n_control, level)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return low, high


def _spread(paid: int, n: int) -> float:
    """The sample variance of n outcomes of which `paid` are 1."""
    p = paid / n
    return p * (1 - p) * n / (n - 1)


def compare_amounts(
    treated: Sequence[float],
    control: Sequence[float],
    level: float = 0.95,
    min_group: int = MIN_GROUP,
    min_payers: int = MIN_PAYERS,
    rounds: int = ROUNDS,
) -> Comparison:
    """Treated minus control mean amount per member, with the permutation interval."""
    t = np.asarray(treated, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    n1, n0 = t.size, c.size
    m1 = float(t.mean()) if n1 else 0.0
    m0 = float(c.mean()) if n0 else 0.0
    d = m1 - m0
    if n1 < 2 or n0 < 2:
        return Comparison(m1, m0, d, -math.inf, math.inf, n1, n0, "not yet known")
    paid = np.concatenate([t[t != 0], c[c != 0]])
    k1, k0 = int(np.count_nonzero(t)), int(np.count_nonzero(c))
    tail = (1 - level) / 2
    if paid.size == 0:
        low = high = 0.0
    elif min(k1, k0) >= NORMAL_FROM:
        pooled = np.concatenate([t, c])
        se = float(pooled.std(ddof=1)) * math.sqrt(1 / n1 + 1 / n0)
        low, high = d - z_for(level) * se, d + z_for(level) * se
    else:
        null = _dealt(paid, n1, n0, rounds)
        q_lo, q_hi = (float(q) for q in np.quantile(null, [tail, 1 - tail]))
        low, high = d - q_hi, d - q_lo
    say = verdict(low, high, n1, n0, min_group)
    if min(k1, k0) < min_payers:
        say = "not yet known"
    return Comparison(m1, m0, d, low, high, n1, n0, say)


def _dealt(paid: np.ndarray, n1: int, n0: int, rounds: int) -> np.ndarray:
    """The difference of means when the members' amounts are dealt out at random again, n1 to
    the treated and n0 to the control, `rounds` times. Only the non-zero amounts are dealt:
    how many land among the treated is hypergeometric, and which ones a random subset."""
    rng = np.random.default_rng(SEED)
    k = paid.size
    total = float(paid.sum())
    landed = rng.hypergeometric(k, n1 + n0 - k, n1, size=rounds)
    sums = np.empty(rounds)
    step = max(1, BLOCK // k)
    for start in range(0, rounds, step):
        count = landed[start : start + step]
        order = np.argsort(rng.random((count.size, k)), axis=1)
        running = np.cumsum(paid[order], axis=1)
        picked = running[np.arange(count.size), np.maximum(count - 1, 0)]
        sums[start : start + step] = np.where(count > 0, picked, 0.0)
    return sums / n1 - (total - sums) / n0
