"""A table that grows batch by batch and is looked up by key without being scanned whole.

An import of 116 M rows remembers every key it has seen (to refuse a repeated id with other
data) and every id it has resolved. Joining each batch against all of that is a scan of the
whole table per batch: quadratic, hours at 10 M accounts. Here the table is kept as sorted runs
whose sizes at least double down the list (a log-structured merge): a lookup is a binary search
in each of O(log n) runs, and each row is re-sorted O(log n) times over the whole import.

Polars has no index structure for this (a join hashes both sides every time), so it is written
here, on Polars' own sort and `search_sorted`.
"""

from __future__ import annotations

import polars as pl

# Runs stop merging at this many rows: a merge holds both inputs and the output at once, and
# 116 M instalment keys merged into one run peaked at 14.6 GB. Past it, runs only accumulate
# (a 116 M-row import searches about eight of them).
MAX_RUN = 16_000_000


class SortedRuns:
    """Rows with a unique key column, added in batches; `find` returns those with given keys."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.runs: list[pl.DataFrame] = []

    @property
    def height(self) -> int:
        return sum(r.height for r in self.runs)

    def add(self, frame: pl.DataFrame) -> None:
        """Add rows whose keys are not held yet (the caller checks with `find`)."""
        if frame.is_empty():
            return
        self.runs.append(frame.sort(self.key))
        while (
            len(self.runs) > 1
            and self.runs[-2].height <= 2 * self.runs[-1].height
            and self.runs[-2].height + self.runs[-1].height <= MAX_RUN
        ):
            newer = self.runs.pop()
            older = self.runs.pop()
            self.runs.append(older.merge_sorted(newer, self.key))

    def find(self, keys: pl.Series) -> pl.DataFrame:
        """The held rows whose key is one of `keys` (each once, in no particular order)."""
        wanted = keys.unique()
        parts = []
        for run in self.runs:
            column = run.get_column(self.key)
            at = column.search_sorted(wanted, side="left").clip(upper_bound=run.height - 1)
            got = run[at]
            parts.append(got.filter(got.get_column(self.key) == wanted))
        if not parts:
            return pl.DataFrame(schema={self.key: keys.dtype})
        return pl.concat(parts)
