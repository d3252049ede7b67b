"""`cuikuan import` and `cuikuan portfolio`: the ledger in, the book by bucket out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from cuikuan.cli import common
from cuikuan.domain.columns import HeaderError, parse_overrides
from cuikuan.domain.dates import parse_datetime
from cuikuan.domain.money import currency_digits
from cuikuan.errors import InputError
from cuikuan.ingest.validate import Rules
from cuikuan.services.importer import ImportResult, import_file
from cuikuan.services.portfolio import Portfolio, customer_view
from cuikuan.services.portfolio import portfolio as build_portfolio
from cuikuan.settings import Settings

PROGRESS_FROM_ROWS = 50_000


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("portfolio")(portfolio)
    app.command("account")(account)


def import_(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="CSV or XLSX files, imported in the order given."),
    kind: str | None = typer.Option(
        None, "--kind", help="instalments or payments (default: told by the header)."
    ),
    mapping: list[str] = typer.Option(
        [],
        "--map",
        help="COLUMN=FIELD for a header cuikuan does not know; FIELD may be 'ignore'. Repeatable.",
    ),
    sheet: str | None = typer.Option(
        None, "--sheet", help="XLSX sheet to read (default: the first with data)."
    ),
    snapshot_at: str | None = typer.Option(
        None,
        "--snapshot-at",
        help="When the paid amounts were taken, lender's local time (default: the file's modification time).",
    ),
    at: str | None = common.AtOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Import ledger files: instalments (one row per instalment, with customer and loan columns)
    and payments. Headers may be English or Chinese; UTF-8, UTF-8 with BOM and GBK are read.

    Each file is all or nothing: one bad row and nothing from that file is written; every problem
    is listed as file:line: column: what is wrong. Re-importing a file changes nothing. See
    docs/import.md for the columns and the rule that keeps payments from counting twice.
    """
    settings = common.settings_from(ctx)
    if kind not in (None, "instalments", "payments"):
        raise InputError(f"--kind {kind!r}: expected instalments or payments")
    try:
        overrides = parse_overrides(mapping)
    except HeaderError as exc:
        raise InputError(str(exc)) from None
    snapshot = _snapshot(snapshot_at, settings.defaults.timezone)
    now = common.moment(at)
    engine = common.database(ctx)
    rules = Rules.of(settings.defaults)
    results = []
    for path in files:
        with _progress(path, json_out) as report:
            result = import_file(
                engine,
                path,
                rules,
                kind=_kind(kind),
                overrides=overrides,
                sheet=sheet,
                snapshot_at=snapshot,
                progress=report,
                now=now,
            )
        results.append(result)
        if not json_out:
            _print_result(result)
    if any(r.kind == "payments" for r in results):
        _promises_kept(engine, settings, now)
    if json_out:
        common.print_json([r.as_dict() for r in results])


def _kind(kind: str | None) -> Literal["instalments", "payments"] | None:
    if kind == "instalments":
        return "instalments"
    if kind == "payments":
        return "payments"
    return None


def _snapshot(text: str | None, timezone: str) -> datetime | None:
    if text is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        return parse_datetime(text).replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    except ValueError as exc:
        raise InputError(f"--snapshot-at {text!r}: {exc}") from None


class _progress:
    """A progress bar on stderr for large files; silent for small ones and for --json."""

    def __init__(self, path: Path, quiet: bool) -> None:
        self.path, self.quiet = path, quiet
        self.bar: Progress | None = None
        self.task = TaskID(0)

    def __enter__(self) -> _progress:
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total < PROGRESS_FROM_ROWS or not common.err.is_terminal:
            return
        if self.bar is None:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} rows"),
                TimeRemainingColumn(),
                console=common.err,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(f"importing {self.path.name}", total=total)
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_result(result: ImportResult) -> None:
    changed = (
        ", ".join(f"{n:,} {name}" for name, n in result.changed.items() if n)
        or "nothing (already up to date)"
    )
    common.out.print(
        Text.assemble(
            ("imported", "green"),
            f" {result.file}: {result.rows:,} {result.kind} rows ({result.encoding}); changed {changed}",
        )
    )
    if result.snapshot_at:
        common.out.print(
            f"  paid amounts taken as of {result.snapshot_at:%Y-%m-%d %H:%M} UTC; later payments count on top"
        )
    if result.extra_columns:
        common.out.print(f"  kept as custom attributes: {', '.join(result.extra_columns)}")


def portfolio(
    ctx: typer.Context,
    as_of: str | None = common.AsOfOption,
    json_out: bool = common.JsonOption,
) -> None:
    """The book on a day: accounts, customers, outstanding and overdue per bucket, and the DPD spread.

    Closed (fully paid) loans are counted apart. A customer is counted in the bucket of their most
    overdue loan; money is per currency.
    """
    settings = common.settings_from(ctx)
    day = common.as_of_date(as_of, settings)
    report = build_portfolio(common.database(ctx), day, settings)
    if json_out:
        common.print_json(_portfolio_json(report))
        return
    _print_portfolio(report)


def _portfolio_json(report: Portfolio) -> dict[str, object]:
    return {
        "as_of": report.as_of.isoformat(),
        "buckets": [
            {
                **row,
                "outstanding": common.money(
                    row["outstanding"], report.currency_digits[row["currency"]]
                ),
                "overdue": common.money(row["overdue"], report.currency_digits[row["currency"]]),
            }
            for row in report.buckets.to_dicts()
        ],
        "buckets_minor_units": report.buckets.to_dicts(),
        "dpd": report.dpd.to_dicts(),
        "closed_accounts": report.closed_accounts,
    }


def _print_portfolio(report: Portfolio) -> None:
    table = Table(title=f"Portfolio on {report.as_of}", title_justify="left")
    for name, justify in (
        ("bucket", "left"),
        ("ccy", "left"),
        ("accounts", "right"),
        ("customers", "right"),
        ("outstanding", "right"),
        ("overdue", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in report.buckets.iter_rows(named=True):
        digits = report.currency_digits[row["currency"]]
        table.add_row(
            row["bucket"],
            row["currency"],
            f"{row['accounts']:,}",
            f"{row['customers']:,}",
            common.money(row["outstanding"], digits),
            common.money(row["overdue"], digits),
        )
    common.out.print(table)
    dpd = Table(title="Open accounts by days past due", title_justify="left")
    dpd.add_column("DPD")
    dpd.add_column("accounts", justify="right")
    for row in report.dpd.iter_rows(named=True):
        dpd.add_row(row["band"], f"{row['accounts']:,}")
    common.out.print(dpd)
    common.out.print(f"closed (fully paid) accounts: {report.closed_accounts:,}")


def account(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id (客户编号)."),
    as_of: str | None = common.AsOfOption,
    json_out: bool = common.JsonOption,
) -> None:
    """One customer on a day: phones, every loan with its DPD, bucket, outstanding and next due."""
    settings = common.settings_from(ctx)
    day = common.as_of_date(as_of, settings)
    view = customer_view(common.database(ctx), customer, day, settings)
    loans = view.loans.select(
        pl.col("external_id").alias("loan"),
        "currency",
        "dpd",
        "bucket",
        "outstanding",
        "overdue_amount",
        "next_due_date",
        "next_due_amount",
        "days_to_due",
        "paid_off",
    )
    if json_out:
        common.print_json(
            {
                "customer": view.external_id,
                "name": view.name,
                "phones": view.phones,
                "email": view.email,
                "as_of": day.isoformat(),
                "dpd": view.dpd,
                "bucket": view.bucket,
                "loans": loans.to_dicts(),
            }
        )
        return
    common.out.print(
        f"{view.name} ({view.external_id}) on {day}: DPD {view.dpd}, bucket {view.bucket}"
    )
    common.out.print(f"phones: {', '.join(view.phones) or '-'}; e-mail: {view.email or '-'}")
    table = Table()
    for name in ("loan", "bucket", "DPD", "outstanding", "overdue", "next due", "amount"):
        table.add_column(
            name, justify="left" if name in ("loan", "bucket", "next due") else "right"
        )
    for row in loans.iter_rows(named=True):
        digits = currency_digits(row["currency"])
        table.add_row(
            row["loan"],
            "closed" if row["paid_off"] else row["bucket"],
            str(row["dpd"]),
            common.money(row["outstanding"], digits),
            common.money(row["overdue_amount"], digits),
            str(row["next_due_date"] or "-"),
            common.money(row["next_due_amount"], digits),
        )
    common.out.print(table)


def _promises_kept(engine: Engine, settings: Settings, now: datetime) -> None:
    """Payments just arrived: mark the promises they keep (the plan decides broken ones) and
    close the tasks they made moot."""
    from cuikuan.services.worker import settle_kept

    closed = settle_kept(engine, settings, now)
    if closed:
        common.err.print(f"{closed:,} task(s) about money owed closed: paid since, nothing overdue")
