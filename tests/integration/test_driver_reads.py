"""The dispatcher's fast paths read and bind the same values as SQLAlchemy's own, on both
databases: `among` selects what `in_` selects, `Bulk.records` reads rows as Core reads them,
and `Bulk.at` binds a moment so that Core reads it back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, func, select

from cuikuan.dispatch.sender import _claim
from cuikuan.services.planner import make_plan
from cuikuan.settings import Settings
from cuikuan.store.among import among
from cuikuan.store.bulk import Bulk
from cuikuan.store.schema import customer_phones, customers, loans, outbox
from cuikuan.store.times import as_utc
from tests.integration.conftest import DAY

OPEN = datetime(2026, 11, 30, 3, tzinfo=UTC)


def test_among_selects_what_in_selects(book: tuple[Settings, Engine]) -> None:
    _, engine = book
    with engine.connect() as conn:
        ids = conn.execute(select(customers.c.id)).scalars().all()
        phones = conn.execute(select(customer_phones.c.e164)).scalars().all()

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(st.sampled_from(ids) | st.integers(-5, 10**9), max_size=30),
        st.lists(
            st.sampled_from(phones)
            | st.text(
                st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                max_size=12,
            ),
            max_size=30,
        ),
    )
    def same(wanted: list[int], numbers: list[str]) -> None:
        with engine.connect() as conn:
            for column, values in ((customers.c.id, wanted), (customer_phones.c.e164, numbers)):
                table = column.table
                fast = conn.execute(
                    select(func.count()).select_from(table).where(among(column, values))
                )
                core = conn.execute(
                    select(func.count()).select_from(table).where(column.in_(values))
                )
                assert fast.scalar_one() == core.scalar_one()

    same()


def test_claimed_rows_read_through_the_driver_equal_core_rows(
    book: tuple[Settings, Engine],
) -> None:
    settings_, engine = book
    make_plan(engine, settings_, DAY)
    claimed = _claim(engine, OPEN, 50)
    assert claimed
    with engine.connect() as conn:
        core = {
            r.id: {k: as_utc(v) if isinstance(v, datetime) else v for k, v in r._mapping.items()}
            for r in conn.execute(select(outbox).where(outbox.c.id.in_([c["id"] for c in claimed])))
        }
    for row in claimed:
        assert row == core[row["id"]]
        assert row["status"] == "claimed" and row["updated_at"] == OPEN


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)))
def test_a_moment_bound_by_the_driver_reads_back_the_same(
    book: tuple[Settings, Engine], moment: datetime
) -> None:
    _, engine = book
    at = moment.replace(tzinfo=UTC)
    with engine.begin() as conn:
        first = conn.execute(select(loans.c.id).limit(1)).scalar_one()
        bulk = Bulk(conn)
        bulk.one(
            f"UPDATE loans SET paid_snapshot_at = {bulk.ph} WHERE id = {bulk.ph}",
            (bulk.at(at), first),
        )
        read = conn.execute(
            select(loans.c.paid_snapshot_at).where(loans.c.id == first)
        ).scalar_one()
        fetched = bulk.fetch(f"SELECT paid_snapshot_at FROM loans WHERE id = {bulk.ph}", (first,))
        assert as_utc(read) == at == bulk.moment(fetched[0][0])
        conn.rollback()


def test_dispatch_reads_the_outbox_by_the_indexes_that_stay_small(tmp_path: Path) -> None:
    """SQLite (no statistics): the due rows come by (status, earliest_at) without a sort of the
    day, and the caps' history by the people's and numbers' own indexes, never by the status
    index, which would read every message of the last eight days on every round."""
    from cuikuan.channels.sandbox import SandboxChannel
    from cuikuan.dispatch.sender import send_due
    from tests.integration.conftest import build_book

    settings_, engine = build_book(tmp_path, f"sqlite:///{tmp_path / 'cuikuan.db'}", 300, 3)
    make_plan(engine, settings_, DAY)
    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    send_due(engine, settings_, SandboxChannel(engine), OPEN)
    event.remove(engine, "before_cursor_execute", keep)
    plans: dict[str, str] = {}
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in seen:
            if statement.lstrip().upper().startswith("SELECT") and "FROM outbox" in statement:
                rows = cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                plans[statement] = " | ".join(str(r[3]) for r in rows)
    due = [p for s, p in plans.items() if "ORDER BY outbox.earliest_at" in s]
    history = [p for s, p in plans.items() if "outbox.sent_at >=" in s]
    assert due and all("earliest_at<" in p and "TEMP B-TREE" not in p for p in due), due
    assert history and all("ix_outbox_customer_id" in p for p in history), history
