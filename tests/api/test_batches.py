"""The fast reading of a ledger batch (api/batches.py) against the model's: the same rows, the
same snapshot, or the same refusal with the same errors, for any body, hostile ones included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cuikuan.api.batches import Batch, _as_read, _fast, read_batch

NAMES = st.sampled_from(["借据号", "期数", "应还金额", "loan_id", "a\x01b", "note", ""])
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
CELL = st.one_of(
    TEXT, st.integers(), st.integers(min_value=2**63 - 3, max_value=2**70), st.floats(),
    st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.just({"x": 1}),
)  # fmt: skip
ROW = st.dictionaries(NAMES, CELL, max_size=5)
SNAPSHOT = st.one_of(
    st.just("2026-11-29T16:00:00Z"), st.just("2026-11-29T16:00:00+08:00"), st.just("0001-01-01"),
    st.just("tomorrow"), st.none(), st.integers(), st.just(1.5e9),
)  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        doc["rows"] = draw(
            st.one_of(st.lists(ROW, max_size=6), st.just([]), st.just([1]), st.just("x"))
        )
    if draw(st.booleans()):
        doc["snapshot_at"] = draw(SNAPSHOT)
    if not draw(st.integers(0, 9)):
        doc["extra"] = 1
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    return draw(st.sampled_from([text, text[:-1], "[]", "null"])).encode()


def _reference(body: bytes) -> Any:
    try:
        batch = Batch.model_validate_json(body)
    except ValidationError as exc:
        return ("refused", exc.errors(include_url=False, include_context=False))
    read = _as_read(batch.rows, batch.snapshot_at)
    return (read.header, read.frame.to_dicts(), read.snapshot_at)


def _ours(body: bytes) -> Any:
    try:
        read = read_batch(body)
    except ValidationError as exc:
        return ("refused", exc.errors(include_url=False, include_context=False))
    return (read.header, read.frame.to_dicts(), read.snapshot_at)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_a_batch_reads_as_the_model_reads_it(body: bytes) -> None:
    assert _ours(body) == _reference(body)


def test_a_plain_batch_takes_the_fast_path_and_a_doubtful_one_does_not() -> None:
    rows = [{"借据号": "L1", "期数": 1, "应还金额": 571.73, "note": None}]
    assert _fast(json.dumps({"rows": rows}).encode()) is not None
    for doubtful in ({"借据号": True}, {"借据号": "L\x00"}, {"a\x01": "x"}, {"n": 2**80}):
        assert _fast(json.dumps({"rows": [doubtful]}).encode()) is None, doubtful
