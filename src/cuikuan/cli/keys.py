"""`cuikuan keys`: API keys for the systems that call `cuikuan serve`."""

from __future__ import annotations

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.services import api_keys

app = typer.Typer(
    rich_markup_mode=None,
    help="API keys for `cuikuan serve`: create (the secret is shown once), list, revoke.",
    no_args_is_help=True,
)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Who uses it, e.g. core-banking."),
    scopes: str = typer.Option(
        ...,
        "--scopes",
        help="Comma-separated: read (every GET), ingest (ledger batches and files), operate "
        "(replies, opt-outs, flags, tasks, messages, templates), admin (all, and the audit log).",
    ),
    rate: int = typer.Option(
        api_keys.DEFAULT_RATE, "--rate", min=1, help="Requests a minute this key may make."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Make a key. Its secret is printed once and only a hash of it is kept: store it now."""
    made = api_keys.create_key(
        common.database(ctx), name, api_keys.parse_scopes(scopes), common.clock(), rate
    )
    if json_out:
        common.print_json({"name": name, "scopes": sorted(made.key.scopes), "token": made.token})
        return
    common.out.print(made.token)
    common.err.print(
        f"key {name!r} ({', '.join(sorted(made.key.scopes))}): send it as "
        "'Authorization: Bearer <token>'. It is not shown again.",
        markup=False,
    )


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """Keys by name, with their scopes and whether they were revoked (never the secrets)."""
    keys = api_keys.list_keys(common.database(ctx))
    if json_out:
        common.print_json(keys)
        return
    table = Table()
    for column in ("name", "prefix", "scopes", "rate/min", "created (UTC)", "revoked (UTC)"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            str(k["name"]), str(k["prefix"]), str(k["scopes"]), str(k["rate_per_minute"]),
            f"{k['created_at']:%Y-%m-%d %H:%M}",
            f"{k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "",
        )  # fmt: skip
    common.out.print(table)


@app.command("revoke")
def revoke(ctx: typer.Context, name: str = typer.Argument(..., help="The key's name.")) -> None:
    """Revoke a key: its next request gets 401."""
    from cuikuan.errors import NotFound

    if not api_keys.revoke(common.database(ctx), name, common.clock()):
        raise NotFound(f"no active key named {name!r}")
    common.out.print(f"revoked {name}")
