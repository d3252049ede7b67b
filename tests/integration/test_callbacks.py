"""Provider callbacks over real HTTP on loopback: signed receipts and inbound replies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine, select, update

from cuikuan.channels.twilio import signature
from cuikuan.settings import Settings
from cuikuan.store.schema import number_stops, outbox
from cuikuan.web.callbacks import callback_server
from tests.integration.conftest import DAY

PUBLIC = "https://lender.example/hooks"
TOKEN = "test-token"


@pytest.fixture
def server(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Settings, Engine]]:
    settings, engine = book
    monkeypatch.setenv(settings.twilio.auth_token_env, TOKEN)
    srv = callback_server(engine, settings, ("127.0.0.1", 0), PUBLIC, lambda: CLOCK)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", settings, engine
    finally:
        srv.shutdown()
        srv.server_close()


CLOCK = datetime(2026, 11, 30, 3, tzinfo=UTC)  # the moment requests arrive in these tests


def post(base: str, path: str, form: dict[str, str], sign: bool = True) -> httpx.Response:
    headers = {"X-Twilio-Signature": signature(TOKEN, PUBLIC + path, form) if sign else "forged"}
    return httpx.post(base + path, data=form, headers=headers, timeout=10)


def test_a_signed_status_callback_records_the_receipt(server: tuple[str, Settings, Engine]) -> None:
    from cuikuan.dispatch.receipts import record_parts
    from cuikuan.services.planner import make_plan

    base, settings, engine = server
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        oid = conn.execute(
            select(outbox.c.id).where(outbox.c.status == "planned").limit(1)
        ).scalar_one()
        conn.execute(
            update(outbox)
            .where(outbox.c.id == oid)
            .values(status="sent", provider="twilio", provider_id="SMabc")
        )
        record_parts(conn, "twilio", [(oid, ("SMabc",))], CLOCK)
    assert (
        post(
            base,
            "/twilio/status",
            {"MessageSid": "SMabc", "MessageStatus": "delivered"},
            sign=False,
        ).status_code
        == 403
    )
    with engine.connect() as conn:
        assert (
            conn.execute(select(outbox.c.status).where(outbox.c.id == oid)).scalar_one() == "sent"
        )
    assert (
        post(
            base, "/twilio/status", {"MessageSid": "SMabc", "MessageStatus": "delivered"}
        ).status_code
        == 204
    )
    with engine.connect() as conn:
        assert (
            conn.execute(select(outbox.c.status).where(outbox.c.id == oid)).scalar_one()
            == "delivered"
        )


def test_an_inbound_stop_opts_the_number_out(server: tuple[str, Settings, Engine]) -> None:
    from cuikuan.store.schema import customer_phones

    base, _, engine = server
    with engine.connect() as conn:
        _cid, number = conn.execute(
            select(customer_phones.c.customer_id, customer_phones.c.e164).limit(1)
        ).one()
    assert (
        post(
            base, "/twilio/inbound", {"From": number, "Body": "退订", "MessageSid": "SMin1"}
        ).status_code
        == 204
    )
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(number_stops.c.channel).where(
                    number_stops.c.address == number, number_stops.c.reason == "opt_out"
                )
            ).scalar_one()
            == "sms"
        )
    assert post(base, "/nowhere", {}).status_code == 404


def test_a_replayed_inbound_message_is_read_once(server: tuple[str, Settings, Engine]) -> None:
    """The same signed inbound message sent four times made four replies, four tasks and four
    pauses: deliveries are idempotent by the provider's message id."""
    from sqlalchemy import func

    from cuikuan.store.schema import customer_phones, pauses, replies, tasks

    base, _, engine = server
    with engine.connect() as conn:
        number = conn.execute(select(customer_phones.c.e164).limit(1)).scalar_one()
    form = {"From": number, "Body": "我要投诉你们，别再催了", "MessageSid": "SMreplayed"}
    for _ in range(4):
        assert post(base, "/twilio/inbound", form).status_code == 204
    other = {**form, "MessageSid": "SMother"}  # another message with the same words: read
    assert post(base, "/twilio/inbound", other).status_code == 204
    with engine.connect() as conn:
        count = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                 for t in (replies, tasks, pauses)}  # fmt: skip
    assert count["replies"] == 2
    assert 1 <= count["tasks"] <= 2 and count["pauses"] <= 2


def test_an_inbound_message_without_an_id_sent_again_is_read_once(
    book: tuple[Settings, Engine],
) -> None:
    """SMPP's deliver_sm carries no message id: an SMSC that sends one again (our answer was
    lost) sends the same text from the same number within minutes."""
    from datetime import timedelta

    from cuikuan.services.replies import receive_reply
    from cuikuan.store.schema import customer_phones

    settings, engine = book
    with engine.connect() as conn:
        number = conn.execute(select(customer_phones.c.e164).limit(1)).scalar_one()
    first = receive_reply(engine, settings, number, "TD", CLOCK, source="smpp")
    again = receive_reply(
        engine, settings, number, "TD", CLOCK + timedelta(seconds=40), source="smpp"
    )
    later = receive_reply(engine, settings, number, "TD", CLOCK + timedelta(hours=2), source="smpp")
    typed = receive_reply(engine, settings, number, "TD", CLOCK, source="manual")
    assert not first.duplicate and again.duplicate and again.done == []
    assert not later.duplicate and not typed.duplicate
