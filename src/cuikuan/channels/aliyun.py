"""Alibaba Cloud SMS (dysmsapi, version 2017-05-25): SendSms and SendBatchSms, with receipts
pulled through QuerySendDetails or pushed to `cuikuan listen` (/aliyun/report).

    POST https://dysmsapi.aliyuncs.com/   form: Action=SendSms&PhoneNumbers=...&SignName=...
         &TemplateCode=SMS_...&TemplateParam={"amount":"1,234.50"}&OutId=<outbox id>
         + AccessKeyId, Timestamp, SignatureMethod=HMAC-SHA1, SignatureVersion=1.0,
           SignatureNonce, Format=JSON, Version, RegionId, Signature

The signature is Alibaba's RPC signature version 1: HMAC-SHA1 with "secret&" over
"POST&%2F&" + the percent-encoded, sorted, percent-encoded query. Messages that share a template
go in one SendBatchSms call (up to 100 numbers). A message's provider id is "BizId:number", what
both the pull and the push receipts carry. The secret comes from an environment variable and is
never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

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

API = "https://dysmsapi.aliyuncs.com/"
VERSION = "2017-05-25"
BATCH = 100
# Codes that mean the account or its settings are wrong: stop the channel, tell the operator.
AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "isv.AMOUNT_NOT_ENOUGH",
              "isp.RAM_PERMISSION_DENY", "isv.ACCOUNT_ABNORMAL", "isv.SMS_SIGNATURE_ILLEGAL",
              "isv.SMS_TEMPLATE_ILLEGAL", "Forbidden")  # fmt: skip
TRANSIENT_CODES = (
    "isv.BUSINESS_LIMIT_CONTROL",
    "isp.SYSTEM_ERROR",
    "Throttling",
    "ServiceUnavailable",
)


def percent_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def sign(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    query = "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(query)}"
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def national(e164: str) -> str:
    """Aliyun wants mainland numbers without +86 and others with their country code, no +."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


@dataclass
class AliyunChannel:
    access_key_id: str
    sign_name: str
    templates: dict[str, ProviderTemplate]
    secret_env: str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
    region: str = "cn-hangzhou"
    base_url: str = API
    transport: httpx.BaseTransport | None = None
    timeout: float = 15.0
    name: str = "aliyun"
    max_tps: float = 50.0
    max_parts: int = 8  # long SMS up to 500 characters with the signature
    encodings: tuple[str, ...] = BOTH
    receipt_after: timedelta = timedelta(seconds=30)
    _pending: list[tuple[str, str, datetime]] = field(default_factory=list, repr=False)
    _pacer: Pacer | None = field(default=None, repr=False)

    def _call(self, client: httpx.Client, action: str, params: dict[str, str]) -> dict[str, Any]:
        if self._pacer is None:
            self._pacer = Pacer(self.max_tps)
        self._pacer.wait()
        form = {
            "Action": action,
            "Version": VERSION,
            "RegionId": self.region,
            "AccessKeyId": self.access_key_id,
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **params,
        }
        form["Signature"] = sign(form, os.environ.get(self.secret_env, ""))
        response = client.post(self.base_url, data=form)
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {"Code": f"HTTP {response.status_code}", "Message": response.text[:200]}
        if response.status_code >= 500 and "Code" not in body:
            body["Code"] = "ServiceUnavailable"
        return body

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]:
        results: list[SendResult] = []
        groups: dict[str, list[tuple[OutgoingMessage, dict[str, str]]]] = {}
        for message in batch:
            template = self.templates.get(message.template)
            if template is None:
                results.append(_fail(message, Permanent(
                    f"no Aliyun template code configured for cuikuan template {message.template!r}")))  # fmt: skip
                continue
            try:
                groups.setdefault(template.code, []).append(
                    (message, template.params(message.text))
                )
            except TemplateMismatch as exc:
                results.append(_fail(message, Permanent(str(exc))))
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            for code, items in groups.items():
                for start in range(0, len(items), BATCH):
                    results += self._send_group(client, code, items[start : start + BATCH], now)
        order = {m.outbox_id: i for i, m in enumerate(batch)}
        return sorted(results, key=lambda r: order[r.outbox_id])

    def _send_group(
        self,
        client: httpx.Client,
        code: str,
        items: list[tuple[OutgoingMessage, dict[str, str]]],
        now: datetime,
    ) -> list[SendResult]:
        numbers = [national(m.recipient) for m, _ in items]
        if len(items) == 1:
            message, params = items[0]
            request = {"PhoneNumbers": numbers[0], "SignName": self.sign_name,
                       "TemplateCode": code, "TemplateParam": json.dumps(params, ensure_ascii=False),
                       "OutId": str(message.outbox_id)}  # fmt: skip
            action = "SendSms"
        else:
            request = {"PhoneNumberJson": json.dumps(numbers),
                       "SignNameJson": json.dumps([self.sign_name] * len(items), ensure_ascii=False),
                       "TemplateCode": code,
                       "TemplateParamJson": json.dumps([p for _, p in items], ensure_ascii=False)}  # fmt: skip
            action = "SendBatchSms"
        try:
            body = self._call(client, action, request)
        except httpx.TransportError as exc:
            error: ProviderError = Transient(f"cannot reach Aliyun: {type(exc).__name__}")
            return [_fail(m, error) for m, _ in items]
        if body.get("Code") != "OK":
            error = _error(body)
            if len(items) > 1 and isinstance(error, Permanent):
                # One bad number refuses the whole batch: send one by one so only it fails.
                return [r for item in items for r in self._send_group(client, code, [item], now)]
            return [_fail(m, error) for m, _ in items]
        biz = str(body["BizId"])
        out = []
        for (message, _), number in zip(items, numbers, strict=True):
            self._pending.append((biz, number, now))
            out.append(SendResult(message.outbox_id, f"{biz}:{number}"))
        return out

    def receipts(self, now: datetime) -> list[Receipt]:
        """Pull the final state of what this process sent, once it has had time to arrive."""
        due = [p for p in self._pending if now - p[2] >= self.receipt_after]
        if not due:
            return []
        found: list[Receipt] = []
        keep = [p for p in self._pending if now - p[2] < self.receipt_after]
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            for biz, number, sent in due:
                try:
                    body = self._call(client, "QuerySendDetails", {
                        "PhoneNumber": number, "BizId": biz, "SendDate": sent.strftime("%Y%m%d"),
                        "PageSize": "10", "CurrentPage": "1"})  # fmt: skip
                except httpx.TransportError:
                    keep.append((biz, number, sent))
                    continue
                receipt = _pulled(body, biz, number, now)
                if receipt is None:
                    if now - sent < timedelta(days=2):
                        keep.append((biz, number, sent))
                else:
                    found.append(receipt)
        self._pending = keep
        return found


def _fail(message: OutgoingMessage, error: ProviderError) -> SendResult:
    return SendResult(message.outbox_id, None, error)


def _error(body: Mapping[str, Any]) -> ProviderError:
    code = str(body.get("Code", ""))
    detail = f"Aliyun {code}: {body.get('Message', '')}"
    if code.startswith(AUTH_CODES):
        return AuthError(detail)
    if code.startswith(TRANSIENT_CODES) or code.startswith("HTTP 5"):
        return Transient(detail)
    return Permanent(detail)


def _pulled(body: Mapping[str, Any], biz: str, number: str, now: datetime) -> Receipt | None:
    rows = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
    for row in rows:
        status = int(row.get("SendStatus", 1))  # 1 waiting, 2 failed, 3 delivered
        if status == 1:
            return None
        detail = str(row.get("ErrCode") or ("DELIVERED" if status == 3 else "FAILED"))
        return Receipt(f"{biz}:{number}", status == 3, now, detail)
    return None


def receipts_from_push(payload: str, now: datetime) -> list[Receipt]:
    """The SmsReport push: a JSON array of {"biz_id", "phone_number", "success", "err_code"...}."""
    rows = json.loads(payload)
    if not isinstance(rows, list):
        raise ValueError("an Aliyun SmsReport push is a JSON array")
    return [
        Receipt(
            f"{r['biz_id']}:{r['phone_number']}",
            bool(r.get("success")),
            now,
            str(r.get("err_code") or ("DELIVERED" if r.get("success") else "FAILED")),
        )
        for r in rows
    ]
