"""The schema: migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from cuikuan.store.engine import alembic_config, current_revision, head_revision, open_database
from cuikuan.store.schema import metadata


def test_migrations_match_the_declared_schema(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_opening_twice_is_a_no_op_and_downgrade_round_trips(db_url: str) -> None:
    engine = open_database(db_url)
    assert current_revision(engine) == head_revision()
    open_database(db_url).dispose()
    command.downgrade(alembic_config(engine), "base")
    assert "customers" not in inspect(engine).get_table_names()
    command.upgrade(alembic_config(engine), "head")
    assert "customers" in inspect(engine).get_table_names()
    engine.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: object) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/x.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
