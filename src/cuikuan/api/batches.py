"""A ledger batch's JSON body read into a frame of text cells, fast, and always as the model
would read it.

    batch = read_batch(body)      # raises pydantic.ValidationError exactly as Batch would
    batch.frame, batch.header, batch.snapshot_at

`Batch` is the contract: its JSON schema is the OpenAPI document's, and its
errors are the problem document's. Checking it cell by cell is most of a 10,000-row batch's
time (a union type and a pattern for each of ~100,000 cells), so a body is first read with
orjson and checked a column at a time: the cells' types at once, control characters with one
pattern over each column in Polars. Any body that fast path does not accept outright (a
malformed body, a wrong type, a control character, an unknown field, too few or too many rows)
is handed to the model, whose verdict and messages are then the answer. tests/api/
test_batches.py holds the two readings equal on generated bodies, hostile ones included.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
import polars as pl
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from cuikuan.api.common import NO_CONTROLS, Moment, Text

MAX_BATCH_ROWS = 50_000
Cell = Annotated[StrictStr, StringConstraints(pattern=NO_CONTROLS)] | StrictInt | StrictFloat | None
CELL_TYPES = frozenset({str, int, float, type(None)})
# orjson reads an integer beyond 64 bits as a float (the model as an int): a float this large
# may have been one, and goes to the model.
BIG = float(2**63)
# The characters NO_CONTROLS refuses, as a search: "^[^...]*$" -> "[...]" (one rule).
CONTROL = "[" + NO_CONTROLS.removeprefix("^[^").removesuffix("]*$") + "]"


@dataclass(frozen=True)
class ReadBatch:
    header: list[str]
    frame: pl.DataFrame  # every column text, None where a row has no such key or null
    snapshot_at: datetime | None


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[Text, Cell]] = Field(
        min_length=1, max_length=MAX_BATCH_ROWS,
        description="One object a row, keyed by the same column names the file import reads "
        "(English or Chinese headers; other columns are kept as custom attributes).",
    )  # fmt: skip
    snapshot_at: Moment | None = Field(
        None, description="When the paid amounts were taken (instalments): default, now."
    )


class _Head(BaseModel):
    """Batch without its rows: the one field the fast path leaves to pydantic."""

    model_config = ConfigDict(extra="forbid")
    snapshot_at: Moment | None = None


def read_batch(body: bytes) -> ReadBatch:
    fast = _fast(body)
    if fast is not None:
        return fast
    batch = Batch.model_validate_json(body)  # raises with the model's own messages
    return _as_read(batch.rows, batch.snapshot_at)


def _as_read(rows: list[dict[str, Any]], snapshot_at: datetime | None) -> ReadBatch:
    header = list(dict.fromkeys(itertools.chain.from_iterable(rows)))
    schema = dict.fromkeys(header, pl.String)
    try:
        frame = pl.from_dicts(rows, schema=schema, strict=False)
    except (pl.exceptions.ComputeError, OverflowError):
        # An integer beyond 64 bits, which Polars cannot take even as text: written out first.
        wide = [{k: _wide(v) for k, v in row.items()} for row in rows]
        frame = pl.from_dicts(wide, schema=schema, strict=False)
    return ReadBatch(header, frame, snapshot_at)


def _wide(value: Any) -> Any:
    return str(value) if type(value) is int and not -(2**63) <= value < 2**63 else value


def _fast(body: bytes) -> ReadBatch | None:
    """The batch when the body is plainly valid, else None (the model decides)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or "rows" not in data or not set(data) <= {"rows", "snapshot_at"}:
        return None
    rows = data["rows"]
    if type(rows) is not list or not 1 <= len(rows) <= MAX_BATCH_ROWS:
        return None
    if any(type(r) is not dict for r in rows):
        return None
    cells = list(itertools.chain.from_iterable(map(dict.values, rows)))
    types = set(map(type, cells))
    if not types <= CELL_TYPES:
        return None  # bool, list, object: the model names the row and field
    if float in types and any(type(c) is float and not -BIG < c < BIG for c in cells):
        return None
    head = {"snapshot_at": data["snapshot_at"]} if "snapshot_at" in data else {}
    try:
        snapshot = _Head.model_validate_json(orjson.dumps(head)).snapshot_at
    except ValueError:
        return None
    read = _as_read(rows, snapshot)
    if any(re.search(CONTROL, name) for name in read.header):
        return None
    text = read.frame.select(pl.all().str.contains(CONTROL).any())
    if text.height and any(text.row(0)):
        return None
    return read
