"""The SMPP channel: the synchronous Channel interface over an asyncio session in its own thread.

    channel = SmppChannel(SessionConfig(host="127.0.0.1", port=2775, system_id="x", password="y"),
                          clock=clock)
    results = channel.send(batch, now)      # every part through the window, results per message
    receipts = channel.receipts(now)        # deliver_sm receipts that arrived meanwhile
    replies = channel.replies(now)          # mobile-originated messages, reassembled
    channel.close()

A message's fate is decided per part: all parts accepted -> sent (part ids kept for receipts);
a part refused -> Permanent; still throttled after a few tries -> Transient (back to the queue);
the SMSC unreachable and nothing written -> Unreachable (the provider is down: the message waits
inside its window); a part written whose answer never came, or a message cut after some parts
were accepted -> Uncertain, which dispatch never resends.

Every message carries a validity period, the end of its contact window, so an SMSC that cannot
deliver it in time drops it rather than waking someone at night. With `sessions` > 1 the
channel holds that many binds, messages dealt out in turn, the agreed rate shared between them.
With `receivers` > 0 the binds are split as some carriers require: the `sessions` bind as
transmitters (they only send) and `receivers` more bind as receivers (they only hear receipts
and replies); `hear_only` (what `listen` holds) binds the receivers alone.

What the binds hear is kept in `journal` before it is acknowledged (channels/smpp/inbound.py):
the database's when dispatch builds the channel, read by `dispatch.inbound`; else in memory,
read by `receipts` and `replies` here.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

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
    Unreachable,
)
from cuikuan.channels.smpp import coding, pdu
from cuikuan.channels.smpp.inbound import Arrival, Journal, MemoryJournal
from cuikuan.channels.smpp.session import (
    BindRefused,
    ConnectionLost,
    NotConnected,
    SessionConfig,
    SmppClient,
)

log = logging.getLogger(__name__)
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


def default_source_ton(source_addr: str) -> tuple[int, int]:
    """(TON, NPI) a sender id is read as when the settings do not say: letters are an
    alphanumeric name (5/0), a number with its country code an international one (1/1), a
    short code or a national number unknown in the ISDN plan (0/1)."""
    if not source_addr or not source_addr.lstrip("+").isdigit():
        return 5, 0
    if source_addr.startswith("+") or len(source_addr) > 11:
        return 1, 1
    return 0, 1


@functools.lru_cache(maxsize=4096)
def validity(latest: datetime | None) -> str:
    """SMPP's absolute time format in UTC (YYMMDDhhmmsstnnp, offset 00 quarter hours, +).
    Cached: a day's messages share a few window ends, and formatting one a message showed."""
    return "" if latest is None else f"{latest.astimezone(UTC):%y%m%d%H%M%S}000+"


@dataclass
class SmppChannel:
    config: SessionConfig
    source_addr: str = ""
    source_ton: int | None = None  # None: from the address (default_source_ton)
    source_npi: int | None = None
    registered_delivery: int = 1
    reference_bits: int = 8
    name: str = "smpp"
    send_timeout: float = 300.0
    max_parts: int = 255  # what an 8-bit UDH can number
    encodings: tuple[str, ...] = BOTH
    sessions: int = 1
    receivers: int = 0  # 0: every session a transceiver; else separate receiver binds
    hear_only: bool = False  # bind only what hears (the receivers, or the transceivers)
    journal: Journal | None = None  # None: kept in memory, read by receipts() and replies()
    # The caller's clock (the command line's): what a bind hears is stamped with it.
    clock: Callable[[], datetime] = field(kw_only=True)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _clients: list[SmppClient] = field(default_factory=list, init=False, repr=False)
    _senders: list[SmppClient] = field(default_factory=list, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)
    _turn: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)
    _memory: MemoryJournal | None = field(default=None, init=False, repr=False)
    _receipts: list[Receipt] = field(default_factory=list, init=False, repr=False)
    _replies: list[Inbound] = field(default_factory=list, init=False, repr=False)
    _refs: itertools.count[int] = field(
        default_factory=lambda: itertools.count(random.randrange(65536)), init=False, repr=False
    )

    def __post_init__(self) -> None:
        ton, npi = default_source_ton(self.source_addr)
        self.source_ton = ton if self.source_ton is None else self.source_ton
        self.source_npi = npi if self.source_npi is None else self.source_npi
        if self.journal is None:
            self.journal = MemoryJournal()
        if isinstance(self.journal, MemoryJournal):
            self._memory = self.journal

    @property
    def max_tps(self) -> float:
        return self.config.tps

    @property
    def expects_receipts(self) -> bool:
        return bool(self.registered_delivery & 0x01)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        configs = self._bind_configs()

        def keep(arrivals: Sequence[Arrival]) -> None:
            assert self.journal is not None
            self.journal.keep(self.name, arrivals)

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._clients = [SmppClient(c, keep, self.clock) for c in configs]
            self._senders = [c for c in self._clients if c.config.bind != "receiver"]
            self._tasks = [loop.create_task(c.run()) for c in self._clients]
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"smpp-{self.name}", daemon=True)
        self._thread.start()
        ready.wait()

    def _bind_configs(self) -> list[SessionConfig]:
        """One config per bind: the senders share the agreed rate."""
        count = max(1, self.sessions)
        if self.receivers <= 0:
            return [replace(self.config, tps=self.config.tps / count)] * count
        hearing = [replace(self.config, bind="receiver")] * self.receivers
        if self.hear_only:
            return hearing
        sending = replace(self.config, tps=self.config.tps / count, bind="transmitter")
        return [sending] * count + hearing

    def close(self) -> None:
        if self._thread is None or self._loop is None or not self._clients:
            return
        loop = self._loop
        fut = asyncio.run_coroutine_threadsafe(_all(c.stop() for c in self._clients), loop)
        try:
            fut.result(5)
            if self._tasks:
                asyncio.run_coroutine_threadsafe(asyncio.wait(self._tasks, timeout=2), loop).result(
                    3
                )
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
            loop.close()
            self._thread = None

    def wait_bound(self, timeout: float = 10.0) -> bool:
        self.start()
        assert self._loop is not None and self._clients
        waits = (c.wait_bound(timeout) for c in self._clients)
        fut = asyncio.run_coroutine_threadsafe(_all(waits), self._loop)
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
        self._take(now)
        out, self._receipts = self._receipts, []
        return out

    def replies(self, now: datetime) -> list[Inbound]:
        self._take(now)
        out, self._replies = self._replies, []
        return out

    def _take(self, now: datetime) -> None:
        """The in-memory journal read (a stored journal is read by dispatch.inbound)."""
        if self._memory is None:
            return
        heard = self._memory.take(now)
        self._receipts += [r for _, r in heard.receipts]
        for reply in heard.replies:
            sm = reply.sm
            self._replies.append(
                Inbound(sm.source_addr, sm.destination_addr, reply.text, reply.at,
                        sender_ton=sm.source_addr_ton)
            )  # fmt: skip
        for key, why in heard.unreadable.items():
            log.warning("inbound PDU %d: %s", key, why)

    # -- inside the event loop ------------------------------------------------------------

    async def _send_all(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        """As many workers as the binds' windows hold submits, each taking the next message:
        the window stays full without a task a message."""
        results: list[SendResult | None] = [None] * len(batch)
        queue = iter(enumerate(batch))

        async def work() -> None:
            for i, message in queue:
                results[i] = await self._send_one(message)

        room = sum(c.config.window for c in self._senders) or 1
        await asyncio.gather(*(work() for _ in range(min(room, len(batch)))))
        return [r for r in results if r is not None]

    async def _send_one(self, message: OutgoingMessage) -> SendResult:
        if not self._senders:
            return SendResult(message.outbox_id, None, Unreachable("no bind that may send"))
        client = self._senders[next(self._turn) % len(self._senders)]
        try:
            parts = coding.encode_parts(message.text, next(self._refs), self.reference_bits)
        except ValueError as exc:
            return SendResult(message.outbox_id, None, Permanent(str(exc)))
        accepted: list[str] = []
        for part in parts:
            sm = pdu.ShortMessage(
                source_addr=self.source_addr,
                source_addr_ton=int(self.source_ton or 0),
                source_addr_npi=int(self.source_npi or 0),
                destination_addr=message.recipient.lstrip("+"),
                short_message=part.octets,
                esm_class=part.esm_class,
                data_coding=part.data_coding,
                registered_delivery=self.registered_delivery,
                validity_period=validity(message.latest_at),
            )
            error = await self._submit_part(client, pdu.sm_body(sm), accepted, len(parts))
            if error is not None:
                return SendResult(message.outbox_id, None, error, tuple(accepted))
        return SendResult(message.outbox_id, accepted[0], None, tuple(accepted))

    async def _submit_part(
        self, client: SmppClient, body: bytes, accepted: list[str], total: int
    ) -> ProviderError | None:
        done = f" after {len(accepted)} of {total} parts were accepted" if accepted else ""
        try:
            answer = await client.submit(body)
        except BindRefused as exc:
            return AuthError(f"SMPP {exc}")
        except NotConnected as exc:
            return Uncertain(f"{exc}{done}") if accepted else Unreachable(str(exc))
        except ConnectionLost as exc:
            return Uncertain(str(exc) + done)
        if answer.status == pdu.ESME_ROK:
            accepted.append(answer.message_id)
            return None
        if answer.status in (pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL) and not accepted:
            return Transient(f"SMSC still throttling: {status_text(answer.status)}")
        return Permanent(f"SMSC refused: {status_text(answer.status)}{done}")


async def _all(calls: Iterable[Coroutine[Any, Any, None]]) -> None:
    await asyncio.gather(*calls)
