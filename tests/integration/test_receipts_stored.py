"""A bind stores what it hears before acknowledging it, and reads final receipts right there:
the receipt is in `receipts` in the same transaction as its PDU, waiting for the dispatcher's
clock; intermediate receipts are read and done; replies and anything unreadable wait for the
reader. The dispatcher stamps the receipts with its own `now` and matches them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from cuikuan.channels.smpp import pdu
from cuikuan.channels.smpp.inbound import Arrival, read
from cuikuan.dispatch.receipts import match_waiting, record_parts
from cuikuan.services.planner import make_plan
from cuikuan.settings import Settings
from cuikuan.store.engine import open_database
from cuikuan.store.inbound_pdus import StoredJournal
from cuikuan.store.schema import inbound_pdus, outbox, receipts
from cuikuan.store.times import as_utc
from tests.integration.conftest import DAY

BIND_CLOCK = datetime(2031, 1, 1, tzinfo=UTC)  # the bind's clock, far from the dispatcher's
NOW = datetime(2026, 11, 30, 3, tzinfo=UTC)


def _receipt(message_id: str, state: str) -> bytes:
    text = f"id:{message_id} sub:001 dlvrd:001 submit date:2611300300 done date:2611300301 stat:{state} err:000 text:"
    return pdu.sm_body(pdu.ShortMessage(source_addr="8613800000000", esm_class=0x04,
                                        short_message=text.encode()))  # fmt: skip


def test_a_bind_stores_final_receipts_as_receipts_and_leaves_the_rest_to_the_reader(
    db_url: str,
) -> None:
    engine = open_database(db_url)
    reply = pdu.sm_body(pdu.ShortMessage(source_addr="13800000000", short_message=b"TD"))
    heard = [
        Arrival("s#1", pdu.DELIVER_SM, _receipt("00001A", "DELIVRD"), BIND_CLOCK),
        Arrival("s#1", pdu.DELIVER_SM, _receipt("1b", "ENROUTE"), BIND_CLOCK),
        Arrival("s#1", pdu.DELIVER_SM, reply, BIND_CLOCK),
        Arrival("s#1", pdu.DELIVER_SM, b"\x00\x01", BIND_CLOCK),
    ]
    StoredJournal(engine).keep("smpp", heard)
    with engine.connect() as conn:
        pdus = conn.execute(
            select(inbound_pdus.c.state, inbound_pdus.c.note).order_by(inbound_pdus.c.id)
        ).all()
        stored = conn.execute(
            select(receipts.c.provider_id, receipts.c.outcome, receipts.c.received_at)
        ).all()
    assert [p.state for p in pdus] == ["done", "done", "new", "new"]
    assert pdus[0].note == "receipt" and "ENROUTE" in (pdus[1].note or "")
    assert [(r.provider_id, r.outcome, r.received_at) for r in stored] == [
        ("1a", "delivered", None)
    ]


def test_the_dispatcher_stamps_stored_receipts_with_its_own_clock_and_matches_them(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        oid = conn.execute(select(outbox.c.id).limit(1)).scalar_one()
        conn.execute(outbox.update().where(outbox.c.id == oid).values(status="sent"))
        record_parts(conn, "smpp", [(oid, ("1A",))], NOW)
    StoredJournal(engine).keep(
        "smpp", [Arrival("s#1", pdu.DELIVER_SM, _receipt("1a", "DELIVRD"), BIND_CLOCK)]
    )
    later = NOW + timedelta(minutes=2)
    with engine.begin() as conn:
        moved = match_waiting(conn, later)
    with engine.connect() as conn:
        got = conn.execute(select(receipts.c.outbox_id, receipts.c.received_at)).one()
        status = conn.execute(select(outbox.c.status).where(outbox.c.id == oid)).scalar_one()
    assert moved["delivered"] == 1 and status == "delivered"
    assert got.outbox_id == oid and as_utc(got.received_at) == later


def test_a_hostile_receipt_never_stops_the_bind_from_storing_the_rest(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receipt id longer than any column (PostgreSQL would refuse the row and the whole batch
    would go unacknowledged, again and again), and a reading that fails in a way nobody
    foresaw: the batch is stored all the same, those PDUs left for the reader as unreadable."""
    engine = open_database(db_url)
    long_id = pdu.sm_body(pdu.ShortMessage(
        source_addr="8613800000000", esm_class=0x04, short_message=b"stat:DELIVRD",
        tlvs={pdu.TLV_RECEIPTED_MESSAGE_ID: b"9" * 500 + b"\0"},
    ))  # fmt: skip
    StoredJournal(engine).keep("smpp", [
        Arrival("s#1", pdu.DELIVER_SM, long_id, BIND_CLOCK),
        Arrival("s#1", pdu.DELIVER_SM, _receipt("2b", "DELIVRD"), BIND_CLOCK),
    ])  # fmt: skip

    def broken(sm: object) -> None:
        raise RuntimeError("a reader bug")

    monkeypatch.setattr("cuikuan.channels.smpp.inbound.parse_receipt", broken)
    StoredJournal(engine).keep(
        "smpp", [Arrival("s#1", pdu.DELIVER_SM, _receipt("3c", "DELIVRD"), BIND_CLOCK)]
    )
    with engine.connect() as conn:
        pdus = conn.execute(
            select(inbound_pdus.c.state, inbound_pdus.c.body).order_by(inbound_pdus.c.id)
        ).all()
        ids = conn.execute(select(receipts.c.provider_id)).scalars().all()
    assert [p.state for p in pdus] == ["new", "done", "new"] and ids == ["2b"]
    monkeypatch.undo()
    found = read([(1, Arrival("s#1", pdu.DELIVER_SM, bytes(pdus[0].body), NOW))], NOW)
    assert list(found.unreadable) == [1] and "longer than" in found.unreadable[1]


def test_a_receipt_is_not_read_in_another_spelling_while_its_message_may_be_in_flight(
    book: tuple[Settings, Engine],
) -> None:
    """Two processes, one sending and one listening, against an SMSC that answers in hex: the
    listener hears the receipt of `1a` before the sender has recorded that message's part (the
    message is still `sending`). Read as decimal, `1a` is 26, the id of another message: that
    one must not be settled by it (it was, before). Once the sender records `1a`, the receipt
    settles its own message exactly; a receipt older than anything in flight is still read in
    another spelling (an SMSC that reports in decimal what it answered in hex)."""
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        first, second, third = conn.execute(
            select(outbox.c.id).order_by(outbox.c.id).limit(3)
        ).scalars()
        conn.execute(outbox.update().where(outbox.c.id.in_((first, third))).values(status="sent"))
        record_parts(conn, "smpp", [(first, ("26",)), (third, ("c",))], NOW)
        # Handed to the SMSC at NOW, its answer (1a) not recorded yet: the sender is busy.
        conn.execute(
            outbox.update().where(outbox.c.id == second).values(status="sending", updated_at=NOW)
        )
    heard_at = NOW + timedelta(minutes=2)
    StoredJournal(engine).keep(
        "smpp", [Arrival("s#1", pdu.DELIVER_SM, _receipt("1a", "DELIVRD"), BIND_CLOCK)]
    )
    with engine.begin() as conn:
        assert sum(match_waiting(conn, heard_at).values()) == 0

    def status(oid: int) -> str:
        with engine.connect() as conn:
            found: str = conn.execute(
                select(outbox.c.status).where(outbox.c.id == oid)
            ).scalar_one()
            return found

    assert (status(first), status(second)) == ("sent", "sending")
    with engine.begin() as conn:
        conn.execute(outbox.update().where(outbox.c.id == second).values(status="sent"))
        record_parts(conn, "smpp", [(second, ("1A",))], heard_at)
        assert match_waiting(conn, heard_at + timedelta(seconds=5))["delivered"] == 1
    assert (status(first), status(second)) == ("sent", "delivered")
    # Nothing in flight now: a decimal receipt ("12" is hex c) finds its message in hex.
    StoredJournal(engine).keep(
        "smpp", [Arrival("s#1", pdu.DELIVER_SM, _receipt("12", "DELIVRD"), BIND_CLOCK)]
    )
    with engine.begin() as conn:
        assert match_waiting(conn, heard_at + timedelta(minutes=1))["delivered"] == 1
    assert status(third) == "delivered"
