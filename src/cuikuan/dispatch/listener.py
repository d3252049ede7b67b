"""What a bound channel hears: receipts to the outbox, borrowers' messages to the replies pipeline.

    heard = drain(engine, settings, channel, now)   # Heard(receipts=..., replies=[...])

Used by `cuikuan listen` in a loop and by `cuikuan send` after a batch. A reply from a number we
do not know is still stored (the pipeline records it with no customer) and never lost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from cuikuan.channels.base import Channel
from cuikuan.dispatch.receipts import record_receipts
from cuikuan.errors import CuikuanError
from cuikuan.services.replies import ReplyResult, receive_reply
from cuikuan.settings import Settings


@dataclass
class Heard:
    receipts: Counter[str] = field(default_factory=Counter)
    replies: list[ReplyResult] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def drain(engine: Engine, settings: Settings, channel: Channel, now: datetime) -> Heard:
    heard = Heard()
    heard.receipts = record_receipts(engine, channel.name, channel.receipts(now), now)
    replies = getattr(channel, "replies", None)
    for inbound in replies(now) if replies else []:
        try:
            heard.replies.append(
                receive_reply(
                    engine, settings, inbound.sender, inbound.text, inbound.at, source=channel.name
                )
            )
        except CuikuanError as exc:
            heard.refused.append(f"{inbound.sender}: {exc.message}")
    return heard
