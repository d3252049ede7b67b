"""Set-at-a-time writes through the driver's executemany, in SQL both databases speak.

The ORM and even Core's insert() build a dict per row; a ledger import writes millions of rows,
so statements here take plain tuples. Dialect differences (placeholder style, null-safe
comparison, how dates are bound) live in this one class.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Connection, Date, DateTime, Table

from cuikuan.store.among import among_sql
from cuikuan.store.sqlite_worker import arrow_stream_frame
from cuikuan.store.times import as_utc

if TYPE_CHECKING:
    from polars._typing import PolarsDataType


# The advisory lock key of ledger imports on PostgreSQL ("cuikuan ledger" in the key's bytes).
LEDGER_WRITES_LOCK = 0x6375_696B_6C65_6467


class Bulk:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.ph = "?" if self.sqlite else "%s"
        self.differs = "IS NOT" if self.sqlite else "IS DISTINCT FROM"
        self._next_id: dict[str, int] = {}
        self.deferred: set[str] = set()  # indexes dropped for this load, built at its end

    def among(self, column: str, values: Collection[Any]) -> tuple[str, Any]:
        """(`column IN (the values)` as SQL with one placeholder, the value to bind for it):
        store.among's rendering for statements written as text."""
        return self.among_sql(column), self.among_value(values)

    def among_sql(self, column: str) -> str:
        return among_sql(self.sqlite, column, self.ph)

    def among_value(self, values: Collection[Any]) -> Any:
        return json.dumps(list(values)) if self.sqlite else list(values)

    def moment(self, value: Any) -> datetime | None:
        """A timestamp as the driver hands it back, as an aware UTC datetime."""
        if value is None:
            return None
        return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)

    def at(self, moment: datetime) -> Any:
        """A moment as this driver binds it: SQLAlchemy's UTC text on SQLite, the object
        elsewhere (what `moment` reads back)."""
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}" if self.sqlite else moment

    def records(self, table: Table, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        """Rows fetched with all of `table`'s columns in order, as dicts of Python values (the
        dates and moments read as `day` and `moment` do)."""
        names = [c.name for c in table.c]
        readers = [(c.name, read) for c in table.c if (read := self._reader(c.type)) is not None]
        # Rows of one plan share a handful of moments (its run, the windows' bounds): each
        # distinct value is read once.
        known: dict[Any, Any] = {}
        out = []
        for row in rows:
            # The dict in one call, then only its dates and moments read: a claimed round is
            # thousands of rows of dozens of columns.
            record = dict(zip(names, row, strict=True))
            for name, read in readers:
                if (value := record[name]) is not None:
                    found = known.get((read, value))
                    if found is None:
                        found = known[(read, value)] = read(value)
                    record[name] = found
            out.append(record)
        return out

    def _reader(self, kind: Any) -> Callable[[Any], Any] | None:
        if isinstance(kind, DateTime):
            return self.moment
        if isinstance(kind, Date):
            return self.day
        return None

    def day(self, value: Any) -> date:
        """A date as the driver hands it back (SQLite: ISO text)."""
        return date.fromisoformat(value) if isinstance(value, str) else value

    def placeholders(self, n: int) -> str:
        return ", ".join([self.ph] * n)

    def changed(self, table: str, columns: Iterable[str]) -> str:
        """WHERE clause of an upsert that updates only rows whose values differ."""
        return " OR ".join(f"{table}.{c} {self.differs} excluded.{c}" for c in columns)

    def many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        result = self.conn.exec_driver_sql(sql, list(rows))
        return max(result.rowcount, 0)

    def copy_upsert(
        self, staging: str, columns_sql: str, rows: Sequence[tuple[Any, ...]], upsert_sql: str
    ) -> int:
        """PostgreSQL: COPY the rows into a temporary staging table (made once per
        transaction, emptied per batch), then `upsert_sql` (INSERT … SELECT … FROM staging
        ON CONFLICT …) moves them in one statement. Several times faster than executemany."""
        if not rows:
            return 0
        self._stage(f"CREATE TEMP TABLE IF NOT EXISTS {staging} ({columns_sql}) ON COMMIT DROP",
                    staging, staging, rows)  # fmt: skip
        result = self.conn.exec_driver_sql(upsert_sql)
        return max(result.rowcount, 0)

    def copy_statements(
        self, like: str, columns: list[str], rows: Sequence[tuple[Any, ...]], statements: list[str]
    ) -> int:
        """PostgreSQL: COPY `rows` into a temporary table with `columns` typed as table `like`
        has them (made once per transaction, emptied per batch), then run `statements`, whose
        `{stage}` names it; returns the rows they changed."""
        if not rows:
            return 0
        stage, names = f"_stage_{like}", ", ".join(columns)
        self._stage(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
            f"SELECT {names} FROM {like} WITH NO DATA",
            stage, f"{stage} ({names})", rows,
        )  # fmt: skip
        changed = 0
        for sql in statements:
            result = self.conn.exec_driver_sql(sql.replace("{stage}", stage))
            changed += max(result.rowcount, 0)
        return changed

    def _stage(
        self, create_sql: str, stage: str, target: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """The temporary table made (once per transaction) and emptied, then `rows` COPYed
        into `target` (the table, with its columns if named)."""
        self.one(create_sql)
        self.one(f"TRUNCATE {stage}")
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def hold_write_lock(self, table: str) -> None:
        """Take the ledger's write turn now and keep it to commit: one ledger import writes at a
        time. SQLite: the database's write lock (a write that changes nothing), so that ids
        reserved from max(id) stay this transaction's. PostgreSQL reserves ids from the table's
        sequence, but two imports bringing the same new customer would both insert it and one
        would fail on the unique key: a transaction-level advisory lock queues them instead."""
        if self.sqlite:
            self.one(f"UPDATE {table} SET id = id WHERE 0")
        else:
            self.one("SELECT pg_advisory_xact_lock(%s)", (LEDGER_WRITES_LOCK,))

    def reserve_ids(self, table: str, n: int) -> list[int]:
        """`n` fresh primary keys of `table` for rows this transaction will insert with their key.

        SQLite: counted on from max(id) (call `hold_write_lock` first); PostgreSQL: drawn from
        the table's sequence, so concurrent writers never receive the same key."""
        if n <= 0:
            return []
        if not self.sqlite:
            rows = self.fetch(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                (table, n),
            )
            return [r[0] for r in rows]
        start = self._next_id.get(table)
        if start is None:
            start = self.fetch(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")[0][0]
        self._next_id[table] = start + n
        return list(range(start, start + n))

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.exec_driver_sql(sql, params)

    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples from the driver's own cursor (no Row objects per row)."""
        return fetch_tuples(self.conn, sql, params)

    def bindable(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Dates and times as this driver binds them: ISO text for SQLite (`sqlite_text`),
        Python objects for PostgreSQL."""
        return sqlite_text(frame) if self.sqlite else frame

    def rows(self, frame: pl.DataFrame) -> list[tuple[Any, ...]]:
        return self.bindable(frame).rows()

    def fetch_in(
        self, sql: str, keys: Sequence[str], schema: Mapping[str, PolarsDataType], chunk: int = 500
    ) -> pl.DataFrame:
        """Run `sql` (with one `{keys}` slot for an IN list) over `keys` in chunks."""
        parts = []
        for start in range(0, len(keys), chunk):
            part = list(keys[start : start + chunk])
            query = sql.format(keys=self.placeholders(len(part)))
            rows = self.fetch(query, tuple(part))
            parts.append(frame_from_rows(rows, schema))
        return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def sqlite_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates and times as the text SQLite holds them (SQLAlchemy's own storage format, so ORM
    reads agree)."""
    casts = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            casts.append(pl.col(name).dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            utc = pl.col(name).dt.convert_time_zone("UTC") if dtype.time_zone else pl.col(name)
            casts.append(utc.dt.strftime("%Y-%m-%d %H:%M:%S.%6f"))
    return frame.with_columns(casts) if casts else frame


def fetch_tuples(conn: Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` on the connection's DBAPI cursor, inside its current transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def frame_from_rows(
    rows: Sequence[tuple[Any, ...]], schema: Mapping[str, PolarsDataType]
) -> pl.DataFrame:
    """A frame from driver rows, built column by column (Polars' row-wise path is far slower)."""
    names = list(schema)
    if not rows:
        return pl.DataFrame(schema=schema)
    columns = list(zip(*rows, strict=True))
    return pl.DataFrame(
        {n: pl.Series(n, c, dtype=schema[n]) for n, c in zip(names, columns, strict=True)}
    )


def _adbc_target(conn: Connection) -> str | None:
    """The URI ADBC connects to, or None when this database has no ADBC path."""
    url = conn.engine.url
    # Never for SQLite: ADBC brings its own copy of the SQLite library, and two copies in one
    # process break each other's POSIX locks on the same WAL database (seen here: the other
    # copy read stale pages, then failed with a disk I/O error). PostgreSQL is a separate server.
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    return None


def arrow_frame(
    conn: Connection, sql: str, schema: Mapping[str, PolarsDataType]
) -> pl.DataFrame | None:
    """`sql` read through ADBC as Arrow and typed to `schema` (names by position), or None when
    ADBC is not available for this database (the caller then reads through the DB-API)."""
    target = _adbc_target(conn)
    if target is None:
        return None
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401  (only to know the path exists)
    except ImportError:
        return None
    try:
        return _adbc_read(target, sql, schema)
    except Exception:  # a connection the server dropped: once more on a new one
        _ADBC.pop(_adbc_key(target), None)
        return _adbc_read(target, sql, schema)


# One ADBC connection per process, thread and database, kept open: connecting for every frame
# (a plan in parts reads dozens) cost most of a PostgreSQL test's time. Autocommit, so every
# read sees what is committed now, never a snapshot held from an earlier read. At most
# `_ADBC_KEEP` are kept per thread, the least recently used closed first: a process that opens many
# databases in turn (a test run, a tool over several books) must not hold a server connection
# for each of them until it exits.
_ADBC: dict[tuple[int, int, str], Any] = {}
_ADBC_KEEP = 8


def _adbc_key(target: str) -> tuple[int, int, str]:
    return os.getpid(), threading.get_ident(), target


def _adbc_read(target: str, sql: str, schema: Mapping[str, PolarsDataType]) -> pl.DataFrame:
    import adbc_driver_postgresql.dbapi as driver

    key = _adbc_key(target)
    conn = _ADBC.pop(key, None)
    if conn is None:
        conn = driver.connect(target, autocommit=True)
        mine = [k for k in _ADBC if k[:2] == key[:2]]  # another thread's may be in use
        for old in mine[: max(0, len(mine) - _ADBC_KEEP + 1)]:
            with contextlib.suppress(Exception):
                _ADBC.pop(old).close()
    _ADBC[key] = conn  # the most recently used last
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return typed(arrow_stream_frame(cursor.fetch_arrow()), schema)


@atexit.register
def _close_adbc() -> None:
    for key, conn in list(_ADBC.items()):
        if key[0] == os.getpid():
            with contextlib.suppress(Exception):
                conn.close()
    _ADBC.clear()


def typed(frame: pl.DataFrame, schema: Mapping[str, PolarsDataType]) -> pl.DataFrame:
    """A frame read as Arrow, its columns named by position and typed to `schema`."""
    names = list(schema)
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    if frame.is_empty():
        return pl.DataFrame(schema=schema)
    casts = []
    for name, dtype in schema.items():
        have = frame.schema[name]
        if have == dtype:
            continue
        if dtype == pl.Date and have == pl.String:
            casts.append(pl.col(name).str.to_date("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime) and have == pl.String:
            casts.append(
                pl.col(name)
                .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
                .dt.replace_time_zone("UTC")
            )
        elif isinstance(dtype, pl.Datetime) and isinstance(have, pl.Datetime):
            casts.append(pl.col(name).dt.cast_time_unit("us").dt.convert_time_zone("UTC"))
        else:
            # A column ADBC saw only NULLs in (typed as it guessed), or a narrower integer.
            casts.append(pl.col(name).cast(dtype))
    return frame.with_columns(casts) if casts else frame


SQLITE_CHUNK = 200_000


def sqlite_frame(conn: Connection, sql: str, schema: Mapping[str, PolarsDataType]) -> pl.DataFrame:
    """`sql` on SQLite, fetched in chunks, each made a frame by Polars row-wise. Columns by
    position get the names of `schema`; dates and times come back as the text SQLite holds
    (the caller parses them). Measured against SQLite building a JSON object per row for
    Polars to parse (the way before): 1.4 -> 1.1 s for 843 k loans, faster or equal for every
    read of the plan; and against a frame built column by column from `zip(*rows)`, which
    spent more transposing than Polars takes for the whole frame."""
    raw = {name: _text_if_time(dtype) for name, dtype in schema.items()}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        parts = []
        while chunk := cursor.fetchmany(SQLITE_CHUNK):
            parts.append(pl.DataFrame(chunk, schema=raw, orient="row"))
    finally:
        cursor.close()
    return pl.concat(parts) if parts else pl.DataFrame(schema=raw)


def _text_if_time(dtype: PolarsDataType) -> PolarsDataType:
    return pl.String if dtype == pl.Date or isinstance(dtype, pl.Datetime) else dtype
