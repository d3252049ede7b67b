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
    at: str | None = typer.Option(
        None,
        "--at",
        "--now",
        help=(
            "The moment the report is made as of: members whose pay window is still open then "
            "are counted apart, not compared. ISO 8601 (no offset: UTC). Default: the clock."
        ),
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """What each step brought in over its control group, and the month's KPIs.

    The funnel per step in the strategy's order (stopped before the control draw and why, held
    back, stopped after it and why, sent, delivered). The uplift of each step, intention to
    treat: each customer the step chose once, from the first row that reached the control draw
    (held back, or not: the treated, whatever happened to their message later), both arms' pay
    windows starting when the contact window opened; the sent share; pay rate and amount per
    member against the control group with 95% intervals and a plain verdict (better, worse, not
    yet known); the incremental money with its interval, its cost and the cost per unit of it;
    variants against the step's champion; a weekly trend. Messages per step, template and
    variant (replies by intent, opt-outs, complaints, followed by a payment within 1/3/7 days,
    cost). Recovery per bucket in money, roll rates in loans and balances, cure rate, promise
    kept rate, delivery per gateway, and what changed in the strategy during the range."""
    settings = common.settings_from(ctx)
    last = common.as_of_date(end, settings, option="--to")
    first = (
        common.as_of_date(start, settings, option="--from") if start else last - timedelta(days=30)
    )
    if first > last:
        raise InputError(f"--from {first} is after --to {last}")
    now = common.moment(at)
    result = build_report(common.database(ctx), settings, first, last, window, now=now)
    if html is not None:
        from cuikuan.web.report_html import render_html

        try:
            html.write_text(render_html(result, now), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {html}: {exc.strerror}") from None
    if json_out:
        common.out.print_json(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
        return
    _print(result)
    if html is not None:
        common.err.print(f"HTML report written to {html.resolve()}", markup=False)


def _pp(share: float) -> str:
    """Percentage points with a sign, never "-0.0"."""
    return f"{round(share * 100, 1) + 0.0:+.1f}"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _table(title: str, columns: list[str], rows: list[list[str]], left: int = 1) -> Table:
    """A table; the console prints its cells literally (common.out: no markup, no control
    characters), as names come from files and the book."""
    table = Table(title=title, title_justify="left")
    for k, name in enumerate(columns):
        table.add_column(name, justify="left" if k < left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _print(r: Report) -> None:
    def money(minor: float) -> str:
        return common.money(round(minor), r.digits) if math.isfinite(minor) else "—"

    def interval(c: dict[str, float], scale: str) -> str:
        if scale == "pp":
            return f"{_pp(c['difference'])} pp [{_pp(c['low'])}, {_pp(c['high'])}]"
        return f"{money(c['difference'])} [{money(c['low'])}, {money(c['high'])}]"

    say = common.out.print
    say(f"Report {r.start} – {r.end} ({r.currency}); pay window {r.window_days} days")
    say(_table(
        "Funnel per step (in the strategy's order)",
        ["step", "matched", "stopped before draw", "held back", "treated", "stopped after draw",
         "sent", "delivered"],
        [[f["step"], *(f"{f[k]:,}" for k in ("matched", "stopped_before_draw", "held", "treated",
                                              "suppressed_after_draw", "sent", "delivered"))]
         for f in r.funnel],
    ))  # fmt: skip
    for f in r.funnel:
        for stage, key in (("before the draw", "before_draw"), ("after the draw", "after_draw")):
            for rule, n in list(f[key].items())[:5]:
                say(f"  {f['step']}: {n:,} stopped {stage}: {rule}")
    say(_table(
        "Uplift over the control group, intention to treat: pay rate (95% intervals)",
        ["step", "treated", "control", "window open", "sent", "pay rate", "difference", "verdict"],
        [[u["step"], f"{u['pay_rate']['n_treated']:,}", f"{u['pay_rate']['n_control']:,}",
          f"{u['open_windows']:,}", _pct(u["sent_share"]),
          f"{_pct(u['pay_rate']['treated'])} vs {_pct(u['pay_rate']['control'])}",
          interval(u["pay_rate"], "pp"), u["pay_rate"]["verdict"]] for u in r.uplift],
    ))  # fmt: skip
    say(_table(
        "Uplift in money: per member, incremental (treated x per member), cost",
        ["step", "per member", "verdict", "incremental", "cost", "cost per unit incremental"],
        [[u["step"], interval(u["recovered_per_member"], "money"),
          u["recovered_per_member"]["verdict"],
          f"{money(u['incremental'])} [{money(u['incremental_low'])}, {money(u['incremental_high'])}]",
          money(u["cost"]),
          "—" if u["cost_per_incremental"] is None else f"{u['cost_per_incremental']:.4f}"]
         for u in r.uplift],
    ))  # fmt: skip
    for v in r.variants:
        p, m = v["pay_rate"], v["recovered_per_member"]
        say(
            f"variant {v['challenger']} vs {v['champion']} of {v['step']}: pay rate "
            f"{interval(p, 'pp')} {p['verdict']}; per member {interval(m, 'money')} {m['verdict']}"
        )
    if r.weekly:
        say(_table(
            "Weekly trend, all steps (members by the week they were chosen)",
            ["week from", "treated", "control", "pay rate", "difference", "verdict"],
            [[w["week"], f"{w['pay_rate']['n_treated']:,}", f"{w['pay_rate']['n_control']:,}",
              f"{_pct(w['pay_rate']['treated'])} vs {_pct(w['pay_rate']['control'])}",
              interval(w["pay_rate"], "pp"), w["pay_rate"]["verdict"]] for w in r.weekly],
        ))  # fmt: skip
    names = ["step", "template", "variant", "planned", "control", "sent", "delivered", "replied",
             "opted_out", "complained", "paid_1d", "paid_3d", "paid_7d", "cost"]  # fmt: skip
    say(_table(
        "Messages per step, template and variant (paid_Nd: sent messages followed by a payment)",
        names,
        [[money(row[n]) if n == "cost" else str(row[n]) for n in names]
         for row in r.steps.iter_rows(named=True)],
        left=2,
    ))  # fmt: skip
    say(_table(
        "Recovery per bucket (collected in the range from the loans in each bucket at the start)",
        ["bucket", "loans", "overdue at start", "collected", "recovered"],
        [[b["bucket"], f"{b['loans']:,}", money(b["overdue_at_start"]), money(b["collected"]),
          _pct(b["recovery_rate"])] for b in r.buckets],
    ))  # fmt: skip
    for m in r.roll_rates:
        for key, unit, what in (
            ("rows", "loans", "loans"),
            ("balances", "outstanding", "balances"),
        ):
            say(_table(
                f"Roll rates {m['from_date']} → {m['to_date']} ({what})",
                ["from", unit, *m["columns"]],
                [[row["from"], money(row[unit]) if unit == "outstanding" else f"{row[unit]:,}",
                  *[_pct(row[c]) for c in m["columns"]]] for row in m[key]],
            ))  # fmt: skip
    cure, kept = r.cure["cure_rate"], r.promises["kept_rate"]
    say(f"cure rate {_pct(cure)}; promise kept rate {_pct(kept)} ({r.promises['made']} made)")
    say(_table(
        "Delivery per channel and gateway", list(r.delivery.columns),
        [[str(x) for x in values] for values in r.delivery.iter_rows()], left=2,
    ))  # fmt: skip
    for change in r.changes:
        say(f"changed: {change}")
    for note in r.notes:
        say(f"note: {note}")
