"""What an SMPP bind hears: every deliver_sm and data_sm is kept (a journal) before it is
acknowledged, and read from there, so nothing acknowledged can be lost with the process.

    journal.keep("cmcc", [Arrival(session, command_id, body, at), ...])   # raises: not kept
    heard = read(stored, now)     # receipts, replies (joined from their parts), the rest

The session's own loop only stores and acknowledges; reading (receipts to messages, replies to
the replies pipeline) happens in whoever applies the journal: `dispatch.inbound` for the stored
journal, the channel itself for the in-memory one that tools and tests use without a database.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from cuikuan.channels.base import Receipt
from cuikuan.channels.smpp import coding, pdu
from cuikuan.channels.smpp.receipts import is_receipt, parse_receipt

# A reply whose parts stop arriving is read as it is, marked incomplete, after this long.
PARTS_WAIT = timedelta(minutes=5)
# Longer receipt ids are no SMSC's (they are stored in a column of 128).
MAX_ID = 128


@dataclass(frozen=True)
class Arrival:
    session: str  # the bind it came on
    command_id: int  # DELIVER_SM or DATA_SM
    body: bytes  # the PDU body as it came
    at: datetime


class Journal(Protocol):
    def keep(self, provider: str, arrivals: Sequence[Arrival]) -> None:
        """Store them durably; raise if that failed (they are then not acknowledged)."""


def message_of(command_id: int, body: bytes) -> pdu.ShortMessage:
    return pdu.decode_data_sm(body) if command_id == pdu.DATA_SM else pdu.decode_sm(body)


@dataclass
class Heard:
    receipts: list[tuple[int, Receipt]] = field(default_factory=list)
    replies: list[coding.Assembled] = field(default_factory=list)
    # Read and nothing to do (an intermediate receipt), or unreadable: key -> note.
    skipped: dict[int, str] = field(default_factory=dict)
    unreadable: dict[int, str] = field(default_factory=dict)
    waiting: list[int] = field(default_factory=list)  # reply parts waiting for the rest


class Reading(NamedTuple):
    """What one stored PDU is: a final receipt, nothing to do (an intermediate receipt),
    unreadable (with why), or a piece of a borrower's message (`sm`). A named tuple: a busy
    bind reads thousands a second."""

    receipt: Receipt | None = None
    skipped: str | None = None
    unreadable: str | None = None
    sm: pdu.ShortMessage | None = None


def reading(arrival: Arrival) -> Reading:
    """Never raises: a PDU that cannot be read, however hostile, is `unreadable`, so that it
    can neither stop a bind from storing (and acknowledging) the rest nor stop their reader."""
    try:
        return _reading(arrival)
    except Exception as exc:
        return Reading(unreadable=f"unreadable PDU: {type(exc).__name__}: {str(exc)[:200]}")


def _reading(arrival: Arrival) -> Reading:
    try:
        sm = message_of(arrival.command_id, arrival.body)
    except (pdu.PduError, ValueError, IndexError) as exc:
        return Reading(unreadable=f"unreadable PDU: {exc}")
    if not is_receipt(sm):
        return Reading(sm=sm)
    info = parse_receipt(sm)
    if info is None:
        return Reading(unreadable=f"unreadable receipt: {sm.short_message[:120]!r}")
    if len(info.message_id) > MAX_ID:
        return Reading(unreadable=f"receipt id longer than {MAX_ID}: {info.message_id[:40]!r}...")
    if info.outcome is None:
        return Reading(skipped=f"intermediate receipt {info.state} for {info.message_id}")
    detail = info.state + (f" err:{info.error}" if info.error else "")
    receipt = Receipt(
        info.message_id, info.outcome == "delivered", arrival.at, detail,
        expired=info.outcome == "expired",
    )  # fmt: skip
    return Reading(receipt=receipt)


def read(
    stored: Sequence[tuple[int, Arrival]], now: datetime, wait: timedelta = PARTS_WAIT
) -> Heard:
    heard = Heard()
    pieces: list[coding.Piece] = []
    for key, arrival in stored:
        found = reading(arrival)
        if found.sm is not None:
            pieces.append(coding.Piece(key, found.sm, arrival.at))
        elif found.receipt is not None:
            heard.receipts.append((key, found.receipt))
        elif found.skipped is not None:
            heard.skipped[key] = found.skipped
        elif found.unreadable is not None:
            heard.unreadable[key] = found.unreadable
    heard.replies, heard.waiting = coding.assemble(pieces, now, wait)
    return heard


class MemoryJournal:
    """Kept in this process only: for a channel used without a database (tools, tests)."""

    def __init__(self) -> None:
        self._rows: dict[int, Arrival] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def keep(self, provider: str, arrivals: Sequence[Arrival]) -> None:
        with self._lock:
            for arrival in arrivals:
                self._rows[next(self._ids)] = arrival

    def take(self, now: datetime) -> Heard:
        """Read what is kept and forget it, except reply parts still waiting for the rest."""
        with self._lock:
            stored = sorted(self._rows.items())
            heard = read(stored, now)
            waiting = set(heard.waiting)
            self._rows = {k: a for k, a in stored if k in waiting}
        return heard
