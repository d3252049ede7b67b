"""A real `serve` app on uvicorn, on a free loopback port, over a generated book on each
database; keys for each scope."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from cuikuan.api.app import create_app
from cuikuan.services.api_keys import create_key
from cuikuan.settings import Settings
from tests.integration.conftest import build_book

NOW = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai, a Monday


@dataclass
class Served:
    url: str
    engine: Engine
    settings: Settings
    tokens: dict[str, str]  # scope name -> token ("all" holds admin)

    def client(self, scope: str = "all", **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(engine: Engine, settings: Settings, rate: int = 100_000) -> Iterator[Served]:
    tokens = {
        name: create_key(engine, f"test-{name}", frozenset(scopes), NOW, rate).token
        for name, scopes in {
            "read": {"read"}, "ingest": {"ingest"}, "operate": {"operate"}, "all": {"admin"},
        }.items()
    }  # fmt: skip
    app = create_app(engine, settings, lambda: NOW, "https://lender.example")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", engine, settings, tokens)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[Served]:
    settings, engine = build_book(tmp_path, db_url, 120, 5)
    yield from serve(engine, settings)
    engine.dispose()


def first_number(served: Served, customer: str) -> str:
    """The customer's first phone number, from the book."""
    from sqlalchemy import text

    with served.engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT p.e164 FROM customer_phones p JOIN customers c ON c.id = p.customer_id "
                     "WHERE c.external_id = :c ORDER BY p.position LIMIT 1"), {"c": customer}
            ).scalar_one()
        )  # fmt: skip
