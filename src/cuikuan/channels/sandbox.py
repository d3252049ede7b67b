"""The sandbox gateway: accepts messages, gives provider ids, delivers receipts later.

It stores what it "sent" in its own table (sandbox_messages), so a demo or a test can read the
SMS a borrower would have received. A share of messages fails delivery and receipts arrive after
a delay, both configurable and decided by a stable hash of the provider id (repeatable runs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from cuikuan.channels.base import BOTH, OutgoingMessage, Receipt, SendResult
from cuikuan.store.schema import sandbox_messages


@dataclass
class SandboxChannel:
    engine: Engine
    failure_share: float = 0.03
    receipt_delay: timedelta = timedelta(seconds=20)
    name: str = "sandbox"
    max_tps: float = 1000.0
    max_parts: int = 255
    encodings: tuple[str, ...] = BOTH

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]:
        results = []
        with self.engine.begin() as conn:
            for message in batch:
                provider_id = hashlib.blake2b(
                    f"{message.outbox_id}:{message.recipient}".encode(), digest_size=10
                ).hexdigest()
                delivered = _fraction(provider_id) >= self.failure_share
                conn.execute(
                    insert(sandbox_messages).values(
                        provider_id=provider_id,
                        outbox_id=message.outbox_id,
                        channel=message.channel,
                        recipient=message.recipient,
                        text=message.text,
                        accepted_at=now,
                        receipt_due_at=now + self.receipt_delay,
                        delivered=delivered,
                        receipt_sent=False,
                    )
                )
                results.append(SendResult(message.outbox_id, provider_id))
        return results

    def receipts(self, now: datetime) -> list[Receipt]:
        with self.engine.begin() as conn:
            due = conn.execute(
                select(
                    sandbox_messages.c.provider_id,
                    sandbox_messages.c.delivered,
                    sandbox_messages.c.receipt_due_at,
                ).where(
                    sandbox_messages.c.receipt_sent.is_(False),
                    sandbox_messages.c.receipt_due_at <= now,
                )
            ).all()
            if due:
                conn.execute(
                    update(sandbox_messages)
                    .where(sandbox_messages.c.provider_id.in_([d.provider_id for d in due]))
                    .values(receipt_sent=True)
                )
        return [
            Receipt(d.provider_id, bool(d.delivered), now, "DELIVRD" if d.delivered else "UNDELIV")
            for d in due
        ]


def _fraction(text: str) -> float:
    return int(text[:12], 16) / 16**12
