"""Opening the database: one engine per URL, SQLite tuned for a single writer, schema at head."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from cuikuan.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"database url {url!r} is not usable: {exc}") from None
    if engine.dialect.name == "sqlite":
        _private_file(engine.url.database)
        _tune_sqlite(engine)
    return engine


def _private_file(name: str | None) -> None:
    """A new SQLite database file is created readable by its owner only (0600); SQLite gives
    its -wal and -shm files the database's own permissions."""
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if not path.exists() and path.parent.is_dir():
        with contextlib.suppress(OSError):  # not ours to create: SQLite says why when it opens
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL with NORMAL is durable across application crashes and much faster than FULL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    try:
        if current_revision(engine) != head_revision():
            command.upgrade(alembic_config(engine), "head")
    except OperationalError as exc:
        raise StoreError(f"cannot open database {engine.url!r}: {exc.orig}") from None


def open_database(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine
