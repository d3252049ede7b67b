"""The daily plan's promises, on a generated portfolio: windows, caps, control groups,
idempotency, suppressions, and the strategy file's errors."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import Engine, delete, func, insert, select, text, update

from cuikuan.domain.policy import candidate_zones, inside_window
from cuikuan.domain.strategy import in_control, ordered_steps
from cuikuan.errors import ConfigError
from cuikuan.services import planner
from cuikuan.services.importer import import_file
from cuikuan.services.planner import make_plan
from cuikuan.services.strategy_file import load_strategy
from cuikuan.settings import Settings
from cuikuan.store.schema import customer_phones, customers, opt_outs, outbox
from tests.helpers import RULES
from tests.integration.conftest import DAY


def outbox_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox))]


def test_plan_is_idempotent_and_a_dry_run_writes_nothing(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = book
    monkeypatch.setattr(planner, "WRITE_SLICE", 7)  # the outbox goes in many slices
    dry = make_plan(engine, settings, DAY, dry_run=True)
    assert dry.written == 0 and outbox_rows(engine) == []
    first = make_plan(engine, settings, DAY)
    assert first.written == (dry.candidates["status"].is_in(["planned", "held"])).sum() > 0
    again = make_plan(engine, settings, DAY)
    assert again.written == 0
    assert len(outbox_rows(engine)) == first.written
    assert (
        dry.candidates.drop("trail")
        .sort("customer")
        .equals(first.candidates.drop("trail").sort("customer"))
    )


ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    None,
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_planned_window_lies_outside_any_candidate_zone(
    book: tuple[Settings, Engine], seed: int
) -> None:
    import random

    settings, engine = book
    rng = random.Random(seed)
    with engine.begin() as conn:
        for cid in conn.execute(select(customers.c.id)).scalars().all():
            conn.execute(
                update(customers).where(customers.c.id == cid).values(timezone=rng.choice(ZONES))
            )
    result = make_plan(engine, settings, DAY + timedelta(days=seed))
    policy = settings.policy.contact_policy()
    planned = result.candidates.filter(result.candidates["status"] == "planned")
    assert planned.height > 0
    for row in planned.iter_rows(named=True):
        zones = candidate_zones(row["timezone"], row["phones"], settings.defaults.timezone)
        assert row["earliest_at"] < row["latest_at"]
        assert inside_window(row["earliest_at"], zones, policy), row
        assert inside_window(row["latest_at"], zones, policy), row


def test_over_a_month_no_person_or_number_exceeds_the_caps(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    policy = settings.policy.contact_policy()
    for offset in range(21):
        make_plan(engine, settings, DAY + timedelta(days=offset))
        with engine.begin() as conn:  # the sandbox "sends" each at its earliest moment
            conn.execute(
                update(outbox)
                .where(outbox.c.status == "planned")
                .values(status="sent", sent_at=outbox.c.earliest_at)
            )
    sent = [r for r in outbox_rows(engine) if r["status"] == "sent"]
    assert len(sent) > 50
    zone = ZoneInfo(settings.defaults.timezone)
    for key in ("customer_id", "recipient"):
        times: dict[object, list] = defaultdict(list)
        for r in sent:
            moment = r["sent_at"] if r["sent_at"].tzinfo else r["sent_at"].replace(tzinfo=UTC)  # type: ignore[union-attr]
            times[r[key]].append(moment)
        for moments in times.values():
            moments.sort()
            for i, m in enumerate(moments):
                same_day = [
                    x for x in moments if x.astimezone(zone).date() == m.astimezone(zone).date()
                ]
                week = [x for x in moments[: i + 1] if m - x < timedelta(days=7)]
                assert len(same_day) <= policy.max_per_day
                assert len(week) <= policy.max_per_7_days
                if i:
                    assert m - moments[i - 1] >= policy.min_gap


def test_a_control_group_member_never_gets_that_step(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    strategy = load_strategy(settings)
    steps = {s.id: s for s in ordered_steps(strategy)}
    for offset in range(5):
        make_plan(engine, settings, DAY + timedelta(days=offset))
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.step, outbox.c.control, outbox.c.status, customers.c.external_id).join(
                customers
            )
        ).all()
    assert any(r.control for r in rows)
    for step, control, status, customer in rows:
        assert bool(control) == in_control(customer, steps[step])
        assert (status == "held") == bool(control)


def test_opted_out_and_flagged_borrowers_are_suppressed(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    before = make_plan(engine, settings, DAY, dry_run=True).candidates
    planned = before.filter(before["status"] == "planned")["customer_id"].to_list()
    assert len(planned) >= 2
    with engine.begin() as conn:
        conn.execute(
            insert(opt_outs).values(
                customer_id=planned[0], channel="sms", source="test", created_at=DAY
            )
        )
        conn.execute(
            update(customers).where(customers.c.id == planned[1]).values(flags='["dispute"]')
        )
    after = {
        r["customer_id"]: r
        for r in make_plan(engine, settings, DAY, dry_run=True).candidates.iter_rows(named=True)
    }
    assert (after[planned[0]]["status"], after[planned[0]]["reason"]) == (
        "suppressed",
        "suppressed: opted_out",
    )
    assert after[planned[1]]["reason"] == "suppressed: dispute"


def test_an_sms_goes_to_the_first_mobile_by_position(book: tuple[Settings, Engine]) -> None:
    """Not the first by number, either way round: the stored order is the borrower's."""
    settings, engine = book
    first = make_plan(engine, settings, DAY, dry_run=True).candidates
    sms = first.filter((pl.col("status") == "planned") & (pl.col("channel") == "sms"))
    who = sms["customer_id"][0]
    numbers = {"+8613912340002": 0, "+8613912340003": 1, "+8613912340001": 2}
    with engine.begin() as conn:
        conn.execute(delete(customer_phones).where(customer_phones.c.customer_id == who))
        for e164, position in numbers.items():
            conn.execute(
                customer_phones.insert().values(
                    customer_id=who, e164=e164, position=position, kind="mobile"
                )
            )
    again = make_plan(engine, settings, DAY, dry_run=True).candidates
    assert again.filter(pl.col("customer_id") == who)["recipient"].to_list() == ["+8613912340002"]


def test_a_number_shared_by_two_borrowers_gets_one_message(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    first = make_plan(engine, settings, DAY, dry_run=True).candidates
    planned = first.filter(first["status"] == "planned")["customer_id"].to_list()[:2]
    with engine.begin() as conn:
        shared = conn.execute(
            select(customer_phones.c.e164).where(customer_phones.c.customer_id == planned[0])
        ).scalar_one()
        conn.execute(
            update(customer_phones)
            .where(customer_phones.c.customer_id == planned[1])
            .values(e164=shared)
        )
    rows = make_plan(engine, settings, DAY, dry_run=True).candidates.filter(lambda_in(planned))
    assert sorted(rows["status"].to_list()) == ["planned", "suppressed"]
    assert "cap" in (rows.filter(rows["status"] == "suppressed")["reason"][0])


def test_a_book_planned_in_parts_is_planned_as_one(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large book is planned a range of customers at a time, and the rows to numbers and
    addresses that customers of different ranges share are decided together at the end: day
    after day (with the history of the days before), the outcome is that of one plan."""
    settings, engine = book
    first = make_plan(engine, settings, DAY, dry_run=True).candidates
    planned = sorted(first.filter(pl.col("status") == "planned")["customer_id"].to_list())
    with engine.begin() as conn:
        ids = conn.execute(select(customers.c.id).order_by(customers.c.id)).scalars().all()
        phones = dict(conn.execute(select(customer_phones.c.customer_id, customer_phones.c.e164)).all())  # fmt: skip
        # Early customers' numbers given to late ones (some of them due a message on the first
        # day), and shared addresses, ranges apart.
        pairs = zip(planned[:6], planned[::-1][:6], strict=True)
        for a, b in [*pairs, *zip(ids[:90:3], ids[::-1][:30], strict=True)]:
            conn.execute(
                update(customer_phones)
                .where(customer_phones.c.customer_id == b)
                .values(e164=phones[a])
            )
        for a, b in zip(ids[1:60:4], ids[200:215], strict=True):
            conn.execute(
                update(customers)
                .where(customers.c.id.in_([a, b]))
                .values(email=f"family{a}@example.com")
            )
        # And one due a message with no number at all: no recipient, still a candidate.
        conn.execute(delete(customer_phones).where(customer_phones.c.customer_id == planned[8]))

    def plan(day: date, chunk: int, dry_run: bool) -> planner.PlanResult:
        monkeypatch.setattr(planner, "CHUNK_CUSTOMERS", chunk)
        return make_plan(engine, settings, day, dry_run=dry_run)

    capped = 0
    for offset in range(4):
        day = DAY + timedelta(days=offset)
        whole = plan(day, 10**9, True).candidates
        parts = plan(day, 37, True).candidates
        assert parts.equals(whole), day
        if offset == 0:
            unreachable = whole.filter(pl.col("customer_id") == planned[8])
            assert unreachable["recipient"].is_null().all() and unreachable.height == 1
        written = plan(day, 37, False)
        # Every row that reached the control draw is written, the caps' stops included.
        assert written.written == whole["opens_at"].is_not_null().sum()
        assert (
            whole.filter(pl.col("opens_at").is_not_null())["status"]
            .is_in(["planned", "held", "suppressed"])
            .all()
        )
        assert written.candidates.drop("trail").equals(whole.drop("trail")), day
        shared = whole.filter(pl.col("recipient").is_in(list(phones.values())) | pl.col("recipient").str.starts_with("family"))  # fmt: skip
        capped += shared.filter(pl.col("reason").str.starts_with("cap")).height
    assert capped > 0  # some rows to shared numbers gave way to others


def test_a_plan_in_parts_that_fails_while_writing_writes_nothing(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = book
    monkeypatch.setattr(planner, "CHUNK_CUSTOMERS", 50)
    real, calls = planner._write, []

    def failing(conn: object, frame: object) -> int:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(conn, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(planner, "_write", failing)
    with pytest.raises(OSError, match="disk full"):
        make_plan(engine, settings, DAY)
    assert outbox_rows(engine) == []
    monkeypatch.setattr(planner, "_write", real)
    assert make_plan(engine, settings, DAY).written > 0


def test_a_part_of_the_book_reads_the_history_of_its_numbers(
    book: tuple[Settings, Engine],
) -> None:
    """A number that changed hands brings its messages with it: the history read for a range of
    customers holds theirs and every message to their numbers and addresses, whoever got it."""
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        sent = conn.execute(
            select(outbox.c.customer_id, outbox.c.recipient, outbox.c.idempotency_key)
            .where(outbox.c.channel == "sms")
            .order_by(outbox.c.customer_id)
        ).first()
        assert sent is not None
        new_owner = conn.execute(
            select(func.max(customer_phones.c.customer_id)).where(
                customer_phones.c.customer_id != sent.customer_id
            )
        ).scalar_one()
        conn.execute(
            update(customer_phones)
            .where(customer_phones.c.customer_id == sent.customer_id)
            .values(e164="+8613900000001")
        )
        conn.execute(
            update(customer_phones)
            .where(customer_phones.c.customer_id == new_owner)
            .values(e164=sent.recipient)
        )
        email = conn.execute(select(customers.c.email).where(customers.c.id == new_owner)).scalar()
    later = DAY + timedelta(days=1)
    part = planner._history(engine, later, None, (new_owner, new_owner + 1))
    whole = planner._history(engine, later, None)
    theirs = pl.col("customer_id") == new_owner
    expected = whole.filter(theirs | pl.col("recipient").is_in([sent.recipient, email]))
    assert sent.idempotency_key in part["key"].to_list()
    assert part.sort("key").equals(expected.sort("key"))


def lambda_in(ids: list[int]) -> object:
    import polars as pl

    return pl.col("customer_id").is_in(ids)


def test_explain_uses_the_plan_engine(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    plan = make_plan(engine, settings, DAY, dry_run=True).candidates
    row = plan.filter(plan["status"] == "planned").row(0, named=True)
    one = make_plan(
        engine, settings, DAY, dry_run=True, only_customer=row["customer"]
    ).candidates.row(0, named=True)
    assert (one["step"], one["status"], one["text"], one["earliest_at"]) == (
        row["step"],
        row["status"],
        row["text"],
        row["earliest_at"],
    )
    assert json.loads(one["trail"])[0].startswith(f"step {row['step']} matched")


def write_strategy(settings: Settings, body: str) -> None:
    settings.path("strategy.toml").write_text(body, encoding="utf-8")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[[steps]]\nid = "a"\ndpd = 1\ntemplate = "no_such"\n',
            ":4: steps.0.template: no template 'no_such' in zh-CN",
        ),
        (
            '[[steps]]\nid = "a"\npriority = 1\ndpd = 1\ntemplate = "due_today"\n[[steps]]\nid = "b"\npriority = 1\ndpd = [1, 3]\ntemplate = "due_today"\n',
            "steps a and b overlap in order",
        ),
        (
            '[[steps]]\nid = "a"\nbucket = ["M9"]\ntemplate = "due_today"\n',
            ":3: steps.0.bucket: unknown bucket 'M9'",
        ),
        ('[[steps]]\nid = "a"\ndpd = [7, 1]\ntemplate = "due_today"\n', ":3: steps.0.dpd"),
        ('[[steps]]\nid = "a"\ncontrol = 1.5\ntemplate = "due_today"\n', ":3: steps.0.control"),
    ],
)
def test_a_bad_strategy_is_refused_with_file_and_line_and_nothing_is_planned(
    book: tuple[Settings, Engine], body: str, message: str
) -> None:
    settings, engine = book
    write_strategy(settings, body)
    with pytest.raises(ConfigError) as info:
        make_plan(engine, settings, DAY)
    assert message in info.value.message
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_a_borrower_already_late_never_gets_a_before_due_reminder(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    for offset in range(4):
        plan = make_plan(engine, settings, DAY + timedelta(days=offset), dry_run=True).candidates
        early = plan.filter(plan["step"].is_in(["pre_due_3d", "pre_due_1d", "due_today"]))
        assert (early["dpd"] == 0).all()


def test_a_reply_opts_the_number_out_and_the_next_plan_skips_it(
    book: tuple[Settings, Engine],
) -> None:
    from datetime import UTC, datetime

    from cuikuan.services.replies import receive_reply

    settings, engine = book
    plan = make_plan(engine, settings, DAY, dry_run=True).candidates
    row = plan.filter(plan["status"] == "planned").row(0, named=True)
    number = row["recipient"]
    at = datetime(2026, 11, 30, 1, tzinfo=UTC)
    tried = receive_reply(engine, settings, number, "退订", at, dry_run=True)
    assert tried.reading.intent == "opt_out" and tried.done == []
    assert (
        make_plan(engine, settings, DAY, dry_run=True).candidates.filter(
            lambda_in([row["customer_id"]])
        )["status"][0]
        == "planned"
    )
    done = receive_reply(engine, settings, number, "退订", at)
    assert done.done and row["customer"] in done.customers
    again = (
        make_plan(engine, settings, DAY, dry_run=True)
        .candidates.filter(lambda_in([row["customer_id"]]))
        .row(0, named=True)
    )
    assert (again["status"], again["reason"]) == ("suppressed", "suppressed: opted_out")


def test_a_promise_pauses_reminders_until_kept_or_broken(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    import polars as pl

    from cuikuan.services.replies import receive_reply
    from cuikuan.store.schema import loans, promises

    settings, engine = book
    plan = make_plan(engine, settings, DAY, dry_run=True).candidates
    late = plan.filter((pl.col("status") == "planned") & (pl.col("dpd") > 0))
    kept_row, broken_row = late.row(0, named=True), late.row(1, named=True)
    at = datetime(2026, 11, 30, 1, tzinfo=UTC)
    for row in (kept_row, broken_row):
        done = receive_reply(engine, settings, row["recipient"], "我明天还", at)
        assert done.reading.intent == "promise_to_pay" and "promise" in done.done[0]
    paused = make_plan(engine, settings, DAY, dry_run=True).candidates.filter(
        lambda_in([kept_row["customer_id"], broken_row["customer_id"]])
    )
    assert set(paused["reason"].to_list()) == {"suppressed: promise_pending"}
    with engine.connect() as conn:
        loan_ext = conn.execute(
            select(loans.c.external_id).where(loans.c.id == kept_row["loan_id"])
        ).scalar_one()
    pays = tmp_path / "pay.csv"
    pays.write_text(
        f"还款流水号,借据号,还款时间,还款金额\nPK1,{loan_ext},2026-12-01 10:00,100\n",
        encoding="utf-8",
    )
    import_file(engine, pays, RULES)
    make_plan(engine, settings, DAY + timedelta(days=4))  # settles: the grace (2 days) has passed
    with engine.connect() as conn:
        states = dict(conn.execute(select(promises.c.customer_id, promises.c.status)).all())
    assert states == {kept_row["customer_id"]: "kept", broken_row["customer_id"]: "broken"}


def test_a_dispute_stops_reminders_until_a_person_resolves_it(
    book: tuple[Settings, Engine],
) -> None:
    from datetime import UTC, datetime

    from cuikuan.services.replies import receive_reply
    from cuikuan.services.tasks import done, list_tasks, take

    settings, engine = book
    plan = make_plan(engine, settings, DAY, dry_run=True).candidates
    row = plan.filter(plan["status"] == "planned").row(0, named=True)
    at = datetime(2026, 11, 30, 1, tzinfo=UTC)
    result = receive_reply(engine, settings, row["recipient"], "金额不对，我没借这么多", at)
    assert result.reading.intent == "dispute"
    after = (
        make_plan(engine, settings, DAY, dry_run=True)
        .candidates.filter(lambda_in([row["customer_id"]]))
        .row(0, named=True)
    )
    assert after["reason"] == "suppressed: dispute"
    # Not a pause that runs out: a flag, kept until a person closes the dispute.
    with engine.connect() as conn:
        flags = conn.execute(
            select(customers.c.flags).where(customers.c.id == row["customer_id"])
        ).scalar_one()
    assert "dispute" in flags
    open_tasks = list_tasks(engine, "open")
    assert (
        open_tasks.height == 1
        and open_tasks["kind"][0] == "dispute"
        and open_tasks["customer"][0] == row["customer"]
    )
    task_id = int(open_tasks["id"][0])
    take(engine, task_id, "agent-1", at)
    done(engine, task_id, at, "checked the ledger", "agent-1")
    resolved = make_plan(engine, settings, DAY, dry_run=True).candidates
    assert "suppressed: dispute" not in (
        resolved.filter(lambda_in([row["customer_id"]]))["reason"].fill_null("").to_list()
    )
    assert (
        list_tasks(engine, "open").height == 0
        and list_tasks(engine, "done")["assignee"][0] == "agent-1"
    )
    receive_reply(engine, settings, row["recipient"], "再骚扰我就投诉", at)
    assert list_tasks(engine, "open")["priority"][0] == 1


def test_an_instalment_plan_sets_the_reminder_dates_until_it_is_broken(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    import polars as pl

    from cuikuan.errors import InputError
    from cuikuan.services.arrangements import agree, describe

    settings, engine = book
    plan = make_plan(engine, settings, DAY, dry_run=True).candidates
    row = plan.filter((pl.col("status") == "planned") & (pl.col("dpd") > 0)).row(0, named=True)
    overdue = Decimal(row["overdue_amount"]).scaleb(-2)
    now = datetime(2026, 11, 30, 2, tzinfo=UTC)
    with pytest.raises(InputError, match="do not cover"):
        agree(
            engine,
            settings,
            row["external_id"],
            [(DAY + timedelta(days=5), overdue - 1)],
            "agent",
            now,
        )
    half = (overdue / 2).quantize(Decimal("0.01"))
    agree(
        engine,
        settings,
        row["external_id"],
        [(DAY + timedelta(days=3), half), (DAY + timedelta(days=20), overdue - half)],
        "agent",
        now,
    )

    def candidate(day: date) -> dict[str, object] | None:
        found = make_plan(engine, settings, day, dry_run=True).candidates.filter(
            lambda_in([row["customer_id"]])
        )
        return found.row(0, named=True) if found.height else None

    # The plan's first date is three days away: the pre-due reminder, for the agreed amount.
    before = candidate(DAY)
    assert before is not None and before["step"] == "pre_due_3d" and before["dpd"] == 0
    assert before["status"] == "planned" and str(before["next_due_amount"]) == str(
        int(half.scaleb(2))
    )
    assert "instalment plan" in str(before["trail"])
    assert f"{half:,.2f}" in str(before["text"])
    # Between the plan's dates the loan is not overdue, so no escalating step matches.
    assert candidate(DAY + timedelta(days=1)) is None
    assert candidate(DAY + timedelta(days=3))["step"] == "due_today"  # type: ignore[index]
    make_plan(engine, settings, DAY + timedelta(days=6))  # the first agreed payment was missed
    assert describe(engine)[0]["status"] == "broken"
    # The original schedule is back, overdue and all: the overdue steps find the loan again.
    resumed = [candidate(DAY + timedelta(days=d)) for d in range(6, 16)]
    assert any(r is not None and int(str(r["dpd"])) > 0 for r in resumed)


def test_data_that_makes_a_text_banned_or_overlong_is_held(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    first = make_plan(engine, settings, DAY, dry_run=True).candidates
    sms = first.filter((first["status"] == "planned") & (first["channel"] == "sms"))
    bad_name, long_name = sms["customer_id"][0], sms["customer_id"][1]
    with engine.begin() as conn:
        conn.execute(customers.update().where(customers.c.id == bad_name).values(name="老赖张三"))
        conn.execute(customers.update().where(customers.c.id == long_name).values(name="王" * 400))
    again = make_plan(engine, settings, DAY, dry_run=True).candidates
    by_id = {r["customer_id"]: r for r in again.iter_rows(named=True)}
    assert by_id[bad_name]["status"] == "suppressed"
    assert "banned wording" in by_id[bad_name]["reason"]
    assert by_id[long_name]["status"] == "suppressed"
    assert "segments" in by_id[long_name]["reason"]
    others = again.filter(~again["customer_id"].is_in([bad_name, long_name]))
    assert (others["status"] == "planned").sum() == sms.height - 2


def test_one_customers_plan_decides_as_the_whole_plan_for_every_kind_of_decision(
    book: tuple[Settings, Engine],
) -> None:
    """Explain reads only the person's own loans: for customers of every status the whole plan
    gives (planned, held back, suppressed for each reason), one customer's plan decides the
    same, with the same trail."""
    import random

    settings, engine = book
    plan = make_plan(engine, settings, DAY, dry_run=True).candidates
    keys = ["customer", "step", "status", "reason", "text", "earliest_at", "trail"]
    by_kind: dict[tuple[str, str], list[str]] = {}
    for row in plan.iter_rows(named=True):
        by_kind.setdefault((row["status"], str(row["reason"])[:20]), []).append(row["customer"])
    rng = random.Random(3)
    picked = {c for people in by_kind.values() for c in rng.sample(people, min(12, len(people)))}
    assert len(by_kind) >= 2 and len(picked) >= 4
    for customer in sorted(picked):
        whole = plan.filter(plan["customer"] == customer).select(keys).sort("step").to_dicts()
        alone = make_plan(engine, settings, DAY, dry_run=True, only_customer=customer).candidates
        assert alone.select(keys).sort("step").to_dicts() == whole, customer
