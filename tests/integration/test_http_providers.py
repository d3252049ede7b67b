"""Alibaba Cloud and Tencent Cloud SMS against a local HTTP server on loopback that checks each
request's format and signature and answers with the documented response bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import Engine, select

from cuikuan.channels.aliyun import AliyunChannel, sign
from cuikuan.channels.base import AuthError, OutgoingMessage, Permanent, Transient
from cuikuan.channels.provider_templates import ProviderTemplate
from cuikuan.channels.tencent import TencentChannel, tc3_authorization
from cuikuan.settings import Settings
from cuikuan.store.schema import outbox
from cuikuan.web.callbacks import callback_server

DATA = json.loads((Path(__file__).parents[1] / "data/providers/aliyun.json").read_text("utf-8"))
TENCENT = json.loads((Path(__file__).parents[1] / "data/providers/tencent.json").read_text("utf-8"))
NOW = datetime(2026, 11, 30, 3, tzinfo=UTC)
SECRET = "s3cret-for-tests"
TEXT = "【示例金融】您的账单1,234.50元将于12月1日到期，请按时还款。"
ALI_TEMPLATE = ProviderTemplate("SMS_154950909", "您的账单${amount}元将于${date}到期，请按时还款。")
TC_TEMPLATE = ProviderTemplate("1234567", "您的账单{1}元将于{2}到期，请按时还款。")


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, Any]] = []


@pytest.fixture
def provider() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            rec.requests.append({"headers": dict(self.headers), "body": body})
            status, answer = rec.answers.pop(0)
            raw = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", rec
    finally:
        server.shutdown()
        server.server_close()


CLOCK = datetime(2026, 11, 30, 3, tzinfo=UTC)  # the moment requests arrive in these tests


def aliyun(url: str) -> AliyunChannel:
    return AliyunChannel(
        "LTAI5tTestKey", "示例金融", {"due_soon": ALI_TEMPLATE}, secret_env="TEST_ALI_SECRET",
        base_url=url, max_tps=1000, receipt_after=timedelta(seconds=0),
    )  # fmt: skip


def tencent(url: str) -> TencentChannel:
    return TencentChannel(
        "AKIDtestid", "1400006666", "示例金融", {"due_soon": TC_TEMPLATE},
        secret_env="TEST_TC_SECRET", base_url=url, max_tps=1000,
    )  # fmt: skip


def msg(i: int, number: str = "+8613800138000", text: str = TEXT) -> OutgoingMessage:
    return OutgoingMessage(i, "sms", number, text, "due_soon")


def test_the_signatures_match_the_providers_published_examples() -> None:
    params = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
              "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26"}  # fmt: skip
    assert sign(params, "testsecret", "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    payload = (
        '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    auth = tc3_authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******",
                             "cvm", "cvm.tencentcloudapi.com", payload, 1551113065)  # fmt: skip
    assert auth.endswith(
        "2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


def test_provider_templates_read_the_parameters_back_and_refuse_other_text() -> None:
    assert ALI_TEMPLATE.params(TEXT) == {"amount": "1,234.50", "date": "12月1日"}
    assert TC_TEMPLATE.params(TEXT) == {"1": "1,234.50", "2": "12月1日"}
    with pytest.raises(ValueError, match="does not fit"):
        ALI_TEMPLATE.params("【示例金融】您已逾期，请立即还款。")


def test_aliyun_sends_signed_requests_batches_and_pulls_receipts(
    provider: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, rec = provider
    monkeypatch.setenv("TEST_ALI_SECRET", SECRET)
    rec.answers += [(200, DATA["send_ok"]), (200, DATA["batch_ok"])]
    channel = aliyun(url)
    one = channel.send([msg(1)], NOW)
    two = channel.send([msg(2, "+8613900139000"), msg(3, "+85261234567")], NOW)
    assert one[0].provider_id == "900619746936498440^0:13800138000"
    assert [r.provider_id for r in two] == [
        "197703245997295588^0:13900139000", "197703245997295588^0:85261234567"]  # fmt: skip
    first = dict(parse_qsl(rec.requests[0]["body"]))
    assert first["Action"] == "SendSms" and first["PhoneNumbers"] == "13800138000"
    assert first["SignName"] == "示例金融" and first["TemplateCode"] == "SMS_154950909"
    assert json.loads(first["TemplateParam"]) == {"amount": "1,234.50", "date": "12月1日"}
    assert first["OutId"] == "1" and first["SignatureMethod"] == "HMAC-SHA1"
    given = first.pop("Signature")
    assert sign(first, SECRET) == given
    second = dict(parse_qsl(rec.requests[1]["body"]))
    assert second["Action"] == "SendBatchSms"
    assert json.loads(second["PhoneNumberJson"]) == ["13900139000", "85261234567"]
    assert SECRET not in json.dumps(rec.requests)
    rec.answers += [(200, DATA["query_delivered"]), (200, DATA["query_waiting"]),
                    (200, DATA["query_waiting"])]  # fmt: skip
    got = channel.receipts(NOW + timedelta(minutes=1))
    assert [(r.provider_id, r.delivered) for r in got] == [(one[0].provider_id, True)]
    assert dict(parse_qsl(rec.requests[2]["body"]))["Action"] == "QuerySendDetails"


@pytest.mark.parametrize(
    ("status", "answer", "kind"),
    [(200, "flow_control", Transient), (200, "bad_number", Permanent), (404, "bad_key", AuthError)],
)
def test_aliyun_errors_follow_the_error_tree(
    provider: tuple[str, Recorder], status: int, answer: str, kind: type
) -> None:
    url, rec = provider
    rec.answers.append((status, DATA[answer]))
    result = aliyun(url).send([msg(1)], NOW)[0]
    assert isinstance(result.error, kind) and DATA[answer]["Code"] in str(result.error)


def test_a_text_that_does_not_fit_the_registered_template_is_refused_before_sending(
    provider: tuple[str, Recorder],
) -> None:
    url, rec = provider
    result = aliyun(url).send([msg(1, text="【示例金融】请立即还款")], NOW)[0]
    assert isinstance(result.error, Permanent) and rec.requests == []


def test_tencent_sends_a_tc3_signed_request_and_pulls_receipts(
    provider: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, rec = provider
    monkeypatch.setenv("TEST_TC_SECRET", SECRET)
    rec.answers += [(200, TENCENT["send_ok"]), (200, TENCENT["pull"])]
    channel = tencent(url)
    result = channel.send([msg(17)], NOW)[0]
    assert result.provider_id == "5000:1045710669157053657849499619"
    request = rec.requests[0]
    body = json.loads(request["body"])
    assert body == {"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666",
                    "SignName": "示例金融", "TemplateId": "1234567",
                    "TemplateParamSet": ["1,234.50", "12月1日"], "SessionContext": "17"}  # fmt: skip
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-tc-action"] == "SendSms" and headers["x-tc-version"] == "2021-01-11"
    expected = tc3_authorization("AKIDtestid", SECRET, "sms", "sms.tencentcloudapi.com",
                                 request["body"], int(headers["x-tc-timestamp"]))  # fmt: skip
    assert headers["authorization"] == expected
    got = channel.receipts(NOW)
    assert [(r.provider_id, r.delivered) for r in got] == [(result.provider_id, True)]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [("bad_number", Permanent), ("auth_failure", AuthError), ("rate_limited", Transient)],
)
def test_tencent_errors_follow_the_error_tree(
    provider: tuple[str, Recorder], answer: str, kind: type
) -> None:
    url, rec = provider
    rec.answers.append((200, TENCENT[answer]))
    result = tencent(url).send([msg(1)], NOW)[0]
    assert isinstance(result.error, kind)


def test_an_unreachable_provider_is_transient() -> None:
    for channel in (aliyun("http://127.0.0.1:1/"), tencent("http://127.0.0.1:1/")):
        assert isinstance(channel.send([msg(1)], NOW)[0].error, Transient)


def test_pushed_reports_need_the_token_and_reach_the_outbox(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cuikuan.dispatch.receipts import record_parts
    from cuikuan.services.planner import make_plan
    from tests.integration.conftest import DAY

    settings, engine = book
    monkeypatch.setenv(settings.channels.callback_token_env, "tok")
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        a, b = conn.execute(select(outbox.c.id).limit(2)).scalars().all()
        conn.execute(outbox.update().where(outbox.c.id.in_([a, b])).values(status="sent"))
        record_parts(conn, "aliyun", [(a, ("900619746936498440^0:13800138000",))], CLOCK)
        record_parts(conn, "tencent", [(b, ("5000:1045710669157053657849499619",))], CLOCK)
    server = callback_server(
        engine, settings, ("127.0.0.1", 0), "https://lender.example", lambda: CLOCK
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        forged = httpx.post(f"{base}/aliyun/report?token=nope", json=DATA["push"], timeout=5)
        assert forged.status_code == 403
        for path, data in (("aliyun", DATA["push"]), ("tencent", TENCENT["push"])):
            ok = httpx.post(f"{base}/{path}/report?token=tok", json=data, timeout=5)
            assert ok.status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    with engine.connect() as conn:
        states = dict(
            conn.execute(select(outbox.c.id, outbox.c.status).where(outbox.c.id.in_([a, b]))).all()
        )
    assert states == {a: "undelivered", b: "undelivered"}
