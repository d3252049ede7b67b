"""The app as uvicorn's worker processes build it: from the settings file `serve` named.

The clock is read here, at the edge: below this nothing reads the wall clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from cuikuan.api.app import create_app


def app_from_environment() -> FastAPI:
    from cuikuan.settings import find_settings_file, load_settings
    from cuikuan.store.engine import open_database

    config = os.environ.get("CUIKUAN_SERVE_CONFIG") or None
    settings = load_settings(find_settings_file(Path(config) if config else None))
    engine = open_database(settings.database_url)
    return create_app(
        engine, settings, lambda: datetime.now(UTC), os.environ.get("CUIKUAN_SERVE_PUBLIC_URL", "")
    )
