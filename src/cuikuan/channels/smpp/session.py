"""One SMPP session on asyncio: bind, windowed requests, keep-alive, inbound PDUs.

    client = SmppClient(config, keep, clock)
    asyncio.create_task(client.run())          # binds, keeps the bind, reconnects with backoff
    outcome = await client.submit(sm_body)     # Answer(status, message_id) | raises

Requests are matched to responses by sequence number in a dict, so the cost per message does not
grow with the traffic. At most `window` submits are in flight. A throttling answer (0x58, 0x14)
halves the session's rate for every sender, which then climbs back towards the agreed rate as
submits go through; the throttled part is tried again a few times at the new pace and then
answered as throttled, so the caller puts the message back in the queue instead of holding its
batch. Any other error status fails that message only and the session stays up.

deliver_sm and data_sm are acknowledged only once `keep` has stored them (in a thread, the
PDUs that arrive meanwhile stored together in the next call); if storing fails they are answered
with a temporary error and the SMSC sends them again.

A session binds as a transceiver (sends and hears), a transmitter (sends only) or a receiver
(hears only), as `SessionConfig.bind` says; carriers that want separate binds get the last two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cuikuan.channels.smpp import pdu
from cuikuan.channels.smpp.inbound import Arrival

log = logging.getLogger(__name__)
AUTH_STATUSES = {pdu.ESME_RINVPASWD, pdu.ESME_RINVSYSID, pdu.ESME_RBINDFAIL}
THROTTLE_STATUSES = {pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL}
BindMode = Literal["transceiver", "transmitter", "receiver"]
BIND_COMMANDS: dict[BindMode, int] = {
    "transceiver": pdu.BIND_TRANSCEIVER,
    "transmitter": pdu.BIND_TRANSMITTER,
    "receiver": pdu.BIND_RECEIVER,
}


@dataclass(frozen=True)
class SessionConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "cuikuan"
    password: str = ""
    system_type: str = ""
    window: int = 64
    tps: float = 5000.0
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 5.0
    max_backoff: float = 30.0
    throttle_tries: int = 4  # a throttled part is tried this often before going back to the queue
    bind: BindMode = "transceiver"


class NotConnected(Exception):
    """Nothing was written: safe to try again later."""


class ConnectionLost(Exception):
    """The request was written but no answer came: the peer may or may not have it."""


class BindRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused with status 0x{status:08X}")
        self.status = status


@dataclass(frozen=True)
class Answer:
    status: int
    message_id: str


class _Protocol(asyncio.Protocol):
    def __init__(self, on_pdu: Callable[[pdu.Pdu], None], on_lost: Callable[[], None]) -> None:
        self.framer = pdu.Framer()
        self.transport: asyncio.Transport | None = None
        self.on_pdu, self.on_lost = on_pdu, on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._out: list[bytes] = []

    def send(self, data: bytes) -> None:
        """Write `data` with whatever else is written in this turn of the loop: one write (a
        system call) for a window's worth of submits, not one each, which cost a tenth of a
        busy dispatch."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        data, self._out = b"".join(self._out), []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            pdus = self.framer.feed(data)
        except pdu.PduError as exc:
            log.warning("SMPP stream broken (%s); closing the session", exc)
            if self.transport:
                self.transport.close()
            return
        for p in pdus:
            self.on_pdu(p)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.on_lost()


class RateLimiter:
    """Spaces requests to `rate` a second, allowing a burst of a tenth of a second's worth.
    `slow_down` halves the rate (the peer throttled us); each `recover` gives back a
    twentieth of the agreed rate, up to it (additive increase, multiplicative decrease)."""

    CALM = 0.25  # seconds after slowing down in which more throttling answers change nothing

    def __init__(self, rate: float) -> None:
        self.agreed = rate
        self.next_free = 0.0
        self.calm_until = 0.0
        self._set(rate)

    def _set(self, rate: float) -> None:
        self.rate = rate
        self.interval = 1.0 / rate
        self.burst = max(1.0, rate / 10) * self.interval

    def slow_down(self) -> None:
        """Halve the rate, once per CALM: the answers to requests already in flight at the
        old rate say nothing new."""
        now = asyncio.get_running_loop().time()
        if now < self.calm_until:
            return
        self.calm_until = now + self.CALM
        self._set(max(1.0, self.rate / 2))
        self.next_free = max(self.next_free, now + self.interval)

    def recover(self) -> None:
        if self.rate < self.agreed:
            self._set(min(self.agreed, self.rate + self.agreed / 20))

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now - self.burst, self.next_free)
        self.next_free = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class SmppClient:
    def __init__(
        self,
        config: SessionConfig,
        keep: Callable[[Sequence[Arrival]], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.keep, self.clock = keep, clock
        self.session = ""  # names the current bind in what it hears
        self._inbox: list[tuple[asyncio.Transport, pdu.Pdu, Arrival]] = []
        self._storing: asyncio.Task[None] | None = None
        self._proto: _Protocol | None = None
        # In flight: sequence -> (its answer, the loop time by which it must come).
        self._pending: dict[int, tuple[asyncio.Future[pdu.Pdu], float]] = {}
        self._seq = 0
        self._bound = asyncio.Event()
        self._closed = asyncio.Event()
        self._window = asyncio.Semaphore(config.window)
        self._limiter = RateLimiter(config.tps)
        self._stopping = False
        self.auth_error: BindRefused | None = None
        self.binds = 0

    # -- the connection -------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a bound session until `stop`; reconnect with exponential backoff."""
        backoff = 0.2
        while not self._stopping:
            try:
                await self._connect_and_bind()
                backoff = 0.2
                keepalive = asyncio.create_task(self._keepalive())
                sweeper = asyncio.create_task(self._sweep())
                await self._closed.wait()
                keepalive.cancel()
                sweeper.cancel()
            except BindRefused as exc:
                if exc.status in AUTH_STATUSES:
                    self.auth_error = exc
                    log.error("SMPP %s; the channel stops until its settings are fixed", exc)
                    self._bound.set()  # wake the waiters so they see the error
                    return
                log.warning("SMPP %s; retrying", exc)
            except (OSError, TimeoutError, ConnectionLost, NotConnected) as exc:
                log.warning(
                    "SMPP connection to %s:%s failed: %s", self.config.host, self.config.port, exc
                )
            except Exception:  # whatever went wrong, the session must come back
                log.exception("SMPP session failed; reconnecting")
                self._close()
            if self._stopping:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.max_backoff)

    async def _connect_and_bind(self) -> None:
        loop = asyncio.get_running_loop()
        self._closed.clear()
        self._bound.clear()
        _, proto = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Protocol(self._on_pdu, self._on_lost), self.config.host, self.config.port
            ),
            self.config.connect_timeout,
        )
        self._proto = proto
        body = pdu.bind_body(self.config.system_id, self.config.password, self.config.system_type)
        try:  # the sweeper runs once bound: the bind has a timeout of its own
            answer = await asyncio.wait_for(
                self._request(BIND_COMMANDS[self.config.bind], body), self.config.response_timeout
            )
        except TimeoutError:
            self._close()
            raise ConnectionLost("no answer to the bind within the response timeout") from None
        if answer.status != pdu.ESME_ROK:
            self._close()
            raise BindRefused(answer.status)
        self.binds += 1
        mode = "" if self.config.bind == "transceiver" else f"/{self.config.bind[:2]}"
        self.session = f"{self.config.system_id}#{self.binds}{mode}@{self.clock():%Y%m%dT%H%M%S.%f}"
        self._bound.set()

    async def wait_bound(self, timeout: float) -> None:
        """Return once bound; raise the bind refusal, or NotConnected after `timeout`.
        Re-checks every 0.1 s: an event set and cleared again before a waiter first runs
        (bind refused, then the connection closes) must not leave it waiting out the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.auth_error is None and not self._bound.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NotConnected("no SMPP session within the connect timeout")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bound.wait(), min(remaining, 0.1))
        if self.auth_error is not None:
            raise self.auth_error

    async def stop(self) -> None:
        self._stopping = True
        if self._proto is not None and self._proto.transport is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._request(pdu.UNBIND, b""), 2.0)
        self._close()

    def _close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()

    def _on_lost(self) -> None:
        if self.auth_error is None:
            self._bound.clear()
        self._closed.set()
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(
                    ConnectionLost("the SMPP session closed with the request in flight")
                )

    async def _sweep(self) -> None:
        """A request unanswered past its deadline means a silent peer: close the session, which
        fails every request in flight (ConnectionLost) and starts a fresh one. One timer for the
        session rather than one a request: at thousands of submits a second, a timer each was a
        tenth of the session's work."""
        loop = asyncio.get_running_loop()
        every = max(0.05, min(1.0, self.config.response_timeout / 10))
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            if any(deadline < now for _, deadline in self._pending.values()):
                log.warning("SMPP peer silent for %ss; closing the session",
                            self.config.response_timeout)  # fmt: skip
                self._close()
                return

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.config.enquire_link_interval)
            try:
                await self._request(pdu.ENQUIRE_LINK, b"")
            except (ConnectionLost, NotConnected, TimeoutError):
                self._close()
                return

    # -- requests and inbound PDUs ------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0x7FFFFFFF else 1
        return self._seq

    async def _request(self, command_id: int, body: bytes) -> pdu.Pdu:
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            raise NotConnected("no SMPP session")
        seq = self._next_seq()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[pdu.Pdu] = loop.create_future()
        self._pending[seq] = (fut, loop.time() + self.config.response_timeout)
        proto.send(pdu.encode(command_id, seq, body))
        return await fut  # answered, or ConnectionLost when the session closes (_sweep)

    def _on_pdu(self, p: pdu.Pdu) -> None:
        if p.is_response:
            waiting = self._pending.pop(p.sequence, None)
            if waiting is not None and not waiting[0].done():
                waiting[0].set_result(p)
            return
        transport = self._proto.transport if self._proto else None
        if transport is None:
            return
        if p.command_id in (pdu.DELIVER_SM, pdu.DATA_SM):
            arrival = Arrival(self.session, p.command_id, p.body, self.clock())
            self._inbox.append((transport, p, arrival))
            if self._storing is None:
                self._storing = asyncio.get_running_loop().create_task(self._store_inbox())
        elif p.command_id == pdu.ENQUIRE_LINK:
            transport.write(pdu.encode(pdu.ENQUIRE_LINK_RESP, p.sequence))
        elif p.command_id == pdu.UNBIND:
            transport.write(pdu.encode(pdu.UNBIND_RESP, p.sequence))
            transport.close()
        else:
            transport.write(pdu.encode(pdu.GENERIC_NACK, p.sequence, status=pdu.ESME_RINVCMDID))

    async def _store_inbox(self) -> None:
        """Store what arrived, then acknowledge it on the connection it came on; whatever
        arrives while one batch is being stored goes in the next."""
        loop = asyncio.get_running_loop()
        try:
            while self._inbox:
                batch, self._inbox = self._inbox, []
                try:
                    await loop.run_in_executor(None, self.keep, [a for _, _, a in batch])
                    status = pdu.ESME_ROK
                except Exception:  # not stored: not acknowledged, so the SMSC sends it again
                    log.exception(
                        "could not store %d inbound PDU(s); answered with a temporary error",
                        len(batch),
                    )
                    status = pdu.ESME_RX_T_APPNACK
                # Each connection's answers in one write (a connection may have been replaced
                # while its PDUs were stored: those answers go nowhere).
                answers: dict[asyncio.Transport, list[bytes]] = {}
                for transport, p, _ in batch:
                    answer = (
                        pdu.DATA_SM_RESP if p.command_id == pdu.DATA_SM else pdu.DELIVER_SM_RESP
                    )
                    answers.setdefault(transport, []).append(
                        pdu.encode(answer, p.sequence, b"\0", status=status)
                    )
                for transport, written in answers.items():
                    if not transport.is_closing():
                        transport.write(b"".join(written))
        finally:
            self._storing = None

    async def submit(self, body: bytes) -> Answer:
        """Submit one part. Returns the final answer (accepted, or refused with a status that is
        not throttling); raises NotConnected when nothing was written and ConnectionLost when
        the part was written but its fate is unknown."""
        if self.config.bind == "receiver":
            raise ValueError("a receiver bind cannot submit")  # the channel never asks it to
        throttled = 0
        while True:
            if not self._bound.is_set() or self.auth_error is not None:
                await self.wait_bound(self.config.connect_timeout)
            await self._limiter.acquire()
            try:
                async with self._window:
                    resp = await self._request(pdu.SUBMIT_SM, body)
            except NotConnected:
                # Nothing was written: wait for the next bind (raises if none comes in time).
                self._bound.clear()
                await self.wait_bound(self.config.connect_timeout)
                continue
            if resp.status in THROTTLE_STATUSES:
                self._limiter.slow_down()
                throttled += 1
                if throttled < self.config.throttle_tries:
                    continue
            elif resp.status == pdu.ESME_ROK:
                self._limiter.recover()
            return Answer(resp.status, pdu.decode_cstr(resp.body))
