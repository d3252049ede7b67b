"""Benchmark: import an instalments ledger into a fresh SQLite database.

    python benchmarks/import_ledger.py --rows 1000000 --runs 3

Each run is a fresh process on a fresh database, timed end to end (`cuikuan import` as a user runs
it) and inside the process (the import call alone); peak memory is the child's maximum RSS. The
baseline, in the same run, is the loader people write by hand: csv.reader + sqlite3 executemany
of every row into one flat table, with no validation, no upsert and no normalisation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ROWS_PER_ACCOUNT = 11.58  # what the generator's product mix yields on average

IN_PROCESS = """
import json, sys, time
from pathlib import Path
from cuikuan.ingest.validate import Rules
from cuikuan.services.importer import import_file
from cuikuan.store.engine import open_database
engine = open_database(sys.argv[1])
start = time.perf_counter()
result = import_file(engine, Path(sys.argv[2]), Rules("CN", "Asia/Shanghai", "CNY"))
print(json.dumps({"seconds": time.perf_counter() - start, "rows": result.rows}))
"""

BASELINE = """
import csv, json, sqlite3, sys, time
start = time.perf_counter()
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=NORMAL")
with open(sys.argv[2], newline="", encoding="utf-8") as fh:
    reader = csv.reader(fh)
    header = next(reader)
    cols = ", ".join(f"c{i} TEXT" for i in range(len(header)))
    db.execute(f"CREATE TABLE ledger ({cols})")
    marks = ", ".join("?" * len(header))
    rows = 0
    while True:
        chunk = [r for _, r in zip(range(100_000), reader)]
        if not chunk:
            break
        db.executemany(f"INSERT INTO ledger VALUES ({marks})", chunk)
        rows += len(chunk)
db.commit()
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows}))
"""


def ledger(rows: int, seed: int) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"ledger-{rows}-{seed}.csv"
    if not path.exists():
        # In a child process, so this process stays small: a forked child's peak RSS would
        # otherwise start at the size of its parent.
        accounts = str(round(rows / ROWS_PER_ACCOUNT))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cuikuan",
                "sim",
                "generate",
                "--accounts",
                accounts,
                "--seed",
                str(seed),
                "--as-of",
                "2026-11-29",
                "--out",
                str(path),
            ],
            check=True,
        )
    return path


def child(args: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MiB and stdout of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{err}")
    return wall, usage.ru_maxrss // 1024, out


def measure(path: Path, runs: int) -> dict[str, object]:
    cli, inside, base = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            subprocess.run(
                [sys.executable, "-m", "cuikuan", "init", "."],
                cwd=work,
                check=True,
                capture_output=True,
            )
            wall, rss, _ = child([sys.executable, "-m", "cuikuan", "import", str(path)], work)
            cli.append((wall, rss))
        with tempfile.TemporaryDirectory() as tmp:
            db = f"sqlite:///{tmp}/b.db"
            _, rss, out = child([sys.executable, "-c", IN_PROCESS, db, str(path)], Path(tmp))
            inside.append((json.loads(out)["seconds"], rss))
        with tempfile.TemporaryDirectory() as tmp:
            _, rss, out = child(
                [sys.executable, "-c", BASELINE, f"{tmp}/b.db", str(path)], Path(tmp)
            )
            base.append((json.loads(out)["seconds"], rss))
    rows = sum(1 for _ in path.open("rb")) - 1

    def summary(samples: list[tuple[float, int]]) -> dict[str, object]:
        secs = [s for s, _ in samples]
        med = statistics.median(secs)
        return {
            "seconds": [round(s, 2) for s in secs],
            "median_seconds": round(med, 2),
            "rows_per_second": round(rows / med),
            "peak_rss_mib": max(r for _, r in samples),
        }

    return {
        "rows": rows,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "cuikuan import (end to end)": summary(cli),
        "import_file (in process)": summary(inside),
        "baseline csv.reader + executemany, no checks": summary(base),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[250_000, 1_000_000, 2_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args()
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}",
        "sqlite": __import__("sqlite3").sqlite_version,
        "results": [measure(ledger(n, opts.seed), opts.runs) for n in opts.rows],
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "import.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    shutil.rmtree(OUT / "tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
