"""`cuikuan init`: a commented settings file and a database, ready to import into."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cuikuan.cli import common
from cuikuan.errors import ConfigError
from cuikuan.settings import CONFIG_NAME, default_settings_text, load_settings
from cuikuan.store.engine import open_database


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    directory: Path = typer.Argument(
        Path("."), help="Folder for cuikuan.toml and the database (created if missing)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing cuikuan.toml."),
) -> None:
    """Write a commented settings file and create (or upgrade) its database.

    Edit the lender's name, signature and contact channels in the file before sending anything.
    Every value can be overridden by CUIKUAN_<SECTION>__<KEY> environment variables.
    """
    # The folder holds the book (names, numbers, debts): only its owner may enter it.
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
    path = directory / CONFIG_NAME
    if path.exists() and not force:
        common.out.print(f"{path} exists; keeping it (use --force to overwrite)")
    else:
        _private(path).write_text(default_settings_text(), encoding="utf-8")
        common.out.print(f"wrote {path}")
    settings = load_settings(path)
    if settings.source is None:  # pragma: no cover - load_settings always sets it
        raise ConfigError(f"{path}: could not be read back")
    _copy_starter_templates(settings.path(settings.templates.dir))
    strategy = settings.path(settings.plan.strategy)
    if not strategy.exists():
        from cuikuan.services.strategy_file import shipped_strategy_text

        strategy.write_text(shipped_strategy_text(), encoding="utf-8")
        common.out.print(f"wrote {strategy}")
    open_database(settings.database_url).dispose()
    common.out.print(f"database ready: {settings.database_url}")


def _private(path: Path) -> Path:
    """`path`, created empty and readable by its owner only (0600) if it is not there yet."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    return path


def _copy_starter_templates(folder: Path) -> None:
    """The shipped templates, copied for the lender to edit; existing files are kept."""
    from cuikuan.services.messages import shipped_templates_dir

    folder.mkdir(parents=True, exist_ok=True)
    copied = 0
    for source in sorted(shipped_templates_dir().glob("*.txt")):
        target = folder / source.name
        if not target.exists():
            target.write_text(source.read_text("utf-8"), encoding="utf-8")
            copied += 1
    common.out.print(f"templates in {folder} ({copied} starter templates copied)")
