"""Upserts of the ledger by external ids: re-importing the same rows changes nothing.

Every statement updates a row only when a value differs, so updated_at moves only on change.
Columns a file does not carry are left as they are.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy.schema import CreateIndex, DropIndex

from cuikuan.frames import SortedRuns
from cuikuan.store import schedules
from cuikuan.store.bulk import Bulk
from cuikuan.store.schema import NAME_INDEX

CUSTOMER_OPTIONAL = ("email", "locale", "timezone", "tags", "flags")


TEMP_TABLES = ("_import_customers", schedules.TOUCHED)


def prepare(bulk: Bulk, incoming_rows: int = 0) -> None:
    """Before an import of `incoming_rows` ledger rows (0: payments, or not known)."""
    _drop_temp(bulk)
    bulk.one("CREATE TEMP TABLE _import_customers (customer_id INTEGER PRIMARY KEY)")
    schedules.create_touched(bulk)
    bulk.hold_write_lock("customers")
    _defer_name_index(bulk, incoming_rows)


def finish(bulk: Bulk) -> None:
    _drop_temp(bulk)
    if NAME_INDEX.name in bulk.deferred:
        bulk.conn.execute(CreateIndex(NAME_INDEX, if_not_exists=True))
        bulk.deferred.discard(str(NAME_INDEX.name))


def _drop_temp(bulk: Bulk) -> None:
    for table in TEMP_TABLES:
        bulk.one(f"DROP TABLE IF EXISTS {table}")


# An import bringing more than this many ledger rows per customer already in the book (a first
# load, a book several times larger) builds the name index once at the end: kept up row by row
# it costs SQLite about 7 s per million new customers, built at the end under 1 s. In the
# import's transaction, so a refused import leaves it as it was. PostgreSQL keeps it: dropping
# it would lock the customers table against every reader for the import's length.
DEFER_BELOW = 4


def _defer_name_index(bulk: Bulk, incoming_rows: int) -> None:
    if not bulk.sqlite or incoming_rows <= 0:
        return
    book = bulk.fetch("SELECT count(*) FROM customers")[0][0]
    if incoming_rows > DEFER_BELOW * book:
        bulk.conn.execute(DropIndex(NAME_INDEX, if_exists=True))
        bulk.deferred.add(str(NAME_INDEX.name))


class KeyCache:
    """External id -> database id, remembered for the length of one import.

    Ids already in the database are read once per external id (IN-lists on the unique index);
    new customers and loans get ids reserved up front (`Bulk.reserve_ids`) and are written with
    them, so nothing is read back after an insert. What is known is searched, not joined whole
    (`SortedRuns`): 10 M accounts hold 18 M ids."""

    def __init__(self, bulk: Bulk) -> None:
        self.bulk = bulk
        self.known: dict[str, SortedRuns] = {}

    def lookup(self, table: str, ids: pl.Series, name: str) -> pl.DataFrame:
        """Columns `name` (external id) and `name`_key for every id of `ids` found in `table`."""
        wanted = ids.unique()
        known, _ = self._known(table, wanted)
        return self._keyed(wanted, known, name)

    def assign(self, table: str, ids: pl.Series, name: str) -> pl.DataFrame:
        """Like `lookup`, for every id of `ids`: those not in `table` yet get fresh keys.

        Column `new` tells which (the caller inserts those rows with their key)."""
        wanted = ids.unique(maintain_order=True)
        known, absent = self._known(table, wanted)
        keys = self.bulk.reserve_ids(table, absent.height)
        fresh = absent.with_columns(pl.Series("key", keys, dtype=pl.Int64))
        self._runs(table).add(fresh)
        new = fresh.get_column("external_id")
        return self._keyed(wanted, pl.concat([known, fresh]), name).with_columns(
            pl.col(name).is_in(new.implode()).alias("new")
        )

    def _runs(self, table: str) -> SortedRuns:
        return self.known.setdefault(table, SortedRuns("external_id"))

    def _known(self, table: str, wanted: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(external_id, key) of the ids of `wanted` that `table` holds, remembered or read from
        the database (IN-lists on its unique index) and then remembered; and the ids it lacks."""
        schema = {"external_id": pl.String, "key": pl.Int64}
        remembered = self._runs(table).find(wanted)
        if "key" not in remembered.columns:
            remembered = pl.DataFrame(schema=schema)
        missing = wanted.to_frame("external_id").join(remembered, on="external_id", how="anti")
        if not missing.height:
            return remembered, missing
        fetched = self.bulk.fetch_in(
            f"SELECT external_id, id FROM {table} WHERE external_id IN ({{keys}})",
            missing.get_column("external_id").to_list(),
            schema,
        )
        self._runs(table).add(fetched)
        absent = missing.join(fetched, on="external_id", how="anti")
        return pl.concat([remembered, fetched]), absent

    @staticmethod
    def _keyed(wanted: pl.Series, known: pl.DataFrame, name: str) -> pl.DataFrame:
        return (
            wanted.to_frame("external_id")
            .join(known, on="external_id", maintain_order="left")
            .rename({"external_id": name, "key": f"{name}_key"})
        )


def upsert_customers(
    bulk: Bulk, keys: KeyCache, frame: pl.DataFrame, present: set[str], now: datetime
) -> tuple[int, int]:
    """frame: customer_id, name, e164 (list), kind (list) and the optional columns.

    Returns the customers and the phone numbers changed."""
    cols = ["name", *(c for c in CUSTOMER_OPTIONAL if c in present)]
    keyed = frame.join(
        keys.assign("customers", frame.get_column("customer_id"), "customer_id"), on="customer_id"
    )
    values = keyed.select(
        "customer_id", *cols, pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at")
    )
    fillers = {c: "'[]'" for c in ("tags", "flags") if c not in cols} | {"attributes": "'{}'"}
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    upsert = (
        f"ON CONFLICT (external_id) DO UPDATE SET {sets}, updated_at = excluded.updated_at "
        f"WHERE {bulk.changed('customers', cols)}"
    )
    return _insert_or_upsert(
        bulk, "customers", "external_id", keyed, values, fillers, upsert
    ), _replace_phones(bulk, keyed)


def _insert_or_upsert(
    bulk: Bulk,
    table: str,
    key_column: str,
    keyed: pl.DataFrame,
    values: pl.DataFrame,
    constants: dict[str, str],
    upsert: str,
) -> int:
    """Rows new to `table` (keyed's `new`) are inserted with their reserved id; the others go
    through `upsert` (ON CONFLICT … DO UPDATE … WHERE the values differ).

    values: the external id (named as in the file) first, then the table's columns by name;
    constants: further columns with a literal SQL value."""
    names = [key_column, *values.columns[1:], *constants]
    marks = [bulk.ph] * values.width + list(constants.values())
    head = f"INSERT INTO {table} ({', '.join(names)}"
    new = keyed.get_column("new")
    key = keyed.get_column(f"{values.columns[0]}_key").alias("id")
    if not bulk.sqlite:
        # COPY into a staging table shaped like the table's own columns, then two statements:
        # executemany sends a statement a row, most of a batch's time on PostgreSQL.
        staged = values.with_columns(pl.when(new).then(key).alias("id"))
        columns = [key_column, *values.columns[1:], "id"]
        selected = ", ".join([*columns[:-1], *constants.values()])
        into = f"INSERT INTO {table} ({', '.join(names)}"
        return bulk.copy_statements(
            table, columns, bulk.rows(staged),
            [f"{into}, id) SELECT {selected}, id FROM {{stage}} WHERE id IS NOT NULL ORDER BY id",
             f"{into}) SELECT {selected} FROM {{stage}} WHERE id IS NULL {upsert}"],
        )  # fmt: skip
    added = bulk.many(
        f"{head}, id) VALUES ({', '.join(marks)}, {bulk.ph})",
        bulk.rows(values.with_columns(key).filter(new).sort("id")),
    )
    changed = bulk.many(
        f"{head}) VALUES ({', '.join(marks)}) {upsert}", bulk.rows(values.filter(~new))
    )
    return added + changed


def _replace_phones(bulk: Bulk, frame: pl.DataFrame) -> int:
    """frame: customer_id_key, new, e164 (list), kind (list); the file's list replaces the stored
    one.

    The stored numbers of customers already in the ledger are read once and compared here, so
    only what differs is written (nothing at all when a file is imported again)."""
    wanted = (
        frame.select(pl.col("customer_id_key").alias("customer_id"), "e164", "kind")
        .explode("e164", "kind")
        .filter(pl.col("e164").is_not_null())
        .with_columns(pl.int_range(pl.len()).over("customer_id").alias("position"))
    )
    bulk.one("DELETE FROM _import_customers")
    bulk.many(
        f"INSERT INTO _import_customers VALUES ({bulk.ph})",
        frame.filter(~pl.col("new")).select("customer_id_key").unique().rows(),
    )
    stored = pl.DataFrame(
        bulk.fetch(
            "SELECT p.customer_id, p.e164, p.position, p.kind FROM _import_customers t "
            "CROSS JOIN customer_phones p WHERE p.customer_id = t.customer_id"
        ),
        schema={
            "customer_id": pl.Int64,
            "e164": pl.String,
            "position": pl.Int64,
            "kind": pl.String,
        },
        orient="row",
    )
    stale = stored.join(wanted, on=["customer_id", "e164"], how="anti")
    changed = wanted.join(stored, on=["customer_id", "e164", "position", "kind"], how="anti")
    bulk.many(
        f"DELETE FROM customer_phones WHERE customer_id = {bulk.ph} AND e164 = {bulk.ph}",
        stale.select("customer_id", "e164").rows(),
    )
    sql = (
        "INSERT INTO customer_phones (customer_id, e164, position, kind) "
        f"VALUES ({bulk.placeholders(4)}) "
        "ON CONFLICT (customer_id, e164) DO UPDATE SET position = excluded.position, kind = excluded.kind"
    )
    bulk.many(sql, changed.select("customer_id", "e164", "position", "kind").rows())
    return stale.height + changed.height


def upsert_loans(
    bulk: Bulk,
    keys: KeyCache,
    frame: pl.DataFrame,
    present: set[str],
    snapshot_at: datetime | None,
    now: datetime,
    schedule: pl.DataFrame,
) -> int:
    """frame: loan_id, customer_id, currency, and product / attributes when the file has them;
    schedule: the open schedule of each loan by this batch's instalments (loan_id,
    open_amount, first_open_due, first_open_left), which a loan new in this batch is inserted
    with. One there before (an earlier import, or an earlier batch of this one) is noted, and
    worked out again from all its instalments before the import commits."""
    cols = ["currency", *(c for c in ("product", "attributes") if c in present)]
    owners = keys.lookup("customers", frame.get_column("customer_id"), "customer_id")
    keyed = (
        frame.join(owners, on="customer_id")
        .join(keys.assign("loans", frame.get_column("loan_id"), "loan_id"), on="loan_id")
        .join(schedule, on="loan_id", how="left")
    )
    values = keyed.select(
        "loan_id",
        *cols,
        pl.col("customer_id_key").alias("customer_id"),
        pl.lit(snapshot_at, dtype=pl.Datetime("us", "UTC")).alias("paid_snapshot_at"),
        pl.lit(now).alias("created_at"),
        pl.lit(now).alias("updated_at"),
        pl.col("open_amount", "first_open_left").fill_null(0),
        "first_open_due",
    )
    schedules.track(bulk, keyed.filter(~pl.col("new")).get_column("loan_id_key"))
    constants = {} if "attributes" in cols else {"attributes": "'{}'"}
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    changed = [*cols, "paid_snapshot_at"] if snapshot_at else cols
    snap = ", paid_snapshot_at = excluded.paid_snapshot_at" if snapshot_at else ""
    upsert = (
        f"ON CONFLICT (external_id) DO UPDATE SET {sets}{snap}, updated_at = excluded.updated_at "
        f"WHERE {bulk.changed('loans', changed)}"
    )
    return _insert_or_upsert(bulk, "loans", "external_id", keyed, values, constants, upsert)


def upsert_instalments(bulk: Bulk, keys: KeyCache, frame: pl.DataFrame, with_paid: bool) -> int:
    """frame: loan_id, instalment_no, due_date, amount_due, amount_paid (when the file has it).

    Loan ids are resolved once per loan, not by a subquery per instalment row."""
    loan_keys = keys.lookup("loans", frame.get_column("loan_id"), "loan_id")
    paid = pl.col("amount_paid") if with_paid else pl.lit(0, dtype=pl.Int64).alias("amount_paid")
    # In key order: the table is one B-tree on (loan, number), and appending beats inserting
    # all over it.
    values = (
        frame.join(loan_keys, on="loan_id")
        .select("loan_id_key", "instalment_no", "due_date", "amount_due", paid)
        .sort("loan_id_key", "instalment_no")
    )
    cols = ["due_date", "amount_due", *(["amount_paid"] if with_paid else [])]
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    conflict = (
        f"ON CONFLICT (loan_id, number) DO UPDATE SET {sets} "
        f"WHERE {bulk.changed('instalments', cols)}"
    )
    insert = "INSERT INTO instalments (loan_id, number, due_date, amount_due, amount_paid) "
    if not bulk.sqlite:
        return bulk.copy_upsert(
            "_import_instalments",
            "loan_id bigint, number integer, due_date date, amount_due bigint, amount_paid bigint",
            bulk.rows(values),
            # One statement may not touch a row twice: keep one of any repeated instalment
            # (repeats are identical by then; differing ones were refused as conflicts).
            insert + "SELECT DISTINCT ON (loan_id, number) * FROM _import_instalments " + conflict,
        )
    return bulk.many(insert + f"VALUES ({bulk.placeholders(5)}) " + conflict, bulk.rows(values))


def insert_payments(bulk: Bulk, keys: KeyCache, frame: pl.DataFrame, now: datetime) -> int:
    """frame: payment_id, paid_at, amount, loan_id. Known payment ids are left alone."""
    loan_keys = keys.lookup("loans", frame.get_column("loan_id"), "loan_id")
    values = frame.join(loan_keys, on="loan_id").select(
        "payment_id", "paid_at", "amount", pl.lit(now).alias("created_at"), "loan_id_key"
    )
    sql = (
        "INSERT INTO payments (external_id, paid_at, amount, created_at, loan_id) "
        f"VALUES ({bulk.placeholders(5)}) ON CONFLICT (external_id) DO NOTHING"
    )
    return bulk.many(sql, bulk.rows(values))


def existing_loans(bulk: Bulk, loan_ids: list[str]) -> pl.DataFrame:
    return bulk.fetch_in(
        "SELECT l.external_id, c.external_id, l.currency FROM loans l "
        "JOIN customers c ON c.id = l.customer_id WHERE l.external_id IN ({keys})",
        loan_ids,
        {"loan_id": pl.String, "owner": pl.String, "loan_currency": pl.String},
    )


def existing_payments(bulk: Bulk, payment_ids: list[str]) -> pl.DataFrame:
    return bulk.fetch_in(
        "SELECT p.external_id, l.external_id, p.amount FROM payments p "
        "JOIN loans l ON l.id = p.loan_id WHERE p.external_id IN ({keys})",
        payment_ids,
        {"payment_id": pl.String, "recorded_loan": pl.String, "recorded_amount": pl.Int64},
    )
