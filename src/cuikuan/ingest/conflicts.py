"""Rows that repeat an external id must agree: the same customer, loan, instalment or payment
given twice with different data is an error at the later line, naming the field."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from cuikuan.ingest.sources import LINE

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
            firsts = rows.unique(subset=list(keys), keep="first", maintain_order=True)
            if entity in self.seen:
                new = firsts.join(self.seen[entity], on=list(keys), how="anti")
                self.seen[entity] = pl.concat([self.seen[entity], new], rechunk=False)
            else:
                self.seen[entity] = firsts
            problems.append(self._differences(entity, keys, present, rows, self.seen[entity]))
        return pl.concat(problems)

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
