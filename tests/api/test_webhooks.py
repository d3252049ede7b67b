"""Webhooks to a real receiver on loopback: every delivery signed, retried with growing delays
while the receiver fails, kept in order per customer, dead after a day, replayed by a person."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, text

from cuikuan.services import webhooks
from cuikuan.store.schema import webhook_deliveries
from cuikuan.store.times import as_utc
from tests.api.conftest import NOW, Served, first_number


@dataclass
class Receiver:
    url: str
    secret: str = ""
    failing: int = 0  # answer 500 to this many requests first
    got: list[dict[str, Any]] = field(default_factory=list)
    forged: int = 0
    clock: datetime = NOW
    tolerance: int = 300  # seconds between the signature's stamp and the receiver's clock


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.failing > 0:
                state.failing -= 1
                self.send_response(500)
                self.end_headers()
                return
            if not webhooks.verify(
                state.secret, self.headers["Cuikuan-Signature"], body, state.clock, state.tolerance
            ):
                state.forged += 1
                self.send_response(400)
                self.end_headers()
                return
            state.got.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _deliver(served: Served, now: datetime) -> webhooks.DeliveryReport:
    post, close = webhooks.http_poster()
    try:
        return webhooks.deliver_due(served.engine, now, post)
    finally:
        close()


def test_events_reach_the_receiver_signed_and_in_order(served: Served, receiver: Receiver) -> None:
    made = served.client("all").post("/api/v1/webhooks", json={"url": receiver.url})
    assert made.status_code == 201, made.text
    receiver.secret = made.json()["secret"]
    number = first_number(served, "C00000005")
    operate = served.client("operate")
    assert operate.post("/api/v1/replies", json={"from": number, "text": "退订"}).status_code == 200
    assert (
        operate.post("/api/v1/replies", json={"from": number, "text": "我下周五还款"}).status_code
        == 200
    )
    report = _deliver(served, NOW)
    assert receiver.forged == 0
    kinds = [e["type"] for e in receiver.got]
    assert "optout.changed" in kinds and kinds.count("reply.received") == 2
    mine = [e for e in receiver.got if e["customer"] == "C00000005"]
    assert [e["id"] for e in mine] == sorted(e["id"] for e in mine)
    assert [e["data"]["intent"] for e in mine if e["type"] == "reply.received"] == [
        "opt_out", "promise_to_pay",
    ]  # fmt: skip
    assert report.delivered == len(receiver.got)
    assert _deliver(served, NOW).delivered == 0  # at least once, not again once delivered


def test_a_failing_receiver_gets_retries_with_growing_delays_then_a_dead_letter(
    served: Served, receiver: Receiver
) -> None:
    made = served.client("all").post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["reply.received"]}
    )
    receiver.secret = made.json()["secret"]
    served.client("operate").post(
        "/api/v1/replies", json={"from": first_number(served, "C00000006"), "text": "谢谢"}
    )
    receiver.failing = 10**6
    moment, gaps, last = NOW, [], NOW
    while True:
        report = _deliver(served, moment)
        if report.retried or report.dead:
            gaps.append(moment - last)
            last = moment
        if report.dead:
            break
        with served.engine.connect() as conn:
            moment = as_utc(conn.execute(select(webhook_deliveries.c.next_attempt_at)).scalar_one())
    assert gaps[1:4] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2)]
    assert max(gaps) <= timedelta(hours=1)
    assert timedelta(hours=23) <= moment - NOW <= timedelta(days=1)
    dead = served.client("all").get("/api/v1/webhooks/deliveries", params={"status": "dead"}).json()
    assert len(dead["items"]) == 1 and dead["items"][0]["last_error"] == "HTTP 500"
    receiver.failing = 0
    receiver.clock = moment
    assert _deliver(served, moment).delivered == 0  # dead stays dead
    replayed = served.client("all").post(
        f"/api/v1/webhooks/deliveries/{dead['items'][0]['id']}/replay"
    )
    assert replayed.status_code == 200
    assert _deliver(served, moment).delivered == 1
    assert receiver.got[0]["type"] == "reply.received"


def test_a_customers_later_event_waits_for_the_earlier_one(
    served: Served, receiver: Receiver
) -> None:
    made = served.client("all").post("/api/v1/webhooks", json={"url": receiver.url})
    receiver.secret = made.json()["secret"]
    number = first_number(served, "C00000007")
    operate = served.client("operate")
    operate.post("/api/v1/replies", json={"from": number, "text": "好的"})
    receiver.failing = 1  # the first delivery fails once
    first = _deliver(served, NOW)
    assert first.retried == 1 and receiver.got == []
    operate.post("/api/v1/replies", json={"from": number, "text": "已还款"})
    waiting = _deliver(served, NOW + timedelta(seconds=1))
    assert waiting.delivered == 0 and waiting.waiting_in_order >= 1 and receiver.got == []
    later = _deliver(served, NOW + timedelta(seconds=30))
    assert later.delivered >= 2
    ids = [e["id"] for e in receiver.got if e["customer"] == "C00000007"]
    assert ids == sorted(ids)


def test_a_signature_is_refused_for_another_body_or_an_old_stamp() -> None:
    body = b'{"id":1}'
    header = webhooks.sign("s3cret", int(NOW.timestamp()), body)
    assert webhooks.verify("s3cret", header, body, NOW)
    assert not webhooks.verify("s3cret", header, b'{"id":2}', NOW)
    assert not webhooks.verify("other", header, body, NOW)
    assert not webhooks.verify("s3cret", header, body, NOW + timedelta(minutes=10))
    assert not webhooks.verify("s3cret", "garbage", body, NOW)


def test_a_payments_batch_reports_each_payment_matched(served: Served, receiver: Receiver) -> None:
    made = served.client("all").post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["payment.matched"]}
    )
    receiver.secret = made.json()["secret"]
    with served.engine.connect() as conn:
        loans = (
            conn.execute(text("SELECT external_id FROM loans ORDER BY id LIMIT 3")).scalars().all()
        )
    rows = [{"payment_id": f"W-{i}", "loan_id": loan, "paid_at": "2026-11-29 09:00", "amount": "10"}
            for i, loan in enumerate(loans)]  # fmt: skip
    assert served.client("ingest").post("/api/v1/payments", json={"rows": rows}).status_code == 201
    _deliver(served, NOW)
    got = sorted(
        (e["data"]["payment"], e["data"]["loan"], e["data"]["amount_minor"]) for e in receiver.got
    )
    assert got == sorted((f"W-{i}", loan, 1000) for i, loan in enumerate(loans))
