"""Benchmark: reads through the API on a large book, as an agent's screen or the lender's app
makes them: a customer with loans and DPD, their timeline, a search by phone.

    python benchmarks/api_reads.py --accounts 1000000 --requests 300

Setup (not timed): the generated book (benchmarks/out/book-N-1, imported once) copied with a day
planned, `cuikuan serve` started on it as its own process, a key made. Timed: each request alone
(one client, one at a time), for `--requests` customers drawn at random; p50, p95, p99 and max in
milliseconds per kind of read. Target (issue 19): p99 under 50 ms on a 1,000,000-account book.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from api_ingest import free_port, wait_up  # noqa: E402
from plan_portfolio import OUT, prepared, setup  # noqa: E402


def cuikuan(args: list[str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "cuikuan", *args], cwd=cwd, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout


def planned_copy(book: Path, work: Path) -> None:
    """The book copied into `work` with the busy strategy and the day planned (so that
    timelines and the day's figures have messages)."""
    setup(book, work, "busy")
    shutil.copy(book / "cuikuan.db", work / "cuikuan.db")
    cuikuan(["plan", "--as-of", "2026-11-30"], work)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(at(0.5), 1), "p95": round(at(0.95), 1), "p99": round(at(0.99), 1),
            "max": round(ordered[-1], 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    book = prepared(args.accounts, 1)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="cuikuan-reads-") as tmp:
        work = Path(tmp)
        planned_copy(book, work)
        with sqlite3.connect(work / "cuikuan.db") as db:
            high = db.execute("SELECT max(id) FROM customers").fetchone()[0]
            picked = [rng.randint(1, high) for _ in range(args.requests)]
            people = [db.execute(
                "SELECT c.external_id, p.e164 FROM customers c JOIN customer_phones p "
                "ON p.customer_id = c.id WHERE c.id = ? LIMIT 1", (i,)).fetchone() for i in picked]  # fmt: skip
        token = json.loads(cuikuan(["keys", "create", "bench", "--scopes", "read", "--rate",
                                    "1000000", "--json"], work))["token"]  # fmt: skip
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "cuikuan", "serve", "--port", str(port)],
                                  cwd=work, stderr=subprocess.PIPE, text=True)  # fmt: skip
        timings: dict[str, list[float]] = {"customer": [], "timeline": [], "phone": []}
        try:
            url = f"http://127.0.0.1:{port}"
            wait_up(url)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                              timeout=60) as client:  # fmt: skip
                for ext, _ in people[:20]:  # warm the caches a little, as a running server is
                    client.get(f"/api/v1/customers/{ext}", params={"as_of": "2026-11-30"})
                for ext, phone in people:
                    for kind, path, params in (
                        ("customer", f"/api/v1/customers/{ext}", {"as_of": "2026-11-30"}),
                        ("timeline", f"/api/v1/customers/{ext}/timeline", {}),
                        ("phone", "/api/v1/customers", {"phone": phone}),
                    ):
                        began = time.perf_counter()
                        answer = client.get(path, params=params)
                        timings[kind].append((time.perf_counter() - began) * 1000)
                        if answer.status_code != 200:
                            raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
        finally:
            server.terminate()
            server.wait(30)
    summary = {kind: percentiles(values) for kind, values in timings.items()}
    summary["accounts"] = args.accounts  # type: ignore[assignment]
    summary["requests"] = args.requests  # type: ignore[assignment]
    print(json.dumps(summary, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / f"api_reads-{args.accounts}.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
