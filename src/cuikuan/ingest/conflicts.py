"""Rows that repeat an external id must agree: the same customer, loan, instalment or payment
given twice with different data is an error at the later line, naming the field.

The first sighting of every key is remembered for the whole file, so this index is the one part
of an import that grows with the file. It is kept compact: 64-bit hashes of the key and of the
compared values, the line, and per field either the value (customers and loans: few, and the
message can show what the earlier line said) or a 32-bit hash (instalments and payments: one per
row, about 30 bytes each).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from cuikuan.frames import SortedRuns
from cuikuan.ingest.sources import LINE

FP = "_fingerprint"
KH = "_key_hash"
PROBLEMS = {LINE: pl.Int64, "column": pl.String, "message": pl.String, "got": pl.String}


@dataclass(frozen=True)
class Entity:
    keys: tuple[str, ...]
    values: tuple[str, ...]
    one_per_row: bool  # remember hashes of the values rather than the values


ENTITIES: dict[str, dict[str, Entity]] = {
    "instalments": {
        "customer": Entity(
            ("customer_id",),
            ("name", "e164", "email", "locale", "timezone", "tags", "flags"),
            False,
        ),
        "loan": Entity(("loan_id",), ("customer_id", "product", "currency"), False),
        "instalment": Entity(
            ("loan_id", "instalment_no"), ("due_date", "amount_due", "amount_paid"), True
        ),
    },
    "payments": {
        "payment": Entity(("payment_id",), ("loan_id", "paid_at", "amount", "currency"), True),
    },
}


def _hashed(name: str) -> str:
    return f"{name}#"


@dataclass
class ConflictTracker:
    """First sighting of each key across batches (see the module docstring for its size)."""

    kind: str
    columns: dict[str, str]  # field -> the file's column, for messages
    # Looked up by binary search, not joined whole: a join per batch against every key seen so
    # far made a 116 M-row import quadratic.
    seen: dict[str, SortedRuns] = field(default_factory=dict)

    def check(self, frame: pl.DataFrame) -> pl.DataFrame:
        problems = []
        for name, entity in ENTITIES[self.kind].items():
            present = [v for v in entity.values if v in frame.columns]
            rows = self._rows(frame, entity, present)
            firsts = self._remembered(entity, present, rows)
            runs = self.seen.setdefault(name, SortedRuns(KH))
            earlier = runs.find(firsts.get_column(KH))
            new = firsts.join(earlier.select(KH), on=KH, how="anti")
            runs.add(new)
            # The first sighting of each key of this batch: an earlier batch's, else this one's.
            seen = pl.concat([earlier, new]) if earlier.height else new
            clashing = (
                rows.select(LINE, KH, FP)
                .join(seen.select(KH, FP), on=KH, suffix="__first")
                .filter(pl.col(FP) != pl.col(f"{FP}__first"))
            )
            if clashing.height:
                offending = rows.join(clashing.select(LINE), on=LINE)
                problems.append(self._differences(name, entity, present, offending, seen))
        return pl.concat(problems) if problems else pl.DataFrame(schema=PROBLEMS)

    @staticmethod
    def _rows(frame: pl.DataFrame, entity: Entity, present: list[str]) -> pl.DataFrame:
        rows = frame.select(LINE, *entity.keys, *present).drop_nulls(list(entity.keys))
        if "e164" in present:
            rows = rows.with_columns(pl.col("e164").list.join(";"))
        # (A 64-bit collision among a million keys has a chance of about 1 in 30 million and
        # would only hide a conflict, never invent one.)
        return rows.with_columns(
            pl.struct(entity.keys).hash(seed=1).alias(KH),
            pl.struct(present).hash(seed=0).alias(FP),
            *[
                (pl.col(v).hash(seed=2) % (1 << 32)).cast(pl.UInt32).alias(_hashed(v))
                for v in present
            ],
        )

    @staticmethod
    def _remembered(entity: Entity, present: list[str], rows: pl.DataFrame) -> pl.DataFrame:
        firsts = rows.unique(subset=[KH], keep="first", maintain_order=True)
        kept = [_hashed(v) for v in present] if entity.one_per_row else [*entity.keys, *present]
        return firsts.select(KH, FP, pl.col(LINE).cast(pl.Int32), *kept)

    def _differences(
        self,
        name: str,
        entity: Entity,
        values: list[str],
        rows: pl.DataFrame,
        seen: pl.DataFrame,
    ) -> pl.DataFrame:
        joined = rows.join(seen, on=KH, suffix="__first")
        key_text = pl.concat_str([pl.col(k).cast(pl.String) for k in entity.keys], separator=" #")
        out = []
        for v in values:
            here = pl.col(v).cast(pl.String)
            if entity.one_per_row:
                differs = pl.col(_hashed(v)) != pl.col(f"{_hashed(v)}__first")
                message = pl.format(
                    "{} '{}' was given differently on line {}",
                    pl.lit(name),
                    key_text,
                    pl.col(f"{LINE}__first"),
                )
            else:
                there = pl.col(f"{v}__first").cast(pl.String)
                differs = here.ne_missing(there)
                message = pl.format(
                    "{} '{}' was given differently on line {} ('{}' there)",
                    pl.lit(name),
                    key_text,
                    pl.col(f"{LINE}__first"),
                    there.fill_null(""),
                )
            out.append(
                joined.filter(differs).select(
                    pl.col(LINE),
                    pl.lit(self.columns.get(v, v)).alias("column"),
                    message.alias("message"),
                    here.alias("got"),
                )
            )
        return pl.concat(out).cast(PROBLEMS)  # type: ignore[arg-type]
