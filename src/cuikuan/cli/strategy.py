"""`cuikuan strategy`: change the strategy with four eyes (propose, approve, versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.cli.templates import approve_

app = typer.Typer(
    rich_markup_mode=None,
    help="The strategy file: propose a change as a draft, approve it (someone else), list versions.",
    no_args_is_help=True,
)


@app.command("propose")
def propose(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The new strategy (TOML, as strategy.toml)."),
    by: str = typer.Option(
        ..., "--by", help="A console user with the compliance or supervisor role."
    ),
    note: str = typer.Option("", "--note", help="Why."),
    at: str | None = common.AtOption,
) -> None:
    """Propose a new strategy as a draft, checked as the plan loads it (file, line and field for
    anything wrong); the plan keeps the current one until another compliance user approves."""
    from cuikuan.services import users, versions

    engine = common.database(ctx)
    actor = users.require_role(engine, by, "compliance", "supervisor")
    draft = versions.propose_strategy(engine, common.settings_from(ctx), file.read_text("utf-8-sig"),
                                      actor, common.moment(at), note)  # fmt: skip
    common.out.print(f"draft {draft} of the strategy: waiting for approval", markup=False)


# A draft's number says what it is: the one approval command, under both groups.
app.command("approve")(approve_)


@app.command("versions")
def versions_(
    ctx: typer.Context,
    state: str | None = typer.Option(
        None, "--state", help="draft, approved, rejected or superseded."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Every version of the strategy changed through drafts, newest first (`templates reject`
    and `templates restore` take these numbers too)."""
    from cuikuan.services import versions

    found = versions.versions(common.database(ctx), state=state, kind=versions.STRATEGY)
    print_versions(found, json_out)


def print_versions(found: list[Any], json_out: bool) -> None:
    """Versions (services.versions.Version) as a table, or JSON for scripts."""
    if json_out:
        common.print_json([v.as_dict() for v in found])
        return
    table = Table()
    for column in ("#", "state", "author", "created (UTC)", "decided by", "note"):
        table.add_column(column)
    for v in found:
        table.add_row(str(v.id), v.state, v.author, f"{v.created_at:%Y-%m-%d %H:%M}",
                      v.decided_by or "-", v.note)  # fmt: skip
    common.out.print(table)
