"""Benchmark: a busy day on a large book, as the user runs it: `cuikuan plan`, then `cuikuan
send` over SMPP to a simulator with every receipt recorded.

    python benchmarks/busy_day.py --accounts 1000000 --runs 1

Setup (not timed): the generated book imported once (benchmarks/out/book-N-1, shared with the
other benchmarks), copied per run with the busy strategy (benchmarks/data/busy_strategy.toml:
about a quarter of the accounts get a message); `cuikuan smsc` started as its own process.
Timed, wall and CPU of the two commands (each a fresh process, start-up included):
  `cuikuan plan --as-of 2026-11-30`, then
  `cuikuan send --now 2026-11-30T02:30Z --limit 10000000 --wait-receipts 120` (10:30 in the
  book's zone: the day's window is open), which hands every due message to the SMSC, then waits
  until every receipt is recorded.
Checked: every message sent has its final receipt in the database. Target (issue 17): the 1M
busy day under 5 minutes of wall time on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from plan_portfolio import OUT, prepared, setup  # noqa: E402
from smpp_dispatch import free_port, start_smsc  # noqa: E402


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(command: list[str], work: Path, env: dict[str, str]) -> tuple[float, float, str]:
    cpu, began = children_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, children_cpu() - cpu, done.stdout


def one_run(book: Path) -> dict[str, float]:
    port = free_port()
    smsc = start_smsc(port)
    try:
        with tempfile.TemporaryDirectory(prefix="cuikuan-busy-") as tmp:
            work = Path(tmp)
            setup(book, work, "busy")
            shutil.copy(book / "cuikuan.db", work / "cuikuan.db")
            env = {**os.environ, "CUIKUAN_CHANNELS__SMS": "smpp", "CUIKUAN_SMPP__PORT": str(port),
                   "CUIKUAN_SMPP__TPS": "1000000", "CUIKUAN_SMPP__WINDOW": "64",
                   "CUIKUAN_CHANNELS__BATCH": "2000"}  # fmt: skip
            cli = [sys.executable, "-m", "cuikuan"]
            plan_wall, plan_cpu, _ = timed([*cli, "plan", "--as-of", "2026-11-30"], work, env)
            send_wall, send_cpu, out = timed(
                [*cli, "send", "--now", "2026-11-30T02:30Z", "--limit", "10000000",
                 "--wait-receipts", "120", "--json"],
                work, env,
            )  # fmt: skip
            sent = json.loads(out)
            with sqlite3.connect(work / "cuikuan.db") as db:
                states = dict(
                    db.execute("SELECT status, count(*) FROM outbox GROUP BY 1").fetchall()
                )
    finally:
        smsc.terminate()
        smsc.wait(10)
    final = sum(states.get(s, 0) for s in ("delivered", "undelivered", "expired"))
    return {"plan_wall": plan_wall, "plan_cpu": plan_cpu, "send_wall": send_wall,
            "send_cpu": send_cpu, "wall": plan_wall + send_wall, "cpu": plan_cpu + send_cpu,
            "sent": sent["sent"], "receipts_recorded": final,
            "cpu_per_10000_sent": send_cpu / max(sent["sent"], 1) * 10_000,
            "states": states}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    book = prepared(args.accounts, 1)
    runs = []
    for _ in range(args.runs):
        got = one_run(book)
        print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in got.items()}))
        runs.append(got)
    summary = {k: round(statistics.median(r[k] for r in runs), 2)
               for k in ("plan_wall", "plan_cpu", "send_wall", "send_cpu", "wall", "cpu", "sent",
                         "receipts_recorded", "cpu_per_10000_sent")}  # fmt: skip
    summary["accounts"] = args.accounts
    summary["runs"] = args.runs
    print(json.dumps(summary, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / f"busy_day-{args.accounts}.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
