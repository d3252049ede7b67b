"""Several `cuikuan worker` processes on PostgreSQL share a day through Procrastinate: the plan
made in parts by whoever takes them, dispatch split in shards; one worker killed (SIGKILL) mid-
plan and another mid-dispatch, the last finishes the day. No message leaves twice, the provider's
rate holds across the workers together, and the outbox is the one a single plan makes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from cuikuan.jobs.runner import defer_tick, ensure_schema
from cuikuan.jobs.tasks import make_app, retry_stalled
from cuikuan.services.planner import make_plan
from cuikuan.settings import default_settings_text, load_settings
from cuikuan.store.engine import open_database
from tests.conftest import _postgres_schema_url
from tests.integration.conftest import DAY
from tests.smsc_helpers import running_smsc

pytestmark = pytest.mark.postgres
BUSY = Path(__file__).parents[2] / "benchmarks" / "data" / "busy_strategy.toml"
TPS = 100.0
PLAN_AT = datetime(2026, 11, 29, 23, 31, tzinfo=UTC)  # 07:31 in Shanghai
SEND_AT = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)  # 08:05: the window is open


def _book(folder: Path, url: str) -> tuple[Path, Engine]:
    from cuikuan.services.importer import import_file
    from cuikuan.sim.generator import GenerateOptions, generate
    from tests.helpers import RULES

    folder.mkdir(parents=True)
    config = folder / "cuikuan.toml"
    config.write_text(
        default_settings_text()
        .replace('url = "sqlite:///cuikuan.db"', f'url = "{url}"')
        .replace("plan_part_customers = 250000", "plan_part_customers = 100"),
        encoding="utf-8",
    )
    # A busy day (a quarter of the book due a message): dispatch takes seconds at TPS.
    shutil.copy(BUSY, folder / "strategy.toml")
    engine = open_database(load_settings(config, environ={}).database_url)
    ledger = folder.parent / "ledger.csv"
    if not ledger.exists():
        generate(GenerateOptions(1500, 17, DAY, ledger))
    import_file(engine, ledger, RULES, snapshot_at=PLAN_AT, now=PLAN_AT)
    return config, engine


@pytest.fixture
def urls() -> Iterator[tuple[str, str]]:
    first, second = _postgres_schema_url(), _postgres_schema_url()
    yield next(first), next(second)
    for g in (first, second):
        for _ in g:
            pass


def _wait(what: Callable[[], bool], seconds: float, tick: Callable[[], None]) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        tick()
        time.sleep(0.5)


def _one(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _outbox(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT c.external_id, o.step, o.template, o.variant, o.recipient, o.text, "
                    "o.control FROM outbox o JOIN customers c ON c.id = o.customer_id"
                )
            )
        )


def test_three_workers_share_the_day_and_survive_losing_two(
    tmp_path: Path, urls: tuple[str, str]
) -> None:
    config, engine = _book(tmp_path / "shared", urls[0])
    ref_config, reference = _book(tmp_path / "single", urls[1])
    make_plan(reference, load_settings(ref_config, environ={}), DAY, now=PLAN_AT)

    app = make_app(urls[0])
    ensure_schema(engine, app)
    with running_smsc() as smsc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")} | {
            "CUIKUAN_CHANNELS__SMS": "smpp", "CUIKUAN_SMPP__PORT": str(smsc.port),
            "CUIKUAN_SMPP__TPS": str(TPS), "CUIKUAN_CHANNELS__BATCH": "40",
        }  # fmt: skip
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "cuikuan", "--config", str(config), "worker", "--no-ticking"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            for _ in range(3)
        ]  # fmt: skip
        clock = {"now": PLAN_AT}

        def tick() -> None:
            with app.open():
                defer_tick(app, clock["now"])
                asyncio.run(_retry(app))

        try:
            tick()
            _wait(
                lambda: (_one(engine, "SELECT count(*) FROM plan_part_results") or 0) >= 2, 60, tick
            )
            assert not _one(engine, "SELECT count(*) FROM outbox")  # mid-plan
            workers[0].send_signal(signal.SIGKILL)
            _wait(lambda: _one(engine, "SELECT finished_at FROM plan_runs") is not None, 120, tick)
            assert _outbox(engine) == _outbox(reference)
            clock["now"] = SEND_AT
            due = _one(engine, "SELECT count(*) FROM outbox WHERE status = 'planned'")
            _wait(lambda: len(smsc.smsc.received) >= due // 4, 60, tick)
            workers[1].send_signal(signal.SIGKILL)  # mid-dispatch
            for minutes in range(1, 40):
                clock["now"] = SEND_AT + timedelta(minutes=minutes)  # past the claims' lease
                tick()
                time.sleep(0.3)
                if not _one(
                    engine,
                    "SELECT count(*) FROM outbox WHERE status IN ('planned', 'claimed', 'sending')",
                ):
                    break
            # Receipts come in; those of the killed worker's bind are lost with it (stay sent).
            _wait(_settled(engine), 60, tick)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(60)
                except subprocess.TimeoutExpired:
                    w.kill()
        records = list(smsc.smsc.received)

    states = Counter(r[0] for r in text_rows(engine, "SELECT status FROM outbox"))
    assert states["planned"] == states["claimed"] == states["sending"] == 0, states
    handed = {
        r[0]: r[1]
        for r in text_rows(
            engine, "SELECT provider_id, status FROM outbox WHERE provider_id IS NOT NULL"
        )
    }
    ids = Counter(r["id"] for r in records)
    assert all(n == 1 for n in ids.values())
    # No message twice: what the SMSC got, per number and text, against the outbox.
    at_smsc = Counter(r["destination"] for r in records)
    left = Counter(r[0].lstrip("+") for r in text_rows(
        engine, "SELECT recipient FROM outbox WHERE status IN ('sent', 'delivered', 'undelivered', 'uncertain')"))  # fmt: skip
    assert all(at_smsc[n] <= left[n] for n in at_smsc), "a message left twice"
    assert sum(at_smsc.values()) >= states["delivered"] + states["undelivered"]
    assert len(handed) >= states["delivered"]
    # The provider's rate across the workers together: at most TPS in any second (+ one chunk).
    stamps = sorted(datetime.fromisoformat(r["at"]).timestamp() for r in records)
    busiest = max(sum(1 for t in stamps[i:] if t - s < 1.0) for i, s in enumerate(stamps))
    assert busiest <= TPS * 1.1 + 40, busiest


def _settled(engine: Engine) -> Callable[[], bool]:
    """True once the count of messages still waiting for a receipt stays put for 3 seconds."""
    seen: list[tuple[float, int]] = []

    def check() -> bool:
        waiting = int(_one(engine, "SELECT count(*) FROM outbox WHERE status = 'sent'"))
        now = time.monotonic()
        if not seen or seen[-1][1] != waiting:
            seen.append((now, waiting))
        return waiting == 0 or now - seen[-1][0] >= 3.0

    return check


def text_rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


async def _retry(app: Any) -> None:
    async with app.open_async():
        await retry_stalled(app)
