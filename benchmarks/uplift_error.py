"""How often the report says "better" or "worse" when there is no effect, for money per member.

    python benchmarks/uplift_error.py --runs 1000

Mostly zeros and skewed amounts (what borrowers pay: most pay what is due, of very different
sizes, some a part), the same in both arms, at the group sizes and pay rates the issue named.
Each run draws both arms and asks for a verdict; printed per setting: the share of runs with a
verdict, for the permutation interval the report uses (domain.uplift.compare_amounts) and for the
Welch interval with a normal quantile it replaced (with its "at least 30 members" guard only).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

from cuikuan.domain.uplift import compare_amounts, verdict, z_for

SETTINGS = [
    (2000, 200, 0.03),
    (5000, 300, 0.05),
    (20000, 1000, 0.02),
    (800, 100, 0.1),
    (3000, 3000, 0.01),
]


def amount(rng: random.Random) -> float:
    due = round(rng.lognormvariate(7.5, 1.0))
    return float(due if rng.random() < 0.75 else round(rng.lognormvariate(6.5, 1.2)))


def welch(t: list[float], c: list[float]) -> str:
    n1, n0 = len(t), len(c)
    m1, m0 = sum(t) / n1, sum(c) / n0
    v1 = sum((x - m1) ** 2 for x in t) / (n1 - 1)
    v0 = sum((x - m0) ** 2 for x in c) / (n0 - 1)
    se = math.sqrt(v1 / n1 + v0 / n0)
    d = m1 - m0
    return verdict(d - z_for(0.95) * se, d + z_for(0.95) * se, n1, n0, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for n1, n0, rate in SETTINGS:
        rng = random.Random(n1 * 31 + n0)
        wrong = {"permutation": 0, "welch": 0}
        for _ in range(args.runs):
            t, c = (
                [amount(rng) if rng.random() < rate else 0.0 for _ in range(n)] for n in (n1, n0)
            )
            wrong["permutation"] += compare_amounts(t, c, rounds=1000).verdict != "not yet known"
            wrong["welch"] += welch(t, c) != "not yet known"
        row = {"treated": n1, "control": n0, "pay_rate": rate, "runs": args.runs,
               **{k: round(v / args.runs, 4) for k, v in wrong.items()}}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "uplift_error.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
