"""`cuikuan sim`: made-up but realistic ledgers for trying cuikuan out, tests and benchmarks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from cuikuan.cli import common
from cuikuan.errors import InputError
from cuikuan.sim.generator import GenerateOptions
from cuikuan.sim.generator import generate as run_generate

app = typer.Typer(
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
