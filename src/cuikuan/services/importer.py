"""Import ledger files: all or nothing per file, every problem reported with file, line and column.

    result = import_file(engine, Path("ledger.csv"), rules)

The rule that keeps a payment from counting twice: an instalments file's paid amounts are a
snapshot taken at `snapshot_at` (default: the file's modification time). Payments at or before a
loan's snapshot are recorded but already inside the snapshot; only later ones are allocated on top.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, insert

from cuikuan.domain.columns import HeaderError, Kind, Mapping, map_header
from cuikuan.domain.ledger_frame import open_schedule
from cuikuan.errors import ImportRejected, InputError, Problem
from cuikuan.ingest.conflicts import ConflictTracker
from cuikuan.ingest.sources import LINE, Source, open_source
from cuikuan.ingest.validate import Checked, Rules, check_batch
from cuikuan.services.pipeline import prefetch
from cuikuan.store import ledger_writes as writes
from cuikuan.store import schedules
from cuikuan.store.bulk import Bulk
from cuikuan.store.schema import imports

BATCH_ROWS = 100_000
Progress = Callable[[int, int], None]


@dataclass
class ImportResult:
    file: str
    kind: Kind
    encoding: str
    rows: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    snapshot_at: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["snapshot_at"] = self.snapshot_at.isoformat() if self.snapshot_at else None
        return out


@dataclass
class _Problems:
    file: str
    first: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        self.total += frame.height
        room = ImportRejected.shown - len(self.first)
        for line, column, message, got in frame.sort(LINE).head(max(room, 0)).iter_rows():
            self.first.append(Problem(self.file, line, column, message, got))

    def raise_if_any(self) -> None:
        if self.total:
            self.first.sort(key=lambda p: p.line)
            raise ImportRejected(self.file, self.first, self.total)


def import_file(
    engine: Engine,
    path: Path,
    rules: Rules,
    *,
    kind: Kind | None = None,
    overrides: dict[str, str] | None = None,
    sheet: str | None = None,
    snapshot_at: datetime | None = None,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    now: datetime | None = None,
    on_commit: Callable[[Connection, ImportResult], None] | None = None,
) -> ImportResult:
    """`now`: when the import happens (the CLI passes the clock); without it, the file's
    modification time, since nothing below the CLI reads the clock. `on_commit` runs inside the
    import's transaction once every row is written (the API's audit entry goes in with them)."""
    source = open_source(path, sheet)
    try:
        digest = _Digest(path)
        modified = datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
        return import_source(
            engine, source, rules, digest.result, kind=kind, overrides=overrides,
            snapshot_at=snapshot_at, progress=progress, batch_rows=batch_rows,
            now=now if now is not None else datetime.fromtimestamp(path.stat().st_mtime, UTC),
            snapshot_default=modified, on_commit=on_commit,
        )  # fmt: skip
    finally:
        source.close()


def import_source(
    engine: Engine,
    source: Source,
    rules: Rules,
    digest: Callable[[], str],
    *,
    now: datetime,
    snapshot_default: datetime,
    kind: Kind | None = None,
    overrides: dict[str, str] | None = None,
    snapshot_at: datetime | None = None,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    on_commit: Callable[[Connection, ImportResult], None] | None = None,
) -> ImportResult:
    """The import of any source (a file; the API's rows): all or nothing. `digest` names the
    content in the import log; `snapshot_default` is when paid amounts were taken, if not said."""
    path = source.path
    try:
        mapping = map_header(source.header, overrides, kind)
    except HeaderError as exc:
        raise InputError(f"{path}:1: {exc}") from None
    if mapping.has("amount_paid") and snapshot_at is None:
        snapshot_at = snapshot_default
    result = ImportResult(str(path), mapping.kind, source.encoding, snapshot_at=snapshot_at)
    result.extra_columns = list(mapping.extra)
    started = now
    checked = _checked(source, mapping, rules, batch_rows)
    with engine.begin() as conn:
        bulk = Bulk(conn)
        _run(bulk, source, checked, mapping, result, progress, started)
        conn.execute(
            insert(imports).values(
                file_name=str(path),
                kind=mapping.kind,
                sha256=digest(),
                rows=result.rows,
                summary=json.dumps(result.as_dict(), ensure_ascii=False),
                started_at=started,
                finished_at=started,
            )
        )
        if mapping.kind == "payments":
            _payment_events(conn, started)
        if on_commit is not None:
            on_commit(conn, result)
    if mapping.kind == "payments":
        # Which messages preceded each new payment (attribution; the report reads it).
        from cuikuan.services.attribution import record_touches

        record_touches(engine)
    return result


def _payment_events(conn: Connection, recorded_at: datetime) -> None:
    """payment.matched for each payment this import recorded (webhooks)."""
    from sqlalchemy import select

    from cuikuan.store.events import emit_many, listeners
    from cuikuan.store.schema import loans, payments

    if not listeners(conn, "payment.matched"):
        return
    rows = conn.execute(
        select(payments.c.external_id, payments.c.amount, payments.c.paid_at,
               loans.c.external_id.label("loan"), loans.c.customer_id)
        .join(loans, loans.c.id == payments.c.loan_id)
        .where(payments.c.created_at == recorded_at)
    ).all()  # fmt: skip
    emit_many(
        conn, "payment.matched",
        [(r.customer_id, {"payment": r.external_id, "loan": r.loan, "amount_minor": r.amount,
                          "paid_at": r.paid_at}) for r in rows],
        recorded_at,
    )  # fmt: skip


_CheckedBatch = tuple[int, Checked, pl.DataFrame]  # rows, the checked batch, its conflicts


def _checked(
    source: Source, mapping: Mapping, rules: Rules, batch_rows: int
) -> Iterator[_CheckedBatch]:
    """The source's batches checked (cells, then conflicts between rows), which needs no
    database. A source of one batch (an API batch, a small file) is checked here, before the
    import's transaction takes the write lock: another import writes meanwhile. A longer one is
    checked batch by batch beside the writing of the one before (`prefetch`)."""
    columns = {f: mapping.column(f) for f in mapping.fields}
    columns["e164"] = columns.get("phone", "phone")
    tracker = ConflictTracker(mapping.kind, columns)

    def batches() -> Iterator[_CheckedBatch]:
        for batch in source.batches(batch_rows):
            checked = check_batch(batch, mapping, rules)
            yield batch.height, checked, tracker.check(checked.frame)

    if source.total_rows <= batch_rows:
        return iter(list(batches()))
    return prefetch(batches())


def _run(
    bulk: Bulk,
    source: Source,
    checked_batches: Iterator[_CheckedBatch],
    mapping: Mapping,
    result: ImportResult,
    progress: Progress | None,
    now: datetime,
) -> None:
    problems = _Problems(str(source.path))
    writes.prepare(bulk, source.total_rows if mapping.kind != "payments" else 0)
    keys = writes.KeyCache(bulk)
    for height, checked, conflicts in checked_batches:
        problems.add(checked.problems)
        problems.add(conflicts)
        problems.add(_against_ledger(bulk, checked, mapping))
        if not problems.total:
            _write(bulk, keys, checked.frame, mapping, result, now)
        result.rows += height
        if progress:
            progress(result.rows, max(source.total_rows, result.rows))
    problems.raise_if_any()
    schedules.refresh(bulk)
    writes.finish(bulk)


def _write(
    bulk: Bulk,
    keys: writes.KeyCache,
    frame: pl.DataFrame,
    mapping: Mapping,
    result: ImportResult,
    now: datetime,
) -> None:
    def count(name: str, n: int) -> None:
        result.changed[name] = result.changed.get(name, 0) + n

    if mapping.kind == "payments":
        count("payments", writes.insert_payments(bulk, keys, frame, now))
        return
    present = set(mapping.fields) | ({"attributes"} if mapping.extra else set())
    customers = frame.unique("customer_id", keep="first", maintain_order=True)
    people, phones = writes.upsert_customers(bulk, keys, customers, present, now)
    count("customers", people)
    count("phone numbers", phones)
    loans = frame.unique("loan_id", keep="first", maintain_order=True)
    schedule = open_schedule(
        frame.select(
            "loan_id",
            pl.col("instalment_no").alias("number"),
            "due_date",
            "amount_due",
            pl.col("amount_paid") if mapping.has("amount_paid") else pl.lit(0).alias("amount_paid"),
        )
    )
    count(
        "loans", writes.upsert_loans(bulk, keys, loans, present, result.snapshot_at, now, schedule)
    )
    # A repeated instalment is identical by now (differing repeats were refused as conflicts),
    # and the upsert writes it once, so the rows go as they are.
    count("instalments", writes.upsert_instalments(bulk, keys, frame, mapping.has("amount_paid")))


def _against_ledger(bulk: Bulk, checked: Checked, mapping: Mapping) -> pl.DataFrame:
    """Problems only the database can reveal: unknown loans, loans changing hands, changed payments."""
    frame = checked.frame.drop_nulls("loan_id")
    firsts = frame.unique("loan_id", keep="first", maintain_order=True)
    known = writes.existing_loans(bulk, firsts.get_column("loan_id").to_list())
    col = mapping.column
    if mapping.kind == "instalments":
        moved = firsts.join(known, on="loan_id").filter(
            pl.col("customer_id").is_not_null() & (pl.col("owner") != pl.col("customer_id"))
        )
        return moved.select(
            LINE,
            pl.lit(col("customer_id")).alias("column"),
            pl.format(
                "loan '{}' belongs to customer '{}' in the ledger",
                pl.col("loan_id"),
                pl.col("owner"),
            ).alias("message"),
            pl.col("customer_id").alias("got"),
        )
    rows = frame.join(known, on="loan_id", how="left")
    out = [
        rows.filter(pl.col("owner").is_null()).select(
            LINE,
            pl.lit(col("loan_id")).alias("column"),
            pl.lit("no such loan in the ledger (import its instalments first)").alias("message"),
            pl.col("loan_id").alias("got"),
        ),
        rows.filter(
            pl.col("owner").is_not_null() & (pl.col("currency") != pl.col("loan_currency"))
        ).select(
            LINE,
            pl.lit(col("currency") if mapping.has("currency") else col("amount")).alias("column"),
            pl.format("the loan is in {}; payments must be too", pl.col("loan_currency")).alias(
                "message"
            ),
            pl.col("currency").alias("got"),
        ),
        rows.filter(
            pl.col("customer_id").is_not_null()
            & pl.col("owner").is_not_null()
            & (pl.col("customer_id") != pl.col("owner"))
        ).select(
            LINE,
            pl.lit(col("customer_id") if mapping.has("customer_id") else "customer_id").alias(
                "column"
            ),
            pl.format("the loan belongs to customer '{}'", pl.col("owner")).alias("message"),
            pl.col("customer_id").alias("got"),
        ),
    ]
    recorded = writes.existing_payments(bulk, frame.get_column("payment_id").drop_nulls().to_list())
    clash = frame.join(recorded, on="payment_id").filter(
        (pl.col("recorded_loan") != pl.col("loan_id"))
        | (pl.col("recorded_amount") != pl.col("amount"))
    )
    out.append(
        clash.select(
            LINE,
            pl.lit(col("payment_id")).alias("column"),
            pl.format(
                "payment already recorded for loan '{}' with amount {} (minor units); payments cannot change",
                pl.col("recorded_loan"),
                pl.col("recorded_amount"),
            ).alias("message"),
            pl.col("payment_id").alias("got"),
        )
    )
    return pl.concat(out)


class _Digest:
    """SHA-256 of the file for the import log, computed beside the import (hashlib frees the GIL)."""

    def __init__(self, path: Path) -> None:
        self._value = ""
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        self._value = digest.hexdigest()

    def result(self) -> str:
        self._thread.join()
        return self._value
