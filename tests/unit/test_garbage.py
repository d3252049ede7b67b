"""A dispatch raises the youngest generation's collection threshold and puts it back; nested
and concurrent dispatches share one raise, undone by the last to leave."""

from __future__ import annotations

import gc
import threading

from cuikuan.dispatch.garbage import YOUNG, fewer_collections


def test_the_threshold_is_raised_inside_and_put_back_after_the_last_block() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] >= YOUNG
        with fewer_collections():
            assert gc.get_threshold()[0] >= YOUNG
        assert gc.get_threshold()[0] >= YOUNG  # the outer block is still inside
    assert gc.get_threshold() == before


def test_a_block_that_fails_still_puts_the_threshold_back() -> None:
    before = gc.get_threshold()
    try:
        with fewer_collections():
            raise RuntimeError("a dispatch failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before


def test_concurrent_blocks_leave_the_thresholds_as_they_found_them() -> None:
    before = gc.get_threshold()
    inside = threading.Barrier(4)

    def dispatch() -> None:
        with fewer_collections():
            inside.wait()
            assert gc.get_threshold()[0] >= YOUNG

    threads = [threading.Thread(target=dispatch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gc.get_threshold() == before
