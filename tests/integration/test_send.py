"""Dispatch: re-checks just before sending, expiry, uncertainty, receipts (sandbox gateway)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select, update

from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import LEASE, send_due
from cuikuan.services.importer import import_file
from cuikuan.services.planner import make_plan
from cuikuan.settings import Settings
from cuikuan.store.schema import customers, opt_outs, outbox, sandbox_messages
from tests.helpers import RULES, write_csv
from tests.integration.conftest import DAY

OPEN = datetime(2026, 11, 30, 3, tzinfo=UTC)  # 11:00 in Shanghai


def planned(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(select(outbox).where(outbox.c.status == "planned"))
        ]


def status_of(engine: Engine, oid: object) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(select(outbox.c.status, outbox.c.reason).where(outbox.c.id == oid)).one()
    return row.status, row.reason


def test_sent_messages_are_recorded_and_receipts_applied(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    rows = planned(engine)
    channel = SandboxChannel(engine, failure_share=0.2)
    report = send_due(engine, settings, channel, OPEN)
    assert report.sent == len(rows) > 0
    with engine.connect() as conn:
        texts = {r.outbox_id: r.text for r in conn.execute(select(sandbox_messages))}
    assert {r["id"]: r["text"] for r in rows} == texts
    later = send_due(engine, settings, channel, OPEN + timedelta(minutes=1))
    assert later.sent == 0
    assert later.delivered + later.undelivered == report.sent and later.undelivered > 0


def test_an_opt_out_after_planning_stops_the_message(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    victim = planned(engine)[0]
    with engine.begin() as conn:
        conn.execute(
            insert(opt_outs).values(
                customer_id=victim["customer_id"],
                channel="sms",
                source="reply 退订",
                created_at=OPEN,
            )
        )
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status_of(engine, victim["id"]) == ("suppressed", "opted out since planning")
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(sandbox_messages).where(sandbox_messages.c.outbox_id == victim["id"])
            ).first()
            is None
        )


def test_a_flag_or_a_payment_after_planning_stops_the_message(
    book: tuple[Settings, Engine], tmp_path: object
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    rows = [r for r in planned(engine) if r["step"].startswith("m")]  # type: ignore[union-attr]
    flagged, payer = rows[0], rows[1]
    with engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == flagged["customer_id"])
            .values(flags='["complaint"]')
        )
        loan = conn.execute(select(outbox.c.loan_id).where(outbox.c.id == payer["id"])).scalar_one()
        from cuikuan.store.schema import loans

        loan_ext = conn.execute(select(loans.c.external_id).where(loans.c.id == loan)).scalar_one()
    pays = write_csv(
        tmp_path / "pay.csv",
        ["还款流水号", "借据号", "还款时间", "还款金额"],
        [["PX1", loan_ext, "2026-11-30 09:00", "999999"]],
    )  # type: ignore[operator]
    import_file(engine, pays, RULES)
    send_due(engine, settings, SandboxChannel(engine), OPEN)
    assert status_of(engine, flagged["id"]) == (
        "suppressed",
        "suppressed since planning: complaint",
    )
    assert status_of(engine, payer["id"])[0] == "suppressed"
    assert "paid" in (status_of(engine, payer["id"])[1] or "")


def lapse(engine: Engine, row_id: int, status: str) -> None:
    """Leave the row in `status` with its lease run out (a dispatcher that died holding it)."""
    with engine.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(status=status, updated_at=OPEN - LEASE * 2)
        )


def test_a_closed_window_expires_and_a_lost_hand_over_becomes_uncertain(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    rows = planned(engine)
    lapse(engine, rows[0]["id"], "sending")
    report = send_due(engine, settings, SandboxChannel(engine), OPEN + timedelta(days=1))
    assert report.uncertain == 1 and report.expired == len(rows) - 1 and report.sent == 0
    assert status_of(engine, rows[0]["id"])[0] == "uncertain"
    again = send_due(engine, settings, SandboxChannel(engine), OPEN + timedelta(days=1, minutes=5))
    assert again.sent == 0 and status_of(engine, rows[0]["id"])[0] == "uncertain"


def test_nothing_is_sent_before_the_window_opens(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    early = datetime(2026, 11, 29, 23, tzinfo=UTC)  # 07:00 in Shanghai
    assert send_due(engine, settings, SandboxChannel(engine), early).sent == 0
    assert planned(engine)


def test_the_timeline_shows_messages_receipts_replies_and_payments_in_order(
    book: tuple[Settings, Engine],
) -> None:
    from cuikuan.services.replies import receive_reply
    from cuikuan.services.timeline import timeline

    settings, engine = book
    make_plan(engine, settings, DAY)
    row = planned(engine)[0]
    channel = SandboxChannel(engine, failure_share=0.0)
    send_due(engine, settings, channel, OPEN)
    send_due(engine, settings, channel, OPEN + timedelta(minutes=1))
    receive_reply(engine, settings, str(row["recipient"]), "退订", OPEN + timedelta(hours=1))
    with engine.connect() as conn:
        customer = conn.execute(
            select(customers.c.external_id).where(customers.c.id == row["customer_id"])
        ).scalar_one()
    events = timeline(engine, settings, customer)
    kinds = [e.kind for e in events]
    assert (
        kinds.index("planned")
        < kinds.index("sent")
        < kinds.index("delivered")
        < kinds.index("reply")
    )
    assert "opt-out" in kinds
    assert [e.at for e in events] == sorted(e.at for e in events)
    planned_event = events[kinds.index("planned")]
    assert planned_event.detail["trail"] and planned_event.detail["text"] == row["text"]


def test_the_guardrail_pauses_a_template_that_draws_opt_outs(book: tuple[Settings, Engine]) -> None:
    from cuikuan.services.guardrail import paused_templates, resume
    from cuikuan.services.replies import receive_reply

    settings, engine = book
    settings = settings.model_copy(
        update={"plan": settings.plan.model_copy(update={"guardrail_min_messages": 5})}
    )
    make_plan(engine, settings, DAY)
    rows = planned(engine)
    send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    template = rows[0]["template"]
    angry = [r for r in rows if r["template"] == template][:3]
    for r in angry:
        receive_reply(engine, settings, str(r["recipient"]), "退订", OPEN + timedelta(hours=2))
    plan = make_plan(engine, settings, DAY + timedelta(days=1), now=OPEN + timedelta(days=1))
    reason = paused_templates(engine)[str(template)]
    assert "opt-out share" in reason
    blocked = plan.candidates.filter(plan.candidates["template"] == template)
    assert blocked.height > 0
    assert all("paused by the guardrail" in r for r in blocked["reason"].to_list())
    assert resume(engine, str(template)) and str(template) not in paused_templates(engine)


def test_one_opt_out_confirmation_where_the_pack_allows_it(book: tuple[Settings, Engine]) -> None:
    from cuikuan.services.replies import receive_reply

    settings, engine = book
    settings = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"opt_out_confirmation": True})}
    )
    make_plan(engine, settings, DAY)
    row = planned(engine)[0]
    first = receive_reply(engine, settings, str(row["recipient"]), "STOP", OPEN)
    assert any("confirmation queued" in d for d in first.done)
    again = receive_reply(
        engine, settings, str(row["recipient"]), "退订", OPEN + timedelta(minutes=5)
    )
    assert any("already confirmed today" in d for d in again.done)
    report = send_due(engine, settings, SandboxChannel(engine), OPEN + timedelta(minutes=2))
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.step, outbox.c.status, outbox.c.text).where(
                outbox.c.customer_id == row["customer_id"]
            )
        ).all()
    by_step = {r.step: r for r in rows}
    assert by_step["optout_confirmation"].status == "sent"
    assert by_step[str(row["step"])].status == "suppressed"  # the reminder itself stops
    assert "已退订" in by_step["optout_confirmation"].text and report.sent >= 1


def test_no_confirmation_in_the_cn_pack_by_default(book: tuple[Settings, Engine]) -> None:
    from cuikuan.services.replies import receive_reply

    settings, engine = book
    make_plan(engine, settings, DAY)
    row = planned(engine)[0]
    result = receive_reply(engine, settings, str(row["recipient"]), "退订", OPEN)
    assert not any("confirmation" in d for d in result.done)


def test_dispatch_works_in_rounds_and_sends_each_row_once(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cuikuan.dispatch import sender

    settings, engine = book
    make_plan(engine, settings, DAY)
    rows = planned(engine)
    monkeypatch.setattr(sender, "ROUND", 7)  # several rounds for a small book
    report = send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    assert report.sent + sum(report.suppressed.values()) == len(rows) > 7
    with engine.connect() as conn:
        handed = conn.execute(select(sandbox_messages.c.outbox_id)).scalars().all()
    assert len(handed) == len(set(handed)) == report.sent


def test_a_claim_that_lapses_before_hand_over_is_planned_again_not_uncertain(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    rows = planned(engine)
    lapse(engine, rows[0]["id"], "claimed")
    report = send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    assert report.released == 1 and report.uncertain == 0
    assert status_of(engine, rows[0]["id"])[0] in ("sent", "suppressed")


def test_an_operator_resolves_uncertain_messages(book: tuple[Settings, Engine]) -> None:
    from cuikuan.errors import InputError, NotFound
    from cuikuan.services.outbox import messages_in, resolve_uncertain

    settings, engine = book
    make_plan(engine, settings, DAY)
    a, b, c = (r["id"] for r in planned(engine)[:3])
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id.in_([a, b])).values(status="uncertain"))
    assert {m["id"] for m in messages_in(engine, "uncertain")} == {a, b}
    with pytest.raises(InputError, match="only uncertain"):
        resolve_uncertain(engine, [a, c], "sent", "li", OPEN)
    with pytest.raises(NotFound):
        resolve_uncertain(engine, [999_999], "sent", "li", OPEN)
    assert resolve_uncertain(engine, [a], "not_sent", "li", OPEN) == 1
    assert resolve_uncertain(engine, [b], "resend", "li", OPEN) == 1
    assert status_of(engine, a) == ("failed", "resolved by li: not sent")
    assert status_of(engine, b) == ("planned", "resolved by li: resend")
    report = send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    assert status_of(engine, b)[0] in ("sent", "suppressed") and status_of(engine, a)[0] == "failed"
    assert report.sent >= 1
