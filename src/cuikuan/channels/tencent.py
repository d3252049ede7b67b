"""Tencent Cloud SMS (API 3.0, version 2021-01-11): SendSms, receipts pulled with
PullSmsSendStatus or pushed to `cuikuan listen` (/tencent/report).

    POST https://sms.tencentcloudapi.com/   JSON {"PhoneNumberSet": ["+86..."], "SmsSdkAppId": ...,
         "SignName": ..., "TemplateId": ..., "TemplateParamSet": [...], "SessionContext": "<outbox id>"}
    headers X-TC-Action, X-TC-Version, X-TC-Region, X-TC-Timestamp,
            Authorization: TC3-HMAC-SHA256 Credential=<id>/<date>/sms/tc3_request,
                           SignedHeaders=content-type;host, Signature=<hex>

The signature is TC3-HMAC-SHA256 over the canonical request (method, path, query, the two signed
headers, SHA-256 of the body), keyed by a chain of HMACs from "TC3" + secret key through the UTC
date, the service and "tc3_request". The secret comes from an environment variable and is never
logged. A message's provider id is Tencent's SerialNo.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
from cuikuan.channels.pacing import Pacer
from cuikuan.channels.provider_templates import ProviderTemplate, TemplateMismatch

HOST = "sms.tencentcloudapi.com"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
AUTH_CODES = ("AuthFailure", "UnauthorizedOperation", "FailedOperation.InsufficientBalance",
              "FailedOperation.SignatureIncorrectOrUnapproved",
              "FailedOperation.TemplateIncorrectOrUnapproved")  # fmt: skip
TRANSIENT_CODES = ("RequestLimitExceeded", "InternalError", "LimitExceeded.DeliveryFrequencyLimit",
                   "FailedOperation.ServiceSuspendDueToArrears", "ResourceUnavailable")  # fmt: skip


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    payload: str,
    timestamp: int,
    content_type: str = CONTENT_TYPE,
) -> str:
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join([
        "POST", "/", "", f"content-type:{content_type}", f"host:{host}", "",
        "content-type;host", hashlib.sha256(payload.encode()).hexdigest(),
    ])  # fmt: skip
    scope = f"{day}/{service}/tc3_request"
    to_sign = "\n".join([
        "TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()
    ])  # fmt: skip
    key = ("TC3" + secret_key).encode()
    for part in (day, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


@dataclass
class TencentChannel:
    secret_id: str
    app_id: str
    sign_name: str
    templates: dict[str, ProviderTemplate]
    secret_env: str = "TENCENTCLOUD_SECRET_KEY"
    region: str = "ap-guangzhou"
    base_url: str = f"https://{HOST}/"
    transport: httpx.BaseTransport | None = None
    timeout: float = 15.0
    name: str = "tencent"
    max_tps: float = 50.0
    max_parts: int = 8  # long SMS up to 500 characters with the signature
    encodings: tuple[str, ...] = BOTH
    pull_receipts: bool = True
    _pacer: Pacer | None = field(default=None, repr=False)

    def _call(self, client: httpx.Client, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if self._pacer is None:
            self._pacer = Pacer(self.max_tps)
        self._pacer.wait()
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        timestamp = int(datetime.now(UTC).timestamp())
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": HOST,
            "X-TC-Action": action,
            "X-TC-Version": VERSION,
            "X-TC-Region": self.region,
            "X-TC-Timestamp": str(timestamp),
            "Authorization": tc3_authorization(
                self.secret_id, os.environ.get(self.secret_env, ""), "sms", HOST, payload, timestamp
            ),
        }
        response = client.post(self.base_url, content=payload.encode(), headers=headers)
        try:
            answer: dict[str, Any] = response.json().get("Response", {})
        except ValueError:
            answer = {"Error": {"Code": "InternalError", "Message": f"HTTP {response.status_code}"}}
        return answer

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]:
        results = []
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            for message in batch:
                results.append(self._send_one(client, message))
        return results

    def _send_one(self, client: httpx.Client, message: OutgoingMessage) -> SendResult:
        template = self.templates.get(message.template)
        if template is None:
            return SendResult(message.outbox_id, None, Permanent(
                f"no Tencent template id configured for cuikuan template {message.template!r}"))  # fmt: skip
        try:
            params = template.params(message.text)
        except TemplateMismatch as exc:
            return SendResult(message.outbox_id, None, Permanent(str(exc)))
        body = {
            "PhoneNumberSet": [message.recipient],
            "SmsSdkAppId": self.app_id,
            "SignName": self.sign_name,
            "TemplateId": template.code,
            "TemplateParamSet": [params[n] for n in sorted(params, key=_order)],
            "SessionContext": str(message.outbox_id),
        }
        try:
            answer = self._call(client, "SendSms", body)
        except httpx.TransportError as exc:
            return SendResult(message.outbox_id, None, Transient(f"cannot reach Tencent: {type(exc).__name__}"))  # fmt: skip
        if "Error" in answer:
            return SendResult(message.outbox_id, None, _error(answer["Error"]))
        status = (answer.get("SendStatusSet") or [{}])[0]
        if status.get("Code") == "Ok":
            return SendResult(message.outbox_id, str(status["SerialNo"]))
        return SendResult(message.outbox_id, None, _error(status))

    def receipts(self, now: datetime) -> list[Receipt]:
        if not self.pull_receipts:
            return []
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            try:
                answer = self._call(
                    client, "PullSmsSendStatus", {"SmsSdkAppId": self.app_id, "Limit": 100}
                )
            except httpx.TransportError:
                return []
        return [
            Receipt(
                str(r["SerialNo"]),
                r.get("ReportStatus") == "SUCCESS",
                now,
                str(r.get("Description") or r.get("ReportStatus")),
            )
            for r in answer.get("PullSmsSendStatusSet") or []
        ]


def _order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)


def _error(error: Mapping[str, Any]) -> ProviderError:
    code = str(error.get("Code", ""))
    detail = f"Tencent {code}: {error.get('Message', '')}"
    if code.startswith(AUTH_CODES):
        return AuthError(detail)
    if code.startswith(TRANSIENT_CODES):
        return Transient(detail)
    return Permanent(detail)


def receipts_from_push(payload: str, now: datetime) -> list[Receipt]:
    """The status push: a JSON array of {"sid", "report_status": "SUCCESS"|"FAIL", "errmsg"...}."""
    rows = json.loads(payload)
    if not isinstance(rows, list):
        raise ValueError("a Tencent status push is a JSON array")
    return [
        Receipt(
            str(r["sid"]),
            r.get("report_status") == "SUCCESS",
            now,
            str(r.get("errmsg") or r.get("report_status")),
        )
        for r in rows
    ]
