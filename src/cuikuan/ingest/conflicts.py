"""Rows that repeat an external id must agree: the same customer, loan, instalment or payment
given twice with different data is an error at the later line, naming the field."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from cuikuan.ingest.sources import LINE

FP = "_fingerprint"
KH = "_key_hash"
PROBLEMS = {LINE: pl.Int64, "column": pl.String, "message": pl.String, "got": pl.String}

ENTITIES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "instalments": {
        "customer": (
            ("customer_id",),
            ("name", "e164", "email", "locale", "timezone", "tags", "flags"),
        ),
        "loan": (("loan_id",), ("customer_id", "product", "currency")),
        "instalment": (("loan_id", "instalment_no"), ("due_date", "amount_due", "amount_paid")),
    },
    "payments": {
        "payment": (("payment_id",), ("loan_id", "paid_at", "amount", "currency")),
    },
}


@dataclass
class ConflictTracker:
    """First sighting of each key across batches; compact (keys, compared values, line)."""

    kind: str
    columns: dict[str, str]  # field -> the file's column, for messages
    seen: dict[str, pl.DataFrame] = field(default_factory=dict)

    def check(self, frame: pl.DataFrame) -> pl.DataFrame:
        problems = []
        for entity, (keys, values) in ENTITIES[self.kind].items():
            present = [v for v in values if v in frame.columns]
            rows = frame.select(LINE, *keys, *present).drop_nulls(list(keys))
            if "e164" in present:
                rows = rows.with_columns(pl.col("e164").list.join(";"))
            # 64-bit hashes of the key and of the compared values: the joins below then move
            # two integer columns instead of strings. (A collision among a million keys has a
            # chance of about 1 in 30 million and would only hide a conflict, never invent one.)
            rows = rows.with_columns(
                pl.struct(keys).hash(seed=1).alias(KH), pl.struct(present).hash(seed=0).alias(FP)
            )
            firsts = rows.unique(subset=[KH], keep="first", maintain_order=True)
            previous = self.seen.get(entity)
            if previous is None:
                self.seen[entity] = firsts
            else:
                new = firsts.join(previous.select(KH), on=KH, how="anti")
                self.seen[entity] = pl.concat([previous, new], rechunk=False)
            seen = self.seen[entity]
            clashing = (
                rows.select(LINE, KH, FP)
                .join(seen.select(KH, FP), on=KH, suffix="__first")
                .filter(pl.col(FP) != pl.col(f"{FP}__first"))
            )
            if clashing.height:
                offending = rows.join(clashing.select(LINE), on=LINE)
                problems.append(self._differences(entity, keys, present, offending, seen))
        return pl.concat(problems) if problems else pl.DataFrame(schema=PROBLEMS)

    def _differences(
        self,
        entity: str,
        keys: tuple[str, ...],
        values: list[str],
        rows: pl.DataFrame,
        first: pl.DataFrame,
    ) -> pl.DataFrame:
        joined = rows.join(first, on=list(keys), suffix="__first").filter(
            pl.col(LINE) != pl.col(f"{LINE}__first")
        )
        key_text = pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator=" #")
        out = []
        for v in values:
            here, there = pl.col(v).cast(pl.String), pl.col(f"{v}__first").cast(pl.String)
            out.append(
                joined.filter(here.ne_missing(there)).select(
                    LINE,
                    pl.lit(self.columns.get(v, v)).alias("column"),
                    pl.format(
                        "{} '{}' was given differently on line {} ('{}' there)",
                        pl.lit(entity),
                        key_text,
                        pl.col(f"{LINE}__first"),
                        there.fill_null(""),
                    ).alias("message"),
                    here.alias("got"),
                )
            )
        return pl.concat(out) if out else pl.DataFrame()
