"""Diagnosis: are a step's two arms alike in the simulated borrowers' own luck?

    python benchmarks/truth_arms.py --seed 2 --step m2 --folder /tmp/truth-m2

Builds the report's month for one seed (as benchmarks/report_truth.py does, with the twin in
which only `--step` holds back nobody), keeps both on disk in `--folder`, and prints per arm of
the step: members, pay rate in the window, and the share of members whose loan has a lucky
pay draw (the simulator's own, under 5%) on each day from 3 before the window to 4 after.
The arms come from a stable hash and the draws from another, so the shares should match; in
session 12 they did not for m2 (issue 17, BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from cuikuan.services.report import members
from cuikuan.sim import truth
from cuikuan.sim.borrowers import stream
from cuikuan.sim.month import run_month

START = date(2026, 11, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--step", default="m2")
    parser.add_argument("--accounts", type=int, default=4000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--control", type=float, default=0.2)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    if args.folder.exists():
        shutil.rmtree(args.folder)
    args.folder.mkdir(parents=True)
    truth.step_ids = lambda: [args.step]  # only this step's twin
    books = truth.twin_books(args.folder, args.accounts, args.seed, START, args.control, exact=True)
    for twin in (books.held, books.by_step[args.step]):
        run_month(twin.engine, twin.settings, START, args.days, args.seed)
    last = START + timedelta(days=args.days - 4)
    found = members(books.held.engine, books.held.settings, START, last, 3)
    found = found.filter(pl.col("step") == args.step)
    with sqlite3.connect(args.folder / "held" / "cuikuan.db") as con:
        loan = dict(con.execute("SELECT customer_id, external_id FROM loans").fetchall())
    zone = ZoneInfo(books.held.settings.defaults.timezone)
    rows = []
    for m in found.iter_rows(named=True):
        first = m["opens"].astimezone(zone).date()
        lucky = [
            stream(args.seed, "pay", loan[m["customer_id"]], first + timedelta(days=k)).random()
            < 0.05
            for k in range(-3, 5)
        ]
        rows.append([m["control"], m["paid"], *lucky])
    days = [f"day{k:+d}" for k in range(-3, 5)]
    table = pl.DataFrame(rows, schema=["held", "paid", *days], orient="row", strict=False)
    pl.Config.set_tbl_cols(-1)
    print(table.group_by("held").agg(pl.len().alias("members"), pl.all().mean()).sort("held"))
    # The step's estimate (treated minus held back) beside its exact truth (the held back's
    # pay rate had the step sent to them, from the twin, minus their own): many seeds of this
    # line tell chance from a bias.
    truth_rate = truth.true_effects(books, last, 3, books.by_step[args.step])[args.step]["rate"]
    rate = found.group_by("control").agg(pl.col("paid").mean()).sort("control")["paid"]
    print(
        f"seed {args.seed} step {args.step}: estimate {rate[0] - rate[1]:+.4f} "
        f"truth {truth_rate:+.4f} members {found.height}"
    )


if __name__ == "__main__":
    main()
