"""Reading a borrower's reply: intent, confidence, and for a promise its date and amount.

    reading = classify("我15号还500", date(2026, 11, 29), rules)
    reading.intent, reading.confidence, reading.date, reading.amount

The rules are data (resources/replies.toml): phrases per intent, matched after normalising
(full-width, traditional characters, case, spaces and punctuation do not matter). When several
intents match, the highest rank wins with lower confidence; low confidence goes to a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from cuikuan.domain.lint import normalise_en, normalise_zh
from cuikuan.domain.reply_dates import promised_amount, promised_date

INTENTS = (
    "opt_out", "opt_in", "help", "paid", "promise_to_pay", "installment", "hardship", "dispute",
    "wrong_number", "third_party", "complaint", "deceased", "human", "other",
)  # fmt: skip
CONFIDENT = 0.7

ACTIONS = {
    "opt_out": "stop this channel to this number, in the plan and at dispatch",
    "opt_in": "restore this channel to this number",
    "help": "answer with how to pay and whom to call",
    "paid": "pause reminders a few days and create a verification task",
    "promise_to_pay": "record the promise; pause reminders until its date plus grace",
    "installment": "pause reminders and create a task to agree a plan",
    "hardship": "pause reminders and create a task",
    "dispute": "pause reminders and create a task",
    "wrong_number": "suppress this number for every customer who has it; data-fix task",
    "third_party": "create a task (never discuss the debt with a third party)",
    "complaint": "stop automated messages to this person; high-priority task",
    "deceased": "stop everything; task",
    "human": "create a task for an agent to call back",
    "other": "create a task for a person to read it",
}


@dataclass(frozen=True)
class Rule:
    intent: str
    rank: int
    exact: tuple[str, ...]
    contains: tuple[str, ...]


@dataclass(frozen=True)
class Reading:
    intent: str
    confidence: float
    date: date | None
    amount: Decimal | None
    matched: tuple[str, ...]  # the phrases that fired

    @property
    def needs_person(self) -> bool:
        return self.confidence < CONFIDENT or self.intent == "other"

    @property
    def action(self) -> str:
        if self.intent == "promise_to_pay" and self.date is None:
            return "ask the borrower for a date (no date in the reply); task"
        return ACTIONS[self.intent]


def parse_rules(data: Mapping[str, Any]) -> list[Rule]:
    rules = []
    for intent, table in data.items():
        if intent not in INTENTS:
            raise ValueError(f"unknown intent {intent!r}; intents are {', '.join(INTENTS)}")
        rules.append(
            Rule(
                intent,
                int(table.get("rank", 0)),
                tuple(table.get("exact", ())),
                tuple(table.get("contains", ())),
            )
        )
    return sorted(rules, key=lambda r: -r.rank)


def _views(text: str) -> tuple[str, str]:
    return normalise_zh(text), normalise_en(text)


def _is_ascii(phrase: str) -> bool:
    return phrase.isascii()


def _hit_exact(phrase: str, zh: str, en: str, raw: str) -> bool:
    phrase_zh, phrase_en = normalise_zh(phrase), normalise_en(phrase).strip()
    if not phrase_zh and not phrase_en:  # punctuation only, such as "?": compare as typed
        return raw.strip() == phrase
    if _is_ascii(phrase):
        return bool(en.strip()) and en.strip() == phrase_en
    return zh == phrase_zh


def _hit_contains(phrase: str, zh: str, en: str) -> bool:
    if _is_ascii(phrase):
        needle = normalise_en(phrase)
        return needle.strip() != "" and needle in en
    needle = normalise_zh(phrase)
    return needle != "" and needle in zh


def classify(text: str, today: date, rules: Sequence[Rule]) -> Reading:
    zh, en = _views(text)
    exact = [(r, p) for r in rules for p in r.exact if _hit_exact(p, zh, en, text)]
    if exact:
        rule, phrase = exact[0]
        return _finish(rule.intent, 0.97, text, today, (phrase,))
    hits = [(r, p) for r in rules for p in r.contains if _hit_contains(p, zh, en)]
    if not hits:
        found = promised_date(text, today)
        if found is not None:  # "15号", "friday": a bare date is a promise more often than not
            return Reading("promise_to_pay", 0.6, found, promised_amount(text), ())
        return Reading("other", 0.3, None, None, ())
    intents = {r.intent for r, _ in hits}
    best = hits[0][0]  # rules are sorted by rank
    confidence = 0.88 if len(intents) == 1 else 0.62
    return _finish(
        best.intent, confidence, text, today, tuple(p for r, p in hits if r.intent == best.intent)
    )


def _finish(
    intent: str, confidence: float, text: str, today: date, matched: tuple[str, ...]
) -> Reading:
    if intent != "promise_to_pay":
        return Reading(intent, confidence, None, None, matched)
    found = promised_date(text, today)
    return Reading(
        intent,
        confidence if found else min(confidence, 0.65),
        found,
        promised_amount(text),
        matched,
    )
