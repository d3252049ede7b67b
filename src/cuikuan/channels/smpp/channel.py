"""The SMPP channel: the synchronous Channel interface over an asyncio session in its own thread.

    channel = SmppChannel(SessionConfig(host="127.0.0.1", port=2775, system_id="x", password="y"))
    results = channel.send(batch, now)      # every part through the window, results per message
    receipts = channel.receipts(now)        # deliver_sm receipts that arrived meanwhile
    replies = channel.replies(now)          # mobile-originated messages, reassembled
    channel.close()

A message's fate is decided per part: all parts accepted -> sent (part ids kept for receipts);
a part refused -> Permanent; nothing written yet and the session down -> Transient (safe to try
again); a part written whose answer never came, or a message cut after some parts were accepted
-> Uncertain, which dispatch never resends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from cuikuan.channels.base import (
    BOTH,
    AuthError,
    Inbound,
    OutgoingMessage,
    Permanent,
    ProviderError,
    Receipt,
    SendResult,
    Transient,
    Uncertain,
)
from cuikuan.channels.smpp import coding, pdu
from cuikuan.channels.smpp.receipts import is_receipt, parse_receipt
from cuikuan.channels.smpp.session import (
    BindRefused,
    ConnectionLost,
    NotConnected,
    SessionConfig,
    SmppClient,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
STATUS_NAMES = {
    0x01: "ESME_RINVMSGLEN",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x45: "ESME_RSUBMITFAIL",
    0x58: "ESME_RTHROTTLED",
    0x14: "ESME_RMSGQFUL",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
}


def status_text(status: int) -> str:
    if 0x400 <= status <= 0x4FF:
        return f"0x{status:08X} (vendor-specific)"
    return f"0x{status:08X} {STATUS_NAMES.get(status, '')}".rstrip()


@dataclass
class SmppChannel:
    config: SessionConfig
    source_addr: str = ""
    source_ton: int = 5  # alphanumeric sender id by default; 1/1 for a long number
    source_npi: int = 0
    registered_delivery: int = 1
    reference_bits: int = 8
    name: str = "smpp"
    send_timeout: float = 300.0
    max_parts: int = 255  # what an 8-bit UDH can number
    encodings: tuple[str, ...] = BOTH
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _client: SmppClient | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _receipts: deque[Receipt] = field(default_factory=deque, init=False, repr=False)
    _replies: deque[Inbound] = field(default_factory=deque, init=False, repr=False)
    _refs: itertools.count[int] = field(
        default_factory=lambda: itertools.count(random.randrange(65536)), init=False, repr=False
    )

    @property
    def max_tps(self) -> float:
        return self.config.tps

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        reassembler = coding.Reassembler()
        ready = threading.Event()

        def on_deliver(sm: pdu.ShortMessage) -> None:
            self._on_deliver(sm, reassembler)

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._client = SmppClient(self.config, on_deliver)
            self._task = loop.create_task(self._client.run())
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"smpp-{self.name}", daemon=True)
        self._thread.start()
        ready.wait()

    def close(self) -> None:
        if self._thread is None or self._loop is None or self._client is None:
            return
        loop = self._loop
        fut = asyncio.run_coroutine_threadsafe(self._client.stop(), loop)
        try:
            fut.result(5)
            if self._task is not None:
                asyncio.run_coroutine_threadsafe(
                    asyncio.wait([self._task], timeout=2), loop
                ).result(3)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
            loop.close()
            self._thread = None

    def wait_bound(self, timeout: float = 10.0) -> bool:
        self.start()
        assert self._loop is not None and self._client is not None
        fut = asyncio.run_coroutine_threadsafe(self._client.wait_bound(timeout), self._loop)
        try:
            fut.result(timeout + 1)
            return True
        except (NotConnected, BindRefused):
            return False

    # -- the Channel interface ------------------------------------------------------------

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]:
        self.start()
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._send_all(batch), self._loop)
        return fut.result(self.send_timeout)

    def receipts(self, now: datetime) -> list[Receipt]:
        return _drain(self._receipts)

    def replies(self, now: datetime) -> list[Inbound]:
        return _drain(self._replies)

    # -- inside the event loop ------------------------------------------------------------

    async def _send_all(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        return list(await asyncio.gather(*(self._send_one(m) for m in batch)))

    async def _send_one(self, message: OutgoingMessage) -> SendResult:
        assert self._client is not None
        try:
            parts = coding.encode_parts(message.text, next(self._refs), self.reference_bits)
        except ValueError as exc:
            return SendResult(message.outbox_id, None, Permanent(str(exc)))
        accepted: list[str] = []
        for part in parts:
            sm = pdu.ShortMessage(
                source_addr=self.source_addr,
                source_addr_ton=self.source_ton,
                source_addr_npi=self.source_npi,
                destination_addr=message.recipient.lstrip("+"),
                short_message=part.octets,
                esm_class=part.esm_class,
                data_coding=part.data_coding,
                registered_delivery=self.registered_delivery,
            )
            error = await self._submit_part(pdu.sm_body(sm), accepted, len(parts))
            if error is not None:
                return SendResult(message.outbox_id, None, error, tuple(accepted))
        return SendResult(message.outbox_id, accepted[0], None, tuple(accepted))

    async def _submit_part(
        self, body: bytes, accepted: list[str], total: int
    ) -> ProviderError | None:
        assert self._client is not None
        done = f" after {len(accepted)} of {total} parts were accepted" if accepted else ""
        try:
            answer = await self._client.submit(body)
        except BindRefused as exc:
            return AuthError(f"SMPP {exc}")
        except NotConnected as exc:
            return Uncertain(f"{exc}{done}") if accepted else Transient(str(exc))
        except ConnectionLost as exc:
            return Uncertain(str(exc) + done)
        if answer.status == pdu.ESME_ROK:
            accepted.append(answer.message_id)
            return None
        if answer.status in (pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL) and not accepted:
            return Transient(f"SMSC still throttling: {status_text(answer.status)}")
        return Permanent(f"SMSC refused: {status_text(answer.status)}{done}")

    def _on_deliver(self, sm: pdu.ShortMessage, reassembler: coding.Reassembler) -> None:
        now = datetime.now(UTC)
        if is_receipt(sm):
            info = parse_receipt(sm)
            if info is None:
                log.warning("unreadable delivery receipt: %r", sm.short_message[:120])
                return
            if info.outcome is None:
                return  # intermediate (ENROUTE, ACCEPTD): wait for the final one
            detail = info.state + (f" err:{info.error}" if info.error else "")
            self._receipts.append(
                Receipt(
                    info.message_id,
                    info.outcome == "delivered",
                    now,
                    detail,
                    expired=info.outcome == "expired",
                )
            )
            return
        text = reassembler.add(sm)
        if text is not None:
            self._replies.append(Inbound(_e164(sm.source_addr), sm.destination_addr, text, now))
        for sender, partial in reassembler.expired():
            self._replies.append(Inbound(_e164(sender), sm.destination_addr, partial, now))


def _e164(address: str) -> str:
    return address if address.startswith("+") or not address.isdigit() else "+" + address


def _drain(queue: deque[T]) -> list[T]:
    out = []
    while queue:
        out.append(queue.popleft())
    return out
