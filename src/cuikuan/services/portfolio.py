"""The portfolio on an as-of date: accounts, customers and money per bucket, and the DPD spread.

report = portfolio(engine, date(2026, 11, 29), settings)
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, func, select

from cuikuan.domain import ledger_frame
from cuikuan.domain.ledger import BucketEdge
from cuikuan.settings import Settings
from cuikuan.store import ledger_reads, snapshots, sqlite_worker
from cuikuan.store.schema import imports

DPD_BANDS = (
    (0, 0, "0"),
    (1, 7, "1-7"),
    (8, 15, "8-15"),
    (16, 30, "16-30"),
    (31, 60, "31-60"),
    (61, 90, "61-90"),
    (91, 180, "91-180"),
    (181, None, "181+"),
)


@dataclass(frozen=True)
class Portfolio:
    as_of: date
    buckets: pl.DataFrame  # bucket, currency, accounts, customers, outstanding, overdue
    dpd: pl.DataFrame  # band, accounts
    closed_accounts: int
    currency_digits: dict[str, int]


def as_of_cutoff(as_of: date, timezone: str) -> datetime:
    """Payments count for `as_of` up to the end of that day in the lender's time zone."""
    local = datetime.combine(as_of + timedelta(days=1), time(0), ZoneInfo(timezone))
    return local.astimezone(ZoneInfo("UTC"))


def loan_positions(
    engine: Engine,
    as_of: date,
    settings: Settings,
    *,
    summed: bool | None = None,
    scope: ledger_reads.Scope | None = None,
    lean: bool = False,
    open_only: bool = False,
) -> pl.DataFrame:
    """Every loan's position on `as_of`, with its customer, currency and bucket.

    On SQLite (or with `summed=True`) positions come from each loan's open schedule (kept by
    the import, store/schedules.py) and the database sums the instalments of late loans; only
    loans with payments to allocate on top are read instalment by instalment: reading every
    open instalment into Python is most of the time of a large plan. Both ways give the same
    positions (tested against each other). With `scope`, only the loans of the customers whose
    ids are in that range; `lean` leaves out external_id and currency; `open_only` leaves out
    the loans with no open instalment (paid off whatever was paid since)."""
    grace = settings.ledger.grace_days
    with engine.connect() as conn:
        if summed is None:
            summed = conn.dialect.name == "sqlite"
        loans = ledger_reads.loans(conn, scope, lean=lean, schedule=summed, open_only=open_only)
        pays = ledger_reads.payments(conn, scope)
        cutoff = as_of_cutoff(as_of, settings.defaults.timezone)
        paying = ledger_reads.loan_facts(conn, pays["loan_id"]) if lean else loans
        extra = ledger_frame.countable_payments(pays.lazy(), paying.lazy(), cutoff).collect()
        if summed:
            late_before = as_of - timedelta(days=grace)
            summary = ledger_reads.open_summary(conn, loans, late_before).join(
                extra.select("loan_id"), on="loan_id", how="anti"
            )
            # A fully paid instalment adds nothing to any position (allocation only moves
            # money onto open ones), so only open instalments are read.
            inst = ledger_reads.instalments(conn, open_only=True, loan_ids=extra["loan_id"])
        else:
            summary = None
            inst = ledger_reads.instalments(conn, open_only=True, scope=scope)
    edges = [BucketEdge(b.name, b.max_dpd) for b in settings.ledger.buckets]
    positions = ledger_frame.loan_positions(inst.lazy(), extra.lazy(), as_of, grace)
    if summary is not None:
        summed_positions = ledger_frame.open_summary_positions(summary.lazy(), as_of)
        positions = pl.concat([positions, summed_positions], how="diagonal")
    return (
        loans.lazy()
        .select("loan_id", "customer_id", *([] if lean else ["external_id", "currency"]))
        .join(positions, on="loan_id", how="left")
        .with_columns(
            # Loans with no open instalment are paid off.
            pl.col("outstanding", "overdue_amount", "next_due_amount", "dpd").fill_null(0),
            pl.col("paid_off").fill_null(True),
        )
        .with_columns(ledger_frame.bucket_expr(pl.col("dpd"), edges).alias("bucket"))
        .collect()
    )


def portfolio(engine: Engine, as_of: date, settings: Settings) -> Portfolio:
    from cuikuan.domain.money import currency_digits

    sqlite_worker.warm(engine)  # the whole book is read
    positions = loan_positions(engine, as_of, settings)
    open_ = positions.filter(~pl.col("paid_off"))
    edges = [BucketEdge(b.name, b.max_dpd) for b in settings.ledger.buckets]
    order = {b.name: i for i, b in enumerate(settings.ledger.buckets)}
    customer_bucket = (
        open_.group_by("customer_id", "currency")
        .agg(pl.col("dpd").max())
        .with_columns(ledger_frame.bucket_expr(pl.col("dpd"), edges).alias("bucket"))
        .group_by("bucket", "currency")
        .agg(pl.len().alias("customers"))
    )
    skeleton = pl.DataFrame(
        [(b, c) for c in sorted(set(open_.get_column("currency").to_list())) for b in order],
        schema={"bucket": pl.String, "currency": pl.String},
        orient="row",
    )
    buckets = (
        skeleton.join(
            open_.group_by("bucket", "currency").agg(
                pl.len().alias("accounts"),
                pl.col("outstanding").sum(),
                pl.col("overdue_amount").sum().alias("overdue"),
            ),
            on=["bucket", "currency"],
            how="left",
        )
        .join(customer_bucket, on=["bucket", "currency"], how="left")
        .with_columns(
            pl.col("accounts", "outstanding", "overdue", "customers").fill_null(0).cast(pl.Int64)
        )
        .select("bucket", "currency", "accounts", "customers", "outstanding", "overdue")
    )
    band = pl.lit(DPD_BANDS[-1][2])
    for low, high, name in reversed(DPD_BANDS[:-1]):
        band = pl.when(pl.col("dpd").is_between(low, high)).then(pl.lit(name)).otherwise(band)
    band_order = [name for _, _, name in DPD_BANDS]
    dpd = (
        pl.DataFrame({"band": band_order})
        .join(
            open_.with_columns(band.alias("band")).group_by("band").agg(pl.len().alias("accounts")),
            on="band",
            how="left",
        )
        .with_columns(pl.col("accounts").fill_null(0).cast(pl.Int64))
    )
    currencies = {c: currency_digits(c) for c in skeleton.get_column("currency").unique().to_list()}
    return Portfolio(as_of, buckets, dpd, positions.height - open_.height, currencies)


@dataclass(frozen=True)
class CustomerView:
    external_id: str
    name: str
    phones: list[str]
    email: str | None
    dpd: int
    bucket: str
    loans: pl.DataFrame  # one row per loan with its position and bucket


def customer_view(
    engine: Engine, external_id: str, as_of: date, settings: Settings
) -> CustomerView:
    """One customer on `as_of`: their loans' positions, and their own DPD (their worst loan's)."""
    from sqlalchemy import select

    from cuikuan.domain.ledger import bucket_for
    from cuikuan.errors import NotFound
    from cuikuan.store.schema import customer_phones, customers

    with engine.connect() as conn:
        row = conn.execute(
            select(customers.c.id, customers.c.name, customers.c.email).where(
                customers.c.external_id == external_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no customer {external_id!r} in the ledger")
        phones = conn.execute(
            select(customer_phones.c.e164)
            .where(customer_phones.c.customer_id == row.id)
            .order_by(customer_phones.c.position)
        ).scalars()
        phone_list = list(phones)
    # Their loans only (a range of one customer id): the whole book's positions took seconds
    # on a large book for one person's page.
    loans = loan_positions(engine, as_of, settings, scope=(row.id, row.id + 1))
    open_loans = loans.filter(~pl.col("paid_off"))
    worst = open_loans.select(pl.col("dpd").max()).item() if open_loans.height else None
    dpd = int(worst or 0)
    edges = [BucketEdge(b.name, b.max_dpd) for b in settings.ledger.buckets]
    return CustomerView(
        external_id,
        row.name,
        phone_list,
        row.email,
        dpd,
        bucket_for(dpd, edges),
        loans.sort("external_id"),
    )


# --- the portfolio a page shows many times a day ------------------------------------------------

_SEEN: dict[tuple[str, date, int | None, str], Portfolio] = {}
_SEEN_LOCK = threading.Lock()
_SEEN_MAX = 8


def ledger_version(engine: Engine) -> int | None:
    """The last import's id: every change to loans, instalments and payments is made by an
    import (services/importer), in the same transaction as its row in `imports`."""
    with engine.connect() as conn:
        found: int | None = conn.execute(select(func.max(imports.c.id))).scalar_one()
    return found


def portfolio_now(
    engine: Engine, as_of: date, settings: Settings, made_at: datetime | None = None
) -> Portfolio:
    """`portfolio`, computed once per day and ledger version: a console page asks for it on
    every view, and a 1 M-account book takes seconds to position. Kept in this process and in
    the database (store/snapshots), so that the worker computes it once after an import and
    every server reads it. Another import (or another day) computes it afresh, so it is never
    older than the ledger. `made_at` stamps a snapshot written now (the caller's clock)."""
    key, stored_key = _portfolio_keys(engine, as_of, settings)
    made = _kept_portfolio(engine, as_of, key, stored_key)
    if made is not None:
        return made
    made = portfolio(engine, as_of, settings)
    if made_at is not None:
        meta = {"closed_accounts": made.closed_accounts, "currency_digits": made.currency_digits}
        snapshots.save(engine, stored_key, as_of, made.buckets, made.dpd, meta, made_at)
    _remember(key, made)
    return made


def portfolio_kept(engine: Engine, as_of: date, settings: Settings) -> tuple[Portfolio | None, str]:
    """`portfolio_now` if it is kept (in this process or the database), else None: nothing is
    computed; and what names it (the day, the ledger's version, the rules). The console shows
    it at once, or computes it aside under that name (web/background)."""
    key, stored_key = _portfolio_keys(engine, as_of, settings)
    return _kept_portfolio(engine, as_of, key, stored_key), stored_key


def _portfolio_keys(
    engine: Engine, as_of: date, settings: Settings
) -> tuple[tuple[str, date, int | None, str], str]:
    rules = settings.ledger.model_dump_json() + settings.defaults.timezone
    version = ledger_version(engine)
    key = (engine.url.render_as_string(hide_password=True), as_of, version, rules)
    return key, f"{as_of}|{version}|{hashlib.sha256(rules.encode()).hexdigest()[:32]}"


def _kept_portfolio(
    engine: Engine, as_of: date, key: tuple[str, date, int | None, str], stored_key: str
) -> Portfolio | None:
    with _SEEN_LOCK:
        found = _SEEN.get(key)
    if found is not None:
        return found
    stored = snapshots.load(engine, stored_key)
    if stored is None:
        return None
    buckets, dpd, meta = stored
    made = Portfolio(as_of, buckets, dpd, int(meta["closed_accounts"]),
                     {k: int(v) for k, v in meta["currency_digits"].items()})  # fmt: skip
    _remember(key, made)
    return made


def _remember(key: tuple[str, date, int | None, str], made: Portfolio) -> None:
    with _SEEN_LOCK:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.pop(next(iter(_SEEN)))
        _SEEN[key] = made
