"""The channel interface: send a batch, report results; receipts come back later.

    results = channel.send([OutgoingMessage(outbox_id=1, recipient="+86...", text="...")])
    receipts = channel.receipts(now)

ProviderError > Transient (retry; Unreachable: the provider is down) | Permanent (fail the message) | Auth (stop the channel)
              | Uncertain (handed over, fate unknown: never resent automatically).

A channel that can also receive (SMPP binds) has `replies(now) -> list[Inbound]`.
"""

from __future__ import annotations

from collections.abc import Iterable
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


class Uncertain(ProviderError):
    pass


class Unreachable(Transient):
    """Nothing was handed over: the provider could not be reached (down, a carrier outage).
    The provider is down, not the message: it waits inside its window."""


@dataclass(frozen=True)
class OutgoingMessage:
    outbox_id: int
    channel: str
    recipient: str
    text: str
    template: str = ""  # the cuikuan template: template-based providers map it to their code
    latest_at: datetime | None = None  # the window's end: not to be delivered after it


@dataclass(frozen=True)
class SendResult:
    outbox_id: int
    provider_id: str | None
    error: ProviderError | None = None
    # Every id the provider gave, one per part of a concatenated SMS (receipts come per part).
    part_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Receipt:
    provider_id: str
    delivered: bool
    at: datetime
    detail: str = ""
    expired: bool = False

    @property
    def outcome(self) -> str:
        return "delivered" if self.delivered else "expired" if self.expired else "undelivered"


@dataclass(frozen=True)
class Inbound:
    """A message a borrower sent us (mobile originated), stored raw for the replies pipeline."""

    sender: str  # as the provider gave it
    recipient: str
    text: str
    at: datetime
    # SMPP's type of number for `sender` (1 international, 2 national, 0 unknown, 5 a name);
    # None: the provider gives numbers in international form.
    sender_ton: int | None = None


BOTH = ("GSM-7", "UCS-2")


class Channel(Protocol):
    """Declared limits: `max_tps` (requests a second it is paced to), `encodings` it can carry,
    `max_parts` per SMS (0: not an SMS channel). Dispatch never hands a channel a message beyond
    them; the route's fallback may take it instead."""

    name: str

    @property
    def max_tps(self) -> float: ...

    @property
    def max_parts(self) -> int: ...

    @property
    def encodings(self) -> tuple[str, ...]: ...

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]: ...

    def receipts(self, now: datetime) -> list[Receipt]: ...


def close_all(channels: Iterable[Channel]) -> None:
    """Close the channels that hold something open (an SMPP bind and its thread)."""
    for channel in channels:
        close = getattr(channel, "close", None)
        if close is not None:
            close()


def pushing(channels: Iterable[Channel]) -> list[Channel]:
    """The channels that hear receipts and replies on their own (SMPP binds)."""
    return [c for c in channels if hasattr(c, "replies")]
