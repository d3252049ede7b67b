"""What every command shares: settings, database, consoles, dates and money for people."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.text import Text

from cuikuan.domain.dates import parse_date, parse_moment
from cuikuan.errors import ConfigError, InputError

if TYPE_CHECKING:  # imported where used: `cuikuan --version` and `--help` stay cheap
    from sqlalchemy import Engine

    from cuikuan.settings import Settings

# Piped output is read by people too (logs, CI): give tables room instead of 80 columns.
# No markup and no emoji codes: names, replies, reasons and file contents come from outside
# and print as they are ("[/i]" in a reply once made `tasks list` fail, "[link=...]" in a name
# hid a link); Rich drops control characters (escape sequences) from what it prints. Styling is
# given as Text with styles, never as markup in strings.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def literal(text: str) -> str:
    """`text` with its control characters shown as escapes (\\x1b), never acted on by the
    terminal: an escape sequence in a name or a reply could clear the screen or hide a link."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _LiteralConsole(Console):
    """A console that prints every string it is given (table cells too) as `literal` text."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(literal(text), **options)


out = _LiteralConsole(
    highlight=False, markup=False, emoji=False, soft_wrap=True,
    width=None if sys.stdout.isatty() else 160,
)  # fmt: skip
err = _LiteralConsole(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="Settings file (default: $CUIKUAN_CONFIG, else cuikuan.toml here or in a folder above).",
    show_default=False,
)
JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")
AsOfOption = typer.Option(
    None,
    "--as-of",
    help="The day to look at, e.g. 2026-11-29 (default: today in the lender's time zone).",
)


def settings_from(ctx: typer.Context) -> Settings:
    from cuikuan.settings import find_settings_file, load_settings

    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        path: Path | None = obj.get("config")
        obj["settings"] = load_settings(find_settings_file(path))
    settings: Settings = obj["settings"]
    return settings


def settings_or_default(ctx: typer.Context) -> Settings:
    """The user's settings; the shipped defaults when there is no settings file at all
    (so `templates check` and `sms measure` work before `init`)."""
    from cuikuan.settings import Settings

    try:
        return settings_from(ctx)
    except ConfigError as exc:
        if "run `cuikuan init`" not in exc.message:
            raise
    import tomllib

    from cuikuan.settings import default_settings_text

    return Settings.model_validate(tomllib.loads(default_settings_text()))


def database(ctx: typer.Context) -> Engine:
    from cuikuan.store.engine import open_database

    return open_database(settings_from(ctx).database_url)


AtOption = typer.Option(
    None,
    "--at",
    help=(
        "Act and record as if it were this moment (replaying the past, tests): ISO 8601 such as "
        "2026-11-29T10:00+08:00 or 2026-11-29 02:00 (no offset: UTC). Default: the clock."
    ),
    show_default=False,
)


def clock() -> datetime:
    """The wall clock: read here and nowhere below the CLI (every service takes `now`)."""
    return datetime.now(UTC)


def moment(value: str | None, option: str = "--at") -> datetime:
    """The moment an --at / --now option names (UTC), or the clock when it is not given."""
    if value is None:
        return clock()
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise InputError(f"{option} {value!r}: {exc}") from None


def as_of_date(
    value: str | None, settings: Settings, now: datetime | None = None, option: str = "--as-of"
) -> date:
    if value is None:
        from zoneinfo import ZoneInfo

        return (now or clock()).astimezone(ZoneInfo(settings.defaults.timezone)).date()
    try:
        return parse_date(value)
    except ValueError as exc:
        raise InputError(f"{option} {value!r}: {exc}") from None


def money(amount: int, digits: int) -> str:
    from cuikuan.domain.money import format_minor

    return format_minor(amount, digits)


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))


def json_lines(required: str, optional: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """Objects from standard input, one per line, each with a string `required` field (and
    string `optional` ones, "" when absent); InputError names the line of a bad one."""
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get(required), str):
                raise ValueError(f'expected an object with a "{required}" string')
            for name in optional:
                if not isinstance(item.get(name) or "", str):
                    raise ValueError(f'"{name}" must be a string')
        except ValueError as exc:
            raise InputError(f"<stdin>:{number}: {exc}") from None
        yield {required: item[required], **{n: item.get(n) or "" for n in optional}}


# A spreadsheet runs a cell that begins with one of these as a formula (CSV injection).
_FORMULA_START = r"^[=+\-@\t\r]"


def spreadsheet_safe(frame: Any) -> Any:
    """`frame` (a Polars frame) for a CSV a person may open in a spreadsheet: every text cell
    that begins with =, +, -, @, a tab or a carriage return gets a leading apostrophe (as OWASP
    recommends), so that it shows as text and never runs. Numbers are left as they are."""
    import polars as pl

    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )
