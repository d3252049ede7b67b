"""Twilio Programmable Messaging: the Messages API for sending, signed status callbacks for receipts.

    POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json   (HTTP Basic: AccountSid:AuthToken)
    form: To, Body, From | MessagingServiceSid, StatusCallback

The auth token comes from an environment variable and is never logged. A status callback is
trusted only when its X-Twilio-Signature is HMAC-SHA1(auth token, URL + sorted name+value pairs),
base64, compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx

from cuikuan.channels.base import (
    BOTH,
    AuthError,
    OutgoingMessage,
    Permanent,
    ProviderError,
    Receipt,
    SendResult,
    Transient,
)

API = "https://api.twilio.com"
FINAL = {"delivered": True, "undelivered": False, "failed": False}


@dataclass
class TwilioChannel:
    account_sid: str
    auth_token_env: str = "TWILIO_AUTH_TOKEN"
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    base_url: str = API
    transport: httpx.BaseTransport | None = None  # tests hand in a MockTransport
    timeout: float = 15.0
    name: str = "twilio"
    max_tps: float = 10.0
    max_parts: int = 10  # Twilio's advice: at most 10 segments (1,600 characters)
    encodings: tuple[str, ...] = BOTH

    def _token(self) -> str:
        return os.environ.get(self.auth_token_env, "")

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]:
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        with httpx.Client(
            auth=(self.account_sid, self._token()), timeout=self.timeout, transport=self.transport
        ) as client:
            return [self._send_one(client, url, m) for m in batch]

    def _send_one(self, client: httpx.Client, url: str, message: OutgoingMessage) -> SendResult:
        form = {"To": message.recipient, "Body": message.text}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        elif self.from_number:
            form["From"] = self.from_number
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        try:
            response = client.post(url, data=form)
        except httpx.TransportError as exc:
            return SendResult(
                message.outbox_id, None, Transient(f"cannot reach Twilio: {type(exc).__name__}")
            )
        if response.status_code in (200, 201):
            return SendResult(message.outbox_id, str(response.json()["sid"]))
        return SendResult(message.outbox_id, None, _error(response))

    def receipts(self, now: datetime) -> list[Receipt]:
        return []  # Twilio pushes status callbacks; see `receipt_from_callback`


def _error(response: httpx.Response) -> ProviderError:
    try:
        body = response.json()
        detail = f"{body.get('code')}: {body.get('message')}"
    except ValueError:
        detail = response.text[:200]
    if response.status_code in (401, 403):
        return AuthError(f"Twilio refused the credentials ({response.status_code})")
    if response.status_code == 429 or response.status_code >= 500:
        return Transient(f"Twilio {response.status_code} {detail}")
    return Permanent(f"Twilio {response.status_code} {detail}")


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    data = url + "".join(key + params[key] for key in sorted(params))
    return base64.b64encode(
        hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()


def valid_signature(auth_token: str, url: str, params: Mapping[str, str], given: str) -> bool:
    return hmac.compare_digest(signature(auth_token, url, params), given)


def receipt_from_callback(params: Mapping[str, str], at: datetime) -> Receipt | None:
    """A final status callback as a receipt; None for intermediate states (queued, sent, ...)."""
    status = params.get("MessageStatus", "").lower()
    if status not in FINAL or "MessageSid" not in params:
        return None
    return Receipt(
        params["MessageSid"],
        FINAL[status],
        at,
        status + (f" {params['ErrorCode']}" if params.get("ErrorCode") else ""),
    )
