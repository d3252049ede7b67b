"""The SQLite worker (store/sqlite_worker.py): what it reads and writes is what this process
would have read and written, a write of it is all or nothing, and when it cannot serve, the
work is done in-process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, create_engine, select, text

from cuikuan.services import planner
from cuikuan.services.planner import make_plan
from cuikuan.settings import Settings
from cuikuan.store import sqlite_worker
from cuikuan.store.engine import open_database
from cuikuan.store.ledger_reads import read_frame
from cuikuan.store.schema import outbox
from tests.integration.conftest import DAY, build_book

OFF = "CUIKUAN_SQLITE_WORKER"


@pytest.fixture
def sqlite_book(tmp_path: Path) -> tuple[Settings, Engine]:
    return build_book(tmp_path, f"sqlite:///{tmp_path / 'cuikuan.db'}", 300, 5)


def stored(engine: Engine) -> pl.DataFrame:
    """The outbox as SQLite holds it: every value as text, with its storage class."""
    columns = [c.name for c in outbox.columns if c.name != "id"]
    parts = ", ".join(f"quote({c}) AS {c}, typeof({c}) AS t_{c}" for c in columns)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {parts} FROM outbox ORDER BY idempotency_key")).all()
    names = [n for c in columns for n in (c, f"t_{c}")]
    return pl.DataFrame([tuple(r) for r in rows], schema=names, orient="row")


def test_the_worker_serves_a_file_database_and_not_memory(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    sqlite_worker.warm(engine)
    got = sqlite_worker.read(engine, "SELECT 1 AS one, 'a' AS letter")
    assert got is not None and got.rows() == [(1, "a")]
    assert sqlite_worker.read(create_engine("sqlite://"), "SELECT 1") is None
    assert sqlite_worker.database_file(create_engine("postgresql+psycopg://x@h/db")) is None


def test_the_worker_opens_any_file_name_and_never_makes_a_database(tmp_path: Path) -> None:
    odd = tmp_path / "a b#c?d%20e.db"
    engine = open_database(f"sqlite:///{odd}")
    sqlite_worker.warm(engine)
    got = sqlite_worker.read(engine, "SELECT count(*) FROM outbox")
    assert got is not None and got.item() == 0
    missing = create_engine(f"sqlite:///{tmp_path / 'missing.db'}")
    assert sqlite_worker.read(missing, "SELECT 1") is None
    assert sqlite_worker.begin(missing) is None
    assert not (tmp_path / "missing.db").exists()


def test_reads_through_the_worker_equal_reads_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Typed alike, including a column whose first two thousand values are NULL (ADBC guesses
    a column's type from its first batch) and dates and times held as text."""
    engine = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER, late TEXT, d DATE, at DATETIME, x BIGINT)"))
        conn.execute(
            text(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 3000) "
                "INSERT INTO t SELECT i, CASE WHEN i > 2000 THEN 'v' || i END, "
                "CASE WHEN i % 3 THEN date('2026-11-30', '+' || i || ' days') END, "
                "'2026-11-30 0' || (i % 10) || ':00:00.000000', NULL FROM s"
            )
        )
    schema = {"n": pl.Int64, "late": pl.String, "d": pl.Date,
              "at": pl.Datetime("us", "UTC"), "x": pl.Int64}  # fmt: skip
    sql = "SELECT n, late, d, at, x FROM t ORDER BY n"
    sqlite_worker.warm(engine)
    assert sqlite_worker.read(engine, sql) is not None  # served, not left to this process
    with engine.connect() as conn:
        helped = read_frame(conn, sql, schema)
        monkeypatch.setenv(OFF, "off")
        in_process = read_frame(conn, sql, schema)
    assert helped.schema == in_process.schema == pl.Schema(schema)
    assert helped.equals(in_process)
    assert helped["late"].null_count() == 2000 and helped["d"].null_count() == 1000


def test_a_plan_written_by_the_worker_is_the_plan_written_in_process(
    sqlite_book: tuple[Settings, Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = sqlite_book
    real, inserts = sqlite_worker.Inserting.insert, []

    def counted(self: sqlite_worker.Inserting, frame: pl.DataFrame, *args: str) -> int:
        inserts.append(frame.height)
        return real(self, frame, *args)

    monkeypatch.setattr(sqlite_worker.Inserting, "insert", counted)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    first = make_plan(engine, settings, DAY)
    by_worker = stored(engine)
    assert sum(inserts) == by_worker.height  # the worker wrote them all
    assert list(scratch.iterdir()) == []  # and the files it took them from are gone
    with engine.begin() as conn:
        conn.execute(outbox.delete())
    monkeypatch.setenv(OFF, "off")
    again = make_plan(engine, settings, DAY)
    in_process = stored(engine)
    assert first.written == again.written == by_worker.height > 0
    moments = ["created_at", "updated_at"]  # each plan's own "now"
    assert by_worker.drop(moments).equals(in_process.drop(moments))
    assert by_worker.select(pl.col("t_plan_date").unique()).to_series().to_list() == ["text"]


def test_a_worker_write_that_fails_part_way_writes_nothing_and_this_process_writes_it_all(
    sqlite_book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = sqlite_book
    monkeypatch.setattr(planner, "WRITE_SLICE", 8)
    real, seen = sqlite_worker.Inserting.insert, []

    def failing(self: sqlite_worker.Inserting, frame: pl.DataFrame, *args: str) -> int:
        seen.append(frame.height)
        if len(seen) == 3:
            raise sqlite_worker.WorkerError("the worker stopped")
        return real(self, frame, *args)

    monkeypatch.setattr(sqlite_worker.Inserting, "insert", failing)
    result = make_plan(engine, settings, DAY)
    with engine.connect() as conn:
        keys = conn.execute(select(outbox.c.idempotency_key)).scalars().all()
    assert len(seen) == 3  # two slices went in before the failure, and were rolled back
    assert result.written == len(keys) == len(set(keys)) > 16


def test_an_error_inside_a_worker_write_rolls_it_back(
    sqlite_book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = sqlite_book
    real, calls = planner._write, []

    def failing(target: object, frame: pl.DataFrame) -> int:
        calls.append(target)
        real(target, frame)  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(planner, "_write", failing)
    with pytest.raises(OSError, match="disk full"):
        make_plan(engine, settings, DAY)
    assert isinstance(calls[0], sqlite_worker.Inserting)
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.id)).first() is None


def test_a_process_that_dies_in_a_worker_write_leaves_nothing_and_no_lock(
    sqlite_book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    """Fault injection: the planning process is killed after the worker inserted and before
    it committed. The worker sees its pipe close and rolls back; the database is free."""
    settings, engine = sqlite_book
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from cuikuan.services import planner
        from cuikuan.settings import load_settings
        from cuikuan.store import sqlite_worker
        from cuikuan.store.engine import open_database

        real = planner._write
        def dying(target, frame):
            real(target, frame)
            target.settle()  # the worker has inserted the rows, in its open transaction
            print("inserted", flush=True)
            os._exit(9)
        planner._write = dying
        settings = load_settings(Path({str(tmp_path / "cuikuan.toml")!r}), environ={{}})
        planner.make_plan(open_database(settings.database_url), settings,
                          __import__("datetime").date(2026, 11, 30))
        """
    )
    scratch = tmp_path / "scratch"  # the killed process leaves its files: here, not in /tmp
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 9 and "inserted" in done.stdout, done.stderr
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.id)).first() is None
    assert make_plan(engine, settings, DAY).written > 0  # not locked: the write goes in now


def test_a_worker_write_of_many_slices_waits_for_the_worker_and_loses_none(
    sqlite_book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = sqlite_book
    monkeypatch.setattr(planner, "WRITE_SLICE", 3)
    monkeypatch.setattr(sqlite_worker, "_IN_FLIGHT", 1)  # every post waits for the one before
    result = make_plan(engine, settings, DAY)
    with engine.connect() as conn:
        keys = conn.execute(select(outbox.c.idempotency_key)).scalars().all()
    assert result.written == len(keys) == len(set(keys)) > 9


def test_a_paused_worker_is_given_up_and_the_plan_is_made_in_process(
    sqlite_book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped (SIGSTOP: job control, a profiler, a cgroup freezer) and never resumed:
    the plan hung for ever waiting for it. It is now given up after `_STALL` seconds without a
    byte or a tick of CPU, killed (its transaction with it), and the work done in-process."""
    settings, engine = sqlite_book
    expected = make_plan(engine, settings, DAY, dry_run=True).candidate_count
    monkeypatch.setattr(sqlite_worker, "_STALL", 1.0)
    sqlite_worker.warm(engine)
    proc = sqlite_worker._WORKER.proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        result = make_plan(engine, settings, DAY)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=10) != 0  # killed
    assert result.candidate_count == expected and result.written > 0
    with engine.connect() as conn:
        assert len(conn.execute(select(outbox.c.id)).all()) == result.written


def test_a_worker_paused_and_resumed_mid_answer_delivers_all_of_it(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    sqlite_worker.warm(engine)
    proc = sqlite_worker._WORKER.proc
    assert proc is not None
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) "
        "SELECT i, printf('%040d', i) AS pad FROM n"
    )

    def pause_and_resume() -> None:
        for _ in range(6):
            time.sleep(0.05)
            os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(0.2)
            os.kill(proc.pid, signal.SIGCONT)

    pauser = threading.Thread(target=pause_and_resume)
    pauser.start()
    got = sqlite_worker.read(engine, sql)
    pauser.join()
    assert got is not None and got.height == 400_000
    assert got["i"].sum() == 400_000 * 400_001 // 2 and got["pad"][-1] == f"{400000:040d}"
