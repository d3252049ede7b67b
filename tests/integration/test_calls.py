"""An agent's call is a contact: it counts against the caps like a message, at plan time (the
whole plan, one customer's plan, explain) and at send time, for the person and the number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import Engine, select

from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import send_due
from cuikuan.errors import InputError
from cuikuan.services.audit import entries
from cuikuan.services.calls import log_call
from cuikuan.services.planner import make_plan
from cuikuan.services.timeline import timeline
from cuikuan.settings import Settings
from cuikuan.store.schema import outbox
from tests.integration.conftest import DAY

OPEN = datetime(2026, 11, 30, 3, tzinfo=UTC)  # 11:00 in Shanghai: the day's messages are due


def _planned(settings: Settings, engine: Engine, **kw: object) -> pl.DataFrame:
    found = make_plan(engine, settings, DAY, dry_run=True, **kw).candidates  # type: ignore[arg-type]
    assert found is not None
    return found.filter(pl.col("status") == "planned")


def test_a_call_counts_against_the_caps_at_plan_time(book: tuple[Settings, Engine]) -> None:
    """The pack's caps: 1 contact a day, 3 in any 7 days, 20 hours apart. A call late last
    night, or three calls this week, leave no room for this morning's reminder; one call two
    days ago does."""
    settings, engine = book
    before = _planned(settings, engine).sort("customer_id")
    late, busy_week, long_ago = (before.row(i, named=True) for i in range(3))
    noon = datetime(2026, 11, 29, 4, tzinfo=UTC)  # 12:00 in Shanghai, the day before
    log_call(engine, late["customer"], late["recipient"], "reached",
             noon + timedelta(hours=9), by="user:li", note="说明天还", now=OPEN)  # fmt: skip
    for days in (2, 3, 4):
        log_call(engine, busy_week["customer"], "1", "no_answer",
                 noon - timedelta(days=days), by="user:li", now=OPEN)  # fmt: skip
    log_call(engine, long_ago["customer"], "1", "voicemail",
             noon - timedelta(days=1), by="user:li", now=OPEN)  # fmt: skip
    after = make_plan(engine, settings, DAY, dry_run=True).candidates
    assert after is not None
    by_customer = {r["customer"]: r for r in after.iter_rows(named=True)}
    row = by_customer[busy_week["customer"]]
    assert row["status"] == "suppressed" and row["reason"].startswith("cap:"), row["reason"]
    # 20 hours after last night's call, later in today's window, not at its opening.
    row = by_customer[late["customer"]]
    assert row["status"] == "planned" and row["earliest_at"] == noon + timedelta(hours=29)
    assert late["earliest_at"] < row["earliest_at"]
    assert by_customer[long_ago["customer"]]["earliest_at"] == long_ago["earliest_at"]
    # The same for one customer's plan (explain reads history this way).
    alone = make_plan(engine, settings, DAY, dry_run=True, only_customer=busy_week["customer"])
    assert alone.candidates is not None and set(alone.candidates["status"]) == {"suppressed"}
    # Nothing else changed: every other customer's decision is the same.
    others = after.filter(~pl.col("customer").is_in([late["customer"], busy_week["customer"]]))
    assert others.filter(pl.col("status") == "planned").height == before.height - 2
    events = [e for e in timeline(engine, settings, late["customer"]) if e.kind == "call"]
    assert len(events) == 1 and "reached" in events[0].summary
    assert [e["action"] for e in entries(engine)].count("call.log") == 5


def test_a_call_after_planning_stops_the_message_at_send_time(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.customer_id, outbox.c.recipient)
            .where(outbox.c.status == "planned").order_by(outbox.c.id)
        ).all()  # fmt: skip
        from cuikuan.store.schema import customers

        ext = dict(conn.execute(select(customers.c.id, customers.c.external_id)).all())
    called = rows[0]
    log_call(engine, ext[called.customer_id], called.recipient, "busy",
             OPEN - timedelta(minutes=30), by="user:wang", now=OPEN - timedelta(minutes=29))  # fmt: skip
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    with engine.connect() as conn:
        status, reason = conn.execute(
            select(outbox.c.status, outbox.c.reason).where(outbox.c.id == called.id)
        ).one()
        others = conn.execute(
            select(outbox.c.status).where(outbox.c.id.in_([r.id for r in rows[1:6]]))
        ).scalars().all()  # fmt: skip
    assert status == "suppressed" and reason.startswith("cap:") and "send time" in reason, reason
    assert set(others) <= {"sent", "delivered"}


def test_a_call_is_checked_before_it_is_logged(book: tuple[Settings, Engine]) -> None:
    _, engine = book
    for number, outcome, at, why in [
        ("1", "chatted", OPEN, "outcome"),
        ("+8613000000000", "reached", OPEN, "not one of"),
        ("9", "reached", OPEN, r"has 1 number\(s\)"),
        ("1", "reached", OPEN + timedelta(hours=1), "after it was made"),
    ]:
        with pytest.raises(InputError, match=why):
            log_call(engine, "C00000001", number, outcome, at, by="user:li", now=OPEN)
