"""SortedRuns finds exactly what a dict of everything added would, whatever the batches."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from cuikuan import frames
from cuikuan.frames import SortedRuns

keys_of = st.one_of(
    st.lists(st.integers(0, 2**64 - 1), max_size=60).map(lambda v: pl.Series("k", v, pl.UInt64)),
    st.lists(st.text(max_size=6), max_size=60).map(lambda v: pl.Series("k", v, pl.String)),
)


@given(st.lists(keys_of, max_size=12), keys_of, st.sampled_from([16_000_000, 40]))
def test_finds_what_a_dict_would(batches: list[pl.Series], probe: pl.Series, cap: int) -> None:
    default, frames.MAX_RUN = frames.MAX_RUN, cap
    try:
        check(batches, probe, cap)
    finally:
        frames.MAX_RUN = default


def check(batches: list[pl.Series], probe: pl.Series, cap: int) -> None:
    held: dict[object, int] = {}
    runs = SortedRuns("k")
    dtype = batches[0].dtype if batches else probe.dtype
    for n, batch in enumerate(b for b in batches if b.dtype == dtype):
        new = [k for k in dict.fromkeys(batch.to_list()) if k not in held]
        for k in new:
            held[k] = n
        runs.add(pl.DataFrame({"k": pl.Series(new, dtype=dtype), "n": [n] * len(new)}))
    assert runs.height == len(held)
    # Sizes at least double down the list (O(log n) runs to search), up to the cap.
    assert all(
        a.height > 2 * b.height or a.height + b.height > cap
        for a, b in zip(runs.runs, runs.runs[1:], strict=False)
    )
    if probe.dtype != dtype:
        return
    found = runs.find(probe)
    assert sorted(found.rows()) == sorted((k, held[k]) for k in set(probe.to_list()) if k in held)
