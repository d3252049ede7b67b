"""The test SMSC (smpplib's codec, not ours) in a thread of the test process, and an independent
reading of what it received: UDH parsed here by hand, so a client bug cannot hide in a shared
helper."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from cuikuan.channels.smpp.channel import SmppChannel
from cuikuan.channels.smpp.inbound import Journal
from cuikuan.channels.smpp.session import SessionConfig
from cuikuan.sim.smsc import Smsc, SmscConfig, smsc_in_thread


def CLOCK() -> datetime:
    return datetime(2026, 11, 30, 3, tzinfo=UTC)


class RunningSmsc:
    def __init__(self, smsc: Smsc, loop: asyncio.AbstractEventLoop) -> None:
        self.smsc, self.loop = smsc, loop

    @property
    def port(self) -> int:
        return self.smsc.port

    def inject(self, sender: str, text: str, ton: int = 1) -> int:
        fut = asyncio.run_coroutine_threadsafe(self._inject(sender, text, ton), self.loop)
        return fut.result(5)

    async def _inject(self, sender: str, text: str, ton: int) -> int:
        return self.smsc.inject(sender, "1069", text, ton=ton)

    def channel(
        self, journal: Journal | None = None, sessions: int = 1, **session: Any
    ) -> SmppChannel:
        config = SessionConfig(port=self.port, **({"tps": 100_000.0, "window": 64} | session))
        return SmppChannel(
            config, source_addr="1069", journal=journal, sessions=sessions, clock=CLOCK
        )


@contextmanager
def running_smsc(**options: Any) -> Iterator[RunningSmsc]:
    with smsc_in_thread(SmscConfig(port=0, **options)) as (smsc, loop):
        yield RunningSmsc(smsc, loop)


def wait_for(predicate: object, seconds: float = 30.0) -> None:
    """Until `predicate()` holds, polling; AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def received_messages(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Texts per destination as a handset would show them, joined from the parts by hand."""
    whole: dict[str, list[str]] = defaultdict(list)
    pending: dict[tuple[str, int, int], dict[int, bytes]] = {}
    codings: dict[tuple[str, int, int], int] = {}
    for r in records:
        octets = bytes.fromhex(r["short_message"])
        if not r["esm_class"] & 0x40:
            whole[r["destination"]].append(_text(r["data_coding"], octets))
            continue
        udh_len = octets[0]
        iei = octets[1]
        if iei == 0x00:
            ref, total, seq = octets[3], octets[4], octets[5]
        else:
            ref, total, seq = (octets[3] << 8) | octets[4], octets[5], octets[6]
        key = (r["destination"], ref, total)
        codings[key] = r["data_coding"]
        parts = pending.setdefault(key, {})
        assert seq not in parts, f"part {seq} of {key} received twice"
        parts[seq] = octets[1 + udh_len :]
        if len(parts) == total:
            del pending[key]
            body = b"".join(parts[i] for i in range(1, total + 1))
            whole[r["destination"]].append(_text(codings[key], body))
    assert not pending, f"incomplete messages at the SMSC: {list(pending)[:3]}"
    return dict(whole)


GSM = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
           0x3E: "]", 0x40: "|", 0x65: "€"}  # fmt: skip


def _text(data_coding: int, octets: bytes) -> str:
    if data_coding == 8:
        return octets.decode("utf-16-be")
    out, i = [], 0
    while i < len(octets):
        if octets[i] == 0x1B:
            out.append(GSM_EXT[octets[i + 1]])
            i += 2
        else:
            out.append(GSM[octets[i]])
            i += 1
    return "".join(out)
