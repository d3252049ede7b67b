"""`cuikuan users`: the people who use the console (`cuikuan serve`, under /console)."""

from __future__ import annotations

import os
import sys

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.errors import InputError
from cuikuan.services import users

app = typer.Typer(
    rich_markup_mode=None,
    help="Console users: add (agent, supervisor, compliance or admin), list, set a role and team, "
    "disable, enable, reset a password.",
    no_args_is_help=True,
)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The name they log in with."),
    role: str = typer.Option(
        ...,
        "--role",
        help="agent (their own and unassigned tasks, numbers masked), supervisor (the team's "
        "work, assigns it), compliance (templates, wording, policy; approves), admin (all).",
    ),
    team: str | None = typer.Option(None, "--team", help="The team an agent works in."),
    password_env: str | None = typer.Option(
        None,
        "--password-env",
        help="Read the password from this environment variable (scripts); otherwise it is "
        "asked for, twice, or read from standard input when that is not a terminal.",
    ),
) -> None:
    """Add a user. The password (at least 10 characters) is kept only as an argon2 hash."""
    password = _password(password_env)
    user = users.add_user(common.database(ctx), name, role, password, common.clock(), team)
    common.err.print(f"user {user.name!r} added as {user.role}", markup=False)


def _password(env: str | None) -> str:
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise InputError(f"--password-env {env}: the variable is not set")
        return value
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("password", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        raise InputError("the two passwords differ")
    return str(first)


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """Users by name: role, team, disabled, locked until (never a password)."""
    rows = users.list_users(common.database(ctx))
    if json_out:
        common.print_json(rows)
        return
    table = Table()
    for column in ("name", "role", "team", "disabled", "locked_until"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            *(
                str(r[c]) if r[c] is not None else ""
                for c in ("name", "role", "team", "disabled", "locked_until")
            )
        )
    common.out.print(table)


@app.command("disable")
def disable(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """No more logins for this user; their open sessions end now."""
    users.disable(common.database(ctx), name, common.clock(), by="cli")
    common.err.print(f"user {name!r} disabled; their sessions ended", markup=False)


@app.command("enable")
def enable(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Logins again for a disabled or locked-out user."""
    users.enable(common.database(ctx), name, common.clock(), by="cli")
    common.err.print(f"user {name!r} enabled", markup=False)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help="agent, supervisor, compliance or admin."),
    team: str | None = typer.Option(None, "--team", help="Their team (none if left out)."),
) -> None:
    """A user's role and team. A changed role ends their sessions: they log in again under it."""
    users.change(common.database(ctx), name, role, team, common.clock(), by="cli")
    common.err.print(f"user {name!r} is now {role}" + (f" in {team}" if team else ""),
                     markup=False)  # fmt: skip


@app.command("password")
def password(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    password_env: str | None = typer.Option(
        None, "--password-env", help="Read the new password from this environment variable."
    ),
) -> None:
    """A new password for a user (asked twice, or from standard input); their sessions end."""
    users.set_password(common.database(ctx), name, _password(password_env), common.clock(), "cli")
    common.err.print(f"user {name!r} has a new password; their sessions ended", markup=False)
