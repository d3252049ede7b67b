"""Fewer cyclic garbage collections while a dispatch runs.

    with fewer_collections():
        ...   # claim, re-check, send, record: thousands of short-lived rows a round

A dispatch round makes and drops thousands of dicts and tuples (claimed rows, facts, results).
Almost all are freed by their reference counts, yet every 700 of them CPython's default
threshold starts a cyclic collection, which walks every young object, and now and then every
object of the process. Measured on the 1 M-account book (BENCHMARKS.md, session 17): 850
collections and 0.34-0.39 s of a 2.6 s dispatch of 16,795 messages; with the first generation's
threshold at 100,000 there were none, and the dispatch took 2.36 s. Cyclic garbage still goes,
only in fewer, later passes; the thresholds are put back when the last dispatch in the process
ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG = 100_000  # allocations (net of frees) before the youngest generation is collected


class _Raised:
    """How many blocks are inside, and the thresholds to put back when the last leaves."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.saved: tuple[int, int, int] = gc.get_threshold()

    def enter(self) -> None:
        with self.lock:
            if self.inside == 0:
                self.saved = gc.get_threshold()
                gc.set_threshold(max(YOUNG, self.saved[0]), self.saved[1], self.saved[2])
            self.inside += 1

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1
            if self.inside == 0:
                gc.set_threshold(*self.saved)


_RAISED = _Raised()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the youngest generation's threshold for the block; nested and concurrent blocks
    (several dispatches in one process) share one raise, undone by the last to leave."""
    _RAISED.enter()
    try:
        yield
    finally:
        _RAISED.leave()
