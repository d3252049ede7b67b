"""Benchmark: plan one day for a whole portfolio on SQLite.

    python benchmarks/plan_portfolio.py --accounts 100000 --runs 3
    python benchmarks/plan_portfolio.py --accounts 1000000 --strategy busy

`--strategy busy` plans with benchmarks/data/busy_strategy.toml (a reminder every day of the week
before due and of the first month late: about a third of the accounts get a message, as issue 4
assumes); the default is the shipped strategy (about a tenth).

Setup (not timed): generate the portfolio, import it once, copy the database per run. Timed,
as the user runs it: the command `cuikuan plan --as-of 2026-11-30 --json` (a Monday), process
start included, wall and CPU seconds (user + system, its SQLite worker included), peak RSS. The
floor, in the same run on its own copy of the database: benchmarks/floor_plan.py, a direct
implementation of the busy strategy's decisions (one SQL query reading what the plan reads, one
Polars query deciding and rendering, one committed insert), also as a process of its own; its
docstring lists what it leaves out. (With the shipped strategy the floor still plans the busy
one: compare the busy figures.)

`--history-days K` measures a day at steady state instead of a first day: the K days before
2026-11-30 are planned first (not timed, once, kept beside the book), so the timed plan reads
and weighs K days of earlier messages against the caps, repeat rules and first delinquency.

`--chunk-customers N` plans N customers at a time (the planner's CHUNK_CUSTOMERS, 1,000,000 by
default): with it a 1M book shows what a 10M book does in its parts, memory by part size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

HISTORY = """
import sys
from datetime import date, timedelta
from pathlib import Path
from cuikuan.settings import load_settings
from cuikuan.store.engine import open_database
from cuikuan.services.planner import make_plan
settings = load_settings(Path(sys.argv[1]))
engine = open_database(settings.database_url)
for back in range(int(sys.argv[2]), 0, -1):
    make_plan(engine, settings, date(2026, 11, 30) - timedelta(days=back), keep_candidates=False)
print("{}")
"""

PLAN = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from cuikuan.settings import load_settings
from cuikuan.store import sqlite_worker
from cuikuan.store.engine import open_database
from cuikuan.services import planner
from cuikuan.services.planner import make_plan
settings = load_settings(Path(sys.argv[1]))
if len(sys.argv) > 2:
    planner.CHUNK_CUSTOMERS = int(sys.argv[2])
engine = open_database(settings.database_url)
start = time.perf_counter()
result = make_plan(engine, settings, date(2026, 11, 30), keep_candidates=False)
seconds = time.perf_counter() - start
sqlite_worker._WORKER.close()  # so its peak memory is counted among this process's children
print(json.dumps({"seconds": seconds, "written": result.written, "candidates": result.candidate_count,
                  "parts": len(planner._scopes(engine)),
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "worker_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024}))
"""

FLOOR = """
import json, sqlite3, sys, time
from datetime import datetime, UTC
start = time.perf_counter()
db = sqlite3.connect(sys.argv[1])
for table in ("instalments", "loans", "payments", "customers", "customer_phones"):
    db.execute(f"SELECT * FROM {table}").fetchall()
n = int(sys.argv[2])
now = datetime.now(UTC).isoformat(sep=" ")
rows = [(f"k{i}", "2026-11-30", 1, 1, "s", "t", 0, "sms", "+8613800138000", "text" * 12, 0, now, now, 1, 1, "planned", "[]", now, now) for i in range(n)]
db.execute("DELETE FROM outbox")
db.executemany("INSERT INTO outbox (idempotency_key, plan_date, customer_id, loan_id, step, template, variant, channel, recipient, text, control, earliest_at, latest_at, segments, billing_units, status, trail, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.rollback()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

# The floor again, by the fastest path this machine has: the same reads and as many rows written
# through the SQLite worker (Arrow through ADBC, in its own process), as the plan does.
FLOOR_ARROW = """
import json, sys, time
from datetime import datetime, UTC
import polars as pl
from sqlalchemy import create_engine
from cuikuan.store import sqlite_worker
from cuikuan.store.bulk import sqlite_text
engine = create_engine("sqlite:///" + sys.argv[1])
sqlite_worker.warm(engine)
sqlite_worker.read(engine, "SELECT 1")  # started: its start-up is not the floor's
start = time.perf_counter()
for table in ("instalments", "loans", "payments", "customers", "customer_phones"):
    assert sqlite_worker.read(engine, f"SELECT * FROM {table}") is not None
n = int(sys.argv[2])
now = datetime.now(UTC)
rows = pl.DataFrame({"idempotency_key": [f"k{i}" for i in range(n)]}).with_columns(
    pl.lit("2026-11-30").alias("plan_date"), pl.lit(1).alias("customer_id"), pl.lit(1).alias("loan_id"),
    pl.lit("s").alias("step"), pl.lit("t").alias("template"), pl.lit(0).alias("variant"),
    pl.lit("sms").alias("channel"), pl.lit("+8613800138000").alias("recipient"),
    pl.lit("text" * 12).alias("text"), pl.lit(0).alias("control"), pl.lit(now).alias("earliest_at"),
    pl.lit(now).alias("latest_at"), pl.lit(1).alias("segments"), pl.lit(1).alias("billing_units"),
    pl.lit("planned").alias("status"), pl.lit("[]").alias("trail"), pl.lit(now).alias("created_at"),
    pl.lit(now).alias("updated_at"))
names = ", ".join(rows.columns)
with engine.begin() as conn:
    conn.exec_driver_sql("DELETE FROM outbox")
writing = sqlite_worker.begin(engine)
for part in rows.iter_slices(50_000):
    writing.insert(sqlite_text(part), "_floor", f"INSERT INTO outbox ({names}) SELECT {names} FROM temp._floor")
writing.settle()
writing.rollback()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def child(args: list[str], cwd: Path) -> tuple[dict[str, object], int]:
    got, rss, _, _ = timed_child(args, cwd)
    return got, rss


def timed_child(args: list[str], cwd: Path) -> tuple[dict[str, object], int, float, float]:
    """The process's last line as JSON, its peak RSS (MiB), wall and CPU seconds."""
    out, rss, wall, cpu = timed_run(args, cwd)
    return json.loads(out.strip().splitlines()[-1]), rss, wall, cpu


def timed_run(args: list[str], cwd: Path) -> tuple[str, int, float, float]:
    """What the process printed, its peak RSS (MiB; its own or a waited child's, whichever is
    larger), wall and CPU seconds (user + system, its waited children included)."""
    # Output to files: a pipe left unread until the end could fill and stall the process.
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        began = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, stdout=out_file, stderr=err_file, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        out_file.seek(0)
        err_file.seek(0)
        out = out_file.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(args[:3])} failed:\n{err_file.read()[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return out, usage.ru_maxrss // 1024, wall, cpu


def prepared(accounts: int, seed: int) -> Path:
    """A folder with settings and an imported portfolio (built once, reused). The marker file is
    written last: a book another run is still importing (or whose import died) is not reused."""
    folder = OUT / f"book-{accounts}-{seed}"
    if (folder / "ready").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    run = [sys.executable, "-m", "cuikuan"]
    subprocess.run([*run, "init", str(folder)], check=True, capture_output=True)
    subprocess.run(
        [
            *run,
            "sim",
            "generate",
            "--accounts",
            str(accounts),
            "--seed",
            str(seed),
            "--as-of",
            "2026-11-29",
            "--out",
            "ledger.csv",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    subprocess.run([*run, "import", "ledger.csv"], cwd=folder, check=True, capture_output=True)
    (folder / "ready").touch()
    return folder


def setup(book: Path, work: Path, strategy: str) -> None:
    """Settings, strategy and templates of `book` in `work` (the database is the caller's)."""
    for name in ("cuikuan.toml", "strategy.toml"):
        shutil.copy(book / name, work / name)
    if strategy == "busy":
        shutil.copy(HERE / "data" / "busy_strategy.toml", work / "strategy.toml")
    shutil.copytree(book / "templates", work / "templates")


def with_history(book: Path, strategy: str, days: int) -> Path:
    """The book's database, or a copy with `days` days planned before the timed day (kept)."""
    if days == 0:
        return book / "cuikuan.db"
    kept = book / f"history-{strategy}-{days}.db"
    if not kept.exists():
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            setup(book, work, strategy)
            shutil.copy(book / "cuikuan.db", work / "cuikuan.db")
            child([sys.executable, "-c", HISTORY, str(work / "cuikuan.toml"), str(days)], work)
            with contextlib.closing(sqlite3.connect(work / "cuikuan.db")) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one file to copy
            shutil.copy(work / "cuikuan.db", kept)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, nargs="+", default=[100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategy", choices=["shipped", "busy"], default="shipped")
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="plan this many days before the timed one first (a day at steady state)",
    )
    parser.add_argument(
        "--chunk-customers",
        type=int,
        default=0,
        help="plan this many customers at a time (default: the planner's CHUNK_CUSTOMERS)",
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the floor (it holds every row in Python: 10M accounts would not fit)",
    )
    opts = parser.parse_args()
    results = []
    for accounts in opts.accounts:
        book = prepared(accounts, opts.seed)
        database = with_history(book, opts.strategy, opts.history_days)
        plans: list[tuple[float, int, int, int, int, int, float]] = []
        floors: list[tuple[float, int, int, float]] = []
        for _ in range(opts.runs):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                setup(book, work, opts.strategy)
                shutil.copy(database, work / "cuikuan.db")
                os.sync()  # the copy's write-back is setup, not the timed plan's
                if opts.chunk_customers:  # the planner's parts size: set in-process
                    got, rss, wall, cpu = timed_child(
                        [sys.executable, "-c", PLAN, str(work / "cuikuan.toml"),
                         str(opts.chunk_customers)], work,
                    )  # fmt: skip
                    written, candidates = int(got["written"]), int(got["candidates"])  # type: ignore[call-overload]
                else:
                    out, rss, wall, cpu = timed_run(
                        [sys.executable, "-m", "cuikuan", "plan", "--as-of", "2026-11-30", "--json"], work
                    )  # fmt: skip
                    got = json.loads(out)
                    written, candidates = (
                        int(got["written"]),
                        sum(int(r["candidates"]) for r in got["steps"]),
                    )
                plans.append((wall, rss, written, candidates, 1, 0, cpu))
                if opts.no_floor:
                    continue
                shutil.copy(database, work / "floor.db")
                floor, frss, fwall, fcpu = timed_child(
                    [sys.executable, str(HERE / "floor_plan.py"), str(work / "floor.db"), "2026-11-30"], work
                )  # fmt: skip
                floors.append((fwall, frss, int(floor["rows"]), fcpu))  # type: ignore[call-overload]
        plan_med = statistics.median(p[0] for p in plans)
        floor_med = statistics.median(f[0] for f in floors) if floors else None
        results.append({
            "accounts": accounts,
            "strategy": opts.strategy,
            "history_days": opts.history_days,
            "outbox_rows": plans[-1][2],
            "candidates": plans[-1][3],
            "command_wall_seconds": [round(p[0], 2) for p in plans],
            "command_median_wall_seconds": round(plan_med, 2),
            "command_median_cpu_seconds": round(statistics.median(p[6] for p in plans), 2),
            "command_peak_rss_mib": max(p[1] for p in plans),
            "floor_wall_seconds": [round(f[0], 2) for f in floors],
            "floor_median_wall_seconds": round(floor_med, 2) if floor_med else None,
            "floor_median_cpu_seconds": round(statistics.median(f[3] for f in floors), 2) if floors else None,
            "floor_rows": floors[-1][2] if floors else None,
            "floor_peak_rss_mib": max(f[1] for f in floors) if floors else None,
            "ratio_to_floor": round(plan_med / floor_med, 2) if floor_med else None,
        })  # fmt: skip
    OUT.mkdir(exist_ok=True)
    chunked = f"-c{opts.chunk_customers}" if opts.chunk_customers else ""
    (OUT / f"plan-{opts.strategy}-h{opts.history_days}{chunked}.json").write_text(
        json.dumps(results, indent=2)
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"benchmark took {time.perf_counter() - started:.0f} s", file=sys.stderr)
