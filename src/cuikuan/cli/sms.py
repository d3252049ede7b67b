"""`cuikuan sms measure`: encoding, length, segments and Chinese billing units of any text."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.domain.sms import measure as measure_text
from cuikuan.errors import InputError

app = typer.Typer(
    rich_markup_mode=None, help="SMS facts: length, encoding, segments, cost.", no_args_is_help=True
)


@app.command("measure")
def measure(
    text: str | None = typer.Argument(None, help="The message body (omit with --jsonl)."),
    signature: str = typer.Option(
        "", "--signature", "-s", help="Signature sent before the body, e.g. 【富勤金融】."
    ),
    json_out: bool = common.JsonOption,
    parts: bool = typer.Option(False, "--parts", help="Also show the parts as they would be sent."),
    jsonl: bool = typer.Option(
        False,
        "--jsonl",
        help='Read {"text": ..., "signature": ...} per line from stdin; print one result per line.',
    ),
) -> None:
    """Measure a text as an SMS: GSM-7 or UCS-2, septets or UTF-16 units, segments, the parts
    (never splitting an escape or surrogate pair) and Chinese carrier billing units of
    signature + body (≤ 70 characters is 1, else ceil(n/67))."""
    if jsonl:
        _measure_lines(parts)
        return
    if text is None:
        raise InputError("give a TEXT to measure, or --jsonl to read many from standard input")
    result = measure_text(text, signature)
    if json_out:
        common.out.print(
            json.dumps(result.as_dict(with_parts=parts), ensure_ascii=False), markup=False
        )
        return
    table = Table(show_header=False)
    for key, value in result.as_dict().items():
        table.add_row(key, str(value))
    common.out.print(table)
    if parts:
        for i, part in enumerate(result.parts, start=1):
            common.out.print(f"part {i}: {part}", markup=False)


def _measure_lines(with_parts: bool) -> None:
    for item in common.json_lines("text", ("signature",)):
        result = measure_text(item["text"], item["signature"])
        sys.stdout.write(
            json.dumps(result.as_dict(with_parts=with_parts), ensure_ascii=False) + "\n"
        )
