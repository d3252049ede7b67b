"""Benchmark: ledger batches through the API, as a lender's system sends them.

    python benchmarks/api_ingest.py --accounts 100000 --batch 10000 --runs 3
    python benchmarks/api_ingest.py --accounts 100000 --clients 2 --workers 2

Setup (not timed): a generated ledger read into rows; a fresh book (`cuikuan init`), a key, and
`cuikuan serve` started as its own process (`--workers` server processes). Timed: every batch of `--batch` rows (cut at loan
boundaries) POSTed in turn to /api/v1/instalments by `--clients` clients (one by default), from the first request
to the last answer; the server's CPU seconds (all its processes) beside the wall time. Checked: every row is in the book.
Target (issue 19): at least 100,000 instalment rows a second in batches of 10,000.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PG = os.environ.get("CUIKUAN_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cuikuan(args: list[str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "cuikuan", *args], cwd=cwd, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout


def batches(ledger: Path, size: int) -> list[list[dict[str, str]]]:
    with ledger.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out: list[list[dict[str, str]]] = [[]]
    last = None
    for row in rows:
        if len(out[-1]) >= size and row["借据号"] != last:
            out.append([])
        out[-1].append(row)
        last = row["借据号"]
    return out


def wait_up(url: str, seconds: float = 60) -> None:
    """Until the served process answers /healthz."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise SystemExit("serve did not start") from None
            time.sleep(0.1)


def cpu_of(pid: int) -> float:
    """CPU seconds of `pid` and of its living children (`serve --workers N` forks N)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fresh_schema() -> tuple[str, str]:
    """A new PostgreSQL schema (name, url that uses it)."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with create_engine(PG).begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    return schema, f"{PG}?options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    with create_engine(PG).begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def stored_rows(work: Path, url: str | None) -> int:
    if url is None:
        with sqlite3.connect(work / "cuikuan.db") as db:
            return int(db.execute("SELECT count(*) FROM instalments").fetchone()[0])
    from sqlalchemy import create_engine, text

    with create_engine(url).connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM instalments")).scalar_one())


def one_run(
    parts: list[list[dict[str, str]]], clients: int, workers: int, postgres: bool
) -> dict[str, float]:
    schema, url = fresh_schema() if postgres else (None, None)
    try:
        return _run_in(parts, clients, workers, url)
    finally:
        if schema is not None:
            drop_schema(schema)


def _run_in(
    parts: list[list[dict[str, str]]], clients: int, workers: int, db_url: str | None
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cuikuan-api-") as tmp:
        work = Path(tmp)
        cuikuan(["init", "."], work)
        if db_url is not None:
            config = work / "cuikuan.toml"
            config.write_text(
                config.read_text().replace('url = "sqlite:///cuikuan.db"', f'url = "{db_url}"')
            )
            cuikuan(["init", "."], work)  # the schema made in the database the settings name
        token = json.loads(cuikuan(["keys", "create", "bench", "--scopes", "ingest", "--rate",
                                    "1000000", "--json"], work))["token"]  # fmt: skip
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "cuikuan", "serve", "--port", str(port),
                                   "--workers", str(workers)],
                                  cwd=work, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_up(url)
            bodies = [json.dumps({"rows": p, "snapshot_at": "2026-11-29T16:00:00Z"}).encode()
                      for p in parts]  # fmt: skip
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            cpu0 = cpu_of(server.pid)
            began = time.perf_counter()

            def post_all(mine: list[bytes]) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
                    for body in mine:
                        answer = client.post("/api/v1/instalments", content=body)
                        if answer.status_code != 201:
                            raise SystemExit(f"{answer.status_code}: {answer.text[:500]}")

            with ThreadPoolExecutor(clients) as pool:
                for done in [pool.submit(post_all, bodies[i::clients]) for i in range(clients)]:
                    done.result()
            wall = time.perf_counter() - began
            cpu = cpu_of(server.pid) - cpu0
        finally:
            server.terminate()
            server.wait(30)
        stored = stored_rows(work, db_url)
    rows = sum(len(p) for p in parts)
    if stored != rows:
        raise SystemExit(f"{stored} instalments stored of {rows} sent")
    return {"rows": rows, "wall": wall, "server_cpu": cpu, "rows_per_s": rows / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1, help="clients posting at once")
    parser.add_argument(
        "--workers", type=int, default=1, help="`serve --workers`: server processes"
    )
    parser.add_argument(
        "--postgres", action="store_true", help=f"on PostgreSQL ({PG}, a fresh schema a run)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.csv"
        cuikuan(["sim", "generate", "--accounts", str(args.accounts), "--seed", "1", "--as-of",
                 "2026-11-29", "--out", str(ledger)], Path(tmp))  # fmt: skip
        parts = batches(ledger, args.batch)
    runs = []
    for _ in range(args.runs):
        got = one_run(parts, args.clients, args.workers, args.postgres)
        print(json.dumps({k: round(v, 2) for k, v in got.items()}), flush=True)
        runs.append(got)
    summary = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    summary |= {
        "accounts": args.accounts,
        "batch": args.batch,
        "runs": args.runs,
        "clients": args.clients,
        "workers": args.workers,
        "database": "postgresql" if args.postgres else "sqlite",
    }
    print(json.dumps(summary, indent=1))
    OUT.mkdir(exist_ok=True)
    (
        OUT / f"api_ingest-{summary['database']}-{args.accounts}-{args.clients}-{args.workers}.json"
    ).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
