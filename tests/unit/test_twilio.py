"""Twilio: the Messages API request as Twilio documents it, its errors, signed status callbacks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from cuikuan.channels.base import AuthError, OutgoingMessage, Permanent, Transient
from cuikuan.channels.twilio import TwilioChannel, receipt_from_callback, signature, valid_signature

NOW = datetime(2026, 11, 30, 3, tzinfo=UTC)
SID = "AC" + "0" * 32
# The shape of Twilio's 201 reply to a Messages create (fields trimmed to those cuikuan reads and a few more).
CREATED = {
    "account_sid": SID, "api_version": "2010-04-01", "body": "hi", "date_created": "Mon, 30 Nov 2026 03:00:00 +0000",
    "direction": "outbound-api", "error_code": None, "error_message": None, "from": "+15005550006",
    "num_segments": "1", "sid": "SM" + "1" * 32, "status": "queued", "to": "+14155552671",
    "uri": f"/2010-04-01/Accounts/{SID}/Messages/SM{'1' * 32}.json",
}  # fmt: skip
INVALID_TO = {
    "code": 21211,
    "message": "The 'To' number +1234 is not a valid phone number.",
    "more_info": "https://www.twilio.com/docs/errors/21211",
    "status": 400,
}


def channel(handler: object, monkeypatch: pytest.MonkeyPatch) -> TwilioChannel:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret-token")
    return TwilioChannel(
        SID,
        from_number="+15005550006",
        status_callback="https://lender.example/twilio/status",
        transport=httpx.MockTransport(handler),
    )  # type: ignore[arg-type]


def test_a_message_is_sent_with_the_documented_request(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=CREATED)

    results = channel(handler, monkeypatch).send(
        [OutgoingMessage(7, "sms", "+14155552671", "您好 hi")], NOW
    )
    assert results[0].provider_id == CREATED["sid"] and results[0].error is None
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{SID}:secret-token".encode()).decode()
    )
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form == {
        "To": "+14155552671",
        "Body": "您好 hi",
        "From": "+15005550006",
        "StatusCallback": "https://lender.example/twilio/status",
    }


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, INVALID_TO, Permanent),
        (401, {"code": 20003, "message": "Authenticate"}, AuthError),
        (429, {"code": 20429, "message": "Too Many Requests"}, Transient),
        (503, {}, Transient),
    ],
)
def test_errors_follow_the_error_tree(
    monkeypatch: pytest.MonkeyPatch, status: int, body: dict[str, object], error: type
) -> None:
    results = channel(lambda request: httpx.Response(status, json=body), monkeypatch).send(
        [OutgoingMessage(1, "sms", "+1234", "x")], NOW
    )
    assert isinstance(results[0].error, error)
    assert "secret-token" not in str(results[0].error)


def test_a_network_failure_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    results = channel(handler, monkeypatch).send(
        [OutgoingMessage(1, "sms", "+14155552671", "x")], NOW
    )
    assert isinstance(results[0].error, Transient)


def test_signature_matches_twilios_published_test_vector() -> None:
    # The vector twilio-python's own tests use for RequestValidator.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert valid_signature("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not valid_signature(
        "12345", url, {**params, "Digits": "9999"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )


def test_final_status_callbacks_become_receipts() -> None:
    delivered = receipt_from_callback({"MessageSid": "SM1", "MessageStatus": "delivered"}, NOW)
    failed = receipt_from_callback(
        {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30003"}, NOW
    )
    assert delivered is not None and delivered.delivered
    assert failed is not None and not failed.delivered and "30003" in failed.detail
    assert receipt_from_callback({"MessageSid": "SM3", "MessageStatus": "sent"}, NOW) is None
    assert json.dumps(CREATED)  # the recorded reply stays valid JSON
