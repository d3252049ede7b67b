"""`cuikuan plan` and `cuikuan explain`: the day's messages, and why each borrower gets one or not."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import polars as pl
import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.errors import InputError, LintBlocked
from cuikuan.services.planner import PlanResult, make_plan

EXPORT_COLUMNS = ["customer", "external_id", "step", "variant", "template", "channel", "control", "status", "reason",
                  "recipient", "earliest_at", "latest_at", "segments", "billing_units", "dpd", "days_to_due", "text"]  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("explain")(explain)


def plan(
    ctx: typer.Context,
    as_of: str | None = common.AsOfOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and report, write nothing."),
    export: Path | None = typer.Option(
        None,
        "--export",
        help="Write every candidate, sent or not, with the reason (.csv or .jsonl).",
    ),
    at: str | None = common.AtOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Plan the day: evaluate the strategy over the whole portfolio, apply the contact policy
    (windows in each borrower's local time, caps per person and per number, holidays,
    suppressions), and write the outbox. Re-running the same date adds nothing."""
    settings = common.settings_from(ctx)
    now = common.moment(at)
    day = common.as_of_date(as_of, settings, now)
    if export is not None and export.suffix.lower() not in (".csv", ".jsonl"):
        raise InputError(f"--export {export}: expected a .csv or .jsonl file")
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(_Export(export)) if export is not None else None
        result = make_plan(
            common.database(ctx),
            settings,
            day,
            dry_run=dry_run,
            now=now,
            keep_candidates=False,
            on_rows=sink,
        )
    for warning in result.warnings:
        common.err.print(f"warning: {warning}", markup=False)
    for name, why in result.lint_templates.items():
        common.err.print(
            f"error: template {name} fails the lint and was not used (its messages were "
            f"suppressed): {why}",
            markup=False,
        )
    if result.lint_texts:
        common.err.print(
            f"error: {result.lint_texts:,} rendered text(s) failed the lint (banned or too long "
            "once the data was in) and were suppressed; see the export's reasons",
            markup=False,
        )
    if sink is not None:
        common.err.print(f"exported {sink.rows:,} candidates to {export}", markup=False)
    if json_out:
        common.print_json(result.summary_json(dry_run))
    else:
        _print_summary(result, dry_run)
    if result.lint_templates or result.lint_texts:
        raise LintBlocked(
            "the plan held back messages that failed the lint (see above); fix the templates "
            "or the data, then plan again"
        )


class _Export:
    """Candidates written to a .csv or .jsonl file part by part, as the plan decides them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        self.rows = 0

    def __enter__(self) -> _Export:
        self.file = self.path.open("wb")
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def __call__(self, candidates: pl.DataFrame) -> None:
        frame = candidates.select([c for c in EXPORT_COLUMNS if c in candidates.columns]).rename(
            {"external_id": "loan"}
        )
        if self.csv:
            common.spreadsheet_safe(frame).write_csv(self.file, include_header=self.rows == 0)
        else:
            frame.write_ndjson(self.file)
        self.rows += frame.height


def _print_summary(result: PlanResult, dry_run: bool) -> None:
    table = Table(
        title=f"Plan for {result.as_of}" + (" (dry run: nothing written)" if dry_run else ""),
        title_justify="left",
    )
    columns = [
        "step",
        "variant",
        "template",
        "candidates",
        "control",
        "suppressed",
        "to_send",
        "already_planned",
        "segments",
        "billing_units",
        "estimated_cost",
    ]
    for name in columns:
        table.add_column(name, justify="left" if name in ("step", "template") else "right")
    for row in result.summary.iter_rows(named=True):
        table.add_row(*(str(row[c]) for c in columns))
    common.out.print(table)
    reasons = result.reasons
    if reasons.height:
        why = Table(title="Not sent, by reason", title_justify="left")
        for name in ("step", "rule", "count"):
            why.add_column(name)
        for values in reasons.iter_rows():
            why.add_row(*(str(v) for v in values))
        common.out.print(why)
    if not dry_run:
        common.out.print(f"outbox: {result.written:,} new rows")


def explain(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    as_of: str | None = common.AsOfOption,
    at: str | None = common.AtOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Why a borrower gets a message on a day, or not: every step against every open loan, the
    step chosen, each policy rule applied, and the text. Runs the plan's own engine."""
    from cuikuan.services.explanation import explain as explain_customer

    settings = common.settings_from(ctx)
    now = common.moment(at)
    day = common.as_of_date(as_of, settings, now)
    found = explain_customer(common.database(ctx), settings, customer, day, now)
    if json_out:
        common.print_json(found.as_json())
        return
    _print_explain(customer, day.isoformat(), found.loans, found.decision)


def _print_explain(
    customer: str, day: str, loans: list[dict[str, object]], decision: dict[str, object] | None
) -> None:
    common.out.print(f"{customer} on {day}", markup=False)
    if not loans:
        common.out.print("no open loan: nothing to remind about")
    for loan in loans:
        common.out.print(
            f"loan {loan['loan']}: DPD {loan['dpd']}, days to due {loan['days_to_due']}, bucket {loan['bucket']}"
            + (" (stopped: left to people)" if loan["stopped"] else ""),
            markup=False,
        )
        for step in loan["steps"]:  # type: ignore[attr-defined]
            mark = "✓" if step["matched"] else "·"
            common.out.print(
                f"  {mark} {step['step']}" + ("" if step["matched"] else f": {step['why_not']}"),
                markup=False,
            )
    if decision is None:
        common.out.print("decision: no step matches, no message")
        return
    for line in json.loads(str(decision["trail"])):
        common.out.print(f"- {line}", markup=False)
    common.out.print(
        f"decision: {decision['status']}"
        + (f" ({decision['reason']})" if decision["reason"] else ""),
        markup=False,
    )
    if decision.get("text"):
        common.out.print(f"text: {decision['text']}", markup=False)
