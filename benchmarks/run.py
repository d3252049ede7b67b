"""`make bench`: every benchmark, figures printed and written to benchmarks/out/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("import_ledger.py", "plan_portfolio.py", "smpp_dispatch.py"):
    subprocess.run([sys.executable, str(HERE / script)], check=True)
