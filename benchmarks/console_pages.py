"""Benchmark: the console's pages on a large book, as an agent and a supervisor open them.

    python benchmarks/console_pages.py --accounts 1000000 --requests 50

Setup (not timed): the generated book (benchmarks/out/book-N-1) copied with a day planned, 2,000
open tasks on random borrowers (written straight into the copy), a supervisor made with `cuikuan
users add`, `cuikuan serve` started on it as its own process, logged in once. Timed: each page
alone (one client, one at a time), server time as the client sees it on loopback: Today (its
first view after the import apart: it positions the whole book once per day and ledger version,
measured twice: in a server nobody computed it for, where the page answers at once and the
portfolio is computed aside, timed to the page and to the portfolio on it, and in a fresh server
after the worker's step that computes it once an import lands, `services.worker.warm_portfolio`,
timed on its own), the
work list, a borrower's page, a search by phone and one by the start of a name, and the pages of
managers: templates (with each one's rates over the last 30 days), strategy and policy, explain
for a borrower, the report (its last 30 days, as the worker keeps it, and a range of one's own,
computed aside: the page, and the report on it; on this book, one planned day and no history), the audit log and the admin
page. The worker's step that keeps the report is timed on its own. Targets (issue 20): every page p95 under 150 ms, searches under
100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from api_ingest import free_port, wait_up  # noqa: E402
from api_reads import percentiles, planned_copy  # noqa: E402
from plan_portfolio import OUT, prepared  # noqa: E402

PASSWORD = "benchmark passphrase"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    book = prepared(args.accounts, 1)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="cuikuan-console-") as tmp:
        work = Path(tmp)
        planned_copy(book, work)
        people = _people_and_tasks(work / "cuikuan.db", rng, args.requests)
        env = {**os.environ, "BENCH_PW": PASSWORD}
        subprocess.run([sys.executable, "-m", "cuikuan", "users", "add", "bench", "--role",
                        "admin", "--password-env", "BENCH_PW"], cwd=work, env=env, check=True)  # fmt: skip
        # The worker's hourly step that keeps the last 30 days' report (timed on its own).
        report_ms = _worker_step(work, "from cuikuan.services.report_store import refresh as step")
        timings: dict[str, list[float]] = {
            k: []
            for k in (
                "today_first_view",
                "today_first_view_ready",
                "worker_warm_ms",
                "worker_report_ms",
                "report_other_range",
                "report_other_range_ready",
                "today_first_view_after_worker",
                "today",
                "work",
                "borrower",
                "search_phone",
                "search_name",
                *MANAGERS,
            )
        }
        with _console(work) as client:
            for ext, _, _ in people[:5]:  # warm up, as a running server is
                client.get(f"/console/borrowers/{ext}")
            # Today positions the whole book once per day and ledger version (an import
            # makes a new one): the first view after an import pays that, apart.
            first, ready = _until_ready(client, "/console", {})
            timings["today_first_view"].append(first)
            timings["today_first_view_ready"].append(ready)
            for i, (ext, phone, name) in enumerate(people):
                pages = [("work", "/console/work", {}), ("borrower", f"/console/borrowers/{ext}", {}),
                         ("search_phone", "/console/borrowers", {"q": phone}),
                         ("search_name", "/console/borrowers", {"q": name[:1] + name[1:2]})]  # fmt: skip
                if i < 3:  # a range of one's own: computed on the spot
                    pages.append(("report_other_range", "/console/report",
                                  {"start": "2026-11-01", "end": f"2026-11-{20 + i}"}))  # fmt: skip
                if i < max(5, args.requests // 5):  # the managers' pages: fewer of them
                    pages.append(("today", "/console", {}))
                    # Parameters apart: httpx drops a query in the path when given params.
                    pages += [(k, path, {n: v.format(ext=ext) for n, v in query.items()})
                              for k, (path, query) in MANAGERS.items()]  # fmt: skip
                for kind, path, params in pages:
                    if kind == "report_other_range":  # computed aside: the page, then the report
                        first, ready = _until_ready(client, path, params)
                        timings[kind].append(first)
                        timings["report_other_range_ready"].append(ready)
                        continue
                    began = time.perf_counter()
                    answer = client.get(path, params=params)
                    timings[kind].append((time.perf_counter() - began) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
                    if kind == "explain" and 'id="decision"' not in answer.text:
                        raise SystemExit(f"{path} {params}: no decision on the page")
        timings["worker_warm_ms"], timings["today_first_view_after_worker"] = _after_worker(work)
        timings["worker_report_ms"] = [report_ms]
    summary: dict[str, object] = {kind: percentiles(values) for kind, values in timings.items()}
    summary |= {"accounts": args.accounts, "requests": args.requests}
    print(json.dumps(summary, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / f"console_pages-{args.accounts}.json").write_text(json.dumps(summary, indent=1))


MANAGERS: dict[str, tuple[str, dict[str, str]]] = {
    "templates": ("/console/templates", {}),
    "strategy": ("/console/strategy", {}),
    "explain": ("/console/explain", {"customer": "{ext}"}),
    "report": ("/console/report", {}),
    "audit": ("/console/audit", {}),
    "admin": ("/console/admin", {}),
}

# The worker's steps, as `cuikuan worker` runs them, in a process of their own; `step` is
# called with (engine, settings, now).
WORKER_STEP = """
from datetime import UTC, datetime
from cuikuan.settings import find_settings_file, load_settings
from cuikuan.store.engine import open_database
{import_step}
settings = load_settings(find_settings_file(None))
step(open_database(settings.database_url), settings, datetime.now(UTC))
"""


def _worker_step(work: Path, import_step: str) -> float:
    """Milliseconds the worker's step takes, process start included."""
    began = time.perf_counter()
    script = WORKER_STEP.format(import_step=import_step)
    subprocess.run([sys.executable, "-c", script], cwd=work, check=True)
    return (time.perf_counter() - began) * 1000


def _until_ready(client: httpx.Client, path: str, params: dict[str, str]) -> tuple[float, float]:
    """A page whose slow part is computed aside (web/background): milliseconds to its first
    answer, and to the answer that holds the result (asked again every 50 ms, as htmx would
    every second)."""
    began = time.perf_counter()
    answer = client.get(path, params=params)
    first = (time.perf_counter() - began) * 1000
    while answer.status_code == 200 and "-computing" in answer.text:
        time.sleep(0.05)
        answer = client.get(path, params=params)
    if answer.status_code != 200 or "-failed" in answer.text:
        raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
    return first, (time.perf_counter() - began) * 1000


@contextlib.contextmanager
def _console(work: Path) -> Iterator[httpx.Client]:
    """`cuikuan serve` on the book, as its own process, with the bench user logged in."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cuikuan", "serve", "--port", str(port)],
                              cwd=work, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_up(url)
        with httpx.Client(base_url=url, timeout=120) as client:
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
            assert token is not None
            done = client.post("/console/login",
                               data={"csrf": token.group(1), "name": "bench", "password": PASSWORD})  # fmt: skip
            assert done.status_code == 303, done.text[:300]
            yield client
    finally:
        server.terminate()
        server.wait(30)


def _after_worker(work: Path) -> tuple[list[float], list[float]]:
    """The stored portfolio forgotten, the worker's step run (as once an import lands), then a
    fresh server's first Today view: it reads what the worker stored."""
    with sqlite3.connect(work / "cuikuan.db") as db:
        db.execute("DELETE FROM portfolio_snapshots")
    warm = _worker_step(work, "from cuikuan.services.worker import warm_portfolio as step")
    with _console(work) as client:
        began = time.perf_counter()
        assert client.get("/console").status_code == 200
        first = (time.perf_counter() - began) * 1000
    return [warm], [first]


def _people_and_tasks(db_path: Path, rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    """`n` borrowers to open (each with an open task), and 2,000 open tasks in all."""
    with sqlite3.connect(db_path) as db:
        high = db.execute("SELECT max(id) FROM customers").fetchone()[0]
        ids = rng.sample(range(1, high + 1), 2000)
        now = "2026-11-30 02:00:00.000000"
        db.executemany(
            "INSERT INTO tasks (customer_id, kind, priority, state, assignee, due_at, reply_id, "
            "summary, notes, created_at, updated_at) VALUES (?, 'call_back', 2, 'open', NULL, ?, "
            "NULL, 'benchmark', '[]', ?, ?)",
            [(i, now, now, now) for i in ids],
        )
        people = [db.execute(
            "SELECT c.external_id, p.e164, c.name FROM customers c JOIN customer_phones p "
            "ON p.customer_id = c.id WHERE c.id = ? LIMIT 1", (i,)).fetchone() for i in ids[:n]]  # fmt: skip
    return [tuple(p) for p in people]


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"benchmark took {time.perf_counter() - started:.0f} s", file=sys.stderr)
