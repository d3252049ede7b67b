"""A plan made in parts, each as another process would (its outcome through bytes, in any order),
writes the outbox one plan writes, day after day, with numbers shared across the parts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

from cuikuan.services import planner
from cuikuan.services.planner import PlanPart, begin_plan, finish_plan, make_plan, plan_part
from cuikuan.settings import Settings
from cuikuan.store.schema import customer_phones, customers
from tests.conftest import _postgres_schema_url
from tests.integration.conftest import DAY, build_book


@pytest.fixture
def twins(
    tmp_path: Path, db_url: str
) -> Iterator[tuple[tuple[Settings, Engine], tuple[Settings, Engine]]]:
    if db_url.startswith("sqlite"):
        other: Iterator[str] = iter([f"sqlite:///{tmp_path / 'twin' / 'cuikuan.db'}"])
    else:
        other = _postgres_schema_url()
    (tmp_path / "twin").mkdir()
    one = build_book(tmp_path, db_url, 400, 11)
    two = build_book(tmp_path / "twin", next(other), 400, 11)
    for _, engine in (one, two):
        _share_numbers(engine)
    yield one, two
    for _, engine in (one, two):
        engine.dispose()
    for _ in other:
        pass


def _share_numbers(engine: Engine) -> None:
    """Early customers' numbers given to late ones: shared across the parts."""
    with engine.begin() as conn:
        ids = conn.execute(select(customers.c.id).order_by(customers.c.id)).scalars().all()
        phones = dict(conn.execute(select(customer_phones.c.customer_id, customer_phones.c.e164)).all())  # fmt: skip
        for a, b in zip(ids[:90:3], ids[::-1][:30], strict=True):
            conn.execute(
                update(customer_phones).where(customer_phones.c.customer_id == b).values(e164=phones[a])
            )  # fmt: skip


def _outbox(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT c.external_id, o.plan_date, o.step, o.template, o.variant, o.recipient, "
                    "o.status, o.reason, o.control, o.text, o.earliest_at, o.latest_at "
                    "FROM outbox o JOIN customers c ON c.id = o.customer_id"
                )
            )
        )


def _tallies(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text("SELECT * FROM plan_tallies")))


def test_parts_planned_apart_write_the_outbox_one_plan_writes(
    twins: tuple[tuple[Settings, Engine], tuple[Settings, Engine]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (settings, whole), (_, parted) = twins
    monkeypatch.setattr(planner, "CHUNK_CUSTOMERS", 10**9)
    for offset in range(3):
        day = DAY + timedelta(days=offset)
        now = planner.day_start(settings, day)
        make_plan(whole, settings, day, now=now)
        scopes = begin_plan(parted, settings, day, now, customers_per_part=37)
        assert len(scopes) > 5
        # Each part as another process would hand it on: as bytes, in reverse order.
        done = [PlanPart.from_bytes(plan_part(parted, settings, day, now, s).to_bytes())
                for s in reversed(scopes)]  # fmt: skip
        assert any(p.held.height for p in done)  # rows to shared numbers wait for the end
        written = finish_plan(parted, settings, day, now, done)
        assert written > 0
        assert finish_plan(parted, settings, day, now, done) == 0  # again: adds nothing
        assert _outbox(parted) == _outbox(whole), day
        assert _tallies(parted) == _tallies(whole), day
