"""SMPP: nothing the carrier tells us is lost, and one bad number or an outage does not stall the
day. Against the test SMSC (smpplib's codec) on a real loopback socket, on both databases."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from cuikuan.channels.base import OutgoingMessage, Receipt, Transient, Unreachable
from cuikuan.channels.smpp import pdu
from cuikuan.channels.smpp.channel import SmppChannel, validity
from cuikuan.channels.smpp.inbound import Arrival, MemoryJournal
from cuikuan.channels.smpp.session import SessionConfig, SmppClient
from cuikuan.dispatch.inbound import hear
from cuikuan.dispatch.receipts import record_parts, record_receipts
from cuikuan.dispatch.sender import send_due
from cuikuan.services.outbox import provider_health
from cuikuan.services.planner import make_plan
from cuikuan.settings import Settings
from cuikuan.store.inbound_pdus import StoredJournal
from cuikuan.store.schema import (
    inbound_pdus,
    number_stops,
    outbox,
    provider_states,
    receipts,
    replies,
    tasks,
)
from cuikuan.store.times import as_utc
from tests.integration.conftest import DAY, build_book
from tests.smsc_helpers import CLOCK, running_smsc, wait_for

OPEN = datetime(2026, 11, 30, 3, tzinfo=UTC)  # 11:00 in Shanghai: the day's window is open


@pytest.fixture
def busy_book(tmp_path: Path, db_url: str) -> tuple[Settings, Engine]:
    """A book whose day has a few hundred messages (the small one has about twenty)."""
    return build_book(tmp_path, db_url, 4000, 11)


def count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int(conn.execute(query.where(*where)).scalar_one())  # type: ignore[arg-type]


def stored(engine: Engine) -> int:
    return count(engine, inbound_pdus)


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        )


def test_a_stop_in_national_form_on_the_bind_send_holds_stops_the_message(
    book: tuple[Settings, Engine],
) -> None:
    """The issue's case: "TD" from 13098492251 (no country code) arrives on the connection
    `send` holds. It is stored before it is acknowledged, read in the book's region as the
    ledger's numbers are (+86, not North America), and the borrower's message is not sent."""
    settings, engine = book
    plan = make_plan(engine, settings, DAY).candidates
    row = plan.filter(plan["status"] == "planned").row(0, named=True)
    national = row["recipient"].removeprefix("+86")
    with running_smsc() as smsc:
        channel = smsc.channel(journal=StoredJournal(engine))
        try:
            assert channel.wait_bound(5)
            smsc.inject(national, "TD", ton=0)  # type of number unknown: as many carriers send
            wait_for(lambda: stored(engine) == 1 and smsc.smsc.stats["acked"] == 1)
            report = send_due(engine, settings, channel, OPEN)
            # Receipts for the last messages may come after send's last read: once every one
            # is stored (acknowledged), the next read takes them.
            wait_for(lambda: smsc.smsc.stats["acked"] == 1 + smsc.smsc.stats["receipts"])
            hear(engine, settings, channel, OPEN)
        finally:
            channel.close()
    assert report.sent > 0 and report.replies == 1
    with engine.connect() as conn:
        reply = conn.execute(select(replies.c.sender, replies.c.intent, replies.c.source)).one()
        stops = conn.execute(select(number_stops.c.address)).scalars().all()
        mine = conn.execute(select(outbox.c.status, outbox.c.reason).where(outbox.c.customer_id == row["customer_id"], outbox.c.plan_date == DAY)).one()  # fmt: skip
    assert tuple(reply) == (row["recipient"], "opt_out", "smpp")
    assert stops == [row["recipient"]]
    assert mine.status == "suppressed" and "opted" in mine.reason
    assert count(engine, inbound_pdus, inbound_pdus.c.state != "done") == 0


def test_every_acknowledged_receipt_and_reply_was_stored_first() -> None:
    """Whatever the SMSC saw acknowledged is in the journal, even if the process never reads it
    (as when it is killed), and a journal that cannot store answers with a temporary error so
    the SMSC keeps it."""

    class Failing:
        def keep(self, provider: str, arrivals: Sequence[object]) -> None:
            raise OSError("disk full")

    class Counting:
        def __init__(self) -> None:
            self.kept = 0

        def keep(self, provider: str, arrivals: Sequence[object]) -> None:
            self.kept += len(arrivals)

    journal = Counting()
    with running_smsc(receipt_delay=0.01) as smsc:
        channel = smsc.channel(journal=journal)  # type: ignore[arg-type]
        try:
            results = channel.send([OutgoingMessage(i, "sms", f"+8613{i:05d}1234", f"m{i}") for i in range(300)], OPEN)  # fmt: skip
            assert all(r.error is None for r in results)
            smsc.inject("+8613800138000", "退订")
            wait_for(lambda: smsc.smsc.stats["acked"] >= 301)
        finally:
            channel.close()
        assert journal.kept >= smsc.smsc.stats["acked"] == 301
    with running_smsc() as smsc:
        channel = smsc.channel(journal=Failing())
        try:
            assert channel.wait_bound(5)
            smsc.inject("+8613800138000", "退订")
            wait_for(lambda: smsc.smsc.stats["ack_refused"] == 1)
        finally:
            channel.close()
        assert smsc.smsc.stats["acked"] == 0


KILLED_SEND = """
import sys
from datetime import datetime
from pathlib import Path
from cuikuan.channels.smpp.channel import SmppChannel
from cuikuan.channels.smpp.session import SessionConfig
from cuikuan.dispatch.sender import send_due
from cuikuan.settings import load_settings
from cuikuan.store.engine import open_database
from cuikuan.store.inbound_pdus import StoredJournal
from cuikuan.store.times import as_utc

settings = load_settings(Path(sys.argv[1]), environ={})
engine = open_database(settings.database_url)
channel = SmppChannel(SessionConfig(port=int(sys.argv[2]), tps=25.0), source_addr="1069",
                      clock=lambda: datetime.fromisoformat(sys.argv[3]),
                      journal=StoredJournal(engine))
send_due(engine, settings, channel, datetime.fromisoformat(sys.argv[3]))
print("finished", flush=True)
"""


def test_a_dispatcher_killed_mid_run_loses_no_receipt(
    busy_book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    """kill -9 while receipts pour in: every receipt the SMSC saw acknowledged is applied by
    the next run (none stays `sent` for ever), and nothing was submitted twice."""
    settings, engine = busy_book
    make_plan(engine, settings, DAY)
    config = Path(tmp_path / "cuikuan.toml")
    with running_smsc(receipt_delay=0.02) as smsc:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_SEND, str(config), str(smsc.port), OPEN.isoformat()],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: smsc.smsc.stats["acked"] >= 40 or proc.poll() is not None, 60)
            assert proc.poll() is None, proc.communicate()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        acked = smsc.smsc.stats["acked"]
        submitted = [r["destination"] for r in smsc.smsc.received]
        assert "finished" not in (proc.stdout.read() if proc.stdout else "")
        assert stored(engine) >= acked
        # The next run (its channel bound, nothing left to send but what the kill left planned)
        # reads what the killed one stored.
        channel = smsc.channel(journal=StoredJournal(engine))
        try:
            later = OPEN + timedelta(minutes=20)  # the killed run's claims have lapsed
            send_due(engine, settings, channel, later)
            wait_for(lambda: _settled(engine, settings, channel, later))
        finally:
            channel.close()
        resubmitted = [r["destination"] for r in smsc.smsc.received]
    assert count(engine, inbound_pdus, inbound_pdus.c.state == "new") == 0
    assert count(engine, receipts) == stored(engine)  # every stored receipt became a receipt row
    assert len(set(resubmitted)) == len(resubmitted) >= len(submitted)  # none sent twice
    left = statuses(engine)
    # What the killed run had handed over but not recorded is uncertain (never resent); every
    # other message handed over has its receipt.
    assert left.get("sent", 0) == 0, left


def _settled(engine: Engine, settings: Settings, channel: SmppChannel, now: datetime) -> bool:
    hear(engine, settings, channel, now)
    return statuses(engine).get("sent", 0) == 0


def test_an_old_receipt_never_settles_a_new_message_with_the_same_id(
    book: tuple[Settings, Engine],
) -> None:
    """An SMSC restarted its id counter: a receipt stored before a part with its id was
    accepted stays unmatched (visible) instead of settling that newer message; one that comes
    after it is matched."""
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        oid = conn.execute(select(outbox.c.id).limit(1)).scalar_one()
        conn.execute(update(outbox).where(outbox.c.id == oid).values(status="sent"))
    old = record_receipts(engine, "smpp", [Receipt("1f40", False, OPEN, "UNDELIV")], OPEN)
    assert not old
    later = OPEN + timedelta(minutes=10)
    with engine.begin() as conn:
        record_parts(conn, "smpp", [(oid, ("1f40",))], later)
    assert not record_receipts(engine, "smpp", [], later)  # the old receipt: still unmatched
    moved = record_receipts(engine, "smpp", [Receipt("1F40", True, later, "DELIVRD")], later)
    assert moved["delivered"] == 1
    assert count(engine, receipts, receipts.c.outbox_id.is_(None)) == 1


def test_a_restarted_smsc_that_reuses_ids_gives_no_message_another_ones_receipt(
    busy_book: tuple[Settings, Engine],
) -> None:
    """End to end: the first SMSC dies with its receipts undelivered (and the dispatcher with
    its parts unrecorded: the receipts are stored, their parts are not); a new one hands out
    the same ids from the start. No message of the second run takes a first-run receipt."""
    settings, engine = busy_book
    make_plan(engine, settings, DAY)
    with running_smsc(ids_from=5000) as first:
        channel = first.channel(journal=StoredJournal(engine))
        try:
            early = channel.send([OutgoingMessage(10_000 + i, "sms", f"+8615{i:05d}1237", "x") for i in range(30)], OPEN)  # fmt: skip
            wait_for(lambda: stored(engine) >= 30)
        finally:
            channel.close()
    ids = {r.provider_id for r in early}
    hear(engine, settings, channel, OPEN)  # stored as receipts, matching nothing
    with running_smsc(ids_from=5000) as second:
        channel = second.channel(journal=StoredJournal(engine))
        try:
            later = OPEN + timedelta(minutes=5)
            report = send_due(engine, settings, channel, later, limit=30)
            wait_for(lambda: _settled(engine, settings, channel, later))
        finally:
            channel.close()
    with engine.connect() as conn:
        reused = conn.execute(select(outbox.c.provider_id).where(outbox.c.provider_id.in_(ids))).scalars().all()  # fmt: skip
    assert report.sent == 30 and len(reused) == 30  # the ids were reused
    assert statuses(engine).get("delivered") == 30
    assert count(engine, receipts, receipts.c.outbox_id.is_(None)) == 30  # the old ones, visible


def test_a_number_throttled_for_ever_does_not_hold_the_batch_and_the_rate_recovers() -> None:
    batch = [OutgoingMessage(i, "sms", f"+8613{i:05d}1235", f"m{i}") for i in range(400)]
    stuck = [OutgoingMessage(1000 + i, "sms", f"+8613900{i:02d}0059", "stuck") for i in range(15)]
    few = [OutgoingMessage(2000, "sms", "+8613900000058", "throttled twice")]
    with running_smsc() as smsc:
        channel = smsc.channel(tps=2000.0)
        try:
            began = time.monotonic()
            results = {r.outbox_id: r for r in channel.send(batch + stuck + few, OPEN)}
            took = time.monotonic() - began
            client = channel._clients[0]
            rate_after = client._limiter.rate
        finally:
            channel.close()
    assert all(results[m.outbox_id].error is None for m in batch + few)
    assert all(isinstance(results[m.outbox_id].error, Transient) for m in stuck)
    assert took < 3.0, took  # 15 stuck numbers cost moments, not 11 times the run
    assert rate_after > 2000.0 / 2  # slowed by the throttling, and climbing back


def test_an_outage_leaves_the_messages_planned_and_the_provider_down(
    busy_book: tuple[Settings, Engine],
) -> None:
    """No SMSC: one connect timeout for the whole run, not one per batch; nothing failed, no
    attempt spent, the provider down with its next try; later the SMSC is back and they go;
    what is still waiting when its window closes expires, never fails."""
    settings, engine = busy_book
    make_plan(engine, settings, DAY)
    planned = statuses(engine)["planned"]
    channel = SmppChannel(
        SessionConfig(port=1, connect_timeout=0.5), journal=StoredJournal(engine), clock=CLOCK
    )
    try:
        began = time.monotonic()
        report = send_due(engine, settings, channel, OPEN)
        took = time.monotonic() - began
    finally:
        channel.close()
    assert report.sent == report.failed == 0 and "smpp" in report.down
    assert took < 5.0, took
    assert statuses(engine)["planned"] == planned
    with engine.connect() as conn:
        state = conn.execute(select(provider_states)).one()
        attempts = conn.execute(select(func.max(outbox.c.attempts))).scalar_one()
    assert state.state == "down" and state.next_try_at is not None
    assert not attempts
    health = provider_health(engine)
    assert [(h["provider"], h["state"]) for h in health] == [("smpp", "down")]
    assert "connect timeout" in health[0]["detail"]
    with running_smsc() as smsc:
        channel = smsc.channel(journal=StoredJournal(engine))
        try:
            later = OPEN + timedelta(minutes=2)
            report = send_due(engine, settings, channel, later, limit=50)
        finally:
            channel.close()
    assert report.sent == 50 and not report.down
    with engine.connect() as conn:
        assert conn.execute(select(provider_states.c.state)).scalar_one() == "up"
    closed = OPEN + timedelta(days=1)
    send_due(
        engine,
        settings,
        SmppChannel(SessionConfig(port=1, connect_timeout=0.2), clock=CLOCK),
        closed,
    )
    left = statuses(engine)
    # The 50 sent ones are delivered (or, a receipt still on its way, expired for want of it).
    assert "failed" not in left and "planned" not in left and left["expired"] >= planned - 50


def test_messages_carry_their_window_as_validity_and_expire_without_a_receipt(
    busy_book: tuple[Settings, Engine],
) -> None:
    settings, engine = busy_book
    make_plan(engine, settings, DAY)
    with running_smsc(receipt_delay=3600) as smsc:  # the receipts never come
        channel = smsc.channel(journal=StoredJournal(engine))
        try:
            report = send_due(engine, settings, channel, OPEN, limit=20)
        finally:
            channel.close()
        records = list(smsc.smsc.received)
    with engine.connect() as conn:
        windows = dict(conn.execute(select(outbox.c.recipient, outbox.c.latest_at).where(outbox.c.status == "sent")).all())  # fmt: skip
    assert report.sent == 20 and len(records) >= 20
    for r in records:
        latest = as_utc(windows["+" + r["destination"]])
        assert r["validity_period"] == validity(latest)
    channel = SmppChannel(
        SessionConfig(port=1, connect_timeout=0.2), journal=StoredJournal(engine), clock=CLOCK
    )
    late = max(as_utc(w) for w in windows.values()) + timedelta(hours=1, minutes=1)
    report = send_due(engine, settings, channel, late, limit=0)
    assert report.no_receipt == 20 and "sent" not in statuses(engine)


def test_a_reply_from_a_number_that_cannot_be_placed_goes_to_a_person(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    with running_smsc() as smsc:
        channel = smsc.channel(journal=StoredJournal(engine))
        try:
            assert channel.wait_bound(5)
            smsc.inject("12345", "退订", ton=2)  # no number of the region, and said national
            wait_for(lambda: stored(engine) == 1)
            heard = hear(engine, settings, channel, OPEN)
        finally:
            channel.close()
    assert heard.unplaced == 1 and not heard.replies
    with engine.connect() as conn:
        task = conn.execute(select(tasks.c.customer_id, tasks.c.priority, tasks.c.summary)).one()
        assert conn.execute(select(func.count()).select_from(number_stops)).scalar_one() == 0
    assert task.customer_id is None and task.priority == 1 and "'12345'" in task.summary


def test_several_binds_share_the_agreed_rate() -> None:
    batch = [OutgoingMessage(i, "sms", f"+8613{i:05d}1236", f"m{i}") for i in range(300)]
    with running_smsc() as smsc:
        channel = smsc.channel(sessions=3, tps=300.0)
        try:
            began = time.monotonic()
            results = channel.send(batch, OPEN)
            took = time.monotonic() - began
            binds = smsc.smsc.stats["binds"]
        finally:
            channel.close()
    assert all(r.error is None for r in results) and binds == 3
    assert took >= 0.85, took  # 300 at 300 a second across the three, less one burst


def test_an_unreachable_smsc_is_unreachable_not_failed() -> None:
    channel = SmppChannel(SessionConfig(port=1, connect_timeout=0.3), clock=CLOCK)
    try:
        results = channel.send([OutgoingMessage(1, "sms", "+8613800138000", "x")], OPEN)
    finally:
        channel.close()
    assert isinstance(results[0].error, Unreachable)


class _Recording(MemoryJournal):
    """The in-memory journal, also noting which bind each PDU came on."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[str] = []

    def keep(self, provider: str, arrivals: Sequence[Arrival]) -> None:
        self.sessions += [a.session for a in arrivals]
        super().keep(provider, arrivals)


def test_separate_binds_send_on_transmitters_and_hear_on_the_receiver() -> None:
    """A carrier that wants transmitter and receiver binds apart: every submit goes out on a
    transmitter, every receipt and reply comes in on the receiver, none is lost."""
    batch = [OutgoingMessage(i, "sms", f"+8613{i:05d}1236", f"m{i}") for i in range(120)]
    journal = _Recording()
    with running_smsc() as smsc:
        channel = smsc.channel(journal=journal, sessions=2)
        channel.receivers = 1
        try:
            assert channel.wait_bound(5)
            modes = sorted(s.mode for s in smsc.smsc.sessions)
            results = channel.send(batch, OPEN)
            smsc.inject("+8613800138000", "退订")
            wait_for(lambda: len(journal.sessions) == len(batch) + 1)
            got = channel.receipts(OPEN)
            said = channel.replies(OPEN)
        finally:
            channel.close()
    assert modes == ["receiver", "transmitter", "transmitter"]
    assert all(r.error is None for r in results)
    assert {r.provider_id for r in got} == {r.provider_id for r in results}
    assert [r.text for r in said] == ["退订"]
    assert all("/re@" in s for s in journal.sessions), set(journal.sessions)


def test_listen_holds_only_the_receivers_and_gets_what_came_while_none_was_bound() -> None:
    """Receipts that come after the sending process has gone wait at the SMSC; a hear-only
    channel (what `listen` holds) binds the receivers alone and takes every one of them."""
    batch = [OutgoingMessage(i, "sms", f"+8613{i:05d}1236", f"m{i}") for i in range(20)]
    with running_smsc(receipt_delay=1.0) as smsc:
        sender = smsc.channel(sessions=1)
        sender.receivers = 1
        try:
            results = sender.send(batch, OPEN)
        finally:
            sender.close()
        wait_for(lambda: smsc.smsc.stats["receipts"] == len(batch))
        journal = _Recording()
        hearer = smsc.channel(journal=journal, sessions=1)
        hearer.receivers, hearer.hear_only = 2, True
        try:
            assert hearer.wait_bound(5)
            wait_for(lambda: len(journal.sessions) == len(batch))
            modes = sorted(s.mode for s in smsc.smsc.sessions if s.mode)  # bound ones
            got = hearer.receipts(OPEN)
        finally:
            hearer.close()
    assert modes == ["receiver", "receiver"]
    assert all(r.error is None for r in results)
    assert {r.provider_id for r in got} == {r.provider_id for r in results}


def test_the_smsc_refuses_a_submit_on_a_receiver_bind() -> None:
    """The simulator holds clients to the bind they asked for, as carriers do."""
    config = SessionConfig(tps=1000.0, bind="receiver")
    with running_smsc() as smsc:
        client = SmppClient(
            dataclasses.replace(config, port=smsc.port), lambda arrivals: None, CLOCK
        )

        async def attempt() -> int:
            task = asyncio.create_task(client.run())
            await client.wait_bound(5)
            answer = await client._request(
                pdu.SUBMIT_SM,
                pdu.sm_body(
                    pdu.ShortMessage(
                        source_addr="1069", destination_addr="8613800138000", short_message=b"x"
                    )
                ),
            )
            await client.stop()
            await asyncio.wait_for(task, 5)
            return answer.status

        status = asyncio.run(attempt())
    assert status == pdu.ESME_RINVBNDSTS
