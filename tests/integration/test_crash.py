"""Fault injection: a process that dies in the middle of an import leaves the ledger as it was."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

from cuikuan.services.importer import import_file
from cuikuan.sim.generator import GenerateOptions, generate
from cuikuan.store.engine import open_database
from tests.helpers import RULES, dump, write_csv

CRASHING_IMPORT = """
import os, sys
from pathlib import Path
from cuikuan.ingest.validate import Rules
from cuikuan.services.importer import import_file
from cuikuan.store.engine import open_database

def die_after_two_batches(done, total):
    if done >= 2 * int(sys.argv[3]):
        os._exit(137)  # no rollback, no cleanup: as abrupt as a kill -9

engine = open_database(sys.argv[1])
import_file(engine, Path(sys.argv[2]), Rules("CN", "Asia/Shanghai", "CNY"),
            batch_rows=int(sys.argv[3]), progress=die_after_two_batches)
"""


def test_a_killed_import_leaves_the_database_as_it_was(db_url: str, tmp_path: Path) -> None:
    header = ["客户编号", "姓名", "手机号", "借据号", "期数", "应还日期", "应还金额", "已还金额"]
    first = write_csv(
        tmp_path / "first.csv",
        header,
        [["X1", "张三", "13800138000", "LX1", "1", "2026-12-01", "100", "0"]],
    )
    second = tmp_path / "second.csv"
    generate(GenerateOptions(300, 2, date(2026, 11, 29), second))
    engine = open_database(db_url)
    import_file(engine, first, RULES)
    before = dump(engine)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_IMPORT, db_url, str(second), "500"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert crashed.returncode == 137, crashed.stderr
    assert dump(engine) == before
    # And the database is usable: the same file imports cleanly afterwards.
    assert import_file(engine, second, RULES).rows > 1000
    engine.dispose()
