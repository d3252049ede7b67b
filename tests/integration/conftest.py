"""Fixtures for the plan and send tests: a generated book on each database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cuikuan.services.importer import import_file
from cuikuan.settings import Settings, default_settings_text, load_settings
from cuikuan.sim.generator import GenerateOptions, generate
from cuikuan.store.engine import open_database
from tests.helpers import RULES

DAY = date(2026, 11, 30)  # a Monday


def build_book(tmp_path: Path, db_url: str, accounts: int, seed: int) -> tuple[Settings, Engine]:
    """Settings pointing at `db_url` and a generated ledger of `accounts` imported into it."""
    (tmp_path / "cuikuan.toml").write_text(
        default_settings_text().replace('url = "sqlite:///cuikuan.db"', f'url = "{db_url}"'),
        encoding="utf-8",
    )
    settings = load_settings(tmp_path / "cuikuan.toml", environ={})
    engine = open_database(settings.database_url)
    ledger = tmp_path / "ledger.csv"
    generate(GenerateOptions(accounts, seed, DAY, ledger))
    import_file(engine, ledger, RULES)
    return settings, engine


@pytest.fixture
def book(tmp_path: Path, db_url: str) -> tuple[Settings, Engine]:
    return build_book(tmp_path, db_url, 400, 11)
