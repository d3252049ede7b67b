"""What a channel heard, applied: receipts to the outbox, borrowers' messages to the replies
pipeline, whichever command holds the bind (send, listen, the worker).

    heard = hear(engine, settings, channel, now)   # Heard(receipts=..., replies=[...])

An SMPP channel built by dispatch keeps every inbound PDU in the database before acknowledging
it (store/inbound_pdus.py); this reads the journal, oldest first, in batches: receipts are
stored and the journal rows marked read in one transaction; a reply is read once all its parts
are in (or they stop coming) and handed on with its arrival time, so a crash between handing it
on and marking it read cannot act on it twice (the replies pipeline knows the same delivery). A sender number is placed the way ledger numbers are
(the provider's region, else the book's, and the number's type of number); one that cannot be
placed with certainty goes to a person with the reply, never to a guessed borrower.

Other channels' receipts and replies (pulled over HTTP, or an SMPP channel with its journal in
memory) are read through `channel.receipts` and `channel.replies`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from cuikuan.channels.base import Channel
from cuikuan.channels.smpp.inbound import read
from cuikuan.dispatch.receipts import match_waiting, record_receipts, store_receipts
from cuikuan.domain.phones import place_sender
from cuikuan.errors import CuikuanError
from cuikuan.services.replies import ReplyResult, receive_reply, receive_unplaced
from cuikuan.settings import Settings, Smpp
from cuikuan.store.inbound_pdus import StoredJournal, settle, waiting

BATCH = 5000


@dataclass
class Heard:
    receipts: Counter[str] = field(default_factory=Counter)
    replies: list[ReplyResult] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unplaced: int = 0  # replies from numbers that could not be placed: each a task for a person
    unreadable: int = 0


class _ReadElsewhere(Exception):
    """Another process marked these rows read first: roll back and leave them to it."""


def hear(engine: Engine, settings: Settings, channel: Channel, now: datetime) -> Heard:
    heard = Heard()
    if isinstance(getattr(channel, "journal", None), StoredJournal):
        _journal(engine, settings, channel.name, now, heard)
        # The binds stored their receipts as they came (StoredJournal.keep): match them.
        with engine.begin() as conn:
            heard.receipts += match_waiting(conn, now)
    heard.receipts += record_receipts(engine, channel.name, channel.receipts(now), now)
    replies = getattr(channel, "replies", None)
    for inbound in replies(now) if replies else []:
        _reply(engine, settings, channel.name, inbound.sender, inbound.sender_ton, inbound.text,
               inbound.at, None, heard)  # fmt: skip
    return heard


def _journal(
    engine: Engine, settings: Settings, provider: str, now: datetime, heard: Heard
) -> None:
    while True:
        try:
            with engine.begin() as conn:
                rows = waiting(conn, provider, BATCH)
                found = read(rows, now)
                outcomes = {k: ("done", "receipt") for k, _ in found.receipts}
                outcomes |= {k: ("done", note) for k, note in found.skipped.items()}
                outcomes |= {k: ("unreadable", note) for k, note in found.unreadable.items()}
                store_receipts(conn, provider, [r for _, r in found.receipts], now)
                if not settle(conn, outcomes):
                    raise _ReadElsewhere
                heard.receipts += match_waiting(conn, now) if found.receipts else Counter()
        except _ReadElsewhere:
            return
        heard.unreadable += len(found.unreadable)
        for reply in found.replies:
            sm = reply.sm
            # No delivery id: an SMSC sends a reply again when our answer was lost, and may give
            # it to every bind; the same text from the same number at the same arrival is one
            # delivery (services.replies), however often it is read.
            _reply(engine, settings, provider, sm.source_addr, sm.source_addr_ton, reply.text,
                   reply.at, None, heard)  # fmt: skip
            with engine.begin() as conn:
                settle(conn, {k: ("done", "reply") for k in reply.keys})
        if len(rows) < BATCH or len(found.waiting) == len(rows):
            return


def _reply(
    engine: Engine,
    settings: Settings,
    provider: str,
    sender: str,
    ton: int | None,
    text: str,
    at: datetime,
    delivery: str | None,
    heard: Heard,
) -> None:
    number = place_sender(sender, ton, provider_region(settings, provider))
    try:
        if number is None:
            receive_unplaced(engine, settings, sender, ton, text, at, source=provider,
                             message_id=delivery)  # fmt: skip
            heard.unplaced += 1
            return
        heard.replies.append(
            receive_reply(engine, settings, number, text, at, source=provider, message_id=delivery)
        )
    except CuikuanError as exc:
        heard.refused.append(f"{sender}: {exc.message}")


def provider_region(settings: Settings, provider: str) -> str:
    """Where the provider's national numbers belong: its own `region`, else the book's."""
    declared = settings.providers.get(provider)
    section = declared if declared is not None else getattr(settings, provider, None)
    if isinstance(section, Smpp) and section.region:
        return section.region
    return settings.defaults.region
