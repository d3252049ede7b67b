"""`cuikuan templates check|preview`: lint message templates, and see one rendered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.errors import CuikuanError, InputError
from cuikuan.services import messages

app = typer.Typer(
    rich_markup_mode=None,
    help="Message templates: lint them, preview them; change them with four eyes (propose, approve).",
    no_args_is_help=True,
)


class LintFailed(CuikuanError):
    exit_code = 1


@app.command("check")
def check(
    ctx: typer.Context,
    jsonl: bool = typer.Option(
        False,
        "--jsonl",
        help='Lint bare texts instead: {"text": ..., "locale": ...} per line on stdin.',
    ),
    pack: str | None = typer.Option(
        None, "--pack", help="Jurisdiction pack for --jsonl: cn, us or eu (default: the settings')."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Lint every template: syntax, unknown fields, unsafe access, empty output, banned wording
    (threats, insults, impersonation, blacklists, exaggeration, new borrowing, third parties,
    invented fees), the parts the jurisdiction requires, and length. Each finding prints as
    file:line: rule: message; the exit code is 1 when any is an error."""
    settings = common.settings_or_default(ctx)
    if pack not in (None, "cn", "us", "eu"):
        raise InputError(f"--pack {pack!r}: expected cn, us or eu")
    if jsonl:
        _check_lines(settings, pack)
        return
    findings = messages.check_templates(settings)
    if json_out:
        common.print_json([f.__dict__ for f in findings])
    else:
        for f in findings:
            common.out.print(f.render(), markup=False)
        errors = sum(f.severity == "error" for f in findings)
        folder = messages.templates_dir(settings)
        common.err.print(
            f"{folder}: {errors} errors, {len(findings) - errors} warnings", markup=False
        )
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


def _check_lines(settings: object, pack: str | None) -> None:
    from cuikuan.settings import Settings

    assert settings is None or isinstance(settings, Settings)
    for item in common.json_lines("text", ("locale",)):
        found = messages.lint_bare_text(item["text"], settings, pack)
        errors = [f for f in found if f.severity == "error"]
        sys.stdout.write(
            json.dumps(
                {"ok": not errors, "findings": [f.as_dict() for f in found]}, ensure_ascii=False
            )
            + "\n"
        )


@app.command("preview")
def preview(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Template name, e.g. due_today."),
    customer: str | None = typer.Option(
        None, "--customer", help="Render for this customer (external id) instead of a sample."
    ),
    as_of: str | None = common.AsOfOption,
    locale: str | None = typer.Option(
        None, "--locale", help="zh-CN, en, ... (default: the customer's, else the settings')."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Render a template for a sample or a real customer; show the text, its encoding, segments
    and Chinese billing units (tips included when they fit)."""
    settings = common.settings_or_default(ctx)
    engine = common.database(ctx) if customer else None
    day = common.as_of_date(as_of, settings)
    result = messages.preview_template(
        settings, name, engine=engine, customer=customer, as_of=day, locale=locale
    )
    if json_out:
        common.print_json(
            {
                "template": result.template.name,
                "locale": result.template.locale,
                "text": result.text,
                **result.measurement.as_dict(),
            }
        )
        return
    common.out.print(result.text, markup=False)
    table = Table(show_header=False)
    for key, value in result.measurement.as_dict().items():
        table.add_row(key, str(value))
    common.out.print(table)


@app.command("paused")
def paused(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """Templates the guardrail paused (too many opt-outs or complaints after them), and why."""
    from cuikuan.services.guardrail import paused_templates

    found = paused_templates(common.database(ctx))
    if json_out:
        common.print_json(found)
        return
    for name, reason in sorted(found.items()):
        common.out.print(f"{name}: {reason}", markup=False)
    if not found:
        common.out.print("no template is paused")


@app.command("resume")
def resume(
    ctx: typer.Context, name: str = typer.Argument(..., help="The template to send again.")
) -> None:
    """Resume a template the guardrail paused (after fixing its wording)."""
    from cuikuan.errors import NotFound
    from cuikuan.services.guardrail import resume as do_resume

    if not do_resume(common.database(ctx), name):
        raise NotFound(f"template {name!r} is not paused")
    common.out.print(f"{name} resumed", markup=False)


# --- four eyes: drafts, approval, versions (services/versions.py) ---------------------------


@app.command("propose")
def propose(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="The new text of a template file (its name is the template's)."
    ),
    by: str = typer.Option(
        ..., "--by", help="A console user with the compliance or supervisor role."
    ),
    note: str = typer.Option("", "--note", help="Why."),
    at: str | None = common.AtOption,
) -> None:
    """Propose a change to a template as a draft. Checked as `templates check` checks the file;
    the plan keeps using the current text until another compliance user approves it."""
    from cuikuan.services import users, versions

    engine = common.database(ctx)
    actor = users.require_role(engine, by, "compliance", "supervisor")
    source = file.read_text("utf-8-sig")
    draft = versions.propose_template(engine, common.settings_from(ctx), file.name, source, actor,
                                      common.moment(at), note)  # fmt: skip
    common.out.print(f"draft {draft} of {file.name}: waiting for approval", markup=False)


@app.command("approve")
def approve_(
    ctx: typer.Context,
    version_id: int = typer.Argument(
        ..., help="The draft's number (templates versions, strategy versions)."
    ),
    by: str = typer.Option(..., "--by", help="A compliance user who is not the draft's author."),
    at: str | None = common.AtOption,
) -> None:
    """Approve a draft: it becomes the file the plan uses (the template, or the strategy), and
    is audited. `strategy approve` is this command."""
    from cuikuan.services import users, versions

    engine = common.database(ctx)
    actor = users.require_role(engine, by, "compliance")
    written = versions.approve(
        engine, common.settings_from(ctx), version_id, actor, common.moment(at)
    )
    common.out.print(f"version {version_id} approved: {written}", markup=False)


@app.command("reject")
def reject_(
    ctx: typer.Context,
    version_id: int = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="A compliance user."),
    note: str = typer.Option("", "--note", help="Why."),
    at: str | None = common.AtOption,
) -> None:
    """Reject a draft (it stays in the history)."""
    from cuikuan.services import users, versions

    engine = common.database(ctx)
    versions.reject(
        engine, version_id, users.require_role(engine, by, "compliance"), common.moment(at), note
    )
    common.out.print(f"version {version_id} rejected", markup=False)


@app.command("versions")
def versions_(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="One template file (default: all)."),
    state: str | None = typer.Option(
        None, "--state", help="draft, approved, rejected or superseded."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Every version of the templates changed through drafts, newest first."""
    from cuikuan.services import versions

    found = versions.versions(common.database(ctx), name, state)
    if json_out:
        common.print_json([v.as_dict() for v in found])
        return
    table = Table()
    for column in ("#", "template", "state", "author", "created (UTC)", "decided by", "note"):
        table.add_column(column)
    for v in found:
        table.add_row(str(v.id), v.name, v.state, v.author, f"{v.created_at:%Y-%m-%d %H:%M}",
                      v.decided_by or "-", v.note)  # fmt: skip
    common.out.print(table)


@app.command("restore")
def restore_(
    ctx: typer.Context,
    version_id: int = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="A compliance or supervisor user."),
    at: str | None = common.AtOption,
) -> None:
    """An earlier version's text as a new draft (approved like any other)."""
    from cuikuan.services import users, versions

    engine = common.database(ctx)
    actor = users.require_role(engine, by, "compliance", "supervisor")
    draft = versions.restore(
        engine, common.settings_from(ctx), version_id, actor, common.moment(at)
    )
    common.out.print(f"draft {draft}: restores version {version_id}", markup=False)
