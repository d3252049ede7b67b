"""Jobs deferred in our own transaction (store/task_queue): with the data they are about, or
not at all; a job already waiting under the same queueing lock is not queued twice, and the
transaction goes on. On PostgreSQL, where Procrastinate keeps its jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Connection, Engine, func, insert, select, text

from cuikuan.jobs.runner import ensure_schema
from cuikuan.jobs.tasks import QUEUE, make_app
from cuikuan.store.engine import open_database
from cuikuan.store.schema import plan_runs
from cuikuan.store.task_queue import defer_in
from tests.conftest import _postgres_schema_url

pytestmark = pytest.mark.postgres
DAY = date(2026, 11, 30)
AT = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    for url in _postgres_schema_url():
        engine = open_database(url)
        ensure_schema(engine, make_app(url))
        yield engine
        engine.dispose()


def _jobs(engine: Engine) -> list[tuple[str, str, dict[str, object], str]]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT task_name, queueing_lock, args, status FROM procrastinate_jobs ORDER BY id"
        )).all()  # fmt: skip
    return [tuple(r) for r in rows]


def _runs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(plan_runs)).scalar_one())


def _run(conn: Connection, day: date) -> None:
    conn.execute(insert(plan_runs).values(plan_date=day, parts=1, planned_at=AT, scopes="[null]"))


def test_a_job_is_written_with_its_data_or_not_at_all(engine: Engine) -> None:
    def fails_after_deferring() -> None:
        with engine.begin() as conn:
            _run(conn, DAY)
            assert defer_in(conn, "cuikuan:plan_part", "plan_part:x:0", QUEUE, day="x", part=0)
            raise RuntimeError("the transaction fails after the deferral")

    with pytest.raises(RuntimeError):
        fails_after_deferring()
    assert _runs(engine) == 0 and _jobs(engine) == []  # neither the run nor its job

    with engine.begin() as conn:
        _run(conn, DAY)
        assert defer_in(conn, "cuikuan:plan_part", "plan_part:x:0", QUEUE, day="x", part=0)
    assert _runs(engine) == 1
    assert _jobs(engine) == [
        ("cuikuan:plan_part", "plan_part:x:0", {"day": "x", "part": 0}, "todo")
    ]


def test_the_same_waiting_work_is_not_queued_twice_and_the_transaction_goes_on(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        assert defer_in(conn, "cuikuan:settle", "settle", QUEUE, now="a")
    with engine.begin() as conn:
        assert not defer_in(conn, "cuikuan:settle", "settle", QUEUE, now="b")
        _run(conn, DAY)  # the savepoint kept the transaction usable
    assert _runs(engine) == 1
    assert [(j[0], j[2]) for j in _jobs(engine)] == [("cuikuan:settle", {"now": "a"})]
