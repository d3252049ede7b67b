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
        record_parts(conn, "twilio", [(oid, ("SMabc",))])
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
