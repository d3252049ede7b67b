"""`cuikuan holidays show|import`: the holiday data the plan uses, and adding a year to it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.domain.holidays import Calendar
from cuikuan.errors import InputError
from cuikuan.holiday_file import merge, parse_holiday_text, read_holiday_file, write_holiday_file

app = typer.Typer(
    rich_markup_mode=None,
    help=(
        "Holiday data: what the plan counts as a working day (China's official holidays and "
        "make-up working days; `holidays` elsewhere), and the lender's own file for years the "
        "libraries do not know yet."
    ),
    no_args_is_help=True,
)


def _calendar(ctx: typer.Context) -> tuple[Calendar, str]:
    settings = common.settings_from(ctx)
    contact = settings.contact_policy()
    return contact.calendar, str(settings.holidays_path)


@app.command("show")
def show(
    ctx: typer.Context,
    year: int | None = typer.Option(None, "--year", help="The year (default: this year and next)."),
    at: str | None = common.AtOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Every day off and make-up working day of a year, where the data comes from (the lender's
    file, the library, or none: then `policy.unknown_holidays` decides)."""
    calendar, path = _calendar(ctx)
    this = common.as_of_date(None, common.settings_from(ctx), common.moment(at)).year
    years = [year] if year is not None else [this, this + 1]
    report = [_year(calendar, y) for y in years]
    if json_out:
        common.print_json({"calendar": calendar.name, "file": path, "years": report})
        return
    for item in report:
        table = Table(
            title=f"{calendar.name} {item['year']}: {item['source']}", title_justify="left"
        )
        table.add_column("days off (not weekends)")
        table.add_column("make-up working days")
        off, work = list(item["off"]), list(item["working"])  # type: ignore[call-overload]
        for k in range(max(len(off), len(work))):
            table.add_row(off[k] if k < len(off) else "", work[k] if k < len(work) else "")
        common.out.print(table)
        if item["source"] == "no data":
            common.err.print(
                f"warning: no holiday data for {item['year']}; add it with "
                f"`cuikuan holidays import FILE` (file: {path})",
                markup=False,
            )


def _year(calendar: Calendar, year: int) -> dict[str, object]:
    if year in calendar.years:
        source = "the lender's holiday file"
    elif calendar.has_data(year):
        source = "the library"
    else:
        return {"year": year, "source": "no data", "off": [], "working": []}
    off, working = [], []
    day = date(year, 1, 1)
    while day.year == year:
        works, _ = calendar.working(day)
        weekend = day.weekday() >= 5
        if not works and not weekend:
            off.append(day.isoformat())
        elif works and weekend:
            working.append(day.isoformat())
        day += timedelta(days=1)
    return {"year": year, "source": source, "off": off, "working": working}


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A holiday file (TOML, format: docs/holidays.md)."),
) -> None:
    """Add years of holiday data to the lender's file: each year in FILE replaces the same year
    there (a year is taken whole); the plan prefers the file to the libraries."""
    settings = common.settings_from(ctx)
    try:
        text = file.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: cannot read it: {exc}") from None
    new = parse_holiday_text(text, str(file))
    if not new:
        raise InputError(f"{file}: no years in it; expected tables such as [cn.2027]")
    target = settings.holidays_path
    write_holiday_file(target, merge(read_holiday_file(target), new))
    for name, years in sorted(new.items()):
        for y, days in sorted(years.items()):
            common.out.print(
                f"{name} {y}: {len(days.off)} days off, {len(days.working)} make-up working days "
                f"-> {target}",
                markup=False,
            )
