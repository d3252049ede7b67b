"""The app as uvicorn's worker processes build it: from the settings file `serve` named.

The clock is the command line's (cli.common.clock): below the edges nothing reads it."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from fastapi import FastAPI

from cuikuan.api.app import create_app
from cuikuan.cli.common import clock
from cuikuan.errors import CuikuanError
from cuikuan.settings import Settings


def app_from_environment() -> FastAPI:
    from cuikuan.settings import SettingsWatch, find_settings_file, load_settings
    from cuikuan.store.engine import open_database

    config = os.environ.get("CUIKUAN_SERVE_CONFIG") or None
    settings = load_settings(find_settings_file(Path(config) if config else None))
    engine = open_database(settings.database_url)
    # The templates' lint, which the plan (and so explain) applies, made once in each server
    # process as it starts, in the background: the first explain then does not pay it.
    threading.Thread(target=_warm_lint, args=(settings,), daemon=True).start()
    # The clock the command line reads (cli.common.clock): `serve` is an edge like it.
    # The settings file read again when it changes: a policy approved in the console governs
    # every page and call after it, in every server process, without a restart.
    return create_app(engine, settings, clock, os.environ.get("CUIKUAN_SERVE_PUBLIC_URL", ""),
                      SettingsWatch(settings))  # fmt: skip


def _warm_lint(settings: Settings) -> None:
    from cuikuan.services.messages import lint_state

    # A broken template or wording file is reported where it is used, not here.
    with contextlib.suppress(CuikuanError, OSError):
        lint_state(settings)
