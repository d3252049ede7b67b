"""Each step's true effect in a simulated month, and whether the report's intervals cover it.

    books = twin_books(folder, accounts=6000, seed=3, start=date(2026, 11, 30), control=0.1)
    found = check_report(books, days=30, seed=3, window_days=3)
    found.covered, found.steps     # how many steps' 95% intervals held the truth, of how many

The same book is imported twice: one copy keeps control groups (every step holds back
`control`), the other holds back nobody. The month is simulated on both with the same seed;
the borrowers' luck comes from common random numbers (sim.borrowers.stream), so a borrower's
payments differ between the copies only through what was decided for them. For the customers a
step held back in the first copy, the second copy shows what they would have done had the
step's message been sent: the mean of the difference over them is the step's true effect on
the pay rate (and on the amount per member), in the same windows the report measures. The report
on the first copy then either covers it or not.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from cuikuan.ingest.validate import Rules
from cuikuan.services.importer import import_file
from cuikuan.services.report import build_report, members
from cuikuan.services.strategy_file import shipped_strategy_text
from cuikuan.settings import Settings, default_settings_text, load_settings
from cuikuan.sim.generator import GenerateOptions, generate
from cuikuan.sim.month import run_month
from cuikuan.store.engine import open_database
from cuikuan.store.schema import customers, loans, payments
from cuikuan.store.times import as_utc


@dataclass
class Twin:
    settings: Settings
    engine: Engine


@dataclass
class Books:
    held: Twin  # with control groups
    sent: Twin  # the same book, nobody held back
    start: date
    # With `exact`: per step, the same book where only that step holds back nobody.
    by_step: dict[str, Twin] = field(default_factory=dict)


@dataclass
class StepTruth:
    step: str
    n_control: int
    true_rate: float
    low: float
    high: float
    estimate: float
    true_amount: float
    amount_low: float
    amount_high: float
    # The report's counts, so that another interval can be held against the same truth.
    n_treated: int = 0
    paid_treated: int = 0
    paid_control: int = 0

    @property
    def covered(self) -> bool:
        return self.low <= self.true_rate <= self.high

    @property
    def amount_covered(self) -> bool:
        return self.amount_low <= self.true_amount <= self.amount_high


@dataclass
class Found:
    steps: list[StepTruth] = field(default_factory=list)

    @property
    def covered(self) -> int:
        return sum(s.covered for s in self.steps)


def twin_books(
    folder: Path, accounts: int, seed: int, start: date, control: float, exact: bool = False
) -> Books:
    """Two copies of one generated book, in `folder`/held and `folder`/sent; with `exact`, one
    more per step in which only that step holds back nobody (its truth is then exact: the copies
    differ in that step's control group alone)."""
    ledger = folder / "ledger.csv"
    generate(GenerateOptions(accounts, seed, start - timedelta(days=1), ledger))
    # The book's paid amounts are as of the generator's snapshot (the file's modification time
    # it sets). Said outright: a copy made with today's time once put the snapshot inside the
    # simulated month, and every payment before it was taken as already in the paid amounts.
    taken = datetime.fromtimestamp(ledger.stat().st_mtime, UTC)
    copies = [("held", with_control(control)), ("sent", with_control(0.0))]
    if exact:
        copies += [(f"step-{s}", with_control(control, s)) for s in step_ids()]
    twins = []
    for name, strategy in copies:
        home = folder / name
        home.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(home / 'cuikuan.db').resolve()}"
        # The guardrail pauses templates on complaints, which the copies get in different
        # numbers: a pause in one copy only would change the policy, not a borrower's luck.
        text = (
            default_settings_text()
            .replace('url = "sqlite:///cuikuan.db"', f'url = "{url}"')
            .replace("guardrail_min_messages = 50", f"guardrail_min_messages = {10**9}")
        )
        (home / "cuikuan.toml").write_text(text, encoding="utf-8")
        (home / "strategy.toml").write_text(strategy, encoding="utf-8")
        settings = load_settings(home / "cuikuan.toml", environ={})
        engine = open_database(settings.database_url)
        rules = Rules(
            settings.defaults.region, settings.defaults.timezone, settings.defaults.currency
        )
        shutil.copy(ledger, home / "ledger.csv")
        import_file(engine, home / "ledger.csv", rules, snapshot_at=taken, now=taken)
        twins.append(Twin(settings, engine))
    books = Books(twins[0], twins[1], start)
    books.by_step = {name[5:]: twin for (name, _), twin in zip(copies[2:], twins[2:], strict=True)}
    return books


def step_ids() -> list[str]:
    return re.findall(r'(?m)^id = "([^"]+)"', shipped_strategy_text())


def with_control(share: float, except_step: str | None = None) -> str:
    """The shipped strategy with every step holding back `share` (`except_step` nobody)."""
    blocks = shipped_strategy_text().split("[[steps]]")
    out = [blocks[0]]
    for block in blocks[1:]:
        mine = except_step is not None and f'id = "{except_step}"' in block
        out.append(re.sub(r"(?m)^control = .*$", f"control = {0.0 if mine else share}", block))
    return "[[steps]]".join(out)


def check_report(books: Books, days: int, seed: int, window_days: int = 3) -> Found:
    """Simulate the month on both copies and hold the report on the first against the truth."""
    end = books.start + timedelta(days=days - 1)
    for twin in (books.held, books.sent, *books.by_step.values()):
        run_month(twin.engine, twin.settings, books.start, days, seed)
    # Every window closes inside the month: the last `window_days` days' members are left out.
    last = end - timedelta(days=window_days)
    report = build_report(books.held.engine, books.held.settings, books.start, last, window_days)
    truth = true_effects(books, last, window_days)
    found = Found()
    for u in report.uplift:
        if u["step"] not in truth or u["pay_rate"]["n_control"] < 30:
            continue
        rate, amount = u["pay_rate"], u["recovered_per_member"]
        t = truth[u["step"]]
        if u["step"] in books.by_step:
            t = true_effects(books, last, window_days, books.by_step[u["step"]])[u["step"]]
        found.steps.append(
            StepTruth(u["step"], rate["n_control"], t["rate"], rate["low"], rate["high"],
                      rate["difference"], t["amount"], amount["low"], amount["high"],
                      rate["n_treated"], round(rate["treated"] * rate["n_treated"]),
                      round(rate["control"] * rate["n_control"]))
        )  # fmt: skip
    return found


def true_effects(
    books: Books, end: date, window_days: int, other: Twin | None = None
) -> dict[str, dict[str, Any]]:
    """Per step: over the customers it held back in the first copy, the mean difference
    between the copies (`other`, else the one holding back nobody) in paying (and in the amount
    paid) within the same windows."""
    other = other or books.sent
    held = members(books.held.engine, books.held.settings, books.start, end, window_days)
    control = held.filter(pl.col("control")).select(
        "step", "customer_id", "opens", pl.col("paid").cast(pl.Int64), "amount"
    )
    if control.is_empty():
        return {}
    window = timedelta(days=window_days)
    names = _external_ids(books.held.engine)
    their = _external_ids(other.engine)
    pays = _payments(other.engine).join(their, on="customer_id").drop("customer_id")
    outcome = (
        control.join(names, on="customer_id")
        .join(pays, on="customer", how="left")
        .with_columns(
            ((pl.col("paid_at") >= pl.col("opens")) & (pl.col("paid_at") < pl.col("opens") + window))
            .fill_null(False)
            .alias("_in")
        )
        .group_by("step", "customer_id", "paid", "amount")
        .agg(
            pl.col("_in").any().cast(pl.Int64).alias("paid_b"),
            pl.col("paid_amount").filter(pl.col("_in")).sum().alias("amount_b"),
        )
    )  # fmt: skip
    effects = outcome.group_by("step").agg(
        (pl.col("paid_b") - pl.col("paid")).mean().alias("rate"),
        (pl.col("amount_b") - pl.col("amount")).mean().alias("amount"),
        pl.len().alias("n"),
    )
    return {row["step"]: row for row in effects.iter_rows(named=True)}


def _external_ids(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(customers.c.id, customers.c.external_id)).all()
    return pl.DataFrame(
        [(r.id, r.external_id) for r in rows],
        schema={"customer_id": pl.Int64, "customer": pl.String},
        orient="row",
    )


def _payments(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            select(loans.c.customer_id, payments.c.paid_at, payments.c.amount).join(
                loans, loans.c.id == payments.c.loan_id
            )
        ).all()
    return pl.DataFrame(
        [(r.customer_id, as_utc(r.paid_at), r.amount) for r in rows],
        schema={"customer_id": pl.Int64, "paid_at": pl.Datetime("us", "UTC"),
                "paid_amount": pl.Int64},
        orient="row",
    )  # fmt: skip
