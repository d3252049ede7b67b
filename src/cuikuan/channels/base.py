"""The channel interface: send a batch, report results; receipts come back later.

    results = channel.send([OutgoingMessage(outbox_id=1, recipient="+86...", text="...")])
    receipts = channel.receipts(now)

ProviderError > Transient (retry) | Permanent (fail the message) | Auth (stop the channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ProviderError(Exception):
    pass


class Transient(ProviderError):
    pass


class Permanent(ProviderError):
    pass


class AuthError(ProviderError):
    pass


@dataclass(frozen=True)
class OutgoingMessage:
    outbox_id: int
    channel: str
    recipient: str
    text: str


@dataclass(frozen=True)
class SendResult:
    outbox_id: int
    provider_id: str | None
    error: ProviderError | None = None


@dataclass(frozen=True)
class Receipt:
    provider_id: str
    delivered: bool
    at: datetime
    detail: str = ""


class Channel(Protocol):
    name: str
    max_tps: float

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]: ...

    def receipts(self, now: datetime) -> list[Receipt]: ...
