"""`cuikuan sim`: made-up but realistic ledgers for trying cuikuan out, tests and benchmarks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import typer

from cuikuan.channels.base import Channel
from cuikuan.cli import common
from cuikuan.errors import InputError
from cuikuan.sim.generator import GenerateOptions
from cuikuan.sim.generator import generate as run_generate

app = typer.Typer(
    rich_markup_mode=None,
    help="Synthetic portfolios (the demo only ever sends them to the sandbox).",
    no_args_is_help=True,
)


@app.command("generate")
def generate(
    accounts: int = typer.Option(
        1000, "--accounts", "-n", min=1, help="Number of loans (accounts)."
    ),
    seed: int = typer.Option(1, "--seed", help="Same seed, same files."),
    out: Path = typer.Option(..., "--out", "-o", help="Instalments file to write (.csv or .xlsx)."),
    payments_out: Path | None = typer.Option(
        None, "--payments-out", help="Also write the payments behind the paid amounts."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="The day the snapshot describes (default today)."
    ),
    encoding: str = typer.Option("utf-8", "--encoding", help="CSV encoding: utf-8 or gbk."),
    json_out: bool = common.JsonOption,
) -> None:
    """Write a consumer lender's instalment ledger (Chinese headers) and, optionally, its payments."""
    from cuikuan.domain.dates import parse_date

    try:
        day = parse_date(as_of) if as_of else date.today()
    except ValueError as exc:
        raise InputError(f"--as-of {as_of!r}: {exc}") from None
    if encoding.lower().replace("-", "") not in ("utf8", "gbk", "gb18030"):
        raise InputError(f"--encoding {encoding!r}: expected utf-8 or gbk")
    summary = run_generate(GenerateOptions(accounts, seed, day, out, payments_out, encoding))
    if json_out:
        common.print_json(summary.__dict__)
        return
    common.out.print(
        f"wrote {summary.instalment_rows:,} instalments of {summary.accounts:,} loans for "
        f"{summary.customers:,} customers ({summary.delinquent_accounts:,} behind) to {out}"
        + (f", {summary.payment_rows:,} payments to {payments_out}" if payments_out else "")
    )


@app.command("month")
def month(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="First simulated day, e.g. 2026-11-30."),
    days: int = typer.Option(30, "--days", min=1, max=366, help="How many days to run."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same month."),
    smpp: bool = typer.Option(
        False,
        "--smpp",
        help="Send over real SMPP to a simulator started on a free loopback port "
        "(receipts included) instead of the sandbox.",
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Run the daily cycle for N simulated days on the sandbox (or --smpp): plan, send at 10:00 and 15:00,
    simulated borrowers pay (more after a reminder, with tone and fatigue effects) and their
    payments are imported; then show, per step, what was sent and the uplift over control."""
    from rich.progress import Progress
    from rich.table import Table

    from cuikuan.domain.dates import parse_date
    from cuikuan.domain.money import currency_digits
    from cuikuan.sim.month import run_month

    settings = common.settings_from(ctx)
    try:
        first = parse_date(start)
    except ValueError as exc:
        raise InputError(f"--from {start!r}: {exc}") from None
    engine = common.database(ctx)
    with contextlib.ExitStack() as stack:
        channel = stack.enter_context(_local_smpp()) if smpp else None
        bar = stack.enter_context(
            Progress(
                console=common.err, transient=True, disable=json_out or not common.err.is_terminal
            )
        )
        task = bar.add_task("simulating", total=days)
        report = run_month(
            engine,
            settings,
            first,
            days,
            seed,
            progress=lambda done, _: bar.update(task, completed=done),
            channel=channel,
        )
    digits = currency_digits(settings.defaults.currency)
    if json_out:
        common.print_json({"days": days, "planned": report.planned, "sent": report.sent, "payments": report.payments,
                           "collected": common.money(report.collected, digits), "replies": report.replies,
                           "steps": report.steps.to_dicts()})  # fmt: skip
        return
    common.out.print(
        f"{days} days from {first}: {report.planned:,} messages planned, {report.sent:,} sent; "
        f"{report.payments:,} payments, {common.money(report.collected, digits)} collected; "
        f"{report.replies:,} borrower replies"
    )
    table = Table(
        title="Per step, intention to treat: members, paid within 3 days (as `cuikuan report`)",
        title_justify="left",
    )
    for name in (
        "step",
        "treated",
        "control",
        "paid_3d_treated",
        "paid_3d_control",
        "uplift",
        "verdict",
    ):
        table.add_column(name, justify="left" if name in ("step", "verdict") else "right")
    for row in report.steps.iter_rows(named=True):
        table.add_row(
            row["step"], f"{row['treated']:,}", f"{row['control']:,}",
            _pct(row["paid_3d_treated"]), _pct(row["paid_3d_control"]),
            _pct(row["uplift"], sign=True), row["verdict"],
        )  # fmt: skip
    common.out.print(table)


def _pct(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f}%" if sign else f"{value * 100:.1f}%"


@contextlib.contextmanager
def _local_smpp() -> Iterator[Channel]:
    from cuikuan.channels.smpp.channel import SmppChannel
    from cuikuan.channels.smpp.session import SessionConfig
    from cuikuan.sim.smsc import SmscConfig, smsc_in_thread

    with smsc_in_thread(SmscConfig(port=0)) as (smsc, _loop):
        channel = SmppChannel(
            SessionConfig(port=smsc.port, tps=5000), source_addr="1069", clock=common.clock
        )
        common.err.print(f"SMPP: sending to a local SMSC on 127.0.0.1:{smsc.port}", markup=False)
        try:
            yield channel
        finally:
            channel.close()
            stats = smsc.stats
            common.err.print(
                f"SMPP: the SMSC accepted {stats['accepted']:,} parts, refused {stats['refused']:,}, "
                f"throttled {stats['throttled']:,}, sent {stats['receipts']:,} receipts",
                markup=False,
            )
