"""Per-intent precision and recall of the reply reading against a labelled set.

    scores = score(rows, today, rules)      # rows: (intents, text, promised date or None)

A reply may mean several things; its labels are every intent it carries. The reading's found
intents are its prediction ("other" when it found none). A safety intent counts as caught only
when the reading acts on it (`Reading.safety`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from cuikuan.domain.replies import INTENTS, SAFETY, Rule, classify


@dataclass
class Scores:
    true_pos: Counter[str] = field(default_factory=Counter)
    false_pos: Counter[str] = field(default_factory=Counter)
    false_neg: Counter[str] = field(default_factory=Counter)
    dates_right: int = 0
    dates_asked: int = 0
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (text, wanted, got)

    def precision(self, intent: str) -> float:
        found = self.true_pos[intent] + self.false_pos[intent]
        return self.true_pos[intent] / found if found else 1.0

    def recall(self, intent: str) -> float:
        wanted = self.true_pos[intent] + self.false_neg[intent]
        return self.true_pos[intent] / wanted if wanted else 1.0

    def support(self, intent: str) -> int:
        return self.true_pos[intent] + self.false_neg[intent]

    def table(self) -> list[tuple[str, int, float, float]]:
        return [
            (i, self.support(i), self.precision(i), self.recall(i))
            for i in INTENTS
            if self.support(i) or self.false_pos[i]
        ]


def score(
    rows: Sequence[tuple[tuple[str, ...], str, date | None]], today: date, rules: Sequence[Rule]
) -> Scores:
    out = Scores()
    for wanted, text, when in rows:
        reading = classify(text, today, rules)
        got = set(reading.found) or {"other"}
        got = {i for i in got if i not in SAFETY} | set(reading.safety)
        for intent in set(wanted) | got:
            if intent in wanted and intent in got:
                out.true_pos[intent] += 1
            elif intent in got:
                out.false_pos[intent] += 1
            else:
                out.false_neg[intent] += 1
        if set(wanted) != got:
            out.misses.append((text, ",".join(wanted), ",".join(sorted(got))))
        if when is not None:
            out.dates_asked += 1
            out.dates_right += reading.date == when
    return out
