"""Contact rules at the edges: numbers, not only people; everything that can change between the
plan and the send; zones that move. Each test fails when its rule is switched off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import send_due
from cuikuan.services.planner import make_plan
from cuikuan.services.replies import receive_reply
from cuikuan.services.tasks import list_tasks
from cuikuan.settings import Settings
from cuikuan.store.schema import customer_phones, customers, outbox, payments
from tests.integration.conftest import DAY

PLANNED_AT = datetime(2026, 11, 30, 0, tzinfo=UTC)  # 08:00 in Shanghai
OPEN = datetime(2026, 11, 30, 3, tzinfo=UTC)  # 11:00 in Shanghai


def first_planned(engine: Engine, **where: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        query = select(outbox).where(outbox.c.status == "planned", outbox.c.channel == "sms")
        for k, v in where.items():
            query = query.where(outbox.c[k] == v)
        return dict(conn.execute(query.order_by(outbox.c.id)).first()._mapping)  # type: ignore[union-attr]


def _planned_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                select(outbox)
                .where(outbox.c.status == "planned", outbox.c.channel == "sms")
                .order_by(outbox.c.id)
            )
        ]


def status(engine: Engine, oid: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(select(outbox.c.status, outbox.c.reason).where(outbox.c.id == oid)).one()
    return row.status, row.reason


def plan(engine: Engine, settings: Settings, day: Any = DAY) -> None:
    make_plan(engine, settings, day, now=PLANNED_AT + (day - DAY))


def test_an_opt_out_stops_that_number_and_the_borrowers_other_number_is_used(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    plan(engine, settings)
    row = first_planned(engine)
    second = "+8613700137000"
    with engine.begin() as conn:
        conn.execute(
            insert(customer_phones).values(
                customer_id=row["customer_id"], e164=second, position=9, kind="mobile"
            )
        )
    receive_reply(
        engine, settings, row["recipient"], "钱上周就转了，以后别发了", OPEN - timedelta(hours=1)
    )
    assert status(engine, row["id"])[0] == "planned"
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status(engine, row["id"]) == ("suppressed", "opted out since planning")
    # Mixed wording still reaches a person.
    assert list_tasks(engine, "open").height >= 1
    later = make_plan(engine, settings, DAY, dry_run=True, only_customer=None).candidates
    mine = later.filter(later["customer_id"] == row["customer_id"]).row(0, named=True)
    assert mine["recipient"] in (second, None)  # never the stopped number
    assert mine["recipient"] != row["recipient"]


def test_a_borrower_added_later_on_a_stopped_number_is_not_texted_there(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    plan(engine, settings)
    row = first_planned(engine)
    receive_reply(engine, settings, row["recipient"], "TD", OPEN - timedelta(hours=1))
    someone = next(
        r for r in _planned_rows(engine) if r["customer_id"] != row["customer_id"]
    )  # another borrower, still planned
    with engine.begin() as conn:
        conn.execute(
            delete(customer_phones).where(customer_phones.c.customer_id == someone["customer_id"])
        )
        conn.execute(
            insert(customer_phones).values(
                customer_id=someone["customer_id"], e164=row["recipient"], position=0, kind="mobile"
            )
        )
        # As if this borrower were new today: no message of theirs planned yet.
        conn.execute(delete(outbox).where(outbox.c.customer_id == someone["customer_id"]))
    nxt = make_plan(engine, settings, DAY, dry_run=True).candidates
    them = nxt.filter(nxt["customer_id"] == someone["customer_id"]).row(0, named=True)
    assert them["status"] == "suppressed" and them["reason"] == "suppressed: opted_out"


def test_a_wrong_number_stops_only_that_number(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    plan(engine, settings)
    row = first_planned(engine)
    receive_reply(
        engine, settings, row["recipient"], "打错了，我不认识他", OPEN - timedelta(hours=1)
    )
    with engine.connect() as conn:
        flags = conn.execute(
            select(customers.c.flags).where(customers.c.id == row["customer_id"])
        ).scalar_one()
    assert "wrong_number" not in flags  # the person is not stopped; the number is
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status(engine, row["id"]) == ("suppressed", "wrong number since planning")


def test_a_number_no_longer_on_record_gets_nothing(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    plan(engine, settings)
    row = first_planned(engine)
    with engine.begin() as conn:
        conn.execute(
            update(customer_phones)
            .where(
                customer_phones.c.customer_id == row["customer_id"],
                customer_phones.c.e164 == row["recipient"],
            )
            .values(e164="+8613600136000")
        )
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status(engine, row["id"]) == (
        "suppressed",
        "the recipient is no longer on the borrower's record",
    )


def test_a_promise_after_planning_holds_the_reminder(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    plan(engine, settings)
    row = first_planned(engine)
    reading = receive_reply(
        engine, settings, row["recipient"], "下个月5号前还1500", OPEN - timedelta(hours=1)
    )
    assert reading.reading.date is not None and any("promise" in d for d in reading.done)
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status(engine, row["id"]) == ("suppressed", "promise to pay since planning")


def test_a_partial_payment_since_planning_holds_the_old_amount(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    plan(engine, settings)
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.loan_id, outbox.c.step)
            .where(outbox.c.status == "planned", outbox.c.step.like("m%"))
            .order_by(outbox.c.id)
        ).all()
    oid, loan_id, _ = rows[0]
    with engine.begin() as conn:
        conn.execute(
            insert(payments).values(
                external_id="PART1", loan_id=loan_id, paid_at=OPEN - timedelta(hours=1), amount=1,
                created_at=OPEN - timedelta(minutes=30),
            )
        )  # fmt: skip
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    got, reason = status(engine, oid)
    assert got == "suppressed" and reason is not None and "paid in part" in reason
    # The others are untouched by it.
    assert status(engine, rows[1][0])[0] == "sent"


def test_a_zone_change_retimes_the_message_instead_of_dropping_it(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    plan(engine, settings)
    row = first_planned(engine)
    with engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == row["customer_id"])
            .values(timezone="Asia/Kolkata")  # 08:00 there is 02:30 UTC
        )
    early = datetime(2026, 11, 30, 1, tzinfo=UTC)  # 09:00 in Shanghai, 06:30 in Kolkata
    send_due(engine, settings, SandboxChannel(engine), early)
    with engine.connect() as conn:
        got = conn.execute(
            select(outbox.c.status, outbox.c.earliest_at).where(outbox.c.id == row["id"])
        ).one()
    assert got.status == "planned"
    assert got.earliest_at.replace(tzinfo=UTC) == datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    send_due(engine, settings, SandboxChannel(engine), datetime(2026, 11, 30, 2, 31, tzinfo=UTC))
    assert status(engine, row["id"])[0] == "sent"


def test_a_reply_no_rule_can_read_holds_the_number_until_a_person_reads_it(
    book: tuple[Settings, Engine],
) -> None:
    from cuikuan.services.tasks import done

    settings, engine = book
    plan(engine, settings)
    row = first_planned(engine)
    # Wording no rule lists: it may be a stop, so nothing goes until someone has read it.
    got = receive_reply(
        engine,
        settings,
        row["recipient"],
        "好烦啊，能不能不要每天都这样",
        OPEN - timedelta(hours=1),
    )
    assert got.reading.unread
    ack = next(r for r in _planned_rows(engine) if r["recipient"] != row["recipient"])
    receive_reply(engine, settings, ack["recipient"], "好的", OPEN - timedelta(hours=1))
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status(engine, row["id"]) == ("suppressed", "a reply from this number awaits a person")
    assert status(engine, ack["id"])[0] == "sent"  # an acknowledgement holds nothing
    later = make_plan(engine, settings, DAY + timedelta(days=1), dry_run=True).candidates
    mine = later.filter(later["customer_id"] == row["customer_id"])
    assert mine.is_empty() or mine["recipient"][0] != row["recipient"]
    task = list_tasks(engine, "open").filter(lambda_kind("read_reply"))
    done(engine, int(task["id"][0]), OPEN + timedelta(hours=1), "read: an annoyed borrower", "a")
    with engine.connect() as conn:
        from cuikuan.store.number_stops import stopped

        assert stopped(conn, [row["recipient"]]) == {}


def lambda_kind(kind: str) -> Any:
    import polars as pl

    return pl.col("kind") == kind


def test_an_instalment_plans_reminder_is_sent_not_dropped_as_paid(
    book: tuple[Settings, Engine],
) -> None:
    from decimal import Decimal

    import polars as pl

    from cuikuan.services.arrangements import agree

    settings, engine = book
    dry = make_plan(engine, settings, DAY, dry_run=True).candidates
    row = dry.filter((pl.col("status") == "planned") & (pl.col("dpd") > 0)).row(0, named=True)
    overdue = Decimal(row["overdue_amount"]).scaleb(-2)
    half = (overdue / 2).quantize(Decimal("0.01"))
    agreed = [(DAY + timedelta(days=3), half), (DAY + timedelta(days=20), overdue - half)]
    agree(engine, settings, row["external_id"], agreed, "agent", PLANNED_AT - timedelta(hours=2))
    plan(engine, settings)
    mine = first_planned(engine, customer_id=row["customer_id"])
    assert mine["step"] == "pre_due_3d"  # the agreed date, three days away
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status(engine, mine["id"])[0] == "sent"
