"""`make bench`: every benchmark, figures printed and written to benchmarks/out/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUNS = (
    ["import_ledger.py"],
    ["plan_portfolio.py"],
    ["plan_portfolio.py", "--strategy", "busy"],
    # A day at steady state: two weeks of earlier plans weigh on caps and repeats.
    ["plan_portfolio.py", "--strategy", "busy", "--history-days", "14"],
    ["smpp_dispatch.py"],
    # The same against a peer that accepts everything at once, so the client's own speed shows.
    ["smpp_dispatch.py", "--peer", "fast"],
    # Issue 21's target: a 1 M-account book, from one process, with one and with two binds.
    ["smpp_dispatch.py", "--peer", "fast", "--accounts", "1000000"],
    ["smpp_dispatch.py", "--peer", "fast", "--accounts", "1000000", "--sessions", "2"],
    # The report against each step's true effect (two simulated months per seed).
    ["report_truth.py"],
    # The service (issue 19): ledger batches through the API, reads on a large book, and
    # dispatch shared by 1, 2 and 4 workers on PostgreSQL.
    # Ingest from one client, and from two clients to `serve --workers 2` (one per core).
    ["api_ingest.py", "--accounts", "100000"],
    ["api_ingest.py", "--accounts", "100000", "--clients", "2", "--workers", "2"],
    ["api_reads.py", "--accounts", "1000000"],
    ["workers_dispatch.py", "--accounts", "50000"],
    # The console (issue 20): its pages on a large book.
    ["console_pages.py", "--accounts", "1000000"],
)
for script, *args in RUNS:
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)
