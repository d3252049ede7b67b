"""`cuikuan`: the collections team's day as commands. Run `cuikuan --help`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from rich.text import Text

from cuikuan import __version__
from cuikuan.cli import (
    arrangements,
    common,
    ledger,
    listen,
    outbox,
    plan,
    replies,
    report,
    send,
    setup,
    sim,
    sms,
    smsc,
    tasks,
    templates,
)
from cuikuan.errors import CuikuanError

app = typer.Typer(
    name="cuikuan",
    help=(
        "催款 cuikuan: repayment reminders and collections messaging.\n\n"
        "A day with cuikuan: `import` the ledger and the payments, look at the `portfolio`, "
        "`plan` the day, `send` (or keep `send --every 60` running), `listen` for receipts and "
        "replies, work the `tasks`, and read the `report`. Start with `cuikuan init` in an empty "
        "folder; `make demo` shows a simulated month."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        common.out.print(f"cuikuan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path | None = common.ConfigOption,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    ctx.ensure_object(dict)["config"] = config


setup.register(app)
ledger.register(app)
plan.register(app)
send.register(app)
replies.register(app)
listen.register(app)
smsc.register(app)
report.register(app)
app.add_typer(outbox.app, name="outbox")
app.add_typer(sim.app, name="sim")
app.add_typer(sms.app, name="sms")
app.add_typer(templates.app, name="templates")
app.add_typer(tasks.app, name="tasks")
app.add_typer(arrangements.app, name="plans")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except CuikuanError as exc:
        common.err.print(Text.assemble(("error: ", "bold red"), exc.message), soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        common.err.print("aborted")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
