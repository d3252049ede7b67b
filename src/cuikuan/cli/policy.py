"""`cuikuan policy`: the contact policy ([policy] in the settings file) with four eyes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.cli.strategy import print_versions
from cuikuan.cli.templates import approve_

app = typer.Typer(
    rich_markup_mode=None,
    help="The contact policy ([policy] in cuikuan.toml): show it, propose a change as a draft, "
    "approve it (someone else), list versions.",
    no_args_is_help=True,
)


@app.command("show")
def show(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """The policy in force: the pack's rules with the settings' values (windows, caps, gap,
    holidays, opt-out wording), and the [policy] table as it stands in the file."""
    from cuikuan.services.policy_file import effective_policy, policy_section

    settings = common.settings_from(ctx)
    rules = effective_policy(settings)
    if json_out:
        common.print_json({"rules": rules, "section": policy_section(settings)})
        return
    table = Table("rule", "value")
    for key, value in rules.items():
        table.add_row(key, str(value))
    common.out.print(table)
    common.out.print(policy_section(settings), markup=False, highlight=False)


@app.command("propose")
def propose(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ...,
        help="The new [policy] table (TOML, header included; `policy show` prints the current).",
    ),
    by: str = typer.Option(..., "--by", help="A console user with the compliance role."),
    note: str = typer.Option("", "--note", help="Why."),
    at: str | None = common.AtOption,
) -> None:
    """Propose a new contact policy as a draft, checked as loading the settings checks it (line
    and field for anything wrong); the settings file keeps the current one until another
    compliance user approves. Processes started after the approval use it."""
    from cuikuan.services import users, versions

    engine = common.database(ctx)
    actor = users.require_role(engine, by, "compliance")
    draft = versions.propose_policy(engine, common.settings_from(ctx), file.read_text("utf-8-sig"),
                                    actor, common.moment(at), note)  # fmt: skip
    common.out.print(f"draft {draft} of the policy: waiting for approval", markup=False)


# A draft's number says what it is: the one approval command, under every group.
app.command("approve")(approve_)


@app.command("versions")
def versions_(
    ctx: typer.Context,
    state: str | None = typer.Option(
        None, "--state", help="draft, approved, rejected or superseded."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Every version of the policy changed through drafts, newest first (`templates reject`
    and `templates restore` take these numbers too)."""
    from cuikuan.services import versions

    found = versions.versions(common.database(ctx), state=state, kind=versions.POLICY)
    print_versions(found, json_out)
