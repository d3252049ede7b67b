"""The contract every channel keeps, run against each built-in one on a real local peer:
one result per message and in order, distinct provider ids, a refusal that fails only its own
message and is a ProviderError, receipts as a list, a declared rate. A third-party channel can
be added to CASES and must pass the same."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiosmtpd.controller import Controller

from cuikuan.channels.aliyun import AliyunChannel
from cuikuan.channels.base import Channel, OutgoingMessage, ProviderError, Receipt
from cuikuan.channels.provider_templates import ProviderTemplate
from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.channels.smtp import SmtpChannel
from cuikuan.channels.tencent import TencentChannel
from cuikuan.channels.twilio import TwilioChannel
from cuikuan.store.engine import open_database
from tests.integration.test_smtp import Inbox, free_port
from tests.smsc_helpers import running_smsc

NOW = datetime(2026, 11, 30, 3, tzinfo=UTC)
TEXT = "【示例金融】您的账单1,234.50元将于12月1日到期，请按时还款。"
PROVIDERS = json.loads(
    (Path(__file__).parents[1] / "data/providers/aliyun.json").read_text("utf-8")
)
# (good recipients, a recipient the peer refuses) per kind of address
SMS = (["+8613800138001", "+8613800138002", "+8613800138003"], "+8613900000011")
EMAIL = (["wang@example.com", "li@example.com", "zhao@example.com"], "nobody@example.com")


@contextmanager
def http_peer(answer: Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            form: dict[str, Any] = json.loads(raw) if raw.startswith("{") else dict(parse_qsl(raw))
            status, body = answer(self.path, form)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def twilio_answer(path: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if form["To"].endswith("0011"):
        return 400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}
    return 201, {"sid": "SM" + uuid.uuid4().hex, "status": "queued"}


def aliyun_answer(path: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    numbers = (
        json.loads(form["PhoneNumberJson"]) if "PhoneNumberJson" in form else [form["PhoneNumbers"]]
    )
    if any(n.endswith("0011") for n in numbers):  # one bad number refuses the whole batch
        return 200, PROVIDERS["bad_number"]
    return 200, PROVIDERS["send_ok"] | {"BizId": uuid.uuid4().hex}


def tencent_answer(path: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    number = form["PhoneNumberSet"][0]
    code = "InvalidParameterValue.IncorrectPhoneNumber" if number.endswith("0011") else "Ok"
    return 200, {"Response": {"SendStatusSet": [{"SerialNo": uuid.uuid4().hex,
                 "PhoneNumber": number, "Code": code, "Message": ""}], "RequestId": "r"}}  # fmt: skip


@contextmanager
def sandbox(tmp: Path) -> Iterator[tuple[Channel, tuple[list[str], str] | None]]:
    yield SandboxChannel(open_database(f"sqlite:///{tmp / 'sandbox.db'}")), None


@contextmanager
def smtp(tmp: Path) -> Iterator[tuple[Channel, tuple[list[str], str] | None]]:
    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpChannel("127.0.0.1", port, "r@lender.example", "提醒", security="none"), EMAIL
    finally:
        controller.stop()


@contextmanager
def smpp(tmp: Path) -> Iterator[tuple[Channel, tuple[list[str], str] | None]]:
    with running_smsc() as smsc:
        channel = smsc.channel()
        try:
            yield channel, SMS
        finally:
            channel.close()


@contextmanager
def twilio(tmp: Path) -> Iterator[tuple[Channel, tuple[list[str], str] | None]]:
    with http_peer(twilio_answer) as url:
        yield TwilioChannel("ACtest", from_number="+15005550006", base_url=url), SMS


@contextmanager
def aliyun(tmp: Path) -> Iterator[tuple[Channel, tuple[list[str], str] | None]]:
    template = ProviderTemplate("SMS_1", "您的账单${amount}元将于${date}到期，请按时还款。")
    with http_peer(aliyun_answer) as url:
        yield AliyunChannel("LTAI", "示例金融", {"t": template}, base_url=url + "/"), SMS


@contextmanager
def tencent(tmp: Path) -> Iterator[tuple[Channel, tuple[list[str], str] | None]]:
    template = ProviderTemplate("1", "您的账单{1}元将于{2}到期，请按时还款。")
    with http_peer(tencent_answer) as url:
        channel = TencentChannel("AKID", "1400", "示例金融", {"t": template}, base_url=url + "/",
                                 pull_receipts=False)  # fmt: skip
        yield channel, SMS


CASES: dict[str, Callable[[Path], AbstractContextManager[tuple[Channel, tuple[list[str], str] | None]]]] = {
    "sandbox": sandbox, "smtp": smtp, "smpp": smpp, "twilio": twilio, "aliyun": aliyun,
    "tencent": tencent,
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_channel_keeps_the_contract(kind: str, tmp_path: Path) -> None:
    with CASES[kind](tmp_path) as (channel, addresses):
        good, bad = addresses or (SMS[0], None)
        batch = [OutgoingMessage(10 + i, "sms", to, TEXT, "t") for i, to in enumerate(good)]
        if bad is not None:
            batch.insert(1, OutgoingMessage(99, "sms", bad, TEXT, "t"))
        results = channel.send(batch, NOW)
        assert [r.outbox_id for r in results] == [m.outbox_id for m in batch]
        ok = [r for r in results if r.error is None]
        assert len(ok) == len(good)
        ids = [r.provider_id for r in ok]
        assert all(ids) and len(set(ids)) == len(ids)
        if bad is not None:
            refused = next(r for r in results if r.outbox_id == 99)
            assert isinstance(refused.error, ProviderError) and refused.provider_id is None
        receipts = channel.receipts(NOW)
        assert isinstance(receipts, list) and all(isinstance(r, Receipt) for r in receipts)
        assert channel.name and channel.max_tps > 0
        assert channel.encodings and channel.max_parts >= 0
