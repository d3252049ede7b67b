"""A local SMSC on loopback that speaks real SMPP 3.4, for users without a carrier account and for
the test suite.

    smsc = Smsc(SmscConfig(port=2775, log_path=Path("smsc.jsonl")))
    await smsc.serve()

It accepts binds, answers submit_sm with a message id, sends delivery receipts as deliver_sm,
and injects mobile-originated messages on request (a line of JSON on the control port). As a
carrier does, it sends receipts and borrowers' messages only to binds that may hear them
(transceivers and receivers of the same system id; the submitting bind first), refuses
submit_sm on a receiver bind, and keeps what no such bind is there to take for the next one. Its PDUs
are read and written with smpplib, a different implementation from cuikuan's own client, so a
misreading of the protocol cannot hide in both.

Destinations choose their fate by their last four digits, so tests and demos can reach every
path on purpose:

    ...0058  ESME_RTHROTTLED (0x58) the first two times, then accepted
    ...0014  ESME_RMSGQFUL (0x14) once, then accepted
    ...0011  ESME_RINVDSTADR (0x0B): refused
    ...0401  vendor-specific status 0x401: refused
    ...0000  accepted, receipt UNDELIV
    ...0003  accepted, receipt EXPIRED
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from smpplib import gsm as sgsm
from smpplib import smpp as ssmpp

log = logging.getLogger(__name__)
FATES: dict[str, tuple[str, int | str]] = {
    "0058": ("throttle", 2),
    "0059": ("throttle", 10**9),  # throttled for ever
    "0014": ("queuefull", 1),
    "0011": ("refuse", 0x0B),
    "0401": ("refuse", 0x401),
    "0000": ("receipt", "UNDELIV"),
    "0003": ("receipt", "EXPIRED"),
}
_STATE_CODE = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5}
HEAR = ("transceiver", "receiver")  # binds that may be sent deliver_sm


class _NoSequence:
    """smpplib numbers PDUs through a client; we always pass the sequence ourselves."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_CLIENT = _NoSequence()


@dataclass
class SmscConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    control_port: int | None = None
    system_id: str | None = None  # None: any system id and password bind
    password: str | None = None
    receipt_delay: float = 0.0
    receipt_ids: str = "hex"  # how receipts spell the id: "hex" (as submitted) or "decimal"
    receipt_seconds: bool = True  # dates as YYMMDDhhmmss, else YYMMDDhhmm
    receipt_lowercase: bool = False  # stat:delivrd
    receipt_tlvs: bool = True
    data_sm: bool = False  # receipts as data_sm (message_payload) instead of deliver_sm
    silent_keepalive: bool = False  # never answer enquire_link (a half-dead link)
    max_tps: float | None = None  # beyond this, answer ESME_RTHROTTLED
    drop_after: int | None = None  # close the connection, unanswered, on this many-th submit
    ids_from: int | None = None  # message ids from here (a restarted SMSC that reuses them)
    log_path: Path | None = None


@dataclass
class Session:
    writer: asyncio.StreamWriter
    system_id: str = ""
    mode: str = ""  # "transceiver", "transmitter" or "receiver" once bound
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # deliver_sm/data_sm sent and not yet acknowledged: (PDU name, fields) by sequence. What a
    # session leaves unacknowledged is delivered again on the next bind, as carriers do.
    unacked: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class Smsc:
    def __init__(self, config: SmscConfig) -> None:
        self.config = config
        # Ids start at random so a restarted SMSC does not hand out the same ones again.
        start = config.ids_from if config.ids_from is not None else secrets.randbits(40) << 8
        self.ids = itertools.count(start)
        self.sessions: list[Session] = []
        self.stats: Counter[str] = Counter()
        self.seen: Counter[bytes] = Counter()
        self.received: list[dict[str, Any]] = []
        self._log: TextIO | None = None
        self._window_start = time.monotonic()
        self._window_count = 0
        self._dropped = False
        self._servers: list[asyncio.base_events.Server] = []
        self._undelivered: list[tuple[str, dict[str, Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._turn = itertools.count()

    async def serve(self) -> None:
        if not self._servers:
            await self.start()
        await asyncio.gather(*(s.serve_forever() for s in self._servers))

    async def start(self) -> None:
        if self.config.log_path:
            self._log = self.config.log_path.open("a", encoding="utf-8")
        self._servers.append(
            await asyncio.start_server(self._session, self.config.host, self.config.port)
        )
        if self.config.control_port is not None:
            self._servers.append(
                await asyncio.start_server(
                    self._control, self.config.host, self.config.control_port
                )
            )
        self._flusher = asyncio.get_running_loop().create_task(self._flush_log())

    @property
    def port(self) -> int:
        port: int = self._servers[0].sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        for server in self._servers:
            server.close()
        for s in self.sessions:
            s.writer.close()
        if self._log:
            self._log.close()
            self._log = None

    async def _flush_log(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self._log:
                self._log.flush()

    # -- SMPP sessions --------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer)
        self.sessions.append(session)
        try:
            while True:
                header = await reader.readexactly(4)
                (length,) = struct.unpack(">L", header)
                data = header + await reader.readexactly(length - 4)
                try:
                    keep = self._handle(session, data)
                except Exception:  # a PDU we cannot read must not end everyone's session
                    log.exception("SMSC could not handle a PDU")
                    session.write(
                        _resp("generic_nack", struct.unpack(">L", data[12:16])[0], status=0x08)
                    )
                    keep = True
                if not keep:
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.sessions.remove(session)
            self._undelivered += session.unacked.values()
            writer.close()

    def _handle(self, session: Session, data: bytes) -> bool:
        command_id = struct.unpack(">L", data[4:8])[0]
        sequence = struct.unpack(">L", data[12:16])[0]
        if command_id & 0x80000000:
            self.stats["responses"] += 1  # deliver_sm_resp, enquire_link_resp: nothing to do
            if command_id in (0x80000005, 0x80000103):  # deliver_sm_resp, data_sm_resp
                status = struct.unpack(">L", data[8:12])[0]
                self.stats["acked" if status == 0 else "ack_refused"] += 1
                sent = session.unacked.pop(sequence, None)
                if status != 0 and sent is not None:  # a temporary error: again in a moment
                    asyncio.get_running_loop().call_later(0.5, self._deliver, session, *sent)
            return True
        p = ssmpp.parse_pdu(data, client=_CLIENT, allow_unknown_opt_params=True)
        name = p.command
        if name in ("bind_transceiver", "bind_transmitter", "bind_receiver"):
            return self._bind(session, p, name, sequence)
        if name == "submit_sm":
            if session.mode == "receiver":
                session.write(_resp("submit_sm_resp", sequence, status=0x04))  # ESME_RINVBNDSTS
                return True
            return self._submit(session, p, sequence)
        if name == "enquire_link":
            self.stats["enquire_links"] += 1
            if not self.config.silent_keepalive:
                session.write(_resp("enquire_link_resp", sequence))
        elif name == "unbind":
            session.write(_resp("unbind_resp", sequence))
            return False
        else:
            session.write(_resp("generic_nack", sequence, status=0x03))
        return True

    def _bind(self, session: Session, p: Any, name: str, sequence: int) -> bool:
        system_id = _text(p.system_id)
        ok = self.config.system_id is None or (
            system_id == self.config.system_id and _text(p.password) == self.config.password
        )
        status = 0 if ok else (0x0F if system_id != self.config.system_id else 0x0E)
        # The session's state first: a client in another thread may act on the answer at once.
        session.system_id = system_id
        session.mode = name.removeprefix("bind_") if ok else ""
        self.stats["binds" if ok else "binds_refused"] += 1
        session.write(_resp(name + "_resp", sequence, status=status, system_id="cuikuan-smsc"))
        if ok and self._undelivered and session.mode != "transmitter":
            again, self._undelivered = self._undelivered, []
            self.stats["redelivered"] += len(again)
            for name_fields in again:
                self._deliver(session, *name_fields)
        return ok

    def _hearing(self, system_id: str) -> list[Session]:
        return [
            s for s in self.sessions if s.mode in HEAR and s.system_id == system_id
        ]  # fmt: skip

    def _deliver(self, session: Session, name: str, fields: dict[str, Any]) -> None:
        """Send a deliver_sm or data_sm and remember it until it is acknowledged: on `session`
        if it may hear, else on a bind of its system id that may; kept for the next bind when
        none is there."""
        if session not in self.sessions or session.mode not in HEAR:
            others = self._hearing(session.system_id)
            if not others:
                self._undelivered.append((name, fields))
                return
            session = others[next(self._turn) % len(others)]
        sequence = next(session.seq)
        session.unacked[sequence] = (name, fields)
        session.write(_make(name, sequence, **fields))

    def _submit(self, session: Session, p: Any, sequence: int) -> bool:
        self.stats["submits"] += 1
        drop_at = self.config.drop_after
        if drop_at is not None and not self._dropped and self.stats["submits"] >= drop_at:
            # The SMSC takes this one but the answer never leaves: the client cannot know.
            self._dropped = True
            self._accept(p, self._next_id())
            return False
        destination = _text(p.destination_addr)
        fate = FATES.get(destination[-4:])
        if self._over_rate() or self._throttled(fate, p):
            self.stats["throttled"] += 1
            session.write(_resp("submit_sm_resp", sequence, status=0x58))
            return True
        if fate and fate[0] == "refuse":
            self.stats["refused"] += 1
            session.write(_resp("submit_sm_resp", sequence, status=int(fate[1])))
            return True
        message_id = self._next_id()
        session.write(_resp("submit_sm_resp", sequence, message_id=message_id))
        self._accept(p, message_id)
        if int(p.registered_delivery or 0) & 0x01:
            state = str(fate[1]) if fate and fate[0] == "receipt" else "DELIVRD"
            loop = asyncio.get_running_loop()
            if self.config.receipt_delay > 0:
                loop.call_later(
                    self.config.receipt_delay, self._receipt, session, p, message_id, state
                )
            else:
                self._receipt(session, p, message_id, state)
        return True

    def _throttled(self, fate: tuple[str, int | str] | None, p: Any) -> bool:
        if not fate or fate[0] not in ("throttle", "queuefull"):
            return False
        key = _raw(p.destination_addr) + _raw(p.short_message)
        self.seen[key] += 1
        return self.seen[key] <= int(str(fate[1]))

    def _over_rate(self) -> bool:
        if self.config.max_tps is None:
            return False
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        return self._window_count > self.config.max_tps

    def _next_id(self) -> str:
        return format(next(self.ids), "x")

    def _accept(self, p: Any, message_id: str) -> None:
        record = {
            "id": message_id,
            "source": _text(p.source_addr),
            "destination": _text(p.destination_addr),
            "esm_class": int(p.esm_class or 0),
            "data_coding": int(p.data_coding or 0),
            "short_message": _raw(p.short_message).hex(),
            "validity_period": _text(p.validity_period),
            "at": datetime.now(UTC).isoformat(),
        }
        self.stats["accepted"] += 1
        self.received.append(record)
        if self._log:
            self._log.write(json.dumps(record) + "\n")

    def _receipt(self, session: Session, p: Any, message_id: str, state: str) -> None:
        now = datetime.now(UTC)
        stamp = now.strftime("%y%m%d%H%M%S" if self.config.receipt_seconds else "%y%m%d%H%M")
        shown_id = str(int(message_id, 16)) if self.config.receipt_ids == "decimal" else message_id
        shown_state = state.lower() if self.config.receipt_lowercase else state
        text = (
            f"id:{shown_id} sub:001 dlvr:{'001' if state == 'DELIVRD' else '000'} "
            f"submit date:{stamp} done date:{stamp} stat:{shown_state} "
            f"err:{'000' if state == 'DELIVRD' else '001'} text:"
        )
        extra: dict[str, Any] = {}
        if self.config.receipt_tlvs:
            extra = {"receipted_message_id": shown_id, "message_state": _STATE_CODE[state]}
        body = {"message_payload" if self.config.data_sm else "short_message": text.encode()}
        fields = {
            "source_addr": _text(p.destination_addr),
            "destination_addr": _text(p.source_addr),
            "esm_class": 0x04,  # SMSC delivery receipt (smpplib names only the acks)
            **body,
            **extra,
        }
        self._deliver(session, "data_sm" if self.config.data_sm else "deliver_sm", fields)
        self.stats["receipts"] += 1

    # -- mobile-originated messages -------------------------------------------------------

    def inject(self, sender: str, recipient: str, text: str, ton: int = 1, npi: int = 1) -> int:
        """Send a borrower's message to every system id bound to hear, once each (on one of
        its binds that may hear; kept for the next bind if none is up); long ones in
        concatenated parts. `ton` 1: the sender in international form; 2 national, 0 unknown."""
        parts, encoding, esm_class = sgsm.make_parts(text)
        ids = sorted({s.system_id for s in self.sessions if s.mode})
        targets: list[Session | None] = [h[0] for i in ids if (h := self._hearing(i))]
        for session in targets or [None]:
            for part in parts:
                fields = {
                    "source_addr_ton": ton,
                    "source_addr_npi": npi,
                    "source_addr": sender.lstrip("+"),
                    "destination_addr": recipient,
                    "esm_class": esm_class,
                    "data_coding": encoding,
                    "short_message": part,
                }
                if session is None:
                    self._undelivered.append(("deliver_sm", fields))
                else:
                    self._deliver(session, "deliver_sm", fields)
        self.stats["mo"] += 1
        return len(parts)

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One JSON request a line: {"cmd": "mo", "from": "+86...", "to": "1069", "text": "...",
        "ton": 1}
        or {"cmd": "stats"}; one JSON answer a line."""
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if request.get("cmd") == "mo":
                        hearing = len({x.system_id for x in self.sessions if x.mode in HEAR})
                        parts = self.inject(
                            request["from"], request.get("to", ""), request["text"],
                            int(request.get("ton", 1)), int(request.get("npi", 1)),
                        )  # fmt: skip
                        # Delivered to one bind of each system id that may hear; none: kept.
                        answer: dict[str, Any] = {
                            "ok": True,
                            "parts": parts,
                            "sessions": hearing,
                            "kept": hearing == 0,
                        }
                    elif request.get("cmd") == "stats":
                        answer = {"ok": True, **self.stats, "sessions": len(self.sessions),
                                  "hearing": sum(x.mode in HEAR for x in self.sessions)}  # fmt: skip
                    else:
                        answer = {"ok": False, "error": "cmd must be mo or stats"}
                except (ValueError, KeyError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                writer.write((json.dumps(answer) + "\n").encode())
                await writer.drain()
        writer.close()


@contextlib.contextmanager
def smsc_in_thread(config: SmscConfig) -> Iterator[tuple[Smsc, asyncio.AbstractEventLoop]]:
    """A running SMSC on its own event loop in a background thread (tests, `sim month --smpp`)."""
    loop = asyncio.new_event_loop()
    smsc = Smsc(config)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(smsc.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="smsc", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield smsc, loop
    finally:
        asyncio.run_coroutine_threadsafe(smsc.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _resp(name: str, sequence: int, status: int = 0, **fields: Any) -> bytes:
    return _make(name, sequence, status=status, **fields)


def _make(name: str, sequence: int, **fields: Any) -> bytes:
    pdu = ssmpp.make_pdu(name, client=_CLIENT, **fields)
    pdu.sequence = sequence  # smpplib ignores a sequence keyword once its client has one
    data: bytes = pdu.generate()
    return data


def _raw(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


def _text(value: Any) -> str:
    return _raw(value).decode("latin-1")
