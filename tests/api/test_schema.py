"""Schemathesis, from the OpenAPI document, against the real server on SQLite and PostgreSQL:
no 5xx for any generated request, every answer as documented (status, media type, schema), and
auth held on every route."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cuikuan.api.app import create_app
from cuikuan.settings import Settings, default_settings_text
from tests.api.conftest import NOW, Served, serve
from tests.conftest import _postgres_schema_url
from tests.integration.conftest import build_book

DEFAULTS = Settings.model_validate(tomllib.loads(default_settings_text()))
schema = schemathesis.openapi.from_dict(create_app(None, DEFAULTS, lambda: NOW).openapi())
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance)  # fmt: skip


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"api-{uuid.uuid4().hex[:6]}")
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{folder / 'cuikuan.db'}"])
    else:
        urls = _postgres_schema_url()
    url = next(urls)
    settings_, engine = build_book(Path(folder), url, 60, 3)
    yield from serve(engine, settings_)
    engine.dispose()
    for _ in urls:  # drop the PostgreSQL schema
        pass


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_documented(case: schemathesis.Case, live: Served) -> None:
    response = case.call(
        base_url=live.url, headers={"Authorization": f"Bearer {live.tokens['all']}"}
    )
    case.validate_response(response, checks=CHECKS)
