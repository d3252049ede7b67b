"""`cuikuan report`: what each message recovered against its control group, and the KPIs."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.errors import InputError
from cuikuan.services.report import Report, build_report


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    ctx: typer.Context,
    start: str | None = typer.Option(
        None, "--from", help="First plan date, e.g. 2026-11-30 (default: 30 days before --to)."
    ),
    end: str | None = typer.Option(
        None, "--to", help="Last plan date (default: today in the lender's time zone)."
    ),
    window: int = typer.Option(
        3, "--window", min=1, max=7, help="Days after a message within which a payment counts."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Also write a self-contained HTML report with charts to this file."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Per step, template and variant: planned, held back, sent, delivered, replies by intent,
    opt-outs, complaints, paid within 1/3/7 days, recovered, cost and cost per unit recovered;
    the uplift of each step over its control group with a 95% interval and a plain verdict
    (better, worse, not yet known), variants against the step's champion; roll rates, cure
    rate, promise kept rate, delivery per gateway, opt-out and complaint rates per template."""
    settings = common.settings_from(ctx)
    last = common.as_of_date(end, settings)
    first = common.as_of_date(start, settings) if start else last - timedelta(days=30)
    if first > last:
        raise InputError(f"--from {first} is after --to {last}")
    result = build_report(common.database(ctx), settings, first, last, window)
    if html is not None:
        from cuikuan.web.report_html import render_html

        try:
            html.write_text(render_html(result, common.clock()), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {html}: {exc.strerror}") from None
    if json_out:
        common.out.print_json(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
        return
    _print(result)
    if html is not None:
        common.err.print(f"HTML report written to {html.resolve()}", markup=False)


def _print(r: Report) -> None:
    def money(minor: float) -> str:
        return common.money(int(minor), r.digits) if math.isfinite(minor) else "—"

    common.out.print(f"Report {r.start} – {r.end} ({r.currency}); pay window {r.window_days} days")
    steps = Table(title="Attribution per step, template and variant", title_justify="left")
    names = ("step", "template", "variant", "planned", "control", "sent", "delivered", "replied",
             "opted_out", "complained", "paid_1d", "paid_3d", "paid_7d", "recovered", "cost")  # fmt: skip
    for n in names:
        steps.add_column(n, justify="left" if n in ("step", "template") else "right")
    for row in r.steps.iter_rows(named=True):
        steps.add_row(
            *[money(row[n]) if n in ("recovered", "cost") else str(row[n]) for n in names]
        )
    common.out.print(steps)
    up = Table(title="Uplift over the control group (95% interval)", title_justify="left")
    for n in (
        "step",
        "treated",
        "control",
        "pay rate",
        "difference",
        "verdict",
        "recovered/member",
        "verdict ",
    ):
        up.add_column(n, justify="left" if n in ("step", "verdict", "verdict ") else "right")
    for u in r.uplift:
        p, m = u["pay_rate"], u["recovered_per_member"]
        up.add_row(
            u["step"], str(p["n_treated"]), str(p["n_control"]),
            f"{p['treated'] * 100:.1f}% vs {p['control'] * 100:.1f}%",
            f"{p['difference'] * 100:+.1f} pp [{p['low'] * 100:+.1f}, {p['high'] * 100:+.1f}]",
            p["verdict"], f"{money(m['difference'])}", m["verdict"],
        )  # fmt: skip
    common.out.print(up)
    for v in r.variants:
        p, m = v["pay_rate"], v["recovered_per_member"]
        common.out.print(
            f"variant {v['challenger']} vs {v['champion']} of {v['step']}: pay rate "
            f"{p['difference'] * 100:+.1f} pp [{p['low'] * 100:+.1f}, {p['high'] * 100:+.1f}] {p['verdict']}; "
            f"recovered/member {money(m['difference'])} {m['verdict']}",
            markup=False,
        )
    for m in r.roll_rates:
        roll = Table(title=f"Roll rates {m['from_date']} → {m['to_date']}", title_justify="left")
        roll.add_column("from")
        roll.add_column("loans", justify="right")
        for c in m["columns"]:
            roll.add_column(c, justify="right")
        for row in m["rows"]:
            roll.add_row(
                row["from"], str(row["loans"]), *[f"{row[c] * 100:.1f}%" for c in m["columns"]]
            )
        common.out.print(roll)
    cure, kept = r.cure["cure_rate"], r.promises["kept_rate"]
    common.out.print(
        f"cure rate {'—' if cure is None else f'{cure * 100:.1f}%'}; promise kept rate "
        f"{'—' if kept is None else f'{kept * 100:.1f}%'} ({r.promises['made']} made)"
    )
    delivery = Table(title="Delivery per channel and gateway", title_justify="left")
    for n in r.delivery.columns:
        delivery.add_column(n)
    for values in r.delivery.iter_rows():
        delivery.add_row(*[str(x) for x in values])
    common.out.print(delivery)
    for note in r.notes:
        common.out.print(f"note: {note}", markup=False)
