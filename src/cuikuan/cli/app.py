"""`cuikuan`: the collections team's day as commands. Run `cuikuan --help`."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import typer
from rich.text import Text

from cuikuan import __version__
from cuikuan.cli import common
from cuikuan.errors import CuikuanError, StoreError

# Which module holds each command. Only the one a command line names is imported: importing every
# command's services costs every command about a fifth of a second at start.
COMMANDS = {
    "init": "setup",
    "import": "ledger",
    "portfolio": "ledger",
    "account": "ledger",
    "plan": "plan",
    "explain": "plan",
    "send": "send",
    "reply": "replies",
    "timeline": "replies",
    "listen": "listen",
    "smsc": "smsc",
    "smsc-mo": "smsc",
    "report": "report",
    "serve": "serve",
    "worker": "worker",
}
# Command groups: name -> module whose `app` holds the group's commands.
GROUPS = {
    "outbox": "outbox",
    "sim": "sim",
    "sms": "sms",
    "templates": "templates",
    "tasks": "tasks",
    "plans": "arrangements",
    "holidays": "holidays",
    "keys": "keys",
    "webhooks": "webhooks",
    "users": "users",
    "calls": "calls",
    "strategy": "strategy",
    "policy": "policy",
}

HELP = (
    "催款 cuikuan: repayment reminders and collections messaging.\n\n"
    "A day with cuikuan: `import` the ledger and the payments, look at the `portfolio`, "
    "`plan` the day, `send` (or keep `send --every 60` running), `listen` for receipts and "
    "replies, work the `tasks`, and read the `report`; or let `cuikuan worker` run the day and "
    "`cuikuan serve` answer the lender's systems. Start with `cuikuan init` in an empty "
    "folder; `make demo` shows a simulated month."
)


def _version(value: bool) -> None:
    if value:
        common.out.print(f"cuikuan {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    config: Path | None = common.ConfigOption,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    ctx.ensure_object(dict)["config"] = config


def build(command: str | None = None) -> typer.Typer:
    """The CLI with every command, or with only `command`'s module when it names one."""
    app = typer.Typer(
        name="cuikuan",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Help texts name settings sections ("[channels]", "[smpp]"): not markup.
        rich_markup_mode=None,
    )
    app.callback()(_root)
    modules = list(dict.fromkeys(COMMANDS.values()))
    groups = GROUPS
    if command in COMMANDS:
        modules, groups = [COMMANDS[command]], {}
    elif command in GROUPS:
        modules, groups = [], {command: GROUPS[command]}
    for module in modules:
        importlib.import_module(f"cuikuan.cli.{module}").register(app)
    for name, module in groups.items():
        app.add_typer(importlib.import_module(f"cuikuan.cli.{module}").app, name=name)
    return app


def command_named(args: list[str]) -> str | None:
    """The command an argument list names: its first word that is neither an option nor the
    value of --config."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def database_fault(exc: BaseException) -> str | None:
    """One line for a database that failed under a command (lost, read-only, full, locked), or
    None for anything else. Never the statement or its parameters: they hold borrowers' numbers
    and messages; digit runs in the driver's own words are masked too."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return None
    said = (
        str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    )
    said = re.sub(r"\d{5,}", lambda m: m.group()[:2] + "*" * (len(m.group()) - 2), said)
    return (
        f"the database failed ({type(exc.orig).__name__}: {said}); what was committed stays, "
        "and running the command again does the rest"
    )


def _logging() -> None:
    """The standard logging to stderr, one line per event as key=value pairs after the message;
    the level from CUIKUAN_LOG_LEVEL (default WARNING: a terminal stays quiet). Log lines name
    counts, ids and providers, never a number or a message text (phones are masked)."""
    import logging
    import os

    level = os.environ.get("CUIKUAN_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(
        level=logging.WARNING,  # the libraries' own (alembic's INFO is noise to an operator)
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("cuikuan").setLevel(getattr(logging, level, logging.WARNING))


def main() -> None:
    _logging()
    command = command_named(sys.argv[1:])
    if command is None and "--version" in sys.argv[1:]:
        # Before building the commands: their imports are most of a second.
        common.out.print(f"cuikuan {__version__}")
        sys.exit(0)
    try:
        code = build(command)(standalone_mode=False)
    except CuikuanError as exc:
        common.err.print(Text.assemble(("error: ", "bold red"), exc.message), soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        common.err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:
        # Usage errors (an unknown command, a missing argument): click's own message and hint.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            common.err.print(exc.format_message())
        sys.exit(exc.exit_code)
    except Exception as exc:
        problem = database_fault(exc)
        if problem is None:
            raise  # a bug: keep its traceback
        common.err.print(Text.assemble(("error: ", "bold red"), problem), soft_wrap=True)
        sys.exit(StoreError.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
