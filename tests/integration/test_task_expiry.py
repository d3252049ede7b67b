"""Tasks about money owed close themselves once paid; the others stay with a person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, select

from cuikuan.services.audit import entries
from cuikuan.services.importer import import_file
from cuikuan.services.portfolio import loan_positions
from cuikuan.services.replies import receive_reply
from cuikuan.services.tasks import close_moot, list_tasks, take
from cuikuan.services.worker import settle_kept
from cuikuan.settings import Settings
from cuikuan.store.schema import customer_phones
from tests.helpers import RULES, write_csv
from tests.integration.conftest import DAY

AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SAYS = {"paid": "我已经还了", "installment": "我想分期还款", "hardship": "我失业了，实在还不起"}


def _overdue_people(settings: Settings, engine: Engine, count: int) -> pl.DataFrame:
    """Customers with exactly one loan, overdue, and a number of their own."""
    pos = loan_positions(engine, DAY, settings)
    one = pos.group_by("customer_id").agg(pl.len().alias("n")).filter(pl.col("n") == 1)
    late = pos.join(one, on="customer_id").filter(pl.col("overdue_amount") > 0)
    with engine.connect() as conn:
        rows = conn.execute(select(customer_phones.c.customer_id, customer_phones.c.e164)).all()
    phones = pl.DataFrame([tuple(r) for r in rows], schema=["customer_id", "phone"], orient="row")
    own = phones.filter(pl.len().over("phone") == 1, pl.len().over("customer_id") == 1)
    return late.join(own, on="customer_id").sort("loan_id").head(count)


def _pay(tmp_path: Path, settings: Settings, engine: Engine, rows: list[tuple[str, int]],
         at: datetime, name: str) -> None:  # fmt: skip
    local = at.astimezone(ZoneInfo(settings.defaults.timezone)).strftime("%Y-%m-%d %H:%M:%S")
    file = write_csv(tmp_path / f"{name}.csv", ["还款流水号", "借据号", "还款时间", "还款金额"],
                     [[f"{name}-{i}", loan, local, f"{minor / 100:.2f}"]
                      for i, (loan, minor) in enumerate(rows)])  # fmt: skip
    import_file(engine, file, RULES, now=at + timedelta(minutes=10))  # recorded soon after


def test_a_payment_closes_the_tasks_it_made_moot_and_no_other(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = book
    people = _overdue_people(settings, engine, 6)
    said = ["paid", "installment", "hardship", "paid", "installment", "paid"]
    for person, intent in zip(people.iter_rows(named=True), said, strict=True):
        result = receive_reply(engine, settings, person["phone"], SAYS[intent], AT)
        assert result.reading.intent == intent, (SAYS[intent], result.reading)
    tasks = list_tasks(engine, state="open").sort("id")
    assert tasks["kind"].to_list() == [
        "verify_payment", "agree_plan", "hardship", "verify_payment", "agree_plan", "verify_payment"
    ]  # fmt: skip
    ids = tasks["id"].to_list()
    take(engine, ids[5], "agent-li", AT)  # a taken task stays with its agent whatever is paid
    loans = people["external_id"].to_list()
    owed = people["overdue_amount"].to_list()
    paid_at = AT + timedelta(hours=5)
    # Paid in full: 0, 1, 2 (hardship), 5 (taken). Paid in part: 3. Nothing: 4.
    _pay(tmp_path, settings, engine,
         [(loans[0], owed[0]), (loans[1], owed[1]), (loans[2], owed[2]), (loans[3], owed[3] // 2),
          (loans[5], owed[5])], paid_at, "P1")  # fmt: skip
    # What `import` and the worker's tick run after payments come.
    assert settle_kept(engine, settings, paid_at + timedelta(minutes=15)) == 2
    left = list_tasks(engine).sort("id")
    states = dict(zip(left["id"].to_list(), left["state"].to_list(), strict=True))
    assert [states[i] for i in ids] == ["done", "done", "open", "open", "open", "taken"]
    closed = left.filter(pl.col("state") == "done")
    assert all("closed by cuikuan" in n for n in closed["notes"].to_list())
    audited = [e for e in entries(engine) if e["action"] == "task.expire"]
    assert sorted(e["object"] for e in audited) == [f"task:{ids[0]}", f"task:{ids[1]}"]
    # Nothing more to close: a second pass changes nothing.
    assert close_moot(engine, settings, paid_at + timedelta(hours=1)) == []
    # The rest of the overdue amount: task 3 closes on the next tick.
    _pay(tmp_path, settings, engine, [(loans[3], owed[3] - owed[3] // 2)], paid_at, "P2")
    assert settle_kept(engine, settings, paid_at + timedelta(minutes=20)) == 1
    assert list_tasks(engine, state="open")["id"].to_list() == [ids[2], ids[4]]


def test_a_payment_made_before_the_task_does_not_close_it(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    """The borrower paid, then wrote "I paid" to a reminder that crossed the payment: the task
    to verify it is made after the payment was known, and stays for a person when nothing has
    come since (a later payment on an already settled loan would close it)."""
    settings, engine = book
    person = _overdue_people(settings, engine, 1).row(0, named=True)
    _pay(tmp_path, settings, engine, [(person["external_id"], person["overdue_amount"])],
         AT - timedelta(hours=2), "P0")  # fmt: skip
    receive_reply(engine, settings, person["phone"], SAYS["paid"], AT)
    assert close_moot(engine, settings, AT + timedelta(hours=1)) == []
    assert list_tasks(engine, state="open")["kind"].to_list() == ["verify_payment"]
