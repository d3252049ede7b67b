"""Shared fixtures: a database URL for each backend the integration tests run on.

PostgreSQL is the one at $CUIKUAN_TEST_POSTGRES (default 127.0.0.1:5432, database `test`, trust
auth). Each test gets its own schema, dropped afterwards. Where the server is not reachable the
PostgreSQL cases skip with the reason; with CI=true they fail instead, so CI cannot go green
without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

# Polars warms up on its first call and this VM's two cores are shared with the xdist workers:
# timing deadlines would fail examples for slowness, not for being wrong.
hypothesis_settings.register_profile("cuikuan", deadline=None)
hypothesis_settings.load_profile("cuikuan")

PG_URL = os.environ.get(
    "CUIKUAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@cache
def postgres_problem() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
    return None


def _postgres_schema_url() -> Iterator[str]:
    problem = postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cuikuan.db'}"
    else:
        yield from _postgres_schema_url()
