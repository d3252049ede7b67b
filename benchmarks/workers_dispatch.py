"""Benchmark: dispatch shared by 1, 2 and 4 `cuikuan worker` processes on PostgreSQL, to the
SMPP simulator, side by side.

    python benchmarks/workers_dispatch.py --accounts 20000 --workers 1 2 4

Setup (not timed): a generated book imported into a fresh PostgreSQL schema with the busy
strategy, the day planned (`cuikuan plan`), the SMSC started, the workers started and idle.
Timed: from the tick that makes the messages due to the moment the last one is handed over and
its receipt recorded (every message delivered). Checked: nothing sent twice (the SMSC's count
equals the outbox's). On 2 cores little gain is expected; the point is that it stays correct and
does not get slower with more workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from smpp_dispatch import free_port, start_smsc  # noqa: E402

PG = os.environ.get("CUIKUAN_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SEND_AT = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)


def cuikuan(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "cuikuan", *args], cwd=cwd, check=True,
                   capture_output=True, env=env)  # fmt: skip


def one_run(ledger: Path, workers: int, tps: float) -> dict[str, float]:
    from cuikuan.jobs.runner import defer_tick, ensure_schema
    from cuikuan.jobs.tasks import make_app
    from cuikuan.store.engine import open_database

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    smsc_port = free_port()
    smsc = start_smsc(smsc_port)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cuikuan-workers-") as tmp:
            work = Path(tmp)
            cuikuan(["init", "."], work)
            config = work / "cuikuan.toml"
            config.write_text(
                config.read_text().replace('url = "sqlite:///cuikuan.db"', f'url = "{url}"')
            )
            shutil.copy(HERE / "data" / "busy_strategy.toml", work / "strategy.toml")
            cuikuan(["import", str(ledger), "--at", "2026-11-29T16:00Z"], work)
            cuikuan(["plan", "--as-of", "2026-11-30"], work)
            engine = open_database(url)
            with engine.connect() as conn:
                due = conn.execute(
                    text("SELECT count(*) FROM outbox WHERE status = 'planned'")
                ).scalar_one()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")} | {
                "CUIKUAN_CHANNELS__SMS": "smpp", "CUIKUAN_SMPP__PORT": str(smsc_port),
                "CUIKUAN_SMPP__TPS": str(tps), "CUIKUAN_SMPP__WINDOW": "64",
                "CUIKUAN_CHANNELS__BATCH": "500",
            }  # fmt: skip
            app = make_app(url)
            ensure_schema(engine, app)
            procs = [subprocess.Popen([sys.executable, "-m", "cuikuan", "--config", str(config),
                                       "worker", "--no-ticking"], env=env, cwd=work,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for _ in range(workers)]  # fmt: skip
            time.sleep(3)  # started and idle
            began = time.perf_counter()
            while True:
                with app.open():
                    defer_tick(app, SEND_AT)
                with engine.connect() as conn:
                    left = conn.execute(text(
                        "SELECT count(*) FROM outbox WHERE status IN ('planned', 'claimed', 'sending', 'sent')"
                    )).scalar_one()  # fmt: skip
                if left == 0:
                    break
                if time.perf_counter() - began > 1800:
                    raise SystemExit(f"{left} messages still not delivered after 30 minutes")
                time.sleep(0.2)
            wall = time.perf_counter() - began
            with engine.connect() as conn:
                delivered = conn.execute(text(
                    "SELECT count(*) FROM outbox WHERE status IN ('delivered', 'undelivered', 'expired')"
                )).scalar_one()  # fmt: skip
            engine.dispose()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        smsc.terminate()
        smsc.wait(10)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return {"workers": workers, "messages": due, "settled": delivered, "wall": wall,
            "per_s": due / wall}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--tps", type=float, default=100_000.0, help="the provider's rate")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.csv"
        cuikuan(["sim", "generate", "--accounts", str(args.accounts), "--seed", "1", "--as-of",
                 "2026-11-29", "--out", str(ledger)], Path(tmp))  # fmt: skip
        for n in args.workers:
            got = one_run(ledger, n, args.tps)
            print(
                json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in got.items()}),
                flush=True,
            )
            results.append(got)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"workers_dispatch-{args.accounts}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
