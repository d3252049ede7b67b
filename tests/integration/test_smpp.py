"""SMPP end to end: cuikuan's client against the test SMSC on a real loopback socket."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from cuikuan.channels.base import (
    AuthError,
    OutgoingMessage,
    Permanent,
    Transient,
    Uncertain,
)
from cuikuan.channels.smpp.channel import SmppChannel
from cuikuan.dispatch.inbound import hear
from cuikuan.dispatch.sender import send_due
from cuikuan.services.planner import make_plan
from cuikuan.settings import Settings
from cuikuan.store.schema import message_parts, number_stops, outbox, receipts, replies
from tests.integration.conftest import DAY
from tests.smsc_helpers import CLOCK, received_messages, running_smsc, wait_for

OPEN = datetime(2026, 11, 30, 3, tzinfo=UTC)
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
LONG_ZH = (
    "【示例银行】尊敬的张先生，您的借款本期应还1,234.50元已逾期3天，请尽快通过App或网银还款，"
    "如已还款请忽略本短信。如有困难可回复“分期”与我们协商还款计划。退订回T"
)


def messages(n: int) -> list[OutgoingMessage]:
    out = []
    for i in range(n):
        text = (
            f"{LONG_ZH} 编号{i}"
            if i % 3 == 0
            else f"Reminder {i}: {{EUR}} [5] due ~ 30 Nov 😀"
            if i % 3 == 1
            else f"Payment reminder #{i}: your instalment is due tomorrow."
        )
        out.append(OutgoingMessage(i + 1, "sms", f"+86139{i:08d}"[:14] + "7", text))
    return out


def test_1000_messages_arrive_exactly_once_and_reassemble_exactly() -> None:
    batch = messages(1000)
    with running_smsc() as smsc:
        channel = smsc.channel(window=32)
        try:
            results = channel.send(batch, NOW)
            parts = sum(len(r.part_ids) for r in results)
            got: list[object] = []
            wait_for(lambda: bool(got.extend(channel.receipts(NOW))) or len(got) >= parts)
        finally:
            channel.close()
        records = list(smsc.smsc.received)
    assert [r.outbox_id for r in results] == [m.outbox_id for m in batch]
    assert all(r.error is None and r.provider_id for r in results)
    assert parts > 1000  # the long Chinese ones went in several parts
    arrived = received_messages(records)
    assert arrived == {m.recipient.lstrip("+"): [m.text] for m in batch}
    ids = [pid for r in results for pid in r.part_ids]
    assert len(set(ids)) == len(ids) == len(records)
    assert len(got) == parts and all(r.delivered for r in got)  # type: ignore[attr-defined]


def test_every_kind_of_refusal_is_handled_and_the_session_survives() -> None:
    special = {
        "throttled": "+8613900000058",
        "queue_full": "+8613900000014",
        "bad_destination": "+8613900000011",
        "vendor": "+8613900000401",
        "undeliverable": "+8613900000000",
        "expired": "+8613900000003",
        "fine": "+8613900000123",
    }
    batch = [
        OutgoingMessage(i, "sms", number, f"提醒 {name}")
        for i, (name, number) in enumerate(special.items())
    ]
    with running_smsc() as smsc:
        channel = smsc.channel()
        try:
            results = {r.outbox_id: r for r in channel.send(batch, NOW)}
            got: list[object] = []
            wait_for(lambda: bool(got.extend(channel.receipts(NOW))) or len(got) >= 5)
            binds = smsc.smsc.stats["binds"]
        finally:
            channel.close()
    by_name = {name: results[i] for i, name in enumerate(special)}
    for name in ("throttled", "queue_full", "undeliverable", "expired", "fine"):
        assert by_name[name].error is None, name
    assert isinstance(by_name["bad_destination"].error, Permanent)
    assert "0x0000000B" in str(by_name["bad_destination"].error)
    assert isinstance(by_name["vendor"].error, Permanent)
    assert "vendor-specific" in str(by_name["vendor"].error)
    outcome = {r.provider_id: r.outcome for r in got}  # type: ignore[attr-defined]
    assert outcome[by_name["undeliverable"].provider_id] == "undelivered"
    assert outcome[by_name["expired"].provider_id] == "expired"
    assert outcome[by_name["fine"].provider_id] == "delivered"
    assert binds == 1  # refusals, vendor statuses included, never dropped the session


def test_a_disconnect_in_the_middle_of_a_window_makes_only_the_unanswered_uncertain() -> None:
    batch = [m for m in messages(300) if m.outbox_id % 3 != 1]  # one part each
    with running_smsc(drop_after=50) as smsc:
        channel = smsc.channel(window=16)
        try:
            results = channel.send(batch, NOW)
            again = channel.send([OutgoingMessage(999, "sms", "+8613700000001", "after")], NOW)
        finally:
            channel.close()
        records = list(smsc.smsc.received)
        binds = smsc.smsc.stats["binds"]
    uncertain = [r for r in results if isinstance(r.error, Uncertain)]
    sent = [r for r in results if r.error is None]
    assert 1 <= len(uncertain) <= 16 and len(sent) + len(uncertain) == len(batch)
    assert binds == 2 and again[0].error is None
    arrived = received_messages(records)
    assert all(len(texts) == 1 for texts in arrived.values())  # nothing resent
    # Every message the SMSC lacks is among the uncertain ones, never among the "sent".
    sent_numbers = {
        m.recipient.lstrip("+") for m in batch if m.outbox_id in {r.outbox_id for r in sent}
    }
    assert sent_numbers <= set(arrived)


def test_wrong_credentials_stop_the_channel_with_an_auth_error() -> None:
    with running_smsc(system_id="lender", password="right") as smsc:
        channel = smsc.channel(system_id="lender", password="wrong", connect_timeout=2.0)
        try:
            results = channel.send(messages(3), NOW)
        finally:
            channel.close()
    assert all(isinstance(r.error, AuthError) for r in results), results


def test_an_unreachable_smsc_is_transient() -> None:
    from cuikuan.channels.smpp.session import SessionConfig

    channel = SmppChannel(SessionConfig(port=1, connect_timeout=0.5), clock=CLOCK)
    try:
        results = channel.send(messages(2), NOW)
    finally:
        channel.close()
    assert all(isinstance(r.error, Transient) for r in results)


def test_tolerant_receipts_reach_the_outbox(book: tuple[Settings, Engine]) -> None:
    """Receipt ids in decimal (the submit answer was hex), dates without seconds, lower-case
    states, no TLVs: every message still ends delivered, through the parts table."""
    settings, engine = book
    make_plan(engine, settings, DAY)
    with running_smsc(receipt_ids="decimal", receipt_seconds=False, receipt_lowercase=True,
                      receipt_tlvs=False, receipt_delay=0.05) as smsc:  # fmt: skip
        channel = smsc.channel()
        try:
            report = send_due(engine, settings, channel, OPEN)
            assert report.sent > 0

            def all_in() -> bool:
                # Counted in the database: receipts that came while send_due was still
                # recording were applied by it, not by a later drain (a race under load).
                hear(engine, settings, channel, OPEN)
                with engine.connect() as conn:
                    final = conn.execute(
                        select(func.count()).where(
                            outbox.c.status.in_(("delivered", "undelivered", "expired"))
                        )
                    ).scalar_one()
                return final >= report.sent

            wait_for(all_in)
        finally:
            channel.close()
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        )
        unmatched = conn.execute(
            select(func.count()).select_from(receipts).where(receipts.c.outbox_id.is_(None))
        ).scalar_one()
        parts = conn.execute(select(func.count()).select_from(message_parts)).scalar_one()
    assert statuses.get("delivered") == report.sent and "sent" not in statuses
    assert unmatched == 0 and parts >= report.sent


def test_a_receipt_before_its_submit_is_recorded_is_matched_later(
    book: tuple[Settings, Engine],
) -> None:
    from cuikuan.channels.base import Receipt
    from cuikuan.dispatch.receipts import record_parts, record_receipts

    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        oid = conn.execute(select(outbox.c.id).limit(1)).scalar_one()
        conn.execute(outbox.update().where(outbox.c.id == oid).values(status="sent"))
    early = record_receipts(engine, "smpp", [Receipt("00AB12", True, OPEN, "DELIVRD")], OPEN)
    assert not early
    with engine.begin() as conn:
        record_parts(conn, "smpp", [(oid, ("ab12",))], OPEN)
    later = record_receipts(engine, "smpp", [], OPEN + timedelta(seconds=5))
    assert later["delivered"] == 1


def test_a_reply_over_smpp_opts_the_number_out_and_the_next_plan_skips_it(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    before = make_plan(engine, settings, DAY, dry_run=True).candidates
    row = before.filter(before["status"] == "planned").row(0, named=True)
    long_reply = "退订。" + "我已经说过很多次了，请不要再给我发这种短信，" * 4
    with running_smsc() as smsc:
        channel = smsc.channel()
        try:
            assert channel.wait_bound(5)
            assert smsc.inject(row["recipient"], long_reply) > 1  # concatenated on the way in
            heard: list[object] = []
            wait_for(
                lambda: (
                    bool(heard.extend(hear(engine, settings, channel, OPEN).replies)) or bool(heard)
                )
            )
        finally:
            channel.close()
    with engine.connect() as conn:
        stored = conn.execute(select(replies.c.text, replies.c.source, replies.c.intent)).one()
        opted = (
            conn.execute(
                select(number_stops.c.channel).where(number_stops.c.address == row["recipient"])
            )
            .scalars()
            .all()
        )
    assert stored.text == long_reply and stored.source == "smpp" and stored.intent == "opt_out"
    assert opted == ["sms"]
    after = make_plan(engine, settings, DAY, dry_run=True).candidates
    again = after.filter(after["customer_id"] == row["customer_id"]).row(0, named=True)
    assert (again["status"], again["reason"]) == ("suppressed", "suppressed: opted_out")


def test_receipts_sent_as_data_sm_are_read_and_answered() -> None:
    with running_smsc(data_sm=True) as smsc:
        channel = smsc.channel()
        try:
            results = channel.send(messages(5), NOW)
            got: list[object] = []
            wait_for(lambda: bool(got.extend(channel.receipts(NOW))) or len(got) >= 5)
            # The acknowledgements travel after the receipts are handed on: give them a moment.
            wait_for(lambda: smsc.smsc.stats["responses"] >= 5)
            answered = smsc.smsc.stats["responses"]
        finally:
            channel.close()
    assert {r.provider_id for r in got} >= {r.provider_id for r in results}  # type: ignore[attr-defined]
    assert answered >= 5  # every data_sm got its data_sm_resp


def test_keep_alive_keeps_a_quiet_session_and_a_dead_link_is_rebound() -> None:
    with running_smsc() as smsc:
        channel = smsc.channel(enquire_link_interval=0.2, response_timeout=0.5)
        try:
            assert channel.wait_bound(5)
            wait_for(lambda: smsc.smsc.stats["enquire_links"] >= 3)
            assert smsc.smsc.stats["binds"] == 1  # answered keep-alives keep the one bind
        finally:
            channel.close()
    with running_smsc(silent_keepalive=True) as smsc:
        channel = smsc.channel(enquire_link_interval=0.2, response_timeout=0.5)
        try:
            assert channel.wait_bound(5)
            # Unanswered keep-alives close the session; the client binds again by itself.
            wait_for(lambda: smsc.smsc.stats["binds"] >= 2, seconds=15)
        finally:
            channel.close()


def test_the_channel_keeps_to_its_agreed_rate() -> None:
    batch = [OutgoingMessage(i, "sms", f"+8613700{i:05d}7", f"reminder {i}") for i in range(300)]
    with running_smsc(max_tps=260) as smsc:  # the carrier throttles above 260 a second
        channel = smsc.channel(tps=200.0)
        try:
            started = time.monotonic()
            results = channel.send(batch, NOW)
            took = time.monotonic() - started
        finally:
            channel.close()
        throttled = smsc.smsc.stats["throttled"]
    assert all(r.error is None for r in results)
    # 300 at 200 a second, after a burst of a tenth of a second's worth: at least ~1.4 s.
    assert took >= 1.3 and throttled == 0


def test_refused_credentials_stop_the_provider_for_the_run_and_the_next_run_tries_again(
    book: tuple[Settings, Engine],
) -> None:
    """A bind refused put rows back to planned and claimed them again until --limit ran out,
    reporting nothing wrong. Now the run stops using the provider, says so, and the rows wait,
    planned, for the next run."""
    from datetime import timedelta

    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.connect() as conn:
        due = conn.execute(
            select(func.count()).where(outbox.c.status == "planned", outbox.c.earliest_at <= OPEN)
        ).scalar_one()
    with running_smsc(system_id="lender", password="right") as smsc:
        wrong = smsc.channel(system_id="lender", password="wrong", connect_timeout=2.0)
        try:
            report = send_due(engine, settings, wrong, OPEN, limit=10 * due)
        finally:
            wrong.close()
        assert report.stopped_channels and report.sent == 0
        assert report.waiting == due  # each row taken once, not again and again
        with engine.connect() as conn:
            planned = conn.execute(
                select(func.count()).where(outbox.c.status == "planned")
            ).scalar_one()
        assert planned >= due
        later = OPEN + timedelta(minutes=2)
        right = smsc.channel(system_id="lender", password="right")
        try:
            again = send_due(engine, settings, right, later)
        finally:
            right.close()
    assert again.sent > 0 and not again.stopped_channels
