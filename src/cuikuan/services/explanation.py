"""Why a borrower gets a message on a day, or not: what `cuikuan explain` prints and the API's
explain route answers, made once here.

    found = explain(engine, settings, "C001", day, now)
    found.as_json()     # {"customer", "as_of", "loans": [...], "decision": {...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from cuikuan.domain.money import currency_digits
from cuikuan.domain.strategy import Facts, ordered_steps, why_not
from cuikuan.services.planner import make_plan, planned_row
from cuikuan.settings import Settings

DECISION_FIELDS = ("step", "template", "variant", "control", "status", "reason", "recipient",
                   "earliest_at", "latest_at", "text", "segments", "billing_units")  # fmt: skip


@dataclass(frozen=True)
class Explanation:
    customer: str
    as_of: date
    loans: list[dict[str, Any]]  # every open loan, every step matched or why not
    decision: dict[str, Any] | None  # the plan's row for them (its trail a JSON text)

    def as_json(self) -> dict[str, Any]:
        return {"customer": self.customer, "as_of": self.as_of.isoformat(), "loans": self.loans,
                "decision": decision_json(self.decision)}  # fmt: skip


def explain(
    engine: Engine, settings: Settings, customer: str, day: date, now: datetime
) -> Explanation:
    result = make_plan(engine, settings, day, dry_run=True, only_customer=customer, now=now)
    steps = ordered_steps(result.strategy)
    loans = []
    for row in result.evaluated.iter_rows(named=True):
        facts = Facts(
            row["days_to_due"], row["dpd"], row["bucket"],
            Decimal(row["outstanding"]).scaleb(-currency_digits(row["currency"])),
            frozenset(row["tags"] or []), row["first_delinquency"],
        )  # fmt: skip
        loans.append({
            "loan": row["external_id"], "dpd": row["dpd"], "days_to_due": row["days_to_due"], "bucket": row["bucket"],
            "stopped": row["stopped"],
            "steps": [{"step": s.id, "matched": row[f"m{i}"], "why_not": None if row[f"m{i}"] else why_not(s, facts)} for i, s in enumerate(steps)],
        })  # fmt: skip
    decision = result.candidates.to_dicts()[0] if result.candidates.height else None
    if decision is not None and decision["status"] == "exists":
        # Planned earlier today: show what was written and where it stands now.
        stored = planned_row(engine, customer, str(decision["step"]), day)
        if stored is not None:
            trail = [*json.loads(stored["trail"]), f"already in the outbox: {stored['status']}"]
            decision = {**decision, **stored, "trail": json.dumps(trail, ensure_ascii=False)}
    return Explanation(customer, day, loans, decision)


def decision_json(decision: dict[str, Any] | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    out = {k: decision.get(k) for k in DECISION_FIELDS}
    out["trail"] = json.loads(str(decision.get("trail") or "[]"))
    return out
