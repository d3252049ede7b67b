"""Benchmark: does the report tell the truth? Each step's true effect in a simulated month
against the report's 95% intervals.

    python benchmarks/report_truth.py --accounts 8000 --days 30 --seeds 1 2 3 --control 0.2

For each seed: one generated book imported twice, the month simulated on both copies with
common random numbers, one copy with control groups (`--control` held back at every step) and
one with none (sim/truth.py). For the customers a step held back, the second copy shows what
they would have done had the message been sent: the mean difference is the step's true effect
on the pay rate within the report's window, and on the amount paid per member. Printed per seed
and step: the truth, the report's estimate and interval, covered or not; then the coverage over
all seeds (steps with at least 30 members held back). Written to benchmarks/out/report_truth.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

from cuikuan.sim.truth import check_report, twin_books

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=8000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--control", type=float, default=0.2)
    parser.add_argument(
        "--exact",
        action="store_true",
        help="one more month per step, in which only that step holds back nobody: each step's "
        "truth then differs from the report's world in that step's control group alone",
    )
    parser.add_argument(
        "--out", help="where the JSON goes (default benchmarks/out/report_truth*.json)"
    )
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for seed in args.seeds:
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="cuikuan-truth-") as folder:
            books = twin_books(
                Path(folder), args.accounts, seed, date(2026, 11, 30), args.control, args.exact
            )
            found = check_report(books, args.days, seed)
        took = time.perf_counter() - began
        for s in found.steps:
            rows.append({"seed": seed, "step": s.step, "n_control": s.n_control,
                         "true_pp": round(s.true_rate * 100, 2), "estimate_pp": round(s.estimate * 100, 2),
                         "low_pp": round(s.low * 100, 2), "high_pp": round(s.high * 100, 2),
                         "covered": s.covered, "true_amount": round(s.true_amount),
                         "amount_low": round(s.amount_low), "amount_high": round(s.amount_high),
                         "amount_covered": s.amount_covered, "n_treated": s.n_treated,
                         "paid_treated": s.paid_treated, "paid_control": s.paid_control})  # fmt: skip
            print(
                f"seed {seed} {s.step:16} held back {s.n_control:5}  truth {s.true_rate * 100:+6.2f} pp"
                f"  report {s.estimate * 100:+6.2f} [{s.low * 100:+6.2f}, {s.high * 100:+6.2f}]"
                f" {'covered' if s.covered else 'MISSED'};  amount/member truth {s.true_amount / 100:8.2f}"
                f" [{s.amount_low / 100:8.2f}, {s.amount_high / 100:8.2f}]"
                f" {'covered' if s.amount_covered else 'MISSED'}",
                flush=True,
            )
        print(f"seed {seed}: {found.covered} of {len(found.steps)} steps covered ({took:.0f} s)")
        _write(args, rows)
    rate = sum(bool(r["covered"]) for r in rows)
    amount = sum(bool(r["amount_covered"]) for r in rows)
    seeds_all = sum(all(r["covered"] for r in rows if r["seed"] == s) for s in args.seeds)
    print(f"pay rate: {rate} of {len(rows)} step-seeds covered; all steps covered in "
          f"{seeds_all} of {len(args.seeds)} seeds; amount per member: {amount} of {len(rows)}")  # fmt: skip


def _write(args: argparse.Namespace, rows: list[dict[str, object]]) -> None:
    """After every seed: a long run stopped half-way keeps what it found."""
    out = (
        Path(args.out)
        if args.out
        else HERE / "out" / f"report_truth{'-exact' if args.exact else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
