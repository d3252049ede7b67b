"""Keep a synchronous provider under its agreed rate (requests a second)."""

from __future__ import annotations

import time


class Pacer:
    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_free = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self.next_free)
        self.next_free = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
